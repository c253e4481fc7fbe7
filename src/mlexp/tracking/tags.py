"""Tag names mlexp writes on MLflow runs and experiments; `compare`, sweeps and the UI link read them back (with
the search filters that look them up)."""

import re
from collections.abc import Mapping

# MLflow's own tag names (mlflow.utils.mlflow_tags), spelled out: importing MLflow costs seconds a trial
# need not spend before its work starts (a test checks they match)
MLFLOW_PARENT_RUN_ID = "mlflow.parentRunId"
MLFLOW_RUN_NAME = "mlflow.runName"

KIND = "mlexp.kind"  # trial | component | sweep
TASK = "mlexp.task"
STAGE = "mlexp.stage"
# the STAGE of a trial that only served or registered a model (`stage=deploy` run alone): compare and the trials
# view leave it out
SERVING_ONLY_STAGE = "deploy"
SWEEP_ID = "mlexp.sweep_id"  # the run id of the sweep's record, on every trial of the sweep
SWEEP_NAME = "mlexp.sweep_name"
TRIALS_EXPERIMENT_ID = "mlexp.trials_experiment_id"  # on a sweep record: the experiment of its trials
BEST_IN_SWEEP = "mlexp.best_in_sweep"
# on a sweep record: how many other trials share the best trial's value of the objective (0: it is the only best)
BEST_TRIAL_TIES = "mlexp.best_trial_ties"
# on a trial: the option it composed of each config group, `<prefix><group>` (`mlexp.choice.model`)
CHOICE_PREFIX = "mlexp.choice."
# on a trial: the component run of a stage it reuses (a shared trial component), `<prefix><stage>`; the
# Pre-processing one of a sweep's trials, or a stage a partial `dvc repro` kept (mlexp.reused_stages)
SHARED_COMPONENT_PREFIX = "mlexp.shared_component."
SHARED_PREPROCESSING = "mlexp.shared_component.prepare"
SHARED_KEY = "mlexp.shared_component.key"  # what a shared Pre-processing depends on, as one hash: no run id
# on a trial: how a stage it did not run was reused, `<prefix><stage>` (the source, or that none was found)
REUSED_PREFIX = "mlexp.reused."
# on a component of a DVC stage run: the digest of its declared outputs as dvc.lock records them
OUTPUTS_DIGEST = "mlexp.outputs_digest"
OBJECTIVE = "mlexp.objective"
DIRECTION = "mlexp.direction"
ERROR = "mlexp.error"
# the experiment's kind for MLflow's UI; 3.17 takes the mode from the link's workflowType instead
# (see ui_link), but the tag tells other clients these are model-training experiments
EXPERIMENT_KIND = "mlflow.experimentKind"
MODEL_TRAINING = "custom_model_development"
# the sweeps of experiment X are recorded in X + this suffix, out of the trial rows
SWEEPS_SUFFIX = "-sweeps"


# MLflow's form of a run id (mlflow.utils.validation._RUN_ID_REGEX; a test checks they match): one of another form
# names no run, and is not searched for
RUN_ID_PATTERN = r"[a-zA-Z0-9][\w\-]{0,255}"


def quotable(value: str) -> bool:
    """Whether an MLflow search filter can hold `value`. Its parser reads a quote after a backslash as part of the
    value and MLflow never unescapes, so a value can be wrapped in `'` or `"` only if it lacks that quote and does
    not end in a backslash."""
    return not ("'" in value and '"' in value) and not value.endswith("\\")


def quoted(value: str) -> str:
    """`value`, a name a user typed (a registered model's, a trial's), as a value in an MLflow search filter: in
    single quotes, or in double ones when it holds a `'`. Only for a `quotable` value."""
    if not quotable(value):
        raise ValueError(f"no MLflow search filter can hold {value!r}")
    return f"'{value}'" if "'" not in value else f'"{value}"'


def is_run_id(value: str) -> bool:
    """Whether `value` has the form of an MLflow run id (a source or init_from typed by a user may not)."""
    return re.fullmatch(RUN_ID_PATTERN, value) is not None


def component_filter(trial_id: str, stage: str) -> str:
    """The search_runs filter of a trial's own component for `stage`, not one it reused (shared_components;
    mlexp.serving.trained_components looks in both for a trial's model). Only for a run id (`is_run_id`): a value a
    user typed may be anything."""
    if not is_run_id(trial_id):
        raise ValueError(f"{trial_id!r} is not a run id")
    return f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{trial_id}' and tags.`{STAGE}` = '{stage}'"


def shared_components(run_tags: Mapping[str, str]) -> dict[str, str]:
    """The component runs a trial reuses, by stage, from its tags."""
    return {
        key.removeprefix(SHARED_COMPONENT_PREFIX): value
        for key, value in run_tags.items()
        if key.startswith(SHARED_COMPONENT_PREFIX) and key != SHARED_KEY and value
    }


__all__ = [
    "BEST_IN_SWEEP",
    "BEST_TRIAL_TIES",
    "CHOICE_PREFIX",
    "DIRECTION",
    "ERROR",
    "EXPERIMENT_KIND",
    "KIND",
    "MLFLOW_PARENT_RUN_ID",
    "MLFLOW_RUN_NAME",
    "MODEL_TRAINING",
    "OBJECTIVE",
    "OUTPUTS_DIGEST",
    "REUSED_PREFIX",
    "RUN_ID_PATTERN",
    "SHARED_COMPONENT_PREFIX",
    "SHARED_KEY",
    "SHARED_PREPROCESSING",
    "STAGE",
    "SWEEPS_SUFFIX",
    "SWEEP_ID",
    "SWEEP_NAME",
    "TASK",
    "TRIALS_EXPERIMENT_ID",
    "component_filter",
    "is_run_id",
    "quotable",
    "quoted",
    "shared_components",
]
