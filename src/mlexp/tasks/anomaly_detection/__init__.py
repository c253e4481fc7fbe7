"""Task `anomaly_detection`: SQL outlier rules over NYC taxi trips (DuckDB embedded, Athena at scale)."""

from mlexp.tasks import Task, register
from mlexp.tasks.anomaly_detection import config  # noqa: F401  (registers the schemas)

TASK = register(
    Task(
        "anomaly_detection",
        f"{__name__}.stages",
        ("prepare", "query", "detect", "clean"),
        component_names={"query": "Query", "detect": "Detection", "clean": "Cleaning"},
    )
)
