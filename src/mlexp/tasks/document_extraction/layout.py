"""The project's own layout code, shared by every engine: check-box labels, key-value pairs and whitespace tables.

No OCR library pairs keys with values or labels check boxes, and page-wide tables without
ruling lines are where table models add spurious columns (the post's second claim), so these are
geometric rules over word boxes:
- a check box's label is the run of words starting just right of it;
- a key is a line's text up to a colon; its value is the rest of the line, else the nearest line to its right;
- a table is a run of ≥ min_rows text rows with ≥ min_columns whitespace-separated segments (a line right under a
  row, closer than the row pitch, is a wrapped cell's next line and belongs to that row); its columns
  are the gaps no row's words cross (so a short row can never add a column); a column that only a few
  rows fill and no header names is stray text and is merged into its neighbour (`drop_sparse_columns`).
"""

from __future__ import annotations

from statistics import median

import numpy as np

from mlexp.tasks.document_extraction import ink
from mlexp.tasks.document_extraction.structure import Cell, KeyValue, Line, SelectionElement, Table, Word, union


def _height(box: list[float]) -> float:
    return box[3] - box[1]


def _same_row(a: list[float], b: list[float]) -> bool:
    overlap = min(a[3], b[3]) - max(a[1], b[1])
    return overlap >= 0.5 * min(_height(a), _height(b))


def text_height(lines: list[Line]) -> float:
    return median([_height(w.box) for line in lines for w in _words(line)] or [20.0])


def _words(line: Line) -> list[Word]:
    return line.words or [Word(line.text, line.box, line.confidence)]


def label_check_boxes(elements: list[SelectionElement], words: list[Word], height: float) -> set[int]:
    """Give each check box the words just right of it as its label; return the ids of the words used."""
    used: set[int] = set()
    for element in elements:
        row = sorted(
            (w for w in words if _same_row(w.box, element.box) and w.box[0] >= element.box[2] - 2),
            key=lambda w: w.box[0],
        )
        label: list[Word] = []
        right = element.box[2]
        stops = [e.box[0] for e in elements if e.box[0] > element.box[2] and _same_row(e.box, element.box)]
        for w in row:
            gap = w.box[0] - right
            if (
                (not label and gap > 2.5 * height)
                or (label and gap > 1.0 * height)
                or (stops and w.box[0] > min(stops))
            ):
                break
            label.append(w)
            right = w.box[2]
        element.label = " ".join(w.text for w in label)
        used |= {id(w) for w in label}
    return used


def drop_check_box_marks(lines: list[Line], elements: list[SelectionElement]) -> None:
    """Remove words OCR read from a check box's own mark (an X read as 'X' or '区')."""

    def inside(w: Word) -> bool:
        cx, cy = (w.box[0] + w.box[2]) / 2, (w.box[1] + w.box[3]) / 2
        return any(e.box[0] - 3 <= cx <= e.box[2] + 3 and e.box[1] - 3 <= cy <= e.box[3] + 3 for e in elements)

    for line in lines:
        if line.words:
            line.words = [w for w in line.words if not inside(w)]
            line.text = " ".join(w.text for w in line.words)
    lines[:] = [line for line in lines if line.text.strip()]


def pair_keys(lines: list[Line], max_gap: float) -> tuple[list[KeyValue], set[int]]:
    """Key-value pairs from lines holding `Key:`; returns them and the ids of the lines used."""
    pairs, used = [], set()
    candidates = lines
    for line in candidates:
        key, colon, rest = line.text.partition(":")
        if not colon or not key.strip() or not key.strip()[0].isalpha() or len(key.split()) > 5:
            continue
        key_words = [w for w in _words(line) if not rest.strip() or w.box[0] < line.box[0] + 1 + _width_to(line, key)]
        value_box = None
        value = rest.strip()
        if value:
            value_box = line.box
        else:
            right = [
                o
                for o in candidates
                if o is not line
                and id(o) not in used
                and o.box[0] >= line.box[2] - 2
                and _same_row(o.box, line.box)
                and o.box[0] - line.box[2] <= max_gap
                and ":" not in o.text
            ]
            if not right:
                continue
            nearest = min(right, key=lambda o: o.box[0])
            value, value_box = nearest.text.strip(), nearest.box
            used.add(id(nearest))
        used.add(id(line))
        key_box = union([w.box for w in key_words]) if key_words else line.box
        pairs.append(KeyValue(key.strip(), value, key_box, value_box, line.confidence))
    return pairs, used


