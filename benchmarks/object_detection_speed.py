"""Detection speed on this CPU: training images/s and inference frames/s, hybridized vs imperative.

Goal: hybridizing (MXNet's static graph, as the trial does) is at least 1.2x faster than the
imperative network, in training throughput and in inference fps, for the small SSD at 256 px.
Both sides run in this process on the same generated frames (96 frames in a temporary RecordIO),
after an untimed warm-up batch. Training times the steps (forward, SSD loss, backward, SGD update)
on batches made beforehand by GluonCV's pipeline (augment, targets, batching), whose own rate is
printed too; inference runs one frame per call, as a video stream arrives.
The network can be chosen: `python benchmarks/object_detection_speed.py ssd_512_mobilenet1.0_custom`.

    .venv/bin/python benchmarks/object_detection_speed.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MXNET_CPU_WORKER_NTHREADS", "2")
os.environ.setdefault("OMP_NUM_THREADS", "2")

import mxnet as mx  # noqa: E402
from gluoncv.data import RecordFileDetection  # noqa: E402
from mxnet import gluon  # noqa: E402

from mlexp.data import football_frames, ground_truth_manifest  # noqa: E402
from mlexp.data.frame_images import ImageSource  # noqa: E402
from mlexp.tasks.object_detection import networks, records, splits, tiling, training  # noqa: E402
from mlexp.tasks.object_detection.config import DetectionAugmentation, Detector  # noqa: E402
from mlexp.tasks.object_detection.families import SSD  # noqa: E402
from mlexp.tasks.object_detection.speed import frames_per_second  # noqa: E402

GOAL_SPEEDUP = 1.2
SIZE = 256
BATCH = 16
TIMED_BATCHES = 4
FRAMES = 96
INFERENCE_FRAMES = 100


def training_images_per_s(model: Detector, rec: Path, hybridize: bool) -> tuple[float, float]:
    """(input pipeline images/s, training step images/s): batches are made first, then the steps timed."""
    mx.random.seed(0)
    net, _ = networks.build(model, lambda _: None)
    family = SSD(net, model, DetectionAugmentation(color_jitter=True, crop_prob=0.0))
    if hybridize:
        net.hybridize(static_alloc=True, static_shape=True)
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.01, "momentum": 0.9})
    loader = gluon.data.DataLoader(
        RecordFileDetection(str(rec)).transform(family.transform), BATCH, shuffle=True, batchify_fn=family.batchify
    )
    started = time.perf_counter()
    batches = [training.on_cpu(batch) for batch, _ in zip(loader, range(TIMED_BATCHES + 1))]
    mx.nd.waitall()
    pipeline = (TIMED_BATCHES + 1) * BATCH / (time.perf_counter() - started)
    for step, batch in enumerate(batches):
        if step == 1:  # the first batch pays for graph building and memory planning
            started = time.perf_counter()
        _, step_size = family.forward_backward(net, batch)
        trainer.step(step_size)
        mx.nd.waitall()
    return pipeline, TIMED_BATCHES * BATCH / (time.perf_counter() - started)


def main() -> int:
    network = sys.argv[1] if len(sys.argv) > 1 else "ssd_300_mobilenet0.25_custom"
    # the whole SIZE-px frame at the input and GluonCV's mining, as the figures in the docs were measured
    model = Detector(network=network, input_size=SIZE, pretrained_base=None, tile_size=None, min_hard_negatives=0)
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; {network} at {SIZE} px")
    with tempfile.TemporaryDirectory() as base:
        # square frames at the network's size, every frame with a ball: the figure is the network's speed
        manifest = football_frames.generate(
            Path(base), FRAMES, 0, width=SIZE, height=SIZE, no_ball_fraction=0.0, ball_length=(0.045, 0.13)
        )
        frames, problems = ground_truth_manifest.read([manifest])
        rec = Path(base) / "train.rec"
        plays = splits.plays(frames, "auto")
        records.write(frames, ["football"], ImageSource(Path(base), Path(base)), rec, problems, plays)
        measured = {mode: training_images_per_s(model, rec, mode) for mode in (False, True)}
        train = {mode: steps for mode, (_, steps) in measured.items()}
        net, _ = networks.build(model, lambda _: None)
        whole = tiling.windows(SIZE, SIZE, SIZE, None, 0)
        infer = {mode: frames_per_second(net, whole, INFERENCE_FRAMES, mode) for mode in (False, True)}
    train_ratio, infer_ratio = train[True] / train[False], infer[True] / infer[False]
    print(f"training:  {train[False]:6.1f} images/s imperative, {train[True]:6.1f} hybridized  (batch {BATCH})")
    print(f"  (the input pipeline alone: augment, targets, batching: {measured[True][0]:.1f} images/s in one process;")
    print("   end to end a step costs both, so model.data_workers > 0 overlaps them)")
    print(f"inference: {infer[False]:6.1f} fps imperative,      {infer[True]:6.1f} hybridized  (1 frame per call)")
    print(f"ratio: training {train_ratio:.2f}x, inference {infer_ratio:.2f}x (goal >= {GOAL_SPEEDUP}x each)")
    print("GOAL MET" if min(train_ratio, infer_ratio) >= GOAL_SPEEDUP else "GOAL MISSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
