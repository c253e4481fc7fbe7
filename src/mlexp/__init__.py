"""mlexp: declarative, config-driven ML experiments (Hydra + MLflow + DVC).

From Python (a notebook): `mlexp.run`, `mlexp.sweep`, `mlexp.analytics`, `mlexp.plot`,
`mlexp.delete_experiment` — the command line's semantics, results as DataFrames.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from mlexp import plot
    from mlexp.api import run, sweep
    from mlexp.cleanup import DeletionNotConfirmed, DeletionReport, ExperimentNotFound, delete_experiment
    from mlexp.errors import ConfigError, DataError, MlexpError
    from mlexp.experiment_analytics import analytics, metric_history
    from mlexp.experiment_analytics.store import AnalyticsError
    from mlexp.experiment_analytics.trials import ExperimentAnalytics
    from mlexp.runner import TrialFailed
    from mlexp.sweep_failed import FailedJob, SweepFailed
    from mlexp.trial_handle import Trial, TrialPaths

# the notebook API, imported on first use: `mlexp` on the command line starts without pandas and MLflow
_EXPORTS = {
    "run": "mlexp.api",
    "sweep": "mlexp.api",
    "Trial": "mlexp.trial_handle",
    "TrialPaths": "mlexp.trial_handle",
    "analytics": "mlexp.experiment_analytics",
    "metric_history": "mlexp.experiment_analytics",
    "ExperimentAnalytics": "mlexp.experiment_analytics.trials",
    "delete_experiment": "mlexp.cleanup",
    "DeletionReport": "mlexp.cleanup",
    "DeletionNotConfirmed": "mlexp.cleanup",
    "ExperimentNotFound": "mlexp.cleanup",
    "AnalyticsError": "mlexp.experiment_analytics.store",
    "SweepFailed": "mlexp.sweep_failed",
    "FailedJob": "mlexp.sweep_failed",
    "TrialFailed": "mlexp.runner",
    "MlexpError": "mlexp.errors",
    "ConfigError": "mlexp.errors",
    "DataError": "mlexp.errors",
}


def __getattr__(name: str) -> Any:
    if name == "plot":
        return importlib.import_module("mlexp.plot")
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'mlexp' has no attribute {name!r}")


def __dir__() -> list[str]:
    # lazy names listed too, so a notebook's completion offers them
    return sorted(__all__)


__all__ = [
    "AnalyticsError",
    "ConfigError",
    "DataError",
    "DeletionNotConfirmed",
    "DeletionReport",
    "ExperimentAnalytics",
    "ExperimentNotFound",
    "FailedJob",
    "MlexpError",
    "SweepFailed",
    "Trial",
    "TrialFailed",
    "TrialPaths",
    "__version__",
    "analytics",
    "delete_experiment",
    "metric_history",
    "plot",
    "run",
    "sweep",
]
