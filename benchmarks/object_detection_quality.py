"""Detection quality of the three families at one CPU budget, on the realistic 1280×720 generated frames.

Each family (SSD, YOLOv3, Faster-RCNN, with their conf/model defaults) is trained by a real
`mlexp task=object_detection model=<family>` trial in a throw-away project, stopped by
model.max_train_seconds when its budget is spent, and measured once on the test split. The
budget is given in CPU-minutes on the trial's compute.num_threads cores (default 20 CPU-minutes on
2 cores: 10 minutes of training wall clock per family). Printed side by side: test mAP@0.5 and
mAP@[.5:.95], the validation mAP (measured once, when training ends, so no family's budget pays for more
validations than another's), the epochs and seconds trained, inference fps hybridized and imperative
(and, for SSD, the share of an inference spent decoding boxes and in NMS). The baseline of the ratio
line is SSD, the post's built-in detector, measured in the same run.

Extra `key=value` arguments go to every trial (e.g. dataset.n_frames=200 for a quick check). The frames come
from seed=2028 (BLIND_SEED) unless `seed=<n>` is given: nothing was tuned on them.

    .venv/bin/python benchmarks/object_detection_quality.py                  # 20 CPU-minutes each
    .venv/bin/python benchmarks/object_detection_quality.py --cpu-minutes 1 dataset.n_frames=120
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mlflow.tracking import MlflowClient

REPO = Path(__file__).resolve().parents[1]
FAMILIES = ("ssd", "yolo3", "faster_rcnn")
THREADS = 2
# the frames' seed unless a `seed=` argument gives one: the default run's seed 42 (and 1 and 7) chose or checked the
# settings, so a figure on them is not blind; nothing was chosen on this one
BLIND_SEED = 2028
# model.max_train_seconds counts training only: validating once, on the epoch the budget or model.epochs ends,
# keeps validation from eating into one family's budget more than another's (a slow Faster-RCNN validation
# every epoch would); data loading in the training threads, as on a one-process trial, for the same reason
# the budget, not model.epochs, ends training: each conf's step schedule assumes its own length (SSD's and
# YOLOv3's decay at epoch 95 of 100, Faster-RCNN's at 11 and 14 of 15) and no schedule knows the budget, so the
# rate stays at model.lr after warm-up
EQUAL_BUDGET = (
    "model.val_interval=1000000",
    "model.data_workers=0",
    "model.epochs=1000000",
    "model.lr_decay_epochs=[999999]",
)


def _model_folders(project: Path) -> list[Path]:
    """The trials' kept models: each run's models/ folder (never its checkpoint/, which holds a model.params too)."""
    return [params.parent for params in project.rglob("models/model.params")]


def _trial(project: Path, family: str, budget_s: float, extra: list[str]) -> dict[str, Any]:
    """Run one trial of `family`; its metrics, the training state and its wall time."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLEXP_"))}
    env["MLEXP_ROOT"] = str(project)
    command = [
        sys.executable, "-u", "-m", "mlexp.cli", "task=object_detection", f"model={family}",
        f"model.max_train_seconds={budget_s:.0f}", f"compute.num_threads={THREADS}", *EQUAL_BUDGET, *extra,
    ]  # fmt: skip
    before = set(_model_folders(project))
    started = time.perf_counter()
    done = subprocess.run(command, cwd=project, env=env)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        return {"failed": done.returncode, "wall_s": wall}
    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("object_detection")
    trials = client.search_runs(
        [experiment.experiment_id], filter_string="tags.`mlexp.kind` = 'trial'", order_by=["attributes.start_time DESC"]
    )
    [models] = [folder for folder in _model_folders(project) if folder not in before]
    state = json.loads((models / "checkpoint" / "state.json").read_text())
    return {
        "metrics": trials[0].data.metrics,
        "state": state,
        "models": models,
        "wall_s": wall,
        "train_s": state.get("train_seconds", 0.0),
    }


