"""Task `churn_incentives`: XGBoost churn scores, a cost-based cutoff and a budget-optimal incentive program."""

from mlexp.config.bounds import above, at_least, between
from mlexp.config.input_paths import InputPath
from mlexp.tasks import Out, Plot, RawData, StageSpec, Task, register
from mlexp.tasks.churn_incentives import config  # noqa: F401  (schemas)
from mlexp.tasks.churn_incentives.config_rules import CONSTRAINTS

CHURN = RawData("churn", "data/raw/churn.txt")
DATASET = InputPath(
    "dataset.path",
    read_by=("prepare",),
    fix="give the path of your copy (churn.txt's columns), or leave dataset.path unset for the copy shipped with mlexp",
    suffixes=(".txt", ".csv"),  # telecom_churn.SUFFIXES, without importing pandas here
    written_by=CHURN.written_by,
)
BOOSTER = tuple(f"model.{key}" for key in ("max_depth", "eta", "gamma", "min_child_weight", "subsample", "num_round"))


TASK = register(
    Task(
        "churn_incentives",
        f"{__name__}.stages",
        (
            StageSpec(
                "prepare",
                reads=(CHURN,),
                args=(f"dataset.path={CHURN.path}",),
                params=("seed", "dataset.n_rows", "preprocessing"),
                outs=("{data}",),
            ),
            StageSpec(
                "train",
                reads=("{data}",),
                params=("seed", *BOOSTER, "model.nthread"),
                outs=("{models}",),
                plots=(Plot("{reports}/plots/val_auc.csv", x="round", y="val_auc"),),
            ),
            StageSpec(
                "evaluate",
                reads=("{data}", "{models}"),
                # the confusion matrix is drawn at the decision threshold and at the cost-optimal cutoff
                params=(
                    "model.decision_threshold",
                    "model.nthread",
                    "model.incentives.cost_fn",
                    "model.incentives.value_tn",
                    "model.incentives.incentive",
                    "model.incentives.n_cutoffs",
                ),
                plots=(
                    Plot("{reports}/plots/roc.csv", x="fpr", y="tpr"),
                    "{reports}/plots/roc.png",
                    "{reports}/plots/confusion_matrix.png",
                ),
            ),
            StageSpec(
                "incentives",
                reads=("{data}", "{models}"),
                params=("model.incentives", "model.nthread", "optimizer"),
                outs=(Out("{reports}/incentives.csv", cache=False), Out("{reports}/incentive_report.txt", cache=False)),
                metrics=("{reports}/metrics.json",),
                plots=(
                    Plot("{reports}/plots/cost_by_cutoff.csv", x="cutoff", y="cost"),
                    Plot("{reports}/plots/uplift_by_budget.csv", x="budget_fraction", y="uplift_vs_none"),
                    "{reports}/plots/score_histogram.png",
                    "{reports}/plots/cost_by_cutoff.png",
                    "{reports}/plots/profit_by_scenario.png",
                    "{reports}/plots/discounts.png",
                    "{reports}/plots/uplift_by_budget.png",
                ),
            ),
        ),
        component_names={"incentives": "Incentive analysis"},
        bounds={
            "model.max_depth": at_least(0),
            "model.eta": above(0),
            "model.gamma": at_least(0),
            "model.min_child_weight": at_least(0),
            "model.subsample": between(0, 1, open_low=True),
            "model.num_round": at_least(1),
            "model.nthread": at_least(0),
            "model.decision_threshold": between(0, 1),  # a churn probability
            # found by the incentives stage, the last, after training: n_cutoffs=0, a negative budget, gamma 0
            "model.incentives.n_cutoffs": at_least(1),
            "model.incentives.budget_fraction": at_least(0),
            "model.incentives.budget": at_least(0),  # null: budget_fraction of the customers' spend
            "model.incentives.convincing.inside": above(0),
            "model.incentives.convincing.outside": above(0),
            # shares of the customers held out (their sum below 1 is a constraint)
            "preprocessing.validation_fraction": between(0, 1, open_low=True, open_high=True),
            "preprocessing.test_fraction": between(0, 1, open_low=True, open_high=True),
        },
        constraints=CONSTRAINTS,
        inputs=(DATASET,),
    )
)
