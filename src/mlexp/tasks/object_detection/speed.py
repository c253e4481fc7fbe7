"""Inference speed in frames per second (one frame per call, as a video stream arrives)."""

from __future__ import annotations

import time
from typing import Any

import mxnet as mx

from mlexp.tasks.object_detection.evaluation import one_image_per_forward, run_batches


def frames_per_second(
    net: Any, size: int, frames: int, hybridize: bool, windows: int = 1, batch_size: int = 8
) -> float:
    """Frames per second of the network's forward on this CPU, a frame being `windows` network inputs (its tiles)
    run `batch_size` at a time as detection runs them, after one untimed warm-up frame (cutting, NMS not timed)."""
    if hybridize:
        net.hybridize(static_alloc=True, static_shape=True)
    else:
        net.hybridize(active=False)
    x = mx.nd.random.uniform(shape=(windows, 3, size, size))
    inputs = [x[i] for i in range(windows)]
    _, one_at_a_time = run_batches(net, inputs, batch_size, one_image_per_forward(net))
    started = time.perf_counter()
    for _ in range(frames):
        run_batches(net, inputs, batch_size, one_at_a_time)
    return frames / (time.perf_counter() - started)
