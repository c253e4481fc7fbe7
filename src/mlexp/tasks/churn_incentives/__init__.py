"""Task `churn_incentives`: XGBoost churn scores, a cost-based cutoff and a budget-optimal incentive program."""

from mlexp.tasks import Task, register
from mlexp.tasks.churn_incentives import config  # noqa: F401  (registers the schemas)

TASK = register(
    Task(
        "churn_incentives",
        f"{__name__}.stages",
        ("prepare", "train", "evaluate", "incentives"),
        component_names={"incentives": "Incentive analysis"},
    )
)
