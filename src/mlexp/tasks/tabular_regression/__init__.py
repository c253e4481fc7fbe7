"""Task `tabular_regression`: the abalone MLP of the SageMaker Experiments post."""

from mlexp.tasks import Task, register
from mlexp.tasks.tabular_regression import config  # noqa: F401  (registers the schemas)

TASK = register(Task("tabular_regression", f"{__name__}.stages", ("prepare", "train", "evaluate"), uses_mxnet=True))