def _width_to(line: Line, prefix: str) -> float:
    """Where `prefix` ends along the line, by the share of its characters (for a key and value read as one line)."""
    return (line.box[2] - line.box[0]) * len(prefix) / max(len(line.text), 1)


def _bands(words: list[Word]) -> list[list[Word]]:
    """Words grouped into text rows by their vertical centres, top to bottom."""
    bands: list[list[Word]] = []
    for w in sorted(words, key=lambda w: (w.box[1] + w.box[3]) / 2):
        if bands and _same_row(union([x.box for x in bands[-1]]), w.box):
            bands[-1].append(w)
        else:
            bands.append([w])
    return [sorted(b, key=lambda w: w.box[0]) for b in bands]


def _segments(band: list[Word], gap: float) -> int:
    return 1 + sum(1 for a, b in zip(band, band[1:]) if b.box[0] - a.box[2] > gap)


def _columns(words: list[Word], gap: float) -> list[list[float]]:
    """The x-ranges no whitespace gutter crosses: word ranges merged where they overlap or nearly touch."""
    spans: list[list[float]] = []
    for w in sorted(words, key=lambda w: w.box[0]):
        if spans and w.box[0] - spans[-1][1] <= gap:
            spans[-1][1] = max(spans[-1][1], w.box[2])
        else:
            spans.append([w.box[0], w.box[2]])
    return spans


def find_tables(
    words: list[Word],
    height: float,
    column_gap: float,
    min_rows: int,
    min_columns: int,
    drop_sparse_columns: bool,
    min_column_fill: float,
    ink_mask: np.ndarray | None = None,
    gutter: tuple[float, float, float] | None = None,
) -> list[Table]:
    """Whitespace-separated tables among `words` (those not already part of a key-value pair or a label).

    With the page's `ink_mask` and `gutter` widths (pixels, from the page's measured word space and digit
    advance: one to split a single row (also the widest word space next to a piece one body row inks), one for
    a gutter no row of the table crosses, and the widest blank next to a header-only piece that is still a word
    space, `ink.header_space`) rows and columns are found on the ink (`ink.py`); without them, at the gaps
    between word boxes wider than `column_gap` text heights.
    """
    gap = column_gap * height
    bands = _bands(words)
    if ink_mask is not None and gutter is not None:
        wide = [ink.segments(ink_mask, band, gutter[0]) >= min_columns for band in bands]
    else:
        wide = [_segments(band, gap) >= min_columns for band in bands]
    pitch = _row_pitch(bands, wide, height)
    tables: list[Table] = []
    run: list[list[Word]] = []
    last_mid = 0.0  # position of the last text line of the run's last row (a wrapped row has several)
    for i, band in enumerate([*bands, []]):
        is_wide = i < len(bands) and wide[i]
        near = run and band and band[0].box[1] - max(w.box[3] for w in run[-1]) < 2.5 * height
        if is_wide and (not run or near):
            run.append(band)
            last_mid = _middle(band)
            continue
        if run and band and _continues(band, run, last_mid, pitch, bands[i + 1] if i + 1 < len(bands) else None):
            run[-1] = run[-1] + band  # a wrapped cell's next line: the same row, read after the line above
            last_mid = _middle(band)
            continue
        if len(run) >= min_rows:
            tables.append(_table(run, gap, drop_sparse_columns, min_column_fill, ink_mask, gutter))
        run = [band] if is_wide else []
        last_mid = _middle(band) if is_wide else 0.0
    return tables


def _middle(band: list[Word]) -> float:
    """A text line's vertical position: its words' median centre (steadier than the top of padded OCR boxes)."""
    return median((w.box[1] + w.box[3]) / 2 for w in band)


def _row_pitch(bands: list[list[Word]], wide: list[bool], height: float) -> float | None:
    """The median distance of adjacent table rows (two wide bands with nothing between them)."""
    pitches = [
        _middle(b) - _middle(a)
        for a, b, wa, wb in zip(bands, bands[1:], wide, wide[1:])
        if wa and wb and _middle(b) - max(w.box[3] for w in a) < 2.5 * height
    ]
    return median(pitches) if pitches else None


