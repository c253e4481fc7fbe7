"""Task `document_extraction`: OCR, page-wide tables, forms and check boxes against exact ground truth."""

import dataclasses

from mlexp.tasks import Plot, StageSpec, Task, register
from mlexp.tasks.document_extraction import config  # noqa: F401  (registers the schemas)

# every post-processing key is extract's (DVC re-runs it when one changes) but model.annotated_pages, evaluate's alone
LAYOUT = tuple(
    f"model.{field.name}" for field in dataclasses.fields(config.DocumentLayout) if field.name != "annotated_pages"
)

TASK = register(
    Task(
        "document_extraction",
        f"{__name__}.stages",
        (
            StageSpec(
                "prepare", params=("seed", "dataset", "preprocessing"), outs=("{data}/pages", "{data}/ground_truth")
            ),
            StageSpec("extract", reads=("{data}/pages",), params=("engine", *LAYOUT), outs=("{data}/extracted",)),
            StageSpec(
                "evaluate",
                reads=("{data}/pages", "{data}/ground_truth", "{data}/extracted"),
                params=("model.annotated_pages",),
                metrics=("{reports}/metrics.json",),
                plots=(
                    Plot("{reports}/evaluation.csv", x="extraction_score", y="group", template="bar_horizontal"),
                    "{reports}/plots",
                ),
            ),
        ),
        component_names={"extract": "Extraction"},
    )
)
