"""Tracking throughput: 10,000 step metrics through mlexp's Tracker vs one MlflowClient.log_metric call per value.

Goal: the Tracker (buffered `log_batch`) is at least 50x faster than one `log_metric` call per value.

Both paths run in this process against the same throw-away SQLite store, created before any timing.
The Tracker path times `tracker.log_metric` for every value plus the final `flush()`; a component's
Tracker mirrors every value of a declared curve (task.curves) to the trial's run, so it writes
2 rows per value (20,000 rows in all).
If 10,000 single calls would take more than BASELINE_BUDGET_S, the baseline measures a smaller
count and extrapolates linearly (said so in the output).

    .venv/bin/python benchmarks/tracking_throughput.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from mlflow.entities import RunStatus
from mlflow.tracking import MlflowClient

from mlexp.tracking import TrackingStore, Trial

GOAL_SPEEDUP = 50.0
VALUES = 10_000
METRIC = "train_loss"
BASELINE_BUDGET_S = 60.0  # measure all 10,000 single calls only if that is projected to take at most this long
BASELINE_REDUCED = 1_000
CALIBRATION = 100


def value(step: int) -> float:
    return 1.0 / (step + 1)


def time_tracker(client: MlflowClient, experiment_id: str) -> tuple[float, str, str, int]:
    """Seconds to log VALUES step metrics through a trial component's Tracker, final flush included."""
    # a declared curve (like train_loss): its whole history is mirrored to the trial's run, the costlier case
    trial = Trial.open(client, experiment_id, "tracker-benchmark", {"mlexp.task": "benchmark"}, curves=(METRIC,))
    with trial.component("Training", "train") as tracker:
        component_run_id = tracker.run_id
        buffer = tracker.metric_buffer
        start = time.perf_counter()
        for step in range(VALUES):
            tracker.log_metric(METRIC, value(step), step=step)
        tracker.flush()
        elapsed = time.perf_counter() - start
    trial.close()
    return elapsed, trial.run_id, component_run_id, buffer


def time_single_calls(client: MlflowClient, run_id: str, first_step: int, count: int) -> float:
    start = time.perf_counter()
    for step in range(first_step, first_step + count):
        client.log_metric(run_id, METRIC, value(step), step=step)
    return time.perf_counter() - start


def history(client: MlflowClient, run_id: str) -> tuple[int, int]:
    """(values stored, distinct steps) of METRIC in a run."""
    rows = client.get_metric_history(run_id, METRIC)
    return len(rows), len({row.step for row in rows})


def load_average() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg()) + " (1, 5, 15 min)"


def main() -> int:
    # never write to the repository's store, nor to one named in the caller's environment (read at call time)
    for name in [name for name in os.environ if name.startswith(("MLFLOW_", "MLEXP_"))]:
        del os.environ[name]
    print(f"tracking throughput: {VALUES:,} step metrics, goal: Tracker >= {GOAL_SPEEDUP:g}x faster than")
    print("one MlflowClient.log_metric call per value")
    print(f"load average before start: {load_average()} ({os.cpu_count()} CPUs); other work skews the figures")
    with tempfile.TemporaryDirectory(prefix="mlexp-bench-tracking-") as tmp:
        store = TrackingStore.resolve(None, Path(tmp))
        client = store.client()
        experiment_id = store.experiment_id("tracking_throughput")  # creates the SQLite schema: not timed
        print(f"store: {store.uri}")

        tracker_s, trial_run_id, component_run_id, buffer = time_tracker(client, experiment_id)

        baseline_run_id = client.create_run(experiment_id, run_name="log-metric-baseline").info.run_id
        calibration_s = time_single_calls(client, baseline_run_id, 0, CALIBRATION)
        projected_s = calibration_s / CALIBRATION * VALUES
        measured = VALUES - CALIBRATION if projected_s <= BASELINE_BUDGET_S else BASELINE_REDUCED
        baseline_measured_s = time_single_calls(client, baseline_run_id, CALIBRATION, measured)
        client.set_terminated(baseline_run_id, RunStatus.to_string(RunStatus.FINISHED))
        if measured + CALIBRATION >= VALUES:
            baseline_s = calibration_s + baseline_measured_s
            baseline_note = f"measured: all {VALUES:,} calls"
        else:
            baseline_s = baseline_measured_s / measured * VALUES
            baseline_note = (
                f"EXTRAPOLATED linearly from {measured:,} timed calls ({baseline_measured_s:.2f} s; a "
                f"{CALIBRATION}-call calibration projected {projected_s:.0f} s for {VALUES:,}, over the "
                f"{BASELINE_BUDGET_S:g} s budget)"
            )

        component_rows, component_steps = history(client, component_run_id)
        trial_rows, trial_steps = history(client, trial_run_id)
        baseline_rows, _ = history(client, baseline_run_id)

    per_call_ms = baseline_s / VALUES * 1000
    per_value_ms = tracker_s / VALUES * 1000
    speedup = baseline_s / tracker_s
    batches = 2 * -(-VALUES // max(1, buffer // 2))  # each flush of `buffer` rows is one log_batch per run
    print()
    print(f"baseline  MlflowClient.log_metric x {VALUES:,}: {baseline_s:8.2f} s  ({per_call_ms:.3f} ms per value)")
    print(f"          {baseline_note}")
    print(
        f"mlexp     Tracker.log_metric x {VALUES:,} + flush: {tracker_s:8.3f} s  ({per_value_ms:.4f} ms per value; "
        f"buffer {buffer} rows, ~{batches} log_batch calls)"
    )
    print(
        f"          the Tracker writes every value twice (component run + mirror to the trial run): "
        f"{2 * VALUES:,} rows, {tracker_s / (2 * VALUES) * 1000:.4f} ms per row"
    )
    print()
    ok_component = component_rows == VALUES and component_steps == VALUES
    ok_trial = trial_rows == VALUES and trial_steps == VALUES
    print(
        f"store check: component run {component_rows:,} values ({component_steps:,} steps), "
        f"trial run {trial_rows:,} values ({trial_steps:,} steps), "
        f"baseline run {baseline_rows:,} values -> {'OK' if ok_component and ok_trial else 'MISSING VALUES'}"
    )
    print(f"load average at the end: {load_average()}")
    print(
        f"ratio: Tracker is {speedup:.1f}x faster per value than single log_metric calls "
        f"({2 * speedup:.1f}x per row written); goal >= {GOAL_SPEEDUP:g}x -> {speedup / GOAL_SPEEDUP:.2f} of goal"
    )
    met = speedup >= GOAL_SPEEDUP and ok_component and ok_trial
    print("GOAL MET" if met else "GOAL MISSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
