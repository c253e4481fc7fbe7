"""TF-IDF word + character n-grams, a linear classifier and calibrated class probabilities.

`predict_one` answers one sentence in well under a millisecond: it skips scikit-learn's
per-call validation and sparse-matrix building, looks the sentence's n-grams up in the fitted
vocabularies and applies the same linear scores and the same calibration maps (a test checks it
agrees with `predict_proba`, which goes through scikit-learn).
"""

from __future__ import annotations

import json
import pickle
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from scipy import sparse

from mlexp.errors import ConfigError, DataError
from mlexp.tasks.text_classification.config_rules import yields_features
from mlexp.tasks.text_classification.corpora import normalize
from mlexp.tasks.text_classification.ngrams import NgramTfidf

# pickle's C unpickler reads the fitted vocabularies (hundreds of thousands of strings) in a fraction of a second;
# joblib.load's pure-Python one took about 2 s per load, and a retraining trial loads three models
MODEL_FILE = "classifier.pkl"
# model folders written before: read with joblib
JOBLIB_FILE = "classifier.joblib"
ABOUT_FILE = "text_classifier.json"
# text_classifier.json's "normaliser": how the model's texts were normalised, so a model keeps reading text as it was
# trained to whatever mlexp loads it. 1: lower case, a-z and 0-9 (models saved before the field); 2: corpora.normalize
NORMALISER = 2
_NOT_ASCII_WORD = re.compile(r"[^0-9a-z]+")


def normalize_ascii(text: str, max_chars: int | None = None) -> str:
    """Normaliser 1: lower case, a-z and 0-9 only, single spaces; cut to `max_chars` characters."""
    cleaned = _NOT_ASCII_WORD.sub(" ", text.lower()).strip()
    return cleaned[:max_chars].rstrip() if max_chars else cleaned


NORMALISERS = {1: normalize_ascii, NORMALISER: normalize}


def _learner(settings: dict[str, Any], seed: int, threads: int = 1) -> Any:
    if "smoothing" in settings:
        from sklearn.naive_bayes import ComplementNB

        return ComplementNB(alpha=settings["smoothing"])
    if settings["learner"] == "sgd":
        from sklearn.linear_model import SGDClassifier

        # hinge loss (a linear SVM) by stochastic gradient: seconds on 100,000 documents where LinearSVC takes a minute.
        # n_jobs: the one-vs-all binary problems are fitted in `threads` threads (the SGD loop runs without the GIL);
        # each has its own seed drawn before the split, so the model is the same whatever the thread count
        return SGDClassifier(
            alpha=settings["regularization"],
            max_iter=settings["epochs"],
            tol=None,
            random_state=seed,
            n_jobs=max(1, threads),
        )
    if settings["learner"] == "logistic_regression":
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=settings["C"], max_iter=2000)
    from sklearn.svm import LinearSVC

    return LinearSVC(C=settings["C"], random_state=seed)


