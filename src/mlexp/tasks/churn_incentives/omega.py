"""The Wright omega function w(x), the root of w + ln(w) = x, vectorised, with warm starts.

scipy.special.wrightomega gives the same values but costs about seven logarithms per element;
the exact solver evaluates omega at a whole customer base for each multiplier it tries, each time
at x shifted by one scalar, so starting from the previous values takes one or two logarithms.
Fritsch, Shafer and Crowley's iteration converges cubically: from x - ln(x) (x >= 1) two steps
reach machine precision, and from a first-order warm start one or two (checked in the tests).
"""

from __future__ import annotations

import numpy as np

# largest shift of x for which a warm start needs one step / two steps to reach machine precision
ONE_STEP_SHIFT = 0.05
TWO_STEP_SHIFT = 4.0


def wright_omega(x: np.ndarray, previous: np.ndarray | None = None, shift: float = 0.0) -> np.ndarray:
    """w(x) for x >= 1. `previous`: w(x - shift), to start from (any sign of shift up to 4)."""
    if previous is None or abs(shift) > TWO_STEP_SHIFT:
        w = x - np.log(x)
        steps = 2
    else:
        w = previous + shift * previous / (1.0 + previous)  # w' = w / (1 + w)
        steps = 1 if abs(shift) <= ONE_STEP_SHIFT else 2
    for _ in range(steps):
        w = _fritsch_step(w, x)
    return w


def _fritsch_step(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    z = x - w
    z -= np.log(w)
    w1 = 1.0 + w
    q = w1 + (2.0 / 3.0) * z
    q *= 2.0 * w1
    # w <- w·(1 + z/(1 + w) · (q - z)/(q - 2z))
    ratio = q - z
    ratio /= q - 2.0 * z
    ratio *= z
    ratio /= w1
    ratio += 1.0
    ratio *= w
    return ratio
