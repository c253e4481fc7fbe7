"""The registered recommender (deploy=registry): user IDs in, their top items out (an MLflow pyfunc model).

Input: a DataFrame with `userId` (string) and `numResults` (integer). Output: `userId` and `itemList`, the
recommended item IDs joined by "|", best first. The saved model folder travels whole (catalog, recipe
weights, users' latest history), so the registry's champion is also what `deploy=local` serves.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.pyfunc import PythonModel
from mlflow.types import ColSpec, Schema
from omegaconf import DictConfig

from mlexp.errors import DataError
from mlexp.serving.pyfunc_model import PyfuncModel
from mlexp.tasks.recommendation import recipes
from mlexp.tasks.recommendation.catalog import UserState, served_states
from mlexp.tasks.recommendation.ranking import top_items

# pyfunc_model reads nothing from paths.data: a SageMaker training job's model.tar.gz is the whole model
DATA_FILES: tuple[str, ...] = ()
COLD_USER = "user_1"


class Recommendations(PythonModel):
    """A saved recipe with the users' states, read from its histories as the deploy=local service reads them."""

    def load_context(self, context: Any) -> None:
        folder = Path(context.artifacts["model"])
        self.model = recipes.load(folder)
        saved = recipes.serving_inputs(folder)
        # once, at load: regrouping every user's history took each request the whole history's time
        self.users = served_states(self.model.catalog, saved.histories, saved.context_fields)

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        frame = pd.DataFrame(model_input)
        users = frame["userId"].astype(str).tolist()
        user_states = [self.users.get(user, UserState(user)) for user in users]
        scores = self.model.scores(user_states).astype("float64")
        lists = []
        for row, (state, n) in enumerate(zip(user_states, frame["numResults"])):
            scores[row, list(set(state.history))] = -np.inf  # never an item the user already has
            ranked = top_items(scores[row], max(int(n), 1))
            lists.append("|".join(str(self.model.catalog.item_ids[i]) for i in ranked))
        return pd.DataFrame({"userId": users, "itemList": lists})


def signature() -> ModelSignature:
    return ModelSignature(
        inputs=Schema([ColSpec("string", "userId"), ColSpec("long", "numResults")]),
        outputs=Schema([ColSpec("string", "userId"), ColSpec("string", "itemList")]),
    )


def pyfunc_model(cfg: DictConfig, staging: Path) -> PyfuncModel:
    """The trial's models folder as a pyfunc model."""
    models = Path(cfg.paths.models)
    if not (models / "recipe.json").exists():
        raise DataError(f"{models}/recipe.json is missing: run the train stage first (mlexp task={cfg.task.name})")
    folder = staging / "model"
    shutil.copytree(models, folder)
    # a model saved without histories knows no user: its example asks for a cold one
    users = recipes.serving_inputs(models).histories["USER_ID"].drop_duplicates().head(3).tolist() or [COLD_USER]
    return PyfuncModel(
        python_model=Recommendations,
        artifacts={"model": folder},
        input_example=pd.DataFrame({"userId": users, "numResults": [10] * len(users)}),
        signature=signature(),
        requirements=("implicit", "scipy", "pyarrow"),
    )
