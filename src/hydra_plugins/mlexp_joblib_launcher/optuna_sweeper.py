"""Hydra's Optuna sweeper whose search ends with mlexp's sweep summary, not a traceback, when its trials fail.

Hydra imports every plugin module on every run: Optuna is imported only when a search starts.
"""

from __future__ import annotations

import sys

from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper


class SummarisingOptunaSweeper(OptunaSweeper):
    """Optuna's sweeper; a search stopped by max_failure_rate, or with no trial completed, returns normally.

    The sweep's end (mlexp.sweeps.recorder) then lists the failed jobs and the command exits 1.
    """

    def sweep(self, arguments: list[str]) -> None:
        from mlexp.sweeps.joblib_launcher import JobFailed

        try:
            super().sweep(arguments)
        except JobFailed:  # Optuna's sweeper re-raises a failed job past hydra.sweeper.max_failure_rate
            rate = self.sweeper.max_failure_rate
            print(f"mlexp: the search stopped: a batch's failed trials passed max_failure_rate={rate}", file=sys.stderr)
        except ValueError as error:
            if "No trials are completed yet" not in str(error):
                raise
            print("mlexp: the search ended with no trial completed", file=sys.stderr)  # Optuna has no best trial
