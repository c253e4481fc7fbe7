"""The characters RapidOCR's recogniser reads, from its ONNX file without loading the model.

RapidOCR takes them from the model's metadata (`character`: one a line; its CTCLabelDecode adds the space, and CTC's
blank, which no sign is). An ONNX file is a protobuf ModelProto: its metadata (field 14) is reached by reading each
top-level field's tag and length and skipping the graph (21 MB), so the set is read in about a millisecond with the
standard library alone: a command judging engine.currency_signs before a trial opens (config_rules) loads neither
ONNX Runtime nor RapidOCR (importlib only finds the package's folder).
"""

from __future__ import annotations

import importlib.util
import io
from functools import cache
from pathlib import Path
from typing import BinaryIO

# the recogniser in the rapidocr wheel, mlexp.tasks.document_extraction.ocr_local reads it (ocr_local.MODEL_FILES)
REC_MODEL = "PP-OCRv6_rec_small.onnx"
METADATA_FIELD = 14  # ModelProto.metadata_props: StringStringEntryProto {key = 1, value = 2}
CHARACTERS_KEY = "character"


def rapidocr_models() -> Path | None:
    """The `models` folder of the installed rapidocr package, found without importing it; None when not installed."""
    spec = importlib.util.find_spec("rapidocr")
    return Path(spec.origin).parent / "models" if spec is not None and spec.origin else None


def _varint(stream: BinaryIO) -> int:
    shift = value = 0
    while True:
        byte = stream.read(1)
        if not byte:
            raise EOFError("the file ends inside a field")
        value |= (byte[0] & 0x7F) << shift
        if byte[0] < 0x80:
            return value
        shift += 7


def _metadata(path: Path) -> dict[str, str]:
    """The key-value metadata of the ONNX model at `path`; every other top-level field is skipped unread."""
    found: dict[str, str] = {}
    size = path.stat().st_size
    with path.open("rb") as stream:
        while stream.tell() < size:
            tag = _varint(stream)
            field, wire = tag >> 3, tag & 7
            if wire == 0:
                _varint(stream)
            elif wire in (1, 5):
                stream.seek(8 if wire == 1 else 4, 1)
            elif wire == 2:
                length = _varint(stream)
                if field != METADATA_FIELD:
                    stream.seek(length, 1)
                    continue
                entry, key, value = io.BytesIO(stream.read(length)), "", ""
                while entry.tell() < length:
                    inner = _varint(entry) >> 3
                    text = entry.read(_varint(entry)).decode("utf-8")
                    key, value = (text, value) if inner == 1 else (key, text)
                found[key] = value
            else:
                raise ValueError(f"wire type {wire} is not of an ONNX file")
    return found


@cache
def recogniser_characters(models: Path | None = None) -> frozenset[str] | None:
    """The characters the recogniser can read (its dictionary, and the space); None when they cannot be read here
    (rapidocr not installed, the file missing or not an ONNX model with a dictionary): the stage then finds out as
    it loads the model."""
    folder = models or rapidocr_models()
    if folder is None:
        return None
    try:
        characters = _metadata(folder / REC_MODEL).get(CHARACTERS_KEY)
    except (OSError, ValueError, EOFError, IndexError, UnicodeDecodeError):
        return None
    return None if characters is None else frozenset([*characters.splitlines(), " "])
