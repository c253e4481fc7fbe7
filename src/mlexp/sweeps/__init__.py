"""Sweeps: Hydra multirun whose trials are tagged as one group, with a record kept out of the trial rows."""

from __future__ import annotations

import json
import os
from pathlib import Path

# set by the sweep callback in the launching process; sweep jobs (joblib workers too) inherit them
SWEEP_ID_ENV = "MLEXP_SWEEP_ID"
SWEEP_NAME_ENV = "MLEXP_SWEEP_NAME"
SWEEP_JOBS_ENV = "MLEXP_SWEEP_JOBS_DIR"
SWEEP_STORE_ENV = "MLEXP_SWEEP_TRACKING_URI"
SWEEP_EXPERIMENT_ENV = "MLEXP_SWEEP_EXPERIMENT"  # the trials' experiment, by name
SWEEP_ENV = (SWEEP_ID_ENV, SWEEP_NAME_ENV, SWEEP_JOBS_ENV, SWEEP_STORE_ENV, SWEEP_EXPERIMENT_ENV)
# the same variables in the sweep's folder: workers started before the record opened cannot inherit them
SWEEP_ENV_FILE = "mlexp_sweep.json"


def share_sweep_env(sweep_dir: Path) -> None:
    """Write the sweep's variables where its jobs find them, whenever their worker process started."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    values = {key: os.environ[key] for key in SWEEP_ENV if key in os.environ}
    (sweep_dir / SWEEP_ENV_FILE).write_text(json.dumps(values) + "\n")


def adopt_sweep_env(sweep_dir: Path) -> None:
    """In a sweep job: take the sweep's variables from its folder (a worker may predate the sweep's record)."""
    path = sweep_dir / SWEEP_ENV_FILE
    if path.exists():
        os.environ.update(json.loads(path.read_text()))


class SweepEndedFailed(SystemExit):
    """The sweep ran to its end and is recorded FAILED (a job failed, or no trial was scored): exit status 1.

    A SystemExit, so the command exits as usual; its own type lets the Python API tell it from an error
    without guessing from the exception being handled (in a notebook that may be the user's own).
    """

    def __init__(self) -> None:
        super().__init__(1)


def record_job(number: int, status: str, run_id: str | None, error: str = "", objective: float | None = None) -> None:
    """Leave a sweep job's outcome where the sweep's end can count it, even if no trial opened.

    A finished job's objective too: if its worker dies before its result reaches the sweep, the sweep takes it here.
    """
    folder = os.environ.get(SWEEP_JOBS_ENV)
    if not folder:
        return
    path = Path(folder) / f"{number}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    outcome = {"job": number, "status": status, "run_id": run_id, "error": error, "objective": objective}
    partial = path.with_suffix(".part")  # whole or absent, should the worker die mid-write
    partial.write_text(json.dumps(outcome) + "\n")
    partial.replace(path)


def job_outcomes(folder: Path) -> list[dict[str, object]]:
    """Every recorded job outcome of a sweep, in job order."""
    outcomes = [json.loads(path.read_text()) for path in folder.glob("*.json")]
    return sorted(outcomes, key=lambda outcome: int(str(outcome["job"])))
