"""A source's trips in today's schema: the `trips` every query starts from (queries.py), and the copy the prepare
stage stages. Older names and codes are mapped, each column typed, missing ones null, NaN null in a floating-point
column a rule reads, and `file_month` is the first instant of the month the row's file is named for.

A value that reads as null though written (a code no mapping knows, text that is not a number, a number that is no
BIGINT where one belongs) is no error here: `unread` lists it for the prepare stage, which counts and warns about it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from mlexp.data.nyc_taxi import COLUMNS, COORDINATES, extra_columns, match_columns
from mlexp.tasks.anomaly_detection.dialects import (
    Dialect,
    holds_non_bigints,
    is_float,
    is_text,
    literal,
    nan_as_null,
    quote,
)

# where a row came from, for the rules (pickup_outside_month); not part of the cleaned trips
FILE_MONTH = "file_month"
# the staged CSV's text of a coded column (preprocessing.value_codes) that is neither a code nor a number,
# counted per value while staging and not stored: the prepare stage warns about them (they read as null)
UNKNOWN_CODE = "__unknown_code_"
# likewise the text of a numeric column (trip_distance, fare_amount, ...) that does not read as a number
# ('two point five', 'abc'): it reads as null too, and the prepare stage warns about it the same way
UNREADABLE_NUMBER = "__unreadable_number_"
# the column of `TripRows.unread`: per row, null, or the list of its values that read as null though written,
# each {marker: UNKNOWN_CODE or UNREADABLE_NUMBER + column, value: the text, trimmed}
UNREAD = "__unread"
# the characters DuckDB's casts skip around a number (C's isspace), as a SQL string: space, \t, \n, \v, \f, \r
WHITESPACE = "' ' || chr(9) || chr(10) || chr(11) || chr(12) || chr(13)"
# the declared types of the numeric columns (COLUMNS, COORDINATES)
NUMERIC_TYPES = ("BIGINT", "DOUBLE")


@dataclass(frozen=True)
class Source:
    """What the queries read: a relation (table or file reader), its columns (name → type), its file's month.

    file_month: SQL giving the first instant of the month the row's file is named for (null: unknown).
    """

    relation: str
    columns: dict[str, str]
    file_month: str = "CAST(NULL AS TIMESTAMP)"


@dataclass(frozen=True)
class TripRows:
    """The SQL reading `source` in today's schema, with the source's older column names (`aliases`), the formats
    tried on text timestamps and the older text values of coded columns."""

    dialect: Dialect
    source: Source
    aliases: Mapping[str, Sequence[str]]
    timestamp_formats: Sequence[str] = ()
    # column -> older text value -> today's code (preprocessing.value_codes); keyword-only, so that TripQueries'
    # rules follow timestamp_formats by position
    value_codes: Mapping[str, Mapping[str, int]] = field(default_factory=dict, kw_only=True)

    @property
    def data_columns(self) -> list[str]:
        """Today's columns, the coordinates the source has, then its extra ones: the columns of the cleaned data."""
        return [*COLUMNS, *self._coordinates(), *(name.strip() for name in self._extra())]

    def _coordinates(self) -> list[str]:
        matched = match_columns(self.source.columns, self.aliases)
        return [column for column in COORDINATES if column in matched]

    def _extra(self) -> list[str]:
        return [c for c in extra_columns(self.source.columns, self.aliases) if c.lower() != FILE_MONTH]

    def checked_columns(self) -> dict[str, list[str]]:
        """The columns whose written values may read as null (column -> the source's names for it): those with value
        codes held as text; the other numeric ones held as text (every one of a CSV read as text; a Parquet column
        of strings), where text that is not a number reads as null; then the BIGINT ones (codes, location IDs) held
        as numbers a BIGINT may not hold (a Parquet column of DOUBLE), where a value that is not whole (VendorID 2.5)
        or beyond a BIGINT's range reads as null, rather than rounded."""
        declared = {**COLUMNS, **COORDINATES}
        numeric = [c for c, sql_type in declared.items() if sql_type in NUMERIC_TYPES and c not in self.value_codes]
        bigints = [column for column, sql_type in COLUMNS.items() if sql_type == "BIGINT"]
        checked = self._held_as(self.value_codes, is_text) | self._held_as(numeric, is_text)
        for column, names in self._held_as(bigints, holds_non_bigints).items():
            checked[column] = [*checked.get(column, []), *names]
        return checked

    def _held_as(self, columns: Iterable[str], kind: Callable[[str], bool]) -> dict[str, list[str]]:
        """Of today's `columns`, those the source holds under some name whose type is of `kind` (column -> names)."""
        matched = match_columns(self.source.columns, self.aliases)
        found = {
            column: [name for name in matched.get(column, []) if kind(self.source.columns[name])] for column in columns
        }
        return {column: names for column, names in found.items() if names}

    def trips(self, raw_codes: bool = False, nan_as_missing: Collection[str] = ()) -> str:
        """The source rows in today's schema: each column typed, older names and codes mapped, missing ones null.

        raw_codes: also each of `checked_columns` as written (`__text_<column>`), for `staged` to find unknown
        codes, text that is not a number and numbers that are no BIGINT.
        nan_as_missing: the columns (today's names, or extra ones') whose NaN reads as null: those the rules read.
        Others keep what the file holds, as a staged copy does (every float column's NaN as null cost writing the
        cleaned trips 5-10 % more CPU and flagged_rows 10-30 %, 3M trips on one thread, 2026-12-06).
        """
        matched = match_columns(self.source.columns, self.aliases)
        selected = []
        declared = {**COLUMNS, **{column: COORDINATES[column] for column in self._coordinates()}}
        for column, sql_type in declared.items():
            formats = self.timestamp_formats if sql_type == "TIMESTAMP" else ()
            codes = self.value_codes.get(column)
            found = [
                self.dialect.typed(quote(n), self.source.columns[n], sql_type, formats, codes)
                for n in matched.get(column, [])
            ]
            if column in nan_as_missing and is_float(sql_type):  # before coalesce: NaN under one name is no value
                found = [nan_as_null(value) for value in found]
            if not found:
                found = [self.dialect.typed("", None, sql_type)]
            selected.append(
                f"{found[0] if len(found) == 1 else 'coalesce(' + ', '.join(found) + ')'} AS {quote(column)}"
            )
        selected.append(f"{self.source.file_month} AS {FILE_MONTH}")
        if raw_codes:
            for column, names in self.checked_columns().items():
                numbers = self._held_as_numbers(names)
                raw = ", ".join(quote(name) if numbers else self._as_text(name) for name in names)
                selected.append(f"{raw if len(names) == 1 else f'coalesce({raw})'} AS {quote('__text_' + column)}")
        # extra columns keep their name, without the spaces 2014's headers pad names with
        for name in self._extra():
            value = quote(name)
            if name.strip() in nan_as_missing and is_float(self.source.columns[name]):
                value = nan_as_null(value)
            selected.append(value if value == quote(name.strip()) else f"{value} AS {quote(name.strip())}")
        return "SELECT\n  " + ",\n  ".join(selected) + f"\nFROM {self.source.relation}"

    def _held_as_numbers(self, names: Sequence[str]) -> bool:
        """Whether the source holds every one of `names` as numbers: `__text_<column>` is then the number itself,
        printed only for a row where it read as null (printing every row's took `unread_values` from 0.32 to 0.47 s
        over 2M rows of four such columns, 2026-12-06)."""
        return not any(is_text(self.source.columns[name]) for name in names)

    def _as_text(self, name: str) -> str:
        """A source column's value as written, as text (a number's by `number_text`)."""
        if is_text(self.source.columns[name]):
            return quote(name)
        return number_text(quote(name))

    def unread(self) -> str | None:
        """SQL giving the row's values that read as null though written (UNREAD): a code no mapping knows, text
        that is not a number, a number that is no BIGINT where one belongs, as a list of {marker, value}; null for
        a row without any (nearly every row). None when the source holds none of `checked_columns` (a Parquet file
        of TLC's own types).

        One column, not one per source column: only a row where some typed value is null but its text is not
        builds the list. (Staging 2M CSV rows as text, 2026-12-05: a CASE column per source column cost 16 % more
        CPU than no check, this one about 3 %, within the noise.) DuckDB's SQL: the prepare stage runs it on local
        files only."""
        columns = self.checked_columns()
        if not columns:
            return None
        suspect = " OR ".join(f"({quote(c)} IS NULL AND {quote('__text_' + c)} IS NOT NULL)" for c in columns)
        values = []
        for column in columns:
            marker = (UNKNOWN_CODE if column in self.value_codes else UNREADABLE_NUMBER) + column
            raw = quote("__text_" + column)
            if self._held_as_numbers(columns[column]):
                text = number_text(raw)
            else:
                # a field of whitespace alone (spaces, tabs) is an empty one, as to DuckDB's casts, which skip it
                # around a number and read nothing else in it; a value is shown trimmed of spaces (2014's padding),
                # a tab kept
                text = f"CASE WHEN trim({raw}, {WHITESPACE}) <> '' THEN trim({raw}) END"
            values.append(
                f"{{'marker': {literal(marker)}, 'value': CASE WHEN {quote(column)} IS NULL THEN {text} END}}"
            )
        listed = f"list_filter([{', '.join(values)}], lambda found: found.value IS NOT NULL)"
        return f"CASE WHEN {suspect} THEN {listed} END"

    def staged(self) -> str:
        """A file's rows in today's schema, as the prepare stage stores a parsed CSV, then the values that read as
        null though written (UNREAD, when the source holds such text: counted while staging, never stored)."""
        columns = [quote(c) for c in self.data_columns]
        unread = self.unread()
        if unread is not None:
            columns.append(f"{unread} AS {quote(UNREAD)}")
        return f"WITH trips AS (\n{self.trips(raw_codes=True)}\n)\nSELECT {', '.join(columns)} FROM trips"

    def unread_values(self) -> str:
        """For a file read in place (DuckDB): each marker and value of `unread`, its rows and the first one's
        position in the file (0: the first row), in one scan; `row_number() OVER ()` numbers the rows in the
        file's order (DuckDB streams it). Only for a source `unread` is not None of."""
        numbered = f"SELECT row_number() OVER () - 1 AS position, {self.unread()} AS found FROM trips"
        return (
            f"WITH trips AS (\n{self.trips(raw_codes=True)}\n),\nnumbered AS ({numbered}),\n"
            "listed AS (SELECT position, unnest(found) AS found FROM numbered WHERE found IS NOT NULL)\n"
            "SELECT found.marker, found.value, count(*) AS trips, min(position) AS first_position\n"
            "FROM listed GROUP BY found.marker, found.value"
        )


def number_text(number: str) -> str:
    """A number as DuckDB prints it (2.5, 1e+30, inf, nan). NaN is named as CSV text `nan` is: a float column's
    missing value is null (pandas writes null, not NaN), so a NaN where a code belongs is a value, read as null."""
    # told by its text, and its sign dropped: DuckDB 2.0 folds isnan() of a Parquet column to false (its statistics
    # skip NaN)
    return f"replace(CAST({number} AS VARCHAR), '-nan', 'nan')"
