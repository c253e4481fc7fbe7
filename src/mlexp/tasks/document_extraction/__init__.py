"""Task `document_extraction`: OCR, page-wide tables, forms and check boxes against exact ground truth."""

from mlexp.tasks import Plot, StageSpec, Task, register
from mlexp.tasks.document_extraction import config  # noqa: F401  (registers the schemas)

# the post-processing keys extract reads (model.annotated_pages is evaluate's alone)
LAYOUT = tuple(
    f"model.{key}"
    for key in (
        "unicode_normalisation",
        "detect_check_boxes",
        "checkbox_fill_threshold",
        "key_value_max_gap",
        "column_gap",
        "table_min_rows",
        "table_min_columns",
        "drop_sparse_columns",
        "min_column_fill",
    )
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
