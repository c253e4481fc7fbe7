"""The one ranking of items by score that the service, the registered model and the evaluation share.

Tied scores are common (the popularity recipe, cold users, equal counts), so where a tie falls across the cut-off
the items kept must not depend on which code ranks them: the lower catalogue index wins, always.
"""

from __future__ import annotations

import numpy as np


def top_items(scores: np.ndarray, n: int) -> np.ndarray:
    """The catalogue indices of the `n` highest scores, best first, ties in catalogue order; excluded items (-inf)
    never, so fewer than `n` when fewer are left."""
    cost = -np.asarray(scores, dtype=float)  # the lowest cost is the best score (counts too: float, not wrapped)
    excluded = ~np.isfinite(cost)
    n = min(n, len(cost) - int(excluded.sum()))
    if n <= 0:
        return np.empty(0, dtype=np.intp)
    cost[excluded] = np.inf
    # a partition finds the n-th best score in linear time, as argpartition did, but picks no item: every item
    # better than it is in, then as many of those equal to it as places remain, lowest index first
    cut = np.partition(cost, n - 1)[n - 1]
    better = np.flatnonzero(cost < cut)
    chosen = np.concatenate([better, np.flatnonzero(cost == cut)[: n - len(better)]])
    chosen.sort()
    return chosen[np.argsort(cost[chosen], kind="stable")]
