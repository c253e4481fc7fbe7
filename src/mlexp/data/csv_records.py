"""The records of a CSV file and the line each starts on, as an editor counts lines (the first is line 1).

A quoted value may span lines, so a record's line is not its position. A blank line (nothing but spaces and tabs,
what pandas' `skip_blank_lines` skips) is no record; a quoted value on a line of its own (`""`) is one. The readers
of churn.txt, text corpora and Personalize CSVs count their lines here, so their messages count them alike.
"""

from __future__ import annotations

import csv
import io
from itertools import islice
from pathlib import Path

from mlexp.errors import DataError

BLANK = " \t"


def records(source: Path, text: str, *, strict: bool = False) -> tuple[list[int], list[list[str]]]:
    """The records of `text` (the contents of `source`) and the line each starts on, blank lines left out.

    `strict` refuses a quote where none may be (`"a"b`, a quoted value still open at the end) rather than reading
    it as text. Raises DataError naming the line of a record the csv module refuses.
    """
    values: list[list[str]] = []
    return _read(source, text, False, strict, values), values


def record_starts(source: Path, text: str, *, initial_spaces: bool = False) -> list[int]:
    """The line each record of `text` (the contents of `source`) starts on, as `records` reads them.

    `initial_spaces`: spaces after a comma are no part of the value, so `a, "b` opens a quote (pandas'
    `skipinitialspace`). Raises DataError naming the line of a value over the csv module's field limit.
    """
    return _read(source, text, initial_spaces, False, None)


def _read(source: Path, text: str, initial_spaces: bool, strict: bool, values: list[list[str]] | None) -> list[int]:
    """The start lines of the records, each record appended to `values` when given (lists filled in one loop: through
    a generator's yields the lines alone of 1M churn rows took a few per cent more CPU)."""
    reader = csv.reader(io.StringIO(text, newline=""), skipinitialspace=initial_spaces, strict=strict)
    quoted = _QuotedLines(text)
    starts: list[int] = []
    start = 1
    try:
        for record in reader:
            # one value of spaces on one line is a blank line, unless the value is quoted
            if len(record) > 1 or (record and (record[0].strip(BLANK) or reader.line_num > start or quoted(start))):
                starts.append(start)
                if values is not None:
                    values.append(record)
            start = reader.line_num + 1
    except csv.Error as error:
        raise DataError(f"{source}: line {start}: {_refusal(error)}") from None
    return starts


def _refusal(error: csv.Error) -> str:
    if "field limit" in str(error):  # pandas and Arrow read such a value from a well-formed file: no "not valid CSV"
        return (
            f"a value runs past {csv.field_size_limit():,} characters, the most Python's csv reader takes: close a "
            "quote left open there, or shorten the value"
        )
    return f'not valid CSV ({error}); a quoted value ends with a quote, and a quote inside it is doubled ("")'


class _QuotedLines:
    """Whether a line of the text holds a quote, its lines read forward only when asked: most files never ask."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._lines: io.StringIO | None = None
        self._read = 0

    def __call__(self, number: int) -> bool:
        """Whether line `number` (1-based) holds a quote; each call asks of a later line than the one before."""
        if self._lines is None:
            self._lines = io.StringIO(self._text, newline="")  # split where the csv reader splits: \n, \r\n or \r
        line = next(islice(self._lines, number - 1 - self._read, None))
        self._read = number
        return '"' in line
