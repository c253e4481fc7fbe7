"""A Hydra callback that puts a sweep run above its trials and records the best trial.

It also creates the MLflow database and experiment once, before parallel jobs start:
jobs racing to create them fail in MLflow's schema migration.
"""

from __future__ import annotations

import math
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from mlflow.entities import RunStatus
from omegaconf import DictConfig

from mlexp import compare
from mlexp.sweeps import SWEEP_NAME_ENV, SWEEP_RUN_ENV
from mlexp.tracking import TrackingStore, tags


def _direction(cfg: DictConfig) -> str:
    return str(getattr(cfg.task.objective.direction, "value", cfg.task.objective.direction))


class SweepRecorder(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        store = TrackingStore.resolve(config.tracking.uri, Path(config.paths.root))
        experiment_id = store.experiment_id(config.tracking.experiment_name or config.task.name)
        name = f"{config.sweep.name}-{datetime.now():%m%d-%H%M%S}"
        run = store.client().create_run(
            experiment_id,
            run_name=name,
            tags={
                tags.KIND: "sweep",
                tags.TASK: config.task.name,
                tags.OBJECTIVE: config.task.objective.metric,
                tags.DIRECTION: _direction(config),
                "mlexp.sweeper": str(config.sweep.name),
                "mlexp.command": " ".join(["mlexp", *sys.argv[1:]]),
            },
        )
        # joblib workers start after this and inherit the environment
        os.environ[SWEEP_RUN_ENV] = run.info.run_id
        os.environ[SWEEP_NAME_ENV] = name

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_id = os.environ.pop(SWEEP_RUN_ENV, None)
        name = os.environ.pop(SWEEP_NAME_ENV, "sweep")
        if sweep_id is None:
            return
        store = TrackingStore.resolve(config.tracking.uri, Path(config.paths.root))
        client = store.client()
        experiment = config.tracking.experiment_name or config.task.name
        metric, direction = config.task.objective.metric, _direction(config)
        rows = compare.find_trials(client, experiment, sweep_id)
        ranked = compare.best_first(rows, metric, direction)
        failed = [row for row in rows if row.status != "FINISHED"]
        print(f"\nsweep {name}: {len(rows) - len(failed)}/{len(rows)} trials finished")
        print(compare.format_table(rows, metric, direction, list(config.task.headline_metrics)))
        out_dir = Path(config.paths.root) / "reports" / config.task.name / "sweeps" / name
        for chart in compare.write_charts(client, rows, metric, out_dir):
            client.log_artifact(sweep_id, str(chart), artifact_path="comparison")
        best = ranked[0] if ranked and not math.isnan(ranked[0].value(metric)) else None
        if best is not None:
            client.set_tag(sweep_id, "mlexp.best_trial", best.run_id)
            client.set_tag(sweep_id, "mlexp.best_trial_name", best.name)
            client.log_metric(sweep_id, f"best_{metric}", best.value(metric))
            print(f"best trial: {best.name} ({best.run_id}) {metric} = {best.value(metric):.6g}")
        print(f"charts: {out_dir}")
        status = RunStatus.FAILED if failed or best is None else RunStatus.FINISHED
        client.set_terminated(sweep_id, RunStatus.to_string(status))
        if failed:
            print(
                f"mlexp: error: {len(failed)} trial(s) of sweep {name} failed; see their error.txt artifacts",
                file=sys.stderr,
            )
            sys.exit(1)
