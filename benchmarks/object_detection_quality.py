"""Detection quality: a small SSD trained from scratch on generated broadcast frames, on this CPU.

Goal: VOC mAP@0.5 >= 0.8 on held-out frames (1,000 training frames of 256 px, 200 held out, 50 epochs),
within the CPU budget printed at the end (the wall clock and CPU seconds of the one trial).
Baseline measured in the same run: the same network at its first validation (epoch 2).

The trial is a real `mlexp task=object_detection` run in a throw-away project; its validation
mAP curve, loss terms and sensitivity table are read back from its MLflow store. Extra
`key=value` arguments are passed to mlexp (e.g. model.epochs=10 for a shorter run);
`--keep <folder>` copies the trial's reports (charts, tables) and models there.

    .venv/bin/python benchmarks/object_detection_quality.py
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlflow.tracking import MlflowClient

REPO = Path(__file__).resolve().parents[1]
GOAL_MAP = 0.8
# the task's defaults (ssd_300_mobilenet0.25_custom, Adam at 0.001, batch 8, flips and colour jitter),
# with more frames and epochs than its 500 / 15
RUN = [
    "task=object_detection",
    "dataset.n_train=1000",
    "dataset.n_val=200",
    "dataset.image_size=256",
    "model.input_size=256",
    "model.epochs=50",
    "model.lr_decay_epochs=[40,46]",
    "model.val_interval=2",
    "model.data_workers=1",
    "compute.num_threads=2",
]


def main() -> int:
    argv = sys.argv[1:]
    keep = Path(argv[argv.index("--keep") + 1]) if "--keep" in argv else None
    extra = [a for i, a in enumerate(argv) if a != "--keep" and (i == 0 or argv[i - 1] != "--keep")]
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as base:
        project = Path(base) / "project"
        shutil.copytree(REPO / "conf", project / "conf")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLEXP_"))}
        env["MLEXP_ROOT"] = str(project)
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-u", "-m", "mlexp.cli", *RUN, *extra], cwd=project, env=env)
        wall = time.perf_counter() - started
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            print(f"the trial failed (exit {done.returncode})")
            return 1
        client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
        experiment = client.get_experiment_by_name("object_detection")
        [trial] = [
            r for r in client.search_runs([experiment.experiment_id]) if r.data.tags.get("mlexp.kind") == "trial"
        ]
        curve = sorted((m.step, m.value) for m in client.get_metric_history(trial.info.run_id, "val_map_50"))
        metrics = trial.data.metrics
        print("\nvalidation mAP@0.5 by epoch: " + ", ".join(f"{step}: {value:.3f}" for step, value in curve))
        print("mAP@0.5 per frame characteristic (held-out frames):")
        for name in sorted(k for k in metrics if k.startswith("map_50_") and k != "map_50_95"):
            print(f"  {name[len('map_50_') :]:<22} {metrics[name]:.3f}")
        print(f"train images/s {metrics['train_images_per_s']:.1f}; inference {metrics['inference_fps']:.1f} fps")
        print(f"CPU budget used: {wall / 60:.1f} min wall clock, {(usage.ru_utime + usage.ru_stime) / 60:.1f} min CPU")
        baseline = curve[0][1] if curve else float("nan")
        final = metrics["map_50"]
        print(f"map_50 {final:.3f} (map_50_95 {metrics['map_50_95']:.3f}); at epoch {curve[0][0]}: {baseline:.3f}")
        print(f"ratio: map_50 / goal = {final / GOAL_MAP:.2f}")
        print("GOAL MET" if final >= GOAL_MAP else "GOAL MISSED")
        if keep is not None:
            shutil.copytree(project / "reports" / "object_detection", keep / "reports", dirs_exist_ok=True)
            shutil.copytree(project / "models" / "object_detection", keep / "models", dirs_exist_ok=True)
            print(f"reports copied to {keep}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