class TextClassifier:
    """A fitted text classifier: `labels`, `predict_proba`, `predict_many`, `predict_one`, `save`/`load`."""

    def __init__(
        self, vectorizer: NgramTfidf, calibrated: Any, labels: list[str], max_chars: int, normaliser: int = NORMALISER
    ) -> None:
        self.vectorizer, self.calibrated, self.max_chars = vectorizer, calibrated, max_chars
        self.normaliser, self._normalize = normaliser, NORMALISERS[normaliser]
        classes = [str(c) for c in calibrated.classes_]
        self.labels = [label for label in labels if label in classes] + [c for c in classes if c not in labels]
        self._columns = np.array([classes.index(label) for label in self.labels])
        self._prepare_fast_path()

    @classmethod
    def fit(
        cls,
        texts: Sequence[str],
        labels: Sequence[str],
        settings: dict[str, Any],
        label_order: list[str],
        seed: int,
        threads: int = 1,
    ) -> TextClassifier:
        """Fit the vectorizers and the calibrated classifier on normalised texts (the SGD learner in `threads`)."""
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.model_selection import StratifiedKFold

        vectorizer = NgramTfidf(
            settings["word_ngrams"],
            settings["char_ngrams"],
            settings["max_word_features"],
            settings["max_char_features"],
            settings["min_df"],
        )
        unlisted = sorted(set(labels) - set(label_order))
        if unlisted:  # else the model would add them as classes of its own, beyond the experiment's
            raise DataError(
                f"the training set holds documents of class {', '.join(map(str, unlisted))}, which dataset.labels "
                f"({', '.join(label_order)}) does not list: it was made with other labels; run the corpus and "
                "prepare stages again with these"
            )
        blocks = [settings[key] for key in ("word_ngrams", "char_ngrams", "max_word_features", "max_char_features")]
        if not yields_features(*blocks):
            raise ConfigError(
                f"model.word_ngrams={blocks[0]}, model.char_ngrams={blocks[1]}, model.max_word_features={blocks[2]}, "
                f"model.max_char_features={blocks[3]}: the model would see no feature"
            )
        features = vectorizer.fit_transform(texts)
        folds = StratifiedKFold(int(settings["calibration_folds"]), shuffle=True, random_state=seed)
        calibrated = CalibratedClassifierCV(
            _learner(settings, seed, threads), method=settings["calibration"], cv=folds, ensemble=False
        )
        calibrated.fit(features, np.asarray(labels))
        return cls(vectorizer, calibrated, label_order, int(settings.get("max_chars", 0)))

    def features(self, texts: Sequence[str]) -> sparse.csr_matrix:
        clean = [self._normalize(t, self.max_chars or None) for t in texts]
        return self.vectorizer.transform(clean)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Calibrated probabilities, one column per class of `labels`, through scikit-learn."""
        return np.asarray(self.calibrated.predict_proba(self.features(texts)))[:, self._columns]

    def predict_many(self, texts: Sequence[str]) -> list[tuple[str, float]]:
        """(class, score) of each text: the most probable class and its calibrated probability."""
        proba = self.predict_proba(texts)
        best = proba.argmax(axis=1)
        return [(self.labels[b], float(proba[i, b])) for i, b in enumerate(best)]

    def predict_one(self, text: str) -> tuple[str, float]:
        """(class, score) of one sentence, without scikit-learn's per-call overhead."""
        proba = self.fast_proba(text)
        best = int(proba.argmax())
        return self.labels[best], float(proba[best])

    def fast_proba(self, text: str) -> np.ndarray:
        """The same probabilities as predict_proba for one text, computed directly."""
        columns, weights = self.vectorizer.one(self._normalize(text, self.max_chars or None), self._lookups)
        scores = weights @ self._weights[columns] + self._bias
        if self._softmax:
            scores = np.exp(scores - scores.max())
            scores /= scores.sum()
        return self._calibrate(scores)[self._columns]

    def _calibrate(self, scores: np.ndarray) -> np.ndarray:
        n = len(self.calibrated.classes_)
        if self._sigmoid is not None:
            a, b = self._sigmoid
            calibrated = 1.0 / (1.0 + np.exp(a * scores + b))
        else:
            calibrated = np.array([c.predict(scores[i : i + 1])[0] for i, c in enumerate(self._calibrators)])
        if n == 2:
            return np.array([1.0 - calibrated[-1], calibrated[-1]])
        total = calibrated.sum()
        proba = calibrated / total if total > 0 else np.full(n, 1.0 / n)
        proba[(proba > 1.0) & (proba <= 1.0 + 1e-5)] = 1.0
        return proba

    def _prepare_fast_path(self) -> None:
        self._lookups = self.vectorizer.lookups()
        fitted = self.calibrated.calibrated_classifiers_[0]
        learner = fitted.estimator
        # ComplementNB: calibration maps its predict_proba (a softmax of the joint log likelihood)
        self._softmax = hasattr(learner, "feature_log_prob_")
        if self._softmax:
            weights, bias = learner.feature_log_prob_.T, np.zeros(learner.feature_log_prob_.shape[0])
            if len(learner.classes_) == 1:
                bias = learner.class_log_prior_
        else:
            weights, bias = learner.coef_.T, np.atleast_1d(learner.intercept_)
        self._weights = np.ascontiguousarray(weights, dtype=np.float64)
        self._bias = np.asarray(bias, dtype=np.float64)
        self._calibrators = list(fitted.calibrators)
        sigmoid = all(hasattr(c, "a_") for c in self._calibrators)
        self._sigmoid = (
            (np.array([c.a_ for c in self._calibrators]), np.array([c.b_ for c in self._calibrators]))
            if sigmoid
            else None
        )

    def save(self, folder: Path) -> Path:
        """Write the model folder (the fitted objects and a JSON description); returns it."""
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / MODEL_FILE).open("wb") as file:
            pickle.dump({"vectorizer": self.vectorizer, "calibrated": self.calibrated}, file, protocol=5)
        about = {
            "labels": self.labels,
            "max_chars": self.max_chars,
            "features": self.n_features,
            "normaliser": self.normaliser,
        }
        (folder / ABOUT_FILE).write_text(json.dumps(about, indent=2) + "\n")
        return folder

    @property
    def n_features(self) -> int:
        return int(self._weights.shape[0])

    @classmethod
    def load(cls, folder: Path) -> TextClassifier:
        """A model folder written by save()."""
        if not has_model(folder):
            raise DataError(f"{folder} holds no text classifier ({MODEL_FILE}): run the train stage first")
        about = json.loads((folder / ABOUT_FILE).read_text())
        normaliser = int(about.get("normaliser", 1))
        if normaliser not in NORMALISERS:
            raise DataError(
                f"{folder / ABOUT_FILE}: normaliser {normaliser} is one a later mlexp wrote; load it with that version"
            )
        if (folder / MODEL_FILE).exists():
            with (folder / MODEL_FILE).open("rb") as file:
                fitted = pickle.load(file)  # noqa: S301 -- the project's own model folder, as joblib.load would be
        else:
            fitted = joblib.load(folder / JOBLIB_FILE)
        return cls(fitted["vectorizer"], fitted["calibrated"], about["labels"], int(about["max_chars"]), normaliser)


def has_model(folder: Path) -> bool:
    """Whether `folder` holds a saved text classifier (this format or the earlier joblib one)."""
    return (folder / MODEL_FILE).exists() or (folder / JOBLIB_FILE).exists()
