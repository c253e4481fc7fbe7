"""Task `object_detection`: football detection with GluonCV ("Football tracking in the NFL with Amazon SageMaker")."""

from mlexp.tasks import Task, register
from mlexp.tasks.object_detection import config  # noqa: F401  (registers the schemas)

TASK = register(
    Task("object_detection", f"{__name__}.stages", ("prepare", "train", "evaluate", "deploy"), uses_mxnet=True)
)
