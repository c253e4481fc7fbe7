"""Hydra's joblib launcher whose sweep loses only the job of a worker that dies (see mlexp.sweeps.joblib_launcher).

Hydra imports every plugin module on every run, single trials too: joblib is imported only when a sweep launches.
"""

from __future__ import annotations

from collections.abc import Sequence

from hydra.core.utils import JobReturn
from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher


class ResilientJoblibLauncher(JoblibLauncher):
    """Hydra's JoblibLauncher; a dead worker costs its own job only, and a job's exception only that job."""

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from mlexp.sweeps.joblib_launcher import launch

        return launch(self, job_overrides, initial_job_idx)
