"""A Hydra callback that groups a sweep's trials and records the sweep out of the trial rows.

Trials of a sweep are ordinary top-level runs tagged with the sweep's id and name, so the
MLflow UI compares them as rows and bars (its "Group by" and a tag filter show one sweep).
The sweep's own record — configuration, best trial, best-first table, comparison charts —
is a run in the companion experiment `<experiment>-sweeps`.

It also creates the MLflow database and experiment once, before parallel jobs start:
jobs racing to create them fail in MLflow's schema migration.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from mlexp.errors import MlexpError
from mlexp.sweeps import SWEEP_ID_ENV, SWEEP_JOBS_ENV, SWEEP_NAME_ENV, SWEEP_STORE_ENV, job_outcomes
from mlexp.sweeps.checks import check_sweep

# Hydra builds this callback for every run, single trials too: MLflow and the chart code
# are imported only when a sweep starts or ends, so a single trial does not pay for them.


def _direction(cfg: DictConfig) -> str:
    return str(getattr(cfg.task.objective.direction, "value", cfg.task.objective.direction))


def _experiment(config: DictConfig) -> str:
    """The MLflow experiment of the task's trials."""
    return str(config.tracking.experiment_name or config.task.name)


def sweep_name(config: DictConfig) -> str:
    """`<sweep>-<month><day>-<time>`; `-m` without sweep= is Hydra's grid."""
    kind = "grid" if config.sweep.name == "none" else config.sweep.name
    return f"{kind}-{datetime.now():%m%d-%H%M%S}"


def close_open_sweep(status: str) -> None:
    """End a sweep record that its end callback never reached (an error or Ctrl-C in Hydra or a job)."""
    sweep_id = os.environ.pop(SWEEP_ID_ENV, None)
    os.environ.pop(SWEEP_NAME_ENV, None)
    os.environ.pop(SWEEP_JOBS_ENV, None)
    uri = os.environ.get(SWEEP_STORE_ENV)
    if sweep_id and uri:
        from mlexp.tracking import TrackingStore

        TrackingStore(uri, None).client().set_terminated(sweep_id, status)


class SweepRecorder(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            check_sweep(config)
        except MlexpError as error:
            print(f"mlexp: error: {error}", file=sys.stderr)
            sys.exit(2)
        from mlexp.tracking import TrackingStore, tags

        root = Path(config.paths.root)
        store = TrackingStore.resolve(config.tracking.uri, root)
        store.experiment_id(_experiment(config))
        sweeps_experiment = store.experiment_id(_experiment(config) + tags.SWEEPS_SUFFIX)
        name = sweep_name(config)
        client = store.client()
        run = client.create_run(
            sweeps_experiment,
            run_name=name,
            tags={
                tags.KIND: "sweep",
                tags.TASK: config.task.name,
                tags.SWEEP_NAME: name,
                tags.OBJECTIVE: config.task.objective.metric,
                tags.DIRECTION: _direction(config),
                "mlexp.sweeper": str(config.hydra.sweeper.get("_target_", "")),
                "mlexp.command": " ".join(["mlexp", *sys.argv[1:]]),
                "mlexp.overrides": " ".join(config.hydra.overrides.task),
            },
        )
        sweep_id = run.info.run_id
        client.set_tag(sweep_id, tags.SWEEP_ID, sweep_id)
        client.log_text(sweep_id, OmegaConf.to_yaml(config.sweep) + _search_space(config), "sweep.yaml")
        # joblib workers start after this and inherit the environment
        os.environ[SWEEP_ID_ENV] = sweep_id
        os.environ[SWEEP_NAME_ENV] = name
        os.environ[SWEEP_JOBS_ENV] = str(root / ".mlexp" / "sweeps" / sweep_id)
        os.environ[SWEEP_STORE_ENV] = store.uri
        print(f"sweep {name} (id {sweep_id}): trials tagged {tags.SWEEP_ID}={sweep_id}")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_id = os.environ.get(SWEEP_ID_ENV)
        name = os.environ.get(SWEEP_NAME_ENV, "sweep")
        jobs_dir = Path(os.environ.get(SWEEP_JOBS_ENV, "."))
        if sweep_id is None:
            return
        from mlflow.entities import RunStatus

        from mlexp import compare, next_steps
        from mlexp.tracking import TrackingStore, tags

        store = TrackingStore.resolve(config.tracking.uri, Path(config.paths.root))
        client = store.client()
        metric, direction = config.task.objective.metric, _direction(config)
        rows = compare.find_trials(client, _experiment(config), sweep_id)
        outcomes = job_outcomes(jobs_dir)
        failed = [o for o in outcomes if o["status"] != "FINISHED"]
        print(f"\nsweep {name} (id {sweep_id}): {len(outcomes) - len(failed)}/{len(outcomes)} jobs finished")
        table = compare.format_table(rows, metric, direction, list(config.task.headline_metrics))
        print(table)
        client.log_text(sweep_id, table + "\n", "comparison/trials.txt")
        out_dir = Path(config.paths.root) / "outputs" / "sweeps" / config.task.name / name
        for chart in compare.write_charts(client, rows, metric, out_dir):
            client.log_artifact(sweep_id, str(chart), artifact_path="comparison")
        ranked = compare.best_first(rows, metric, direction)
        best = ranked[0] if ranked and compare.is_scored(ranked[0], metric) else None
        if best is not None:
            client.set_tag(best.run_id, tags.BEST_IN_SWEEP, "true")
            client.set_tag(sweep_id, "mlexp.best_trial", best.run_id)
            client.set_tag(sweep_id, "mlexp.best_trial_name", best.name)
            client.log_metric(sweep_id, f"best_{metric}", best.value(metric))
            print(f"best trial: {best.name} ({best.run_id}) {metric} = {best.value(metric):.6g}")
        else:
            print(f"no trial of sweep {name} finished with a {metric}")
        print(f"charts: {out_dir}")
        experiment_id = store.experiment_id(_experiment(config))
        next_steps.print_ui_link(
            store.uri,
            experiment_id,
            metric,
            direction,
            sweep_id,
            sweep_name=name,
            headline_metrics=list(config.task.headline_metrics),
            params=compare.varying_params(rows),
        )
        print(f"  compare trials:  mlexp compare sweep={name}")
        status = RunStatus.FAILED if failed or best is None else RunStatus.FINISHED
        client.set_terminated(sweep_id, RunStatus.to_string(status))
        for key in (SWEEP_ID_ENV, SWEEP_NAME_ENV, SWEEP_JOBS_ENV, SWEEP_STORE_ENV):
            os.environ.pop(key, None)
        if failed:
            for outcome in failed:
                print(f"  job {outcome['job']}: {outcome['error']}", file=sys.stderr)
            print(f"mlexp: error: {len(failed)} job(s) of sweep {name} failed", file=sys.stderr)
            sys.exit(1)
        if best is None:
            sys.exit(1)


def _search_space(config: DictConfig) -> str:
    params = config.hydra.sweeper.get("params") or {}
    lines = [f"  {key}: {value}" for key, value in params.items()]
    lines += [f"  {override}" for override in config.hydra.overrides.task]
    return "search_space:\n" + "\n".join(lines) + "\n"
