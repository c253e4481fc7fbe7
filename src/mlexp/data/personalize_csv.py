"""One Personalize CSV file as text: its header, its records and the line each starts on.

Personalize imports CSV as UTF-8 with a header line; every record has the header's number of fields.
Blank lines are not records. Line numbers are the file's (the header is line 1), so a quoted value
spanning lines or a blank line does not shift the lines that messages name.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd

from mlexp.data.text_files import decode_utf8
from mlexp.errors import DataError

SHOWN = 5  # lines a message names before "and N more"


def listed(lines: list[str]) -> str:
    """`5`, `5, 7` or `5, 7, 9, 11, 12 and 3 more`: the first few of a list, for a message."""
    return ", ".join(lines[:SHOWN]) + (f" and {len(lines) - SHOWN} more" if len(lines) > SHOWN else "")


def _text(path: Path) -> str:
    if path.is_dir():
        raise DataError(f"{path} is a folder, not a CSV file: put the CSV file there, or remove the folder")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DataError(f"{path}: cannot be read ({error.strerror}); make it a readable CSV file") from None
    try:
        return decode_utf8(path, data)
    except DataError as error:
        raise DataError(f"{error} (Personalize imports CSV files as UTF-8 only)") from None


def read(path: Path, fields: list[str]) -> tuple[pd.DataFrame, np.ndarray]:
    """The records of `path` as strings under the header's names, and the file line each starts on.

    `fields` (the schema's) only words the message about an empty file.
    """
    reader = csv.reader(io.StringIO(_text(path), newline=""), strict=True)
    records: list[list[str]] = []
    starts: list[int] = []
    end = 0
    try:
        for record in reader:
            start, end = end + 1, reader.line_num
            if record and (len(record) > 1 or record[0].strip()):  # a blank line is no record
                records.append(record)
                starts.append(start)
    except csv.Error as error:
        raise DataError(
            f"{path}: line {end + 1}: not valid CSV ({error}); a quoted value ends with a quote, and a quote "
            'inside it is doubled ("")'
        ) from None
    if not records:
        raise DataError(f"{path} is empty; expected a header line ({','.join(fields)}) then the rows")
    header, rows, lines = records[0], records[1:], np.asarray(starts[1:], dtype=np.int64)
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise DataError(f"{path}: line 1 (the header) names {', '.join(map(repr, repeated))} more than once")
    _check_widths(path, rows, lines, len(header))
    return pd.DataFrame(rows, columns=header, dtype=object), lines


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
    others = f"; {wrong.size} lines differ: {listed([str(lines[i]) for i in wrong])}" if wrong.size > 1 else ""
    raise DataError(
        f"{path}: line {lines[first]} has {widths[first]} fields, the header (line 1) {width}{others}: {fix}"
    )
