"""The prepare stage's warnings about values that read as null though written: one line per file, column and kind.

A kind is the marker of trip_rows.py's `unread` (UNKNOWN_CODE, UNREADABLE_NUMBER), told apart here for numbers: beyond
the range of the column's type (OUT_OF_RANGE), with a fraction where it holds whole numbers (NOT_WHOLE), or NaN
there (NOT_A_NUMBER: a Parquet float's, or a CSV's text `nan`). Each warning names the values with their rows and
where the first one is: its row in a Parquet file, its line in a CSV (`line_numbers`, which reads the file once more,
only when there is a warning).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import duckdb

from mlexp.console import warn
from mlexp.data import nyc_taxi
from mlexp.tasks.anomaly_detection.trip_rows import UNKNOWN_CODE, UNREADABLE_NUMBER
from mlexp.tasks.anomaly_detection.unread_values import Tally

# a numeric column's values beyond its type's range: a warning's kind beside UNKNOWN_CODE and UNREADABLE_NUMBER, counted
# with the column's others (rows_unreadable_number_<column>, or rows_unknown_code_<column> in a coded column)
OUT_OF_RANGE = "__out_of_range_"
# the range of a numeric type that can be exceeded (a DOUBLE reads 1e400 as inf)
TYPE_RANGES = {"BIGINT": "whole numbers from -9223372036854775808 to 9223372036854775807"}
# a BIGINT column's numbers that are not whole (VendorID 2.5): read as null, with their own warning, like OUT_OF_RANGE
NOT_WHOLE = "__not_whole_"
# NaN where the type holds whole numbers (a Parquet VendorID of DOUBLE): read as null, with its own warning, likewise
NOT_A_NUMBER = "__not_a_number_"
QUOTE = ord('"')
# the rest of a quoted field, to its closing quote ("" is a quote in it); possessive: a "" is never split
QUOTED_REST = re.compile(rb'(?:[^"]|"")*+"')


def warn_unread(connection: duckdb.DuckDBPyConnection, file: nyc_taxi.TripFile, found: dict[str, Tally]) -> None:
    """One warning per column whose text read as null, naming the first such row's line (CSV) or row (Parquet); one
    more for the numbers there beyond the range of the column's type (a BIGINT's 99999999999999999999), one for
    those with a fraction where the type holds whole numbers (VendorID 2.5), and one for NaN there, which are
    neither text that is not a number nor an unknown code."""
    warned: list[tuple[str, str, Counter[str], int | None]] = []  # (kind, column, values, first position)
    for marker, tally in found.items():
        if not tally.counts:
            continue
        read_as = UNKNOWN_CODE if marker.startswith(UNKNOWN_CODE) else UNREADABLE_NUMBER
        column = marker.removeprefix(read_as)
        numbers = numbers_read_as_null(connection, tally.counts)
        for kind, values in ((read_as, set(tally.counts).difference(*numbers.values())), *numbers.items()):
            if values:  # values of as many rows in file order (each one's first row): the tally's own order is a
                # parallel query's, which differs from run to run
                order = sorted(values, key=lambda value: (tally.firsts.get(value, math.inf), value))
                counts = Counter({value: tally.counts[value] for value in order})
                warned.append((kind, column, counts, tally.first(values)))
    firsts = [first for *_, first in warned if first is not None]
    lines = line_numbers(file.path, firsts) if file.format == "csv" and firsts else {}
    for kind, column, counts, first in warned:
        where = ""
        if first is not None and file.format != "csv":
            where = f"row {first + 1}"
        elif first is not None and first in lines:
            where = f"line {lines[first]}"
        if kind == UNKNOWN_CODE:
            warning = unknown_codes_warning(file.path, column, counts, where=where)
        elif kind == OUT_OF_RANGE:
            warning = out_of_range_warning(file.path, column, counts, where=where)
        elif kind == NOT_WHOLE:
            warning = not_whole_warning(file.path, column, counts, where=where)
        elif kind == NOT_A_NUMBER:
            warning = not_a_number_warning(file.path, column, counts, where=where)
        else:
            warning = unreadable_numbers_warning(file.path, column, counts, where=where)
        warn(warning)


def numbers_read_as_null(connection: duckdb.DuckDBPyConnection, values: Iterable[str]) -> dict[str, set[str]]:
    """The values of a numeric column that read as null though DuckDB reads them as numbers, by kind: OUT_OF_RANGE,
    the whole ones beyond its type's range (a BIGINT's 99999999999999999999; a DOUBLE reads even 1e400, as inf);
    NOT_WHOLE, those with a fraction in a BIGINT column (VendorID 2.5); NOT_A_NUMBER, NaN there. Asked only of the
    values a warning names (a list, not a Parquet column: isnan() reads it)."""
    sql = (
        "SELECT v, isnan(n), n = floor(n) FROM (SELECT v, try_cast(v AS DOUBLE) AS n FROM unnest(?::VARCHAR[]) AS t(v))"
        " WHERE n IS NOT NULL"
    )
    found = connection.execute(sql, [list(values)]).fetchall()
    return {
        OUT_OF_RANGE: {value for value, nan, whole in found if whole and not nan},
        NOT_WHOLE: {value for value, nan, whole in found if not whole},
        NOT_A_NUMBER: {value for value, nan, _ in found if nan},
    }


def line_numbers(path: Path, positions: Iterable[int]) -> dict[int, int]:
    """The line (the header is line 1) of each data row at `positions` (0: the first row) of a CSV file, as an
    editor numbers them: the line a row starts on, a quoted field's line breaks counted (the typed reader reads
    such fields); blank lines between rows are no rows, as for DuckDB. One read of the file up to the last position
    asked (gzip or not); only a line holding a quote is looked into."""
    wanted = sorted(set(positions))
    lines: dict[int, int] = {}
    if not wanted:
        return lines
    with nyc_taxi.open_bytes(path) as raw:
        row = -1  # the header is no row
        quoted = False  # the line before ended inside a quoted field: this one continues its row
        for number, line in enumerate(raw, start=1):
            if quoted:
                quoted = ends_in_quotes(line, quoted)
                continue
            if number > 1 and not line.strip(b"\r\n"):
                continue
            if row == wanted[len(lines)]:
                lines[row] = number
                if len(lines) == len(wanted):
                    break
            row += 1
            quoted = QUOTE in line and ends_in_quotes(line, False)
    return lines


def ends_in_quotes(line: bytes, quoted: bool) -> bool:
    """Whether a CSV line (`quoted`: begun inside a quoted field) ends inside a quoted field, its line break part
    of the field, as DuckDB's reader and Python's csv read quotes: a quote opens a field only at its start (ab"c
    is text), "" inside is a quote, and text after the closing quote up to the comma is the field's."""
    at = 0
    while True:
        if quoted:
            closing = QUOTED_REST.match(line, at)
            if closing is None:
                return True
            at = closing.end()
        elif line.startswith(b'"', at):
            quoted, at = True, at + 1
            continue
        quoted = False
        comma = line.find(b",", at)
        if comma < 0:
            return False
        at = comma + 1


