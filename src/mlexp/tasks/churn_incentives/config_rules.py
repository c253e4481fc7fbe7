"""The rules across churn_incentives' config keys (the task's `constraints`), and the predicate its stages check
again.

Their own module, not the package's `__init__`: a stage's DVC dependencies are the modules it imports, and a range or
a help text edited in `__init__` must not re-run the stages.
"""

from mlexp.config.constraints import Constraint, leave_a_training_share
from mlexp.tasks.churn_incentives.config import ConvincingRule


def band_in_order(rule: str, low: float, high: float) -> bool:
    """Whether the convincing factor's band of churn probabilities runs from low up to high (a constant rule has
    no band)."""
    return rule != ConvincingRule.band.value or low <= high


CONSTRAINTS = (
    Constraint(
        ("preprocessing.validation_fraction", "preprocessing.test_fraction"),
        leave_a_training_share,
        "preprocessing.validation_fraction + preprocessing.test_fraction must be below 1, to leave customers to "
        "train on",
        "lower one of them (defaults 0.15 + 0.45)",
    ),
    Constraint(
        ("model.incentives.convincing.rule", "model.incentives.convincing.low", "model.incentives.convincing.high"),
        band_in_order,
        "the band of churn probabilities given the inside factor runs from model.incentives.convincing.low up to "
        ".high, so low must not be above high",
        "swap them (the post's band: 0.55 to 0.95), or set model.incentives.convincing.rule=constant",
    ),
)
