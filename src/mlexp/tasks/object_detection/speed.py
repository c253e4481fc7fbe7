"""Inference speed in frames per second (one frame per call, as a video stream arrives)."""

from __future__ import annotations

import time
from typing import Any

import mxnet as mx


def frames_per_second(net: Any, size: int, frames: int, hybridize: bool) -> float:
    """Frames per second of `net` on this CPU, after one untimed warm-up frame."""
    if hybridize:
        net.hybridize(static_alloc=True, static_shape=True)
    else:
        net.hybridize(active=False)
    x = mx.nd.random.uniform(shape=(1, 3, size, size))
    [a.wait_to_read() for a in net(x)]
    started = time.perf_counter()
    for _ in range(frames):
        [a.wait_to_read() for a in net(x)]
    return frames / (time.perf_counter() - started)
