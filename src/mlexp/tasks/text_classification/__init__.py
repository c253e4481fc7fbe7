"""Task `text_classification`: news classification with calibrated scores, human review and active learning.

The model half of "Active learning workflow for Amazon Comprehend custom classification"
(model building, selection and deployment); the service half (real-time classification,
feedback, human review) is in the `service` subpackage.
"""

from mlexp.config.bounds import above, at_least, between
from mlexp.config.input_paths import InputPath, given
from mlexp.tasks import Out, Plot, StageSpec, Task, register
from mlexp.tasks.text_classification import config  # noqa: F401  (registers the schemas)
from mlexp.tasks.text_classification.config_rules import CONSTRAINTS, REVIEWS

CORPUS = (
    "dataset.path",
    "dataset.holdout_path",
    "dataset.format",
    "dataset.labels",
    "dataset.ag_news_classes",
    "dataset.newsgroups",
    "dataset.n_rows",
)
# corpora.SUFFIXES, without importing pandas here; the corpus is read by corpus and by active_learning
CORPUS_SUFFIXES = (".csv", ".txt")
READ_CORPUS = ("corpus", "active_learning")
INPUTS = (
    InputPath(
        "dataset.path",
        read_by=READ_CORPUS,
        fix="give a CSV of labelled documents (AG News or Comprehend), a folder or a glob of them, or leave "
        "dataset.path unset for the packaged 20 Newsgroups corpus",
        suffixes=CORPUS_SUFFIXES,
    ),
    InputPath(
        "dataset.holdout_path",
        read_by=READ_CORPUS,
        fix="give the holdout CSV, or leave dataset.holdout_path unset to hold out a share of dataset.path",
        suffixes=CORPUS_SUFFIXES,
        when=("dataset.path", given),  # the packaged corpus has its own test split
    ),
    InputPath(
        "dataset.reviews",
        read_by=("prepare",),
        fix="give the review decisions' JSONL (`mlexp review export` writes one) as a file, a folder of *.jsonl or "
        "a glob, or dataset.reviews=null to train without reviews",  # reviews.FIX
        may_be_absent=REVIEWS,  # nothing reviewed yet
    ),
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
                params=("service.threshold",),  # the reliability chart's review line
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
            # [shortest, longest]: the word n-gram featuriser hashes up to trigrams (longer: a ValueError in train)
            "model.word_ngrams.0": between(0, 3),
            "model.word_ngrams.1": between(0, 3),
            # a negative shortest cut n-grams from a word's end (Python's negative slices); 0 and 1 are the same
            "model.char_ngrams.0": at_least(0),
            "model.char_ngrams.1": at_least(0),  # 0: the block off; with .0, a range of 2 items is asked for
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
        inputs=INPUTS,
    )
)
