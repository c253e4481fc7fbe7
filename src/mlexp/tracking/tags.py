"""Tag names mlexp writes on MLflow runs; `compare` and sweeps read them back."""

from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

KIND = "mlexp.kind"  # trial | component | sweep
TASK = "mlexp.task"
STAGE = "mlexp.stage"
SWEEP_ID = "mlexp.sweep_id"
OBJECTIVE = "mlexp.objective"
DIRECTION = "mlexp.direction"
ERROR = "mlexp.error"

__all__ = [
    "DIRECTION",
    "ERROR",
    "KIND",
    "MLFLOW_PARENT_RUN_ID",
    "MLFLOW_RUN_NAME",
    "OBJECTIVE",
    "STAGE",
    "SWEEP_ID",
    "TASK",
]
