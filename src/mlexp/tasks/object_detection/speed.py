"""Inference speed in frames per second (one frame per call, as a video stream arrives)."""

from __future__ import annotations

import time
from typing import Any

import mxnet as mx

from mlexp.tasks.object_detection.evaluation import one_image_per_forward, run_batches
from mlexp.tasks.object_detection.tiling import Window


def frames_per_second(net: Any, windows: list[Window], frames: int, hybridize: bool, batch_size: int = 8) -> float:
    """Frames per second of the network's forward on this CPU, a frame being its `windows` (tiles, or the frame
    resized) run `batch_size` at a time as detection runs them, after one untimed warm-up frame (cutting, NMS not
    timed)."""
    if hybridize:
        net.hybridize(static_alloc=True, static_shape=True)
    else:
        net.hybridize(active=False)
    inputs = [mx.nd.random.uniform(shape=(3, w.input_height, w.input_width)) for w in windows]
    _, one_at_a_time = run_batches(net, inputs, batch_size, one_image_per_forward(net))
    started = time.perf_counter()
    for _ in range(frames):
        run_batches(net, inputs, batch_size, one_at_a_time)
    return frames / (time.perf_counter() - started)
