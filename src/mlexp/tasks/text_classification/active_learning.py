"""The active-learning experiment: uncertainty sampling against random sampling, with known labels as the oracle.

The training pool's labels are hidden and revealed only for the documents a strategy asks for
(the human reviewer of the post, simulated); every round adds `labels_per_round` documents,
retrains and scores the fixed holdout. All strategies of a repeat start from the same seed set.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from tqdm import tqdm

from mlexp.tasks.text_classification.config import ActiveLearning


@dataclass(frozen=True)
class Curve:
    """Mean holdout accuracy and macro-F1 after each round, by labels used; the lowest and highest accuracy of the
    `repeats` seed sets (None for a single run)."""

    labels: np.ndarray
    accuracy: np.ndarray
    macro_f1: np.ndarray
    accuracy_min: np.ndarray | None = None
    accuracy_max: np.ndarray | None = None
    repeats: int = 1


def uncertainty(strategy: str, proba: np.ndarray) -> np.ndarray:
    """How unsure the learner is of each document (higher: ask a human first)."""
    if strategy == "least_confidence":
        return 1.0 - proba.max(axis=1)
    if strategy == "margin":
        top = np.sort(proba, axis=1)[:, -2:]
        return -(top[:, 1] - top[:, 0])
    if strategy == "entropy":
        return -(proba * np.log(np.clip(proba, 1e-12, 1.0))).sum(axis=1)
    raise ValueError(f"unknown strategy {strategy!r}")


def pick(
    strategy: str, proba: np.ndarray | None, candidates: np.ndarray, take: int, rng: np.random.Generator
) -> np.ndarray:
    """The `take` candidates to label next: the most uncertain first, or a random draw for `random`."""
    if strategy == "random":
        return rng.choice(candidates, size=take, replace=False)
    assert proba is not None, "uncertainty sampling needs the learner's probabilities of the candidates"
    unsure = uncertainty(strategy, proba)
    # descending: the highest uncertainty first; stable, so ties keep the pool's order
    return candidates[np.argsort(-unsure, kind="stable")[:take]]


def seed_set(classes: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """`size` random documents with every class present (one of each first)."""
    first = [rng.choice(np.flatnonzero(classes == c)) for c in np.unique(classes)]
    rest = rng.permutation(np.setdiff1d(np.arange(len(classes)), first))[: max(size - len(first), 0)]
    return np.concatenate([first, rest]).astype(np.int64)


def _macro_f1(truth: np.ndarray, predicted: np.ndarray, n_classes: int) -> float:
    scores = []
    for c in range(n_classes):
        tp = np.sum((predicted == c) & (truth == c))
        denominator = np.sum(predicted == c) + np.sum(truth == c)
        scores.append(2 * tp / denominator if denominator else 0.0)
    return float(np.mean(scores))


def run(
    strategy: str,
    pool: sparse.csr_matrix,
    pool_classes: np.ndarray,
    holdout: sparse.csr_matrix,
    holdout_classes: np.ndarray,
    start: np.ndarray,
    settings: ActiveLearning,
    seed: int,
) -> Curve:
    """One strategy from one seed set: `rounds` rounds of `labels_per_round` labels each."""
    from sklearn.linear_model import SGDClassifier

    rng = np.random.default_rng(seed)
    n_classes = int(max(pool_classes.max(), holdout_classes.max())) + 1
    labelled = np.zeros(len(pool_classes), dtype=bool)
    labelled[start] = True
    counts, accuracy, macro_f1 = [], [], []
    for round_number in range(settings.rounds + 1):
        # logistic loss by SGD: probabilities for the uncertainty measures, a second per round on 400,000 features
        learner = SGDClassifier(
            loss="log_loss", alpha=settings.regularization, max_iter=settings.epochs, tol=None, random_state=seed
        )
        learner.fit(pool[labelled], pool_classes[labelled])
        predicted = learner.predict(holdout)
        counts.append(int(labelled.sum()))
        accuracy.append(float(np.mean(predicted == holdout_classes)))
        macro_f1.append(_macro_f1(holdout_classes, predicted, n_classes))
        if round_number == settings.rounds:
            break
        candidates = np.flatnonzero(~labelled)
        take = min(settings.labels_per_round, len(candidates))
        if take == 0:
            break
        proba = None if strategy == "random" else learner.predict_proba(pool[candidates])
        labelled[pick(strategy, proba, candidates, take, rng)] = True
    return Curve(np.array(counts), np.array(accuracy), np.array(macro_f1))


def experiment(
    pool: sparse.csr_matrix,
    pool_classes: np.ndarray,
    holdout: sparse.csr_matrix,
    holdout_classes: np.ndarray,
    settings: ActiveLearning,
    seed: int,
    on_round: Callable[[], None] | None = None,
) -> dict[str, Curve]:
    """Every strategy, `repeats` times from different seed sets; the mean curve of each."""
    strategies = [str(getattr(s, "value", s)) for s in settings.strategies]
    runs: dict[str, list[Curve]] = {s: [] for s in strategies}
    with tqdm(total=settings.repeats * len(strategies), desc="active learning", unit="curve", disable=None) as bar:
        for repeat in range(settings.repeats):
            rng = np.random.default_rng(seed + repeat)
            start = seed_set(pool_classes, settings.seed_labels, rng)
            for strategy in strategies:
                runs[strategy].append(
                    run(strategy, pool, pool_classes, holdout, holdout_classes, start, settings, seed + repeat)
                )
                bar.update()
    curves = {}
    for strategy, found in runs.items():
        shortest = min(len(c.labels) for c in found)
        accuracy = np.array([c.accuracy[:shortest] for c in found])
        curves[strategy] = Curve(
            found[0].labels[:shortest],
            accuracy.mean(axis=0),
            np.mean([c.macro_f1[:shortest] for c in found], axis=0),
            accuracy.min(axis=0),
            accuracy.max(axis=0),
            len(found),
        )
    return curves


@dataclass(frozen=True)
class Savings:
    """Labels a strategy needed to reach random sampling's final accuracy, against random's budget."""

    target_accuracy: float
    random_labels: int
    labels_needed: dict[str, float]  # NaN: never reached within the budget

    def fraction(self, strategy: str) -> float:
        return self.labels_needed[strategy] / self.random_labels

    def saved(self, strategy: str) -> float:
        return self.random_labels - self.labels_needed[strategy]


def savings(curves: dict[str, Curve]) -> Savings:
    """How many labels each uncertainty strategy saves to reach random sampling's final accuracy."""
    random = curves["random"]
    target, budget = float(random.accuracy[-1]), int(random.labels[-1])
    needed = {}
    for strategy, curve in curves.items():
        if strategy == "random":
            continue
        reached = np.flatnonzero(curve.accuracy >= target)
        needed[strategy] = float(curve.labels[reached[0]]) if len(reached) else math.nan
    return Savings(target, budget, needed)
