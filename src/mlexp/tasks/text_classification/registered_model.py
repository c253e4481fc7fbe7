"""The registered text classifier: a column `text` (or a list of texts) in, columns `class` and `score` (calibrated)
out; a row without a text, or a request without rows, is a client error (request_texts)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.models import ModelSignature
from mlflow.pyfunc import PythonModel
from mlflow.types import ColSpec, Schema
from omegaconf import DictConfig

from mlexp.errors import DataError
from mlexp.serving.pyfunc_model import PyfuncModel
from mlexp.tasks.text_classification.classifier import MODEL_FILE, TextClassifier, has_model
from mlexp.tasks.text_classification.request_texts import request_texts

# what the deploy stage reads from paths.data (the holdout the champion is re-scored on; pyfunc_model reads nothing
# there): a SageMaker training job ships it in its model.tar.gz
DATA_FILES = ("corpus/holdout.csv",)
EXAMPLE = ["nasa launches a new probe to study jupiter", "the home team won the championship in overtime"]


class TextClassification(PythonModel):
    """The trial's TF-IDF classifier with calibrated scores."""

    def load_context(self, context: Any) -> None:
        self.classifier = TextClassifier.load(Path(context.artifacts["classifier"]))

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        answers = self.classifier.predict_many(request_texts(model_input))
        return pd.DataFrame({"class": [a[0] for a in answers], "score": [a[1] for a in answers]})


def signature() -> ModelSignature:
    """The output only. With a string input column MLflow casts an {"inputs": ...} body with numpy's str before the
    model sees it, so a null arrives as the text "None", a word the model would classify, and could no longer be
    refused (numbers arrive as "1", "2"); the input is documented above and in the input example."""
    return ModelSignature(outputs=Schema([ColSpec("string", "class"), ColSpec("double", "score")]))


def pyfunc_model(cfg: DictConfig, staging: Path) -> PyfuncModel:
    """The trial's model folder as a pyfunc model."""
    folder = Path(cfg.paths.models)
    if not has_model(folder):
        raise DataError(f"{folder / MODEL_FILE} is missing: run the train stage first (mlexp task={cfg.task.name})")
    return PyfuncModel(
        python_model=TextClassification,
        artifacts={"classifier": folder},
        input_example=pd.DataFrame({"text": EXAMPLE}),
        signature=signature(),
        requirements=("scikit-learn", "scipy", "joblib"),
    )
