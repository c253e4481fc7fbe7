"""One page's structure from OCR lines and the page image: the post-processing every engine shares."""

from __future__ import annotations

from typing import Any

import numpy as np

from mlexp.tasks.document_extraction import checkboxes, ink, layout
from mlexp.tasks.document_extraction.normalise import normalise
from mlexp.tasks.document_extraction.structure import Line, Page, Table


def normalise_lines(lines: list[Line], mode: str) -> None:
    for line in lines:
        for word in line.words:
            word.text = normalise(word.text, mode)
        line.words = [w for w in line.words if w.text]
        line.text = " ".join(w.text for w in line.words) if line.words else normalise(line.text, mode)


def build_page(number: int, image: np.ndarray, lines: list[Line], post: Any) -> Page:
    """Check boxes, key-values and tables from OCR `lines`, with the options of `model` (post-processing)."""
    height, width = image.shape[:2]
    normalise_lines(lines, post.unicode_normalisation)
    size = layout.text_height(lines)
    elements = checkboxes.find(image, size, post.checkbox_fill_threshold) if post.detect_check_boxes else []
    layout.drop_check_box_marks(lines, elements)
    words = [w for line in lines for w in (line.words or [])]
    labelled = layout.label_check_boxes(elements, words, size)
    pairs, paired = layout.pair_keys(lines, post.key_value_max_gap * width)
    free = [w for line in lines if id(line) not in paired for w in line.words if id(w) not in labelled]
    mask = ink.ink_mask(image, size) if post.gutter_word_spaces > 0 else None
    space = ink.word_space(mask, lines) if mask is not None else None
    digit = ink.digit_advance(mask, lines) if mask is not None and space else None
    tables = layout.find_tables(
        free,
        size,
        post.column_gap,
        post.table_min_rows,
        post.table_min_columns,
        post.drop_sparse_columns,
        post.min_column_fill,
        mask if space else None,
        (
            (
                post.row_word_spaces * space,
                post.gutter_word_spaces * space,
                ink.header_space(space, digit, post.row_word_spaces * space),
            )
            if space
            else None
        ),
    )
    return Page(number, width, height, lines, tables, pairs, elements)


def drop_empty_columns(table: Table) -> Table:
    """A table without the columns no cell fills (a table model's spurious columns), cells renumbered."""
    filled = sorted({c.column for c in table.cells if c.text.strip()})
    keep = {old: new for new, old in enumerate(filled)}
    cells = [c for c in table.cells if c.column in keep]
    for c in cells:
        # a span over dropped columns shrinks to the kept columns it covers
        end = c.column + c.column_span
        c.column_span = max(1, sum(1 for k in keep if c.column <= k < end))
        c.column = keep[c.column]
    return Table(table.box, table.rows, len(filled), cells)
