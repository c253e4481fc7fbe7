"""Tag names mlexp writes on MLflow runs and experiments; `compare`, sweeps and the UI link read them back."""

# MLflow's own tag names (mlflow.utils.mlflow_tags), spelled out: importing MLflow costs seconds a trial
# need not spend before its work starts (a test checks they match)
MLFLOW_PARENT_RUN_ID = "mlflow.parentRunId"
MLFLOW_RUN_NAME = "mlflow.runName"

KIND = "mlexp.kind"  # trial | component | sweep
TASK = "mlexp.task"
STAGE = "mlexp.stage"
SWEEP_ID = "mlexp.sweep_id"  # the run id of the sweep's record, on every trial of the sweep
SWEEP_NAME = "mlexp.sweep_name"
TRIALS_EXPERIMENT_ID = "mlexp.trials_experiment_id"  # on a sweep record: the experiment of its trials
BEST_IN_SWEEP = "mlexp.best_in_sweep"
# on a trial: the Pre-processing component run it ran or reuses (a shared trial component)
SHARED_PREPROCESSING = "mlexp.shared_component.prepare"
OBJECTIVE = "mlexp.objective"
DIRECTION = "mlexp.direction"
ERROR = "mlexp.error"
# the experiment's kind for MLflow's UI; 3.17 takes the mode from the link's workflowType instead
# (see ui_link), but the tag tells other clients these are model-training experiments
EXPERIMENT_KIND = "mlflow.experimentKind"
MODEL_TRAINING = "custom_model_development"
# the sweeps of experiment X are recorded in X + this suffix, out of the trial rows
SWEEPS_SUFFIX = "-sweeps"

__all__ = [
    "BEST_IN_SWEEP",
    "DIRECTION",
    "ERROR",
    "EXPERIMENT_KIND",
    "KIND",
    "MLFLOW_PARENT_RUN_ID",
    "MLFLOW_RUN_NAME",
    "MODEL_TRAINING",
    "OBJECTIVE",
    "SHARED_PREPROCESSING",
    "STAGE",
    "SWEEPS_SUFFIX",
    "SWEEP_ID",
    "SWEEP_NAME",
    "TASK",
]