def _continues(
    band: list[Word], run: list[list[Word]], last_mid: float, pitch: float | None, after: list[Word] | None
) -> bool:
    """Whether a band with too few segments for a row is a wrapped cell's next line in the run's last row.

    Wrapped lines sit closer together than rows (a cell's line spacing is tighter than the row pitch): the band
    continues the row above when it sits less than 0.8 row pitches below the row's last line, the pitch measured
    between the page's unwrapped rows, else (every row wrapped) compared with the distance to the band below.
    It must also lie within the table's width. Text heights alone cannot tell: OCR boxes are padded, so a wrap's
    gap is ≈0.1 text heights in OCR boxes and ≈0.6 in exact ink boxes.
    """
    left, right = min(w.box[0] for row in run for w in row), max(w.box[2] for row in run for w in row)
    if any(w.box[0] < left - 1 or w.box[2] > right + 1 for w in band):
        return False
    above = _middle(band) - last_mid
    if pitch is None:
        if after is None:
            return False
        pitch = _middle(after) - _middle(band)
    return 0 < above < 0.8 * pitch


def _table(
    rows: list[list[Word]],
    gap: float,
    drop_sparse: bool,
    min_fill: float,
    ink_mask: np.ndarray | None = None,
    gutter: tuple[float, float, float] | None = None,
) -> Table:
    if ink_mask is not None and gutter is not None:
        cuts = ink.drop_word_spaces(ink_mask, rows, ink.gutters(ink_mask, rows, gutter[1]), gutter[0], gutter[2])
        rows = [ink.split_words(row, cuts) for row in rows]
        x0, x1 = min(w.box[0] for row in rows for w in row), max(w.box[2] for row in rows for w in row)
        edges = [x0, *[v for cut in cuts for v in cut], x1]
        spans = [[edges[i], edges[i + 1]] for i in range(0, len(edges), 2)]
    else:
        spans = _columns([w for row in rows for w in row], gap)
    grid: list[list[list[Word]]] = [[[] for _ in spans] for _ in rows]
    for r, row in enumerate(rows):
        for w in row:
            centre = (w.box[0] + w.box[2]) / 2
            c = min(
                range(len(spans)),
                key=lambda i: (
                    0
                    if spans[i][0] <= centre <= spans[i][1]
                    else min(abs(centre - spans[i][0]), abs(centre - spans[i][1]))
                ),
            )
            grid[r][c].append(w)
    if drop_sparse and len(spans) > 1:
        grid, spans = _merge_sparse(grid, spans, min_fill)
    cells = []
    for r, row_cells in enumerate(grid):
        top, bottom = min(w.box[1] for w in rows[r]), max(w.box[3] for w in rows[r])
        for c, cell in enumerate(row_cells):
            box = union([w.box for w in cell]) if cell else [spans[c][0], top, spans[c][1], bottom]
            cells.append(Cell(r, c, " ".join(w.text for w in cell), box))  # reading order: line, then x
    box = union([w.box for row in rows for w in row])
    return Table(box, len(rows), len(spans), cells)


def _merge_sparse(grid: list[list[list[Word]]], spans: list[list[float]], min_fill: float):
    """Merge each column under min_fill of the rows fill, and no header names, into its nearest neighbour."""
    while len(spans) > 1:
        fills = [sum(1 for row in grid if row[c]) / len(grid) for c in range(len(spans))]
        sparse = [c for c in range(len(spans)) if fills[c] < min_fill and not grid[0][c]]
        if not sparse:
            break
        c = sparse[0]
        left = spans[c][0] - spans[c - 1][1] if c > 0 else float("inf")
        right = spans[c + 1][0] - spans[c][1] if c + 1 < len(spans) else float("inf")
        into = c - 1 if left <= right else c + 1
        for row in grid:
            row[into].extend(row[c])
        spans[into] = [min(spans[into][0], spans[c][0]), max(spans[into][1], spans[c][1])]
        del spans[c]
        for row in grid:
            del row[c]
    return grid, spans
