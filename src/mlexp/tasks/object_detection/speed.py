"""Inference speed in frames per second (one frame per call, as a video stream arrives)."""

from __future__ import annotations

import time
from typing import Any

import mxnet as mx

from mlexp.tasks.object_detection.evaluation import one_image_per_forward, run


def frames_per_second(net: Any, size: int, frames: int, hybridize: bool, windows: int = 1) -> float:
    """Frames per second of `net` on this CPU, a frame being `windows` network inputs (its tiles) run as
    one batch, after one untimed warm-up frame."""
    if hybridize:
        net.hybridize(static_alloc=True, static_shape=True)
    else:
        net.hybridize(active=False)
    x = mx.nd.random.uniform(shape=(windows, 3, size, size))
    one_at_a_time = one_image_per_forward(net)
    run(net, x, one_at_a_time)
    started = time.perf_counter()
    for _ in range(frames):
        run(net, x, one_at_a_time)
    return frames / (time.perf_counter() - started)
