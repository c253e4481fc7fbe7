"""Amazon Textract AnalyzeDocument (TABLES + FORMS) through boto3, its Blocks parsed into the shared structure."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image

from mlexp.errors import ConfigError, DataError
from mlexp.tasks.document_extraction.config_rules import TEXTRACT_NO_CREDENTIALS
from mlexp.tasks.document_extraction.structure import Cell, KeyValue, Line, Page, SelectionElement, Table, Word, union

FEATURES = ["TABLES", "FORMS"]
# refusals that no other page would escape (credentials, clock, permissions, network): they fail the trial
ACCOUNT_ERRORS = {
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "ExpiredTokenException",
    "AccessDeniedException",
}


def page_bytes(image: np.ndarray, max_bytes: int) -> bytes:
    """PNG bytes of the page, or JPEG when PNG is over Textract's synchronous size limit."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    if buffer.tell() <= max_bytes:
        return buffer.getvalue()
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def analyze(client: Any, image: np.ndarray, max_bytes: int, source: str) -> dict[str, Any]:
    """The AnalyzeDocument response for one page; a one-line error without credentials or on a refused call."""
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

    try:
        response: dict[str, Any] = client.analyze_document(
            Document={"Bytes": page_bytes(image, max_bytes)}, FeatureTypes=FEATURES
        )
    except NoCredentialsError as error:
        raise ConfigError(TEXTRACT_NO_CREDENTIALS) from error  # refused before the trial, unless they vanished
    except EndpointConnectionError as error:
        raise ConfigError(
            f"engine=textract cannot reach {error.kwargs.get('endpoint_url', 'Textract')}; "
            "check the network and engine.region_name, or use engine=local_ocr"
        ) from error
    except ClientError as error:
        code = error.response["Error"].get("Code", "")
        if code in ACCOUNT_ERRORS:
            raise ConfigError(
                f"engine=textract: AWS refused the account ({code}: {error.response['Error'].get('Message', '')}); "
                "fix the credentials, clock or IAM permission textract:AnalyzeDocument, or use engine=local_ocr"
            ) from error
        raise DataError(
            f"{source}: Textract refused the page: {error.response['Error'].get('Message', error)}"
        ) from error
    except BotoCoreError as error:
        raise DataError(f"{source}: Textract call failed: {error}") from error
    return response


def _box(block: dict[str, Any], width: int, height: int) -> list[float]:
    b = block["Geometry"]["BoundingBox"]
    return [b["Left"] * width, b["Top"] * height, (b["Left"] + b["Width"]) * width, (b["Top"] + b["Height"]) * height]


def _related(block: dict[str, Any], kind: str) -> list[str]:
    return [i for r in block.get("Relationships", []) if r["Type"] == kind for i in r["Ids"]]


def _text(block: dict[str, Any], blocks: dict[str, dict[str, Any]]) -> str:
    """A block's words in order; a selection element inside it reads as nothing (its state is kept apart)."""
    words = [blocks[i] for i in _related(block, "CHILD") if blocks[i]["BlockType"] == "WORD"]
    return " ".join(w["Text"] for w in words)


def _selection_children(values: list[dict[str, Any]], blocks: dict[str, dict[str, Any]]) -> list[str] | None:
    """The ids of the check boxes a KEY's values hold when they hold nothing else, else None."""
    children = [i for v in values for i in _related(v, "CHILD")]
    if not children or any(blocks[i]["BlockType"] != "SELECTION_ELEMENT" for i in children):
        return None
    return children


def parse(response: dict[str, Any], number: int, width: int, height: int) -> Page:
    """Textract's Blocks as one page: LINE/WORD → lines, TABLE/CELL/MERGED_CELL → tables,
    KEY_VALUE_SET (KEY → VALUE) → key-values, SELECTION_ELEMENT → check boxes."""
    blocks = {b["Id"]: b for b in response.get("Blocks", [])}
    page = Page(number, width, height)
    labels: dict[str, str] = {}
    for block in blocks.values():
        kind = block["BlockType"]
        if kind == "LINE":
            words = [
                Word(blocks[i]["Text"], _box(blocks[i], width, height), blocks[i].get("Confidence", 100) / 100)
                for i in _related(block, "CHILD")
                if blocks[i]["BlockType"] == "WORD"
            ]
            page.lines.append(
                Line(block["Text"], _box(block, width, height), block.get("Confidence", 100) / 100, words)
            )
        elif kind == "TABLE":
            page.tables.append(_table(block, blocks, width, height))
        elif kind == "KEY_VALUE_SET" and "KEY" in block.get("EntityTypes", []):
            values = [blocks[i] for i in _related(block, "VALUE")]
            boxes = _selection_children(values, blocks)
            if boxes is not None:
                # Textract's check box pattern: KEY "Single" → VALUE → SELECTION_ELEMENT; the key labels the box
                for element in boxes:
                    labels[element] = _text(block, blocks).rstrip(": ")
                continue
            value = " ".join(_text(v, blocks) for v in values).strip()
            value_box = _box(values[0], width, height) if values else None
            # a key's text keeps its colon in Textract ("Net pay:"); the key is what precedes it
            page.key_values.append(
                KeyValue(
                    _text(block, blocks).rstrip(": "),
                    value,
                    _box(block, width, height),
                    value_box,
                    block.get("Confidence", 100) / 100,
                )
            )
    for block in blocks.values():
        if block["BlockType"] == "SELECTION_ELEMENT":
            page.selection_elements.append(
                SelectionElement(
                    _box(block, width, height),
                    block["SelectionStatus"],
                    labels.get(block["Id"], ""),
                    block.get("Confidence", 100) / 100,
                )
            )
    if response.get("Blocks") and not any(b["BlockType"] == "PAGE" for b in blocks.values()):
        raise DataError("Textract's response has no PAGE block; it is not an AnalyzeDocument response")
    return page


def _table(block: dict[str, Any], blocks: dict[str, dict[str, Any]], width: int, height: int) -> Table:
    cells = []
    for i in _related(block, "CHILD"):
        b = blocks[i]
        if b["BlockType"] != "CELL":
            continue
        cells.append(
            Cell(
                b["RowIndex"] - 1,
                b["ColumnIndex"] - 1,
                _text(b, blocks),
                _box(b, width, height),
                b.get("RowSpan", 1),
                b.get("ColumnSpan", 1),
            )
        )
    # a MERGED_CELL spans cells: its text goes to its first cell, which takes its spans; the others are emptied
    for i in _related(block, "MERGED_CELL"):
        m = blocks[i]
        row, column, rows, columns = (
            m["RowIndex"] - 1,
            m["ColumnIndex"] - 1,
            m.get("RowSpan", 1),
            m.get("ColumnSpan", 1),
        )
        covered = [c for c in cells if row <= c.row < row + rows and column <= c.column < column + columns]
        text = " ".join(t for t in (_text(blocks[j], blocks) for j in _related(m, "CHILD")) if t)
        for c in covered:
            c.text = ""
        first = next((c for c in covered if (c.row, c.column) == (row, column)), None)
        if first is not None:
            first.row_span, first.column_span, first.text = rows, columns, text
    rows = max((c.row + c.row_span for c in cells), default=0)
    columns = max((c.column + c.column_span for c in cells), default=0)
    box = _box(block, width, height) if "Geometry" in block else union([c.box for c in cells])
    return Table(box, rows, columns, cells)
