"""What a solution's own settings must hold whatever the data: CreateSolution's event filter, and model.ks, the ks
its metrics (the objective's among them) are computed at. The prepare and train stages check them again.

Their own module, not the package's `__init__` (nor config.py, the schemas and their help): a stage's DVC
dependencies are the modules it imports, and a range or a help text edited there must not re-run the stages.
"""

import re


def objective_k(metric: str) -> int | None:
    """The k of an objective such as val_normalized_discounted_cumulative_gain_at_10 (None: no k)."""
    found = re.search(r"_at_(\d+)$", metric)
    return int(found.group(1)) if found else None


def ks_hold_objective_k(ks: list[int], metric: str) -> bool:
    """Whether the ks the metrics are computed at include the objective's own k."""
    k = objective_k(metric)
    return k is None or k in [int(v) for v in ks]


def ks_with(ks: list[int], k: int) -> str:
    """The model.ks to suggest: `ks` with `k`, sorted, less those below 1 (a rule of its own refuses them)."""
    return f"model.ks=[{','.join(str(v) for v in sorted({*(int(v) for v in ks if int(v) >= 1), k}))}]"


def add_objective_k(ks: list[int], metric: str) -> str:
    """The fix of a model.ks without the objective's k."""
    k = objective_k(metric)
    assert k is not None  # an objective without a k holds the rule
    dropped = " (and drop the ks below 1)" if not ks_at_least_one(ks) else ""
    return f"add it{dropped}: {ks_with(ks, k)}"


def ks_at_least_one(ks: list[int]) -> bool:
    return all(int(v) >= 1 for v in ks)


def threshold_has_event_type(event_value_threshold: float | None, event_type: str | None) -> bool:
    """CreateSolution's rule: an event value threshold applies to one event type."""
    return event_value_threshold is None or event_type is not None
