"""Task `tabular_regression`: the abalone MLP of the SageMaker Experiments post."""

from mlexp.tasks import Task, register
from mlexp.tasks.tabular_regression import config  # noqa: F401  (registers the schemas)
from mlexp.tasks.tabular_regression.stages import evaluate, prepare, train

TASK = register(Task("tabular_regression", {"prepare": prepare, "train": train, "evaluate": evaluate}))
