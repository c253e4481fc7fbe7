"""The engines behind `engine=`: each turns a page image into a structured Page."""

from __future__ import annotations

from typing import Any, Protocol

import cv2
import numpy as np

from mlexp.tasks.document_extraction import layout, textract
from mlexp.tasks.document_extraction.config_rules import REGION
from mlexp.tasks.document_extraction.page_layout import build_page, drop_empty_columns, normalise_lines
from mlexp.tasks.document_extraction.structure import Line, Page


class Reader(Protocol):
    def read(self, image: np.ndarray) -> list[Line]: ...


class Extractor(Protocol):
    name: str

    def extract(self, image: np.ndarray, number: int, source: str) -> Page: ...


class OcrExtractor:
    """An OCR reader (RapidOCR, or Tesseract for the baseline) followed by the project's layout code."""

    def __init__(self, name: str, reader: Reader, post: Any, min_width: int, table_model: Any = None) -> None:
        self.name, self.reader, self.post, self.min_width = name, reader, post, min_width
        self.table_model = table_model

    def extract(self, image: np.ndarray, number: int, source: str) -> Page:
        height, width = image.shape[:2]
        scale = max(1.0, self.min_width / width)
        # small text (a 100 dpi scan) is upscaled to the size the recogniser was trained on
        scaled = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC) if scale > 1 else image
        page = build_page(number, scaled, self.reader.read(scaled), self.post)
        if self.table_model is not None:
            page.tables = [self.table_model.restructure(scaled, t, page.lines) for t in page.tables]
            if self.post.drop_sparse_columns:
                page.tables = [drop_empty_columns(t) for t in page.tables]
        if scale > 1:
            _rescale(page, 1 / scale)
            page.width, page.height = width, height
        return page


def _rescale(page: Page, factor: float) -> None:
    def s(box: list[float] | None) -> list[float] | None:
        return None if box is None else [v * factor for v in box]

    for line in page.lines:
        line.box = s(line.box) or line.box
        for word in line.words:
            word.box = s(word.box) or word.box
    for table in page.tables:
        table.box = s(table.box) or table.box
        for cell in table.cells:
            cell.box = s(cell.box) or cell.box
    for pair in page.key_values:
        pair.key_box, pair.value_box = s(pair.key_box) or pair.key_box, s(pair.value_box)
    for element in page.selection_elements:
        element.box = s(element.box) or element.box


class TextractExtractor:
    """Amazon Textract's own tables, forms and check boxes, with the shared normalisation and check-box labels."""

    name = "textract"

    def __init__(self, engine: Any, post: Any, client: Any = None) -> None:
        if client is None:
            if (error := REGION.refusal((engine.region_name,))) is not None:
                raise error  # not boto3's InvalidRegionError, a traceback
            import boto3

            client = boto3.client("textract", region_name=engine.region_name)
        self.client, self.engine, self.post = client, engine, post

    def extract(self, image: np.ndarray, number: int, source: str) -> Page:
        height, width = image.shape[:2]
        page = textract.parse(
            textract.analyze(self.client, image, self.engine.max_bytes, source), number, width, height
        )
        normalise_lines(page.lines, self.post.unicode_normalisation)
        words = [w for line in page.lines for w in line.words]
        # a box Textract already paired with its key keeps that label; the others take the words right of them
        unlabelled = [e for e in page.selection_elements if not e.label]
        layout.label_check_boxes(unlabelled, words, layout.text_height(page.lines))
        if self.post.drop_sparse_columns:
            page.tables = [drop_empty_columns(t) for t in page.tables]
        return page


def make(engine: Any, post: Any) -> Extractor:
    """The extractor of `engine` (cfg.engine) with post-processing options `post` (cfg.model)."""
    if engine.name == "textract":
        return TextractExtractor(engine, post)
    from mlexp.tasks.document_extraction.ocr_local import RapidOcrReader

    reader = RapidOcrReader(
        engine.threads,
        engine.det_limit_side,
        engine.text_score,
        engine.rec_batch,
        engine.currency_threshold,
        engine.currency_signs,
    )
    tables = None
    if engine.table_structure == "slanet_plus":
        from mlexp.tasks.document_extraction.table_model import SlanetTables

        tables = SlanetTables()
    return OcrExtractor("local_ocr", reader, post, engine.min_width, tables)


def tesseract_baseline(post: Any, min_width: int) -> Extractor:
    from mlexp.tasks.document_extraction.tesseract import TesseractReader

    return OcrExtractor("tesseract", TesseractReader(), post, min_width)
