"""Task `text_classification`: news classification with calibrated scores, human review and active learning.

The model half of "Active learning workflow for Amazon Comprehend custom classification"
(model building, selection and deployment); the service half (real-time classification,
feedback, human review) is in the `service` subpackage.
"""

from mlexp.tasks import Out, Plot, StageSpec, Task, register
from mlexp.tasks.text_classification import config  # noqa: F401  (registers the schemas)

# human review decisions (the service's JSONL exports): a git-tracked folder, so `dvc repro` finds it
REVIEWS = "reviews/text_classification"
CORPUS = (
    "dataset.path",
    "dataset.holdout_path",
    "dataset.format",
    "dataset.labels",
    "dataset.newsgroups",
    "dataset.n_rows",
)
FEATURES = tuple(
    f"model.{k}" for k in ("word_ngrams", "char_ngrams", "max_word_features", "max_char_features", "min_df")
)

TASK = register(
    Task(
        "text_classification",
        f"{__name__}.stages",
        (
            StageSpec(
                "corpus",
                params=("seed", *CORPUS, "dataset.n_holdout", "preprocessing"),
                outs=("{data}/corpus",),
            ),
            StageSpec(
                "prepare",
                reads=("{data}/corpus", REVIEWS),
                # seed and the whole dataset/preprocessing: also the key of the shared Pre-processing component
                params=("seed", "dataset", "preprocessing"),
                outs=("{data}/train.csv",),
            ),
            StageSpec(
                "train",
                reads=("{data}/train.csv",),
                params=("seed", "dataset.labels", "preprocessing.max_chars", "model"),
                outs=("{models}",),
            ),
            StageSpec(
                "evaluate",
                reads=("{data}/corpus", "{models}"),
                outs=(Out("{reports}/holdout_scores.json", cache=False),),
                plots=(
                    Plot("{reports}/plots/reliability.csv", x="confidence", y="accuracy"),
                    "{reports}/plots/confusion_matrix.png",
                    "{reports}/plots/reliability.png",
                ),
            ),
            StageSpec(
                "active_learning",
                params=("seed", *CORPUS, "dataset.n_holdout", "preprocessing", *FEATURES, "active_learning"),
                outs=("{reports}/active_learning",),
                metrics=("{reports}/metrics.json",),
            ),
            "deploy",
        ),
        component_names={"corpus": "Data", "active_learning": "Active learning"},
    )
)
