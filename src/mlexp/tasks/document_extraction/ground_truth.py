"""Whether a user's ground truth fits the document it describes: one entry of `pages` per page, in order, of the
page's size, every box finite, ordered and on the page, and something on them to score. A file that reads as the
schema but describes another document (two pages for a one-page scan, boxes of another resolution) would be scored
without a word; one with nothing to score (`{"pages": [{}]}`) would end the trial without an extraction_score."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from mlexp.tasks.document_extraction import metrics
from mlexp.tasks.document_extraction.structure import Page, page_boxes, page_from_json

# a box may reach this share of the page's side past an edge: rounding, an outline drawn around a skewed scan's glyphs
NEAR = 0.05


def _count(pages: int) -> str:
    return f"{pages} page{'' if pages == 1 else 's'}"


def misfit(pages: list[dict[str, Any]], sizes: Sequence[tuple[int, int]], document: str) -> tuple[int, str] | None:
    """The first way the ground truth's `pages` (each passed check_page_json) do not fit `document`, whose pages
    are `sizes` (width, height) pixels, as (page number, what is wrong and the fix; page 0: the whole file)."""
    if len(pages) != len(sizes):
        return 0, (
            f"has {_count(len(pages))} but {document} has {_count(len(sizes))}; "
            "give one entry of 'pages' per page of the document, in order"
        )
    for number, (page, (width, height)) in enumerate(zip(pages, sizes, strict=True), start=1):
        problem = _page_misfit(page, number, len(sizes), width, height, document)
        if problem:
            return number, problem
    if not scorable(pages):
        return 0, (
            "holds nothing to score: no line with text, table, key-value or check box on any page; give what the "
            "document shows, or remove the file to report extraction only"
        )
    return None


def scorable(pages: list[dict[str, Any]]) -> bool:
    """Whether any metric can be measured against these ground-truth pages: asked of the metrics themselves (an
    extraction that found nothing), so what counts stays what evaluate scores."""
    for data in pages:
        truth = page_from_json(data)
        if metrics.ratios(metrics.compare(truth, Page(truth.number, truth.width, truth.height))):
            return True
    return False


def _page_misfit(page: dict[str, Any], number: int, count: int, width: int, height: int, document: str) -> str | None:
    # pages are compared in the order they are listed, so a number must be that place
    if page.get("number", number) != number:
        return (
            f"says number {page['number']}, but it is listed as page {number} and {document} has {_count(count)}; "
            + (f"number the pages 1 to {count} in the order they are listed" if count > 1 else "give it number 1")
            + " (or leave 'number' out)"
        )
    # 0 is page_from_json's "not given"; a size given must be the page's, as its boxes are pixels of that page
    for key, real in (("width", width), ("height", height)):
        said = page.get(key, 0)
        if said and not (math.isfinite(said) and abs(said - real) <= 1):
            return (
                f"says the page's {key} is {said:g} pixels, but page {number} of {document} is {width}×{height}"
                + (" at preprocessing.pdf_dpi" if document.lower().endswith(".pdf") else "")
                + "; give that size and boxes in its pixels"
            )
    for path, box in page_boxes(page):
        problem = _box_problem(box, width, height)
        if problem:
            return f"field {path!r} is [{', '.join(f'{v:g}' for v in box)}]; {problem}"
    return None


def _box_problem(box: list[float], width: int, height: int) -> str | None:
    x0, y0, x1, y1 = box
    if not all(math.isfinite(v) for v in box):
        return "its numbers must be finite"
    # an empty table cell's box may have no size (the generator's own ground truth has such boxes)
    if x0 > x1 or y0 > y1:
        return "it must be [x0, y0, x1, y1] with x0 ≤ x1 and y0 ≤ y1"
    near_x, near_y = NEAR * width, NEAR * height
    if x0 < -near_x or y0 < -near_y or x1 > width + near_x or y1 > height + near_y:
        return f"it lies off the {width}×{height} page; boxes are [x0, y0, x1, y1] in pixels of the page image"
    return None
