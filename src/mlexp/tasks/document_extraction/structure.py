"""The extracted document, the same for every engine: pages → lines/words, tables → cells, key-values, check boxes.

Boxes are [x0, y0, x1, y1] in pixels of the page image; confidences are 0–1. The JSON of
`Document.to_json()` is the schema documented in docs/tasks/document_extraction.md (ground truth
files use the same schema, with only the fields they know).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
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
        Line(
            x["text"],
            x["box"],
            x.get("confidence", 1.0),
            [Word(w["text"], w["box"], w.get("confidence", 1.0)) for w in x.get("words", [])],
        )
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


def _integer(value: Any, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _box(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 4 and all(_number(v) for v in value)


STATES = ("SELECTED", "NOT_SELECTED")
# what a field must be: (test, the words for it)
_STRING = (lambda v: isinstance(v, str), "a string")
_NUMBER = (_number, "a number")
_INDEX = (lambda v: _integer(v, 0), "an integer of at least 0 (rows and columns count from 0)")
_COUNT = (lambda v: _integer(v, 1), "an integer of at least 1")
_SIZE = (lambda v: v is None or _integer(v, 0), "an integer of at least 0, or null (0 or null: counted from the cells)")
_BOX = (_box, "a list of 4 numbers [x0, y0, x1, y1]")
_BOX_OR_NULL = (lambda v: v is None or _box(v), "a list of 4 numbers [x0, y0, x1, y1], or null")
_STATE = (lambda v: v in STATES, " or ".join(STATES))
# the page's JSON as page_from_json reads it, field by field: (name, required, what it must be or its items' fields)
_WORD = (("text", True, _STRING), ("box", True, _BOX), ("confidence", False, _NUMBER))
_LINE = (*_WORD, ("words", False, _WORD))
_CELL = (
    ("row", True, _INDEX),
    ("column", True, _INDEX),
    ("text", True, _STRING),
    ("box", False, _BOX),
    ("row_span", False, _COUNT),
    ("column_span", False, _COUNT),
)
_TABLE = (("box", False, _BOX), ("rows", False, _SIZE), ("columns", False, _SIZE), ("cells", False, _CELL))
_KEY_VALUE = (
    ("key", True, _STRING),
    ("value", True, _STRING),
    ("key_box", False, _BOX),
    ("value_box", False, _BOX_OR_NULL),
    ("confidence", False, _NUMBER),
)
_SELECTION = (("box", True, _BOX), ("state", True, _STATE), ("label", False, _STRING), ("confidence", False, _NUMBER))
_PAGE = (
    ("number", False, _COUNT),
    ("width", False, _NUMBER),
    ("height", False, _NUMBER),
    ("lines", False, _LINE),
    ("tables", False, _TABLE),
    ("key_values", False, _KEY_VALUE),
    ("selection_elements", False, _SELECTION),
)


class SchemaProblem(ValueError):
    """What page_from_json cannot read in a page's JSON: a missing key, or a field that is not what it must be."""


def _described(value: Any) -> str:
    """A JSON value in words: its type, and the value itself when it is short."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({json.dumps(value)})"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"a string ({json.dumps(value if len(value) <= 20 else value[:17] + '...', ensure_ascii=False)})"
    if isinstance(value, list):
        return f"a list of {len(value)} item{'' if len(value) == 1 else 's'}"
    return "an object" if isinstance(value, dict) else type(value).__name__


def _check_fields(value: dict[str, Any], fields: tuple[Any, ...], where: str) -> None:
    for name, required, kind in fields:
        if name not in value:
            if required:
                raise SchemaProblem(f"misses key {name!r}")
            continue
        found, path = value[name], f"{where}.{name}" if where else name
        if isinstance(kind[0], tuple):  # a list of objects with these fields
            if not isinstance(found, list):
                raise SchemaProblem(f"field {path!r} is {_described(found)}; it must be a list of objects")
            for index, item in enumerate(found):
                if not isinstance(item, dict):
                    raise SchemaProblem(f"field '{path}[{index}]' is {_described(item)}; it must be an object")
                _check_fields(item, kind, f"{path}[{index}]")
        elif not kind[0](found):
            if kind in (_BOX, _BOX_OR_NULL) and isinstance(found, list) and len(found) == 4:
                index, item = next((i, v) for i, v in enumerate(found) if not _number(v))
                raise SchemaProblem(f"field '{path}[{index}]' is {_described(item)}; it must be a number")
            raise SchemaProblem(f"field {path!r} is {_described(found)}; it must be {kind[1]}")


def check_page_json(data: Any) -> None:
    """Raise SchemaProblem for the first key of a page's JSON (a ground-truth page) that page_from_json would fail
    on or misread: a required key missing, or a field whose type or value is not the schema's ('Output schema' in
    docs/tasks/document_extraction.md). Keys the schema does not name are ignored, as page_from_json ignores them."""
    if not isinstance(data, dict):
        raise SchemaProblem(f"the page is {_described(data)}; it must be an object")
    _check_fields(data, _PAGE, "")


def page_boxes(data: dict[str, Any]) -> Iterator[tuple[str, Box]]:
    """Every box of a page's JSON that check_page_json passed, with its field's path (`lines[0].words[2].box`)."""
    yield from _boxes(data, _PAGE, "")


def _boxes(value: dict[str, Any], fields: tuple[Any, ...], where: str) -> Iterator[tuple[str, Box]]:
    for name, _, kind in fields:
        found, path = value.get(name), f"{where}.{name}" if where else name
        if isinstance(kind[0], tuple):
            for index, item in enumerate(found or []):
                yield from _boxes(item, kind, f"{path}[{index}]")
        elif kind in (_BOX, _BOX_OR_NULL) and found is not None:
            yield path, found
