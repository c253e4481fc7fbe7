"""What a churn_incentives sweep ranks its trials by: `${churn_incentives_by_sweep:...}` in conf/task/.

Its own module, imported by the package's `__init__`: no stage imports it, so editing it re-runs no stage.
"""

from __future__ import annotations

from typing import Any

from omegaconf import OmegaConf


def by_sweep(sweep_name: str, per_sweep: Any, default: str) -> str:
    """`per_sweep[sweep_name]`, else `default`: a sweep ranks its trials by its own objective.

    A sweep file cannot set task.objective itself (the task's config is merged after it), so the task's objective
    names the sweeps that rank otherwise. sweep=churn_budget changes no classifier setting, so every trial has the
    same val_auc; it reports the post's expected total profit, net of the incentives paid (profit_optimal), and
    names no best trial: the program may leave budget unspent, so that profit never falls as the budget grows and
    is flat once the budget stops binding (docs/tasks/churn_incentives.md).
    """
    return str(per_sweep.get(sweep_name, default))


OmegaConf.register_new_resolver("churn_incentives_by_sweep", by_sweep, replace=True)
