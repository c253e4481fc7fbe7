"""The error of a sweep with failed jobs (or no scored trial), carrying what it did record."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlexp.errors import MlexpError

if TYPE_CHECKING:
    from mlexp.trial_handle import Trial


@dataclass(frozen=True)
class FailedJob:
    """One sweep job that did not finish: its number, its trial (None when none opened) and its one-line error."""

    number: int
    run_id: str | None
    error: str

    @classmethod
    def from_outcome(cls, outcome: Mapping[str, object]) -> FailedJob:
        """From the outcome a sweep job records (mlexp.sweeps.record_job)."""
        run_id = outcome.get("run_id")
        return cls(int(str(outcome["job"])), str(run_id) if run_id else None, str(outcome.get("error", "")))


class SweepFailed(MlexpError):
    """A sweep ended with failed jobs or without a trial scored by the objective; its trials are kept, best first."""

    def __init__(self, message: str, sweep_id: str, failed_jobs: Sequence[FailedJob], trials: Sequence[Trial]) -> None:
        super().__init__(message)
        self.sweep_id = sweep_id
        self.failed_jobs = list(failed_jobs)
        self.trials = list(trials)