def _rows_hold(rows: int) -> str:
    return f"{rows:,} rows hold" if rows != 1 else "1 row holds"


def _listed(counter: Counter[str], shown: int) -> str:
    """The values of `counter` with their rows, most first, at most `shown` of them."""
    common = counter.most_common()
    listed = ", ".join(f"{value!r} ({rows:,} row{'s' if rows != 1 else ''})" for value, rows in common[:shown])
    return listed + (f" and {len(common) - shown} more" if len(common) > shown else "")


def unknown_codes_warning(path: Path, column: str, counter: Counter[str], shown: int = 10, where: str = "") -> str:
    """One line naming a file's text values of `column` that no code maps, with their rows (most first) and
    `where` the first one is (`line 3`), if known."""
    first = f" (the first on {where})" if where else ""
    return (
        f"{path}: {column}: {_rows_hold(sum(counter.values()))} text that is no code in "
        f"preprocessing.value_codes.{column}, read as null{first}: {_listed(counter, shown)}; to keep them, add "
        f"+preprocessing.value_codes.{column}.<TEXT>=<code> (codes: docs/tasks/anomaly_detection.md)"
    )


def unreadable_numbers_warning(path: Path, column: str, counter: Counter[str], shown: int = 10, where: str = "") -> str:
    """One line naming a file's text values of numeric `column` that are not numbers, with their rows (most
    first) and `where` the first one is (`line 3`, `row 3`), if known; what happens to the rows, and the fix."""
    first = f" (the first on {where})" if where else ""
    return (
        f"{path}: {column}: {_rows_hold(sum(counter.values()))} text that is not a number, read as null{first}: "
        f"{_listed(counter, shown)}; the rows are kept, with {column} null (an enabled rule that uses {column} "
        "flags them as unevaluable); to read them, write the number in the file, or nothing where there is none"
    )


def out_of_range_warning(path: Path, column: str, counter: Counter[str], shown: int = 10, where: str = "") -> str:
    """One line naming a file's numbers in `column` beyond the range of its type, with their rows (most first) and
    `where` the first one is (`line 3`, `row 3`), if known; what happens to the rows, and the fix."""
    first = f" (the first on {where})" if where else ""
    sql_type = {**nyc_taxi.COLUMNS, **nyc_taxi.COORDINATES}.get(column, "")
    return (
        f"{path}: {column}: {_rows_hold(sum(counter.values()))} a number out of range for the column's type "
        f"({sql_type}{': ' + TYPE_RANGES[sql_type] if sql_type in TYPE_RANGES else ''}), read as null{first}: "
        + _numbers_kept(column, counter, shown)
    )


def not_whole_warning(path: Path, column: str, counter: Counter[str], shown: int = 10, where: str = "") -> str:
    """One line naming a file's numbers with a fraction in `column`, whose type holds whole numbers (a code, a
    location ID), with their rows (most first) and `where` the first one is, if known; what happens, and the fix."""
    first = f" (the first on {where})" if where else ""
    return (
        f"{path}: {column}: {_rows_hold(sum(counter.values()))} a number with a fraction where the column holds "
        f"whole numbers (codes and IDs, BIGINT), read as null rather than rounded{first}: "
        + _numbers_kept(column, counter, shown)
    )


def not_a_number_warning(path: Path, column: str, counter: Counter[str], shown: int = 10, where: str = "") -> str:
    """One line naming a file's NaN values in `column`, whose type holds whole numbers, with their rows and `where`
    the first one is, if known; what happens, and the fix (a missing value is written as nothing, null)."""
    first = f" (the first on {where})" if where else ""
    return (
        f"{path}: {column}: {_rows_hold(sum(counter.values()))} NaN (not a number) where the column holds whole "
        f"numbers (codes and IDs, BIGINT), read as null{first}: " + _numbers_kept(column, counter, shown)
    )


def _numbers_kept(column: str, counter: Counter[str], shown: int) -> str:
    return (
        f"{_listed(counter, shown)}; the rows are kept, with {column} null (an enabled rule that uses {column} "
        "flags them as unevaluable); to read them, correct the number in the file, or write nothing where there "
        "is none"
    )