def _decode_share(models: Path, size: int, frames: int = 10) -> float:
    """The share of an SSD inference spent decoding boxes and in NMS: the whole network against its
    feature extractor and class/box predictors alone (both imperative, one frame at a time)."""
    import mxnet as mx

    from mlexp.console import quiet_third_party
    from mlexp.tasks.object_detection import networks

    quiet_third_party()  # as the trials' own processes: gluoncv's SSD extractor declares no input dtype
    net, _ = networks.load(models, hybridize=False)
    x = mx.nd.random.uniform(shape=(1, 3, size, size))

    def raw() -> list[mx.nd.NDArray]:
        features = net.features(x)
        pairs = zip(features, net.class_predictors, net.box_predictors)
        return [out for feature, cls, box in pairs for out in (cls(feature), box(feature))]

    def seconds(run: Any) -> float:
        [a.wait_to_read() for a in run()]
        started = time.perf_counter()
        for _ in range(frames):
            [a.wait_to_read() for a in run()]
        return (time.perf_counter() - started) / frames

    full, heads = seconds(lambda: net(x)), seconds(raw)
    return max(0.0, 1 - heads / full)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-minutes", type=float, default=20.0, help="training budget per family")
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--keep", type=Path, help="copy the trials' reports and models here")
    args, extra = parser.parse_known_args()
    seed = next((argument for argument in extra if argument.startswith("seed=")), None)
    if seed is None:
        seed = f"seed={BLIND_SEED}"
        extra.append(seed)
    budget_s = args.cpu_minutes * 60 / THREADS
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; budget {args.cpu_minutes:g} "
          f"CPU-minutes = {budget_s:.0f} s of training on {THREADS} threads per family; "
          f"{seed}")  # fmt: skip
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as base:
        project = Path(base) / "project"
        shutil.copytree(REPO / "conf", project / "conf")
        for family in args.families.split(","):
            print(f"\n=== {family} ===", flush=True)
            results[family] = _trial(project, family, budget_s, extra)
            if "models" in results[family] and family == "ssd":
                size = int(json.loads((results[family]["models"] / "model.json").read_text())["input_size"])
                results[family]["decode_share"] = _decode_share(results[family]["models"], size)
            if args.keep is not None and "models" in results[family]:
                shutil.copytree(results[family]["models"].parent, args.keep / family, dirs_exist_ok=True)
    print(f"\n{'family':<12} {'test mAP@.5':>11} {'mAP@.5:.95':>10} {'best val':>8} {'epochs':>6} {'train s':>7} "
          f"{'fps hybrid':>10} {'fps imper.':>10} {'decode+NMS':>10}")  # fmt: skip
    for family, result in results.items():
        if "failed" in result:
            print(f"{family:<12} trial failed (exit {result['failed']})")
            continue
        m, state = result["metrics"], result["state"]
        share = f"{result['decode_share']:.0%}" if "decode_share" in result else "-"
        test_map = m.get("test_map_50", m.get("map_50", float("nan")))
        print(
            f"{family:<12} {test_map:>11.3f} {m.get('map_50_95', float('nan')):>10.3f} "
            f"{m.get('val_map_50', state['best_map_50']):>8.3f} {len(state['epochs']):>6} {result['train_s']:>7.0f} "
            f"{m.get('inference_fps', float('nan')):>10.1f} {m.get('inference_fps_imperative', float('nan')):>10.1f} "
            f"{share:>10}"
        )
    baseline = results.get("ssd", {}).get("metrics", {})
    base_map = baseline.get("test_map_50", baseline.get("map_50"))
    for family, result in results.items():
        if family != "ssd" and "metrics" in result and base_map:
            ratio = result["metrics"].get("test_map_50", result["metrics"].get("map_50", 0.0)) / base_map
            print(f"ratio: {family} test mAP@0.5 / ssd's = {ratio:.2f}")
    return 0 if all("metrics" in r for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
