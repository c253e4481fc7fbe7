"""One Personalize CSV file as text: its header, its records and the line each starts on.

Personalize imports CSV as UTF-8 with a header line; every record has the header's number of fields.
Blank lines are not records. Line numbers are the file's (the header is line 1), so a quoted value
spanning lines or a blank line does not shift the lines that messages name.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from pyarrow import csv as pa_csv

from mlexp.data import csv_records
from mlexp.data.text_files import decode_utf8
from mlexp.errors import DataError, first_few

SHOWN = 5  # lines a message names before "and N more"
UTF8_MARK = b"\xef\xbb\xbf"  # the byte order mark Excel's "CSV UTF-8" writes first; not part of the header


def _utf8_bytes(path: Path) -> bytes:
    """The file's bytes, checked to be UTF-8 text as decode_utf8 checks it, without a UTF-8 byte order mark."""
    if path.is_dir():
        raise DataError(f"{path} is a folder, not a CSV file: put the CSV file there, or remove the folder")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DataError(f"{path}: cannot be read ({error.strerror}); make it a readable CSV file") from None
    # ASCII without a NUL byte is UTF-8 text as it stands (IDs, times, event types: most exports), so only other
    # files pay for a decode; the bytes go to Arrow as they are, and the text is decoded again only for messages
    if not data.isascii() or b"\x00" in data:
        try:
            decode_utf8(path, data)
        except DataError as error:
            raise DataError(f"{error} (Personalize imports CSV files as UTF-8 only)") from None
    return data.removeprefix(UTF8_MARK)


def read(path: Path, fields: list[str]) -> tuple[pd.DataFrame, FileLines]:
    """The records of `path` as strings under the header's names, and the file line each starts on.

    Arrow's reader takes a well-formed file (a 25M-interaction export in seconds, in the frame's memory); any other
    is read again by Python's csv module, strictly, which names the line and what is wrong with it. `fields` (the
    schema's) only words the message about an empty file.
    """
    data = _utf8_bytes(path)
    frame = _arrow_records(data)
    if frame is None:
        return _strict_records(path, data, fields)
    return frame, FileLines(path, data)


class FileLines:
    """The file line each record starts on (`lines[i]`, `lines[mask]`), counted the first time a message needs one:
    a scan of the whole file that a well-formed one never pays for."""

    def __init__(self, path: Path, data: bytes, starts: np.ndarray | None = None) -> None:
        self._path = path
        self._data = data
        self._starts = starts

    def __getitem__(self, index: Any) -> Any:
        if self._starts is None:
            starts = csv_records.record_starts(self._path, self._data.decode("utf-8"))
            self._starts = np.asarray(starts[1:], dtype=np.int64)
        return self._starts[index]


def _arrow_records(data: bytes) -> pd.DataFrame | None:
    """The records of `data` (UTF-8 checked) by Arrow's CSV reader, every field a string; None for a file it should
    not judge: a record of another width, an odd number of quotes (an unclosed one, which Arrow reads to the end of
    the file), a header naming a field twice, a line of blanks."""
    end = data.find(b"\n")
    first = data[: end if end >= 0 else len(data)].decode("utf-8")
    header = next(csv.reader([first]), [])
    if not header or len(set(header)) != len(header) or data.count(b'"') % 2:
        return None
    options = pa_csv.ConvertOptions(
        column_types={name: pa.string() for name in header}, strings_can_be_null=False, quoted_strings_can_be_null=False
    )
    try:
        table = pa_csv.read_csv(
            pa.BufferReader(data),
            parse_options=pa_csv.ParseOptions(newlines_in_values=True),
            convert_options=options,
        )
    except pa.ArrowInvalid:
        return None
    if table.column_names != header:
        return None
    return table.to_pandas()


def _strict_records(path: Path, data: bytes, fields: list[str]) -> tuple[pd.DataFrame, FileLines]:
    """The records of `data` (UTF-8 checked) by Python's csv module in strict mode: each problem is named with its
    line."""
    starts, records = csv_records.records(path, data.decode("utf-8"), strict=True)
    if not records:
        raise DataError(f"{path} is empty; expected a header line ({','.join(fields)}) then the rows")
    header, rows, lines = records[0], records[1:], np.asarray(starts[1:], dtype=np.int64)
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise DataError(f"{path}: line 1 (the header) names {', '.join(map(repr, repeated))} more than once")
    _check_widths(path, rows, lines, len(header))
    return pd.DataFrame(rows, columns=header, dtype=object), FileLines(path, data, lines)


def _check_widths(path: Path, rows: list[list[str]], lines: np.ndarray, width: int) -> None:
    widths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    wrong = np.flatnonzero(widths != width)
    if not wrong.size:
        return
    first = int(wrong[0])
    fix = (
        'quote a value that holds a comma ("a,b")'
        if widths[first] > width
        else "write every field, an empty one as nothing between two commas"
    )
    others = f"; {wrong.size} lines differ: {first_few(lines[wrong[:SHOWN]], wrong.size)}" if wrong.size > 1 else ""
    raise DataError(
        f"{path}: line {lines[first]} has {widths[first]} fields, the header (line 1) {width}{others}: {fix}"
    )
