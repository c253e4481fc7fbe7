"""Task `document_extraction`: OCR, page-wide tables, forms and check boxes against exact ground truth."""

import dataclasses

from mlexp.config.bounds import above, at_least, between
from mlexp.config.input_paths import Accepts, InputPath, RelativeTo, given
from mlexp.tasks import Plot, StageSpec, Task, register
from mlexp.tasks.document_extraction import config  # noqa: F401  (registers the schemas)
from mlexp.tasks.document_extraction.config_rules import CONSTRAINTS

# every post-processing key is extract's (DVC re-runs it when one changes) but model.annotated_pages, evaluate's alone
LAYOUT = tuple(
    f"model.{field.name}" for field in dataclasses.fields(config.DocumentLayout) if field.name != "annotated_pages"
)

# the prepare stage takes both as given: a relative path starts at the working directory
INPUTS = (
    InputPath(
        "dataset.path",
        read_by=("prepare",),
        fix="give a document (PNG, JPEG, TIFF, BMP or PDF) or a folder of them, or leave dataset.path unset for "
        "generated documents",
        accepts=Accepts.FILE_OR_FOLDER,  # document_files.find: no glob
        # document_files.TYPES, without importing PIL here
        suffixes=(".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".pdf"),
        subfolders=True,
        relative_to=RelativeTo.WORKING_DIRECTORY,
    ),
    InputPath(
        "dataset.ground_truth",
        read_by=("prepare",),
        fix="give the folder of <document>.json ground truth, or leave dataset.ground_truth unset to read it "
        "beside each document",
        accepts=Accepts.FOLDER,
        relative_to=RelativeTo.WORKING_DIRECTORY,
        when=("dataset.path", given),  # generated documents bring their own
    ),
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
        bounds={
            "dataset.n_per_type": at_least(1),
            "dataset.n_rows": at_least(1),
            "preprocessing.pdf_dpi": at_least(1),
            "preprocessing.max_pixels": at_least(1),
            "preprocessing.empty_page_std": at_least(0),  # 0: no page is refused as empty
            # a share of a check box's inside: 0 would mark every box SELECTED whatever its ink
            "model.checkbox_fill_threshold": between(0, 1, open_low=True),
            "model.key_value_max_gap": between(0, 1),  # a share of the page width (0: a value on the key's line only)
            "model.row_word_spaces": above(0),
            "model.gutter_word_spaces": at_least(0),  # 0: gutters by column_gap
            "model.column_gap": above(0),
            "model.table_min_rows": at_least(1),
            # a text row is a table row when its ink falls into this many pieces: 1 makes every text row one
            "model.table_min_columns": at_least(2),
            "model.min_column_fill": between(0, 1),  # a share of the table's rows
            "model.annotated_pages": at_least(0),
            # engine=local_ocr
            "engine.threads": at_least(0),  # 0: ONNX Runtime's own choice
            "engine.det_limit_side": at_least(1),
            "engine.text_score": between(0, 1),  # RapidOCR's minimum recognition score
            "engine.rec_batch": at_least(1),
            "engine.min_width": at_least(0),  # 0: no page is upscaled
            "engine.currency_threshold": between(0, 1),  # a probability; 0: plain greedy decoding
            # engine=textract
            "engine.max_bytes": at_least(0),  # 0: every page is sent as JPEG
        },
        constraints=CONSTRAINTS,
        inputs=INPUTS,
    )
)
