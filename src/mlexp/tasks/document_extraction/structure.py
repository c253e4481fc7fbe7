"""The extracted document, the same for every engine: pages → lines/words, tables → cells, key-values, check boxes.

Boxes are [x0, y0, x1, y1] in pixels of the page image; confidences are 0–1. The JSON of
`Document.to_json()` is the schema documented in docs/tasks/document_extraction.md (ground truth
files use the same schema, with only the fields they know).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

Box = list[float]


@dataclass
class Word:
    text: str
    box: Box
    confidence: float = 1.0


@dataclass
class Line:
    text: str
    box: Box
    confidence: float = 1.0
    words: list[Word] = field(default_factory=list)


@dataclass
class Cell:
    row: int
    column: int
    text: str
    box: Box
    row_span: int = 1
    column_span: int = 1


@dataclass
class Table:
    box: Box
    rows: int
    columns: int
    cells: list[Cell] = field(default_factory=list)

    def grid(self) -> list[list[str]]:
        """The cells' text as rows × columns (a spanning cell's text in its first slot)."""
        grid = [["" for _ in range(self.columns)] for _ in range(self.rows)]
        for cell in self.cells:
            grid[cell.row][cell.column] = cell.text
        return grid


@dataclass
class KeyValue:
    key: str
    value: str
    key_box: Box
    value_box: Box | None = None
    confidence: float = 1.0


@dataclass
class SelectionElement:
    box: Box
    state: str  # SELECTED | NOT_SELECTED, Textract's names
    label: str = ""
    confidence: float = 1.0


@dataclass
class Page:
    number: int
    width: int
    height: int
    lines: list[Line] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    key_values: list[KeyValue] = field(default_factory=list)
    selection_elements: list[SelectionElement] = field(default_factory=list)


@dataclass
class Document:
    name: str
    source: str
    engine: str
    pages: list[Page] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def box_of(points: Any) -> Box:
    """The axis-aligned box of a quadrilateral (four [x, y] points) or of any point list."""
    xs = [float(p[0]) for p in points]
    ys = [float(p[1]) for p in points]
    return [min(xs), min(ys), max(xs), max(ys)]


def union(boxes: list[Box]) -> Box:
    return [min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)]


def page_from_json(data: dict[str, Any]) -> Page:
    """A page of the JSON schema (ground truth or a saved extraction) as objects; missing parts are empty."""
    lines = [
        Line(x["text"], x["box"], x.get("confidence", 1.0), [Word(**w) for w in x.get("words", [])])
        for x in data.get("lines", [])
    ]
    tables = []
    for t in data.get("tables", []):
        cells = [
            Cell(
                c["row"],
                c["column"],
                c["text"],
                c.get("box", [0, 0, 0, 0]),
                c.get("row_span", 1),
                c.get("column_span", 1),
            )
            for c in t.get("cells", [])
        ]
        rows = t.get("rows") or 1 + max((c.row for c in cells), default=-1)
        columns = t.get("columns") or 1 + max((c.column for c in cells), default=-1)
        tables.append(Table(t.get("box", [0, 0, 0, 0]), rows, columns, cells))
    pairs = [
        KeyValue(p["key"], p["value"], p.get("key_box", [0, 0, 0, 0]), p.get("value_box"))
        for p in data.get("key_values", [])
    ]
    boxes = [SelectionElement(s["box"], s["state"], s.get("label", "")) for s in data.get("selection_elements", [])]
    return Page(data.get("number", 1), data.get("width", 0), data.get("height", 0), lines, tables, pairs, boxes)
