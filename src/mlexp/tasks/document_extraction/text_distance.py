"""Levenshtein distance with its alignment, vectorised per row with numpy (pages are a few thousand characters)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _table(a: Sequence[object], b: Sequence[object]) -> np.ndarray:
    codes: dict[object, int] = {}
    x = np.array([codes.setdefault(t, len(codes)) for t in a], dtype=np.int64)
    y = np.array([codes.setdefault(t, len(codes)) for t in b], dtype=np.int64)
    d = np.zeros((len(x) + 1, len(y) + 1), dtype=np.int32)
    d[0] = np.arange(len(y) + 1)
    steps = np.arange(len(y) + 1, dtype=np.int32)
    for i in range(1, len(x) + 1):
        best = np.empty(len(y) + 1, dtype=np.int32)
        best[0] = i
        best[1:] = np.minimum(d[i - 1, 1:] + 1, d[i - 1, :-1] + (y != x[i - 1]))
        # insertions chain along the row: d[i, j] = min_k best[k] + (j - k)
        d[i] = np.minimum.accumulate(best - steps) + steps
    return d


def distance(a: Sequence[object], b: Sequence[object]) -> int:
    return int(_table(a, b)[-1, -1])


def matched_pairs(a: Sequence[object], b: Sequence[object]) -> list[tuple[int, int]]:
    """Index pairs (i, j) where a minimal alignment keeps a[i] as b[j] unchanged."""
    d = _table(a, b)
    i, j, pairs = len(a), len(b), []
    while i > 0 and j > 0:
        if a[i - 1] == b[j - 1] and d[i, j] == d[i - 1, j - 1]:
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif d[i, j] == d[i - 1, j - 1] + 1:
            i, j = i - 1, j - 1
        elif d[i, j] == d[i - 1, j] + 1:
            i -= 1
        else:
            j -= 1
    return pairs[::-1]
