"""Where DuckDB's SQL and Athena's differ; every query is written once and asks its dialect here.

Athena (Trino) `date_diff(unit, a, b)` counts whole units elapsed: 23:59 → 00:01 is 0 days.
DuckDB's `date_diff` counts unit boundaries crossed (1 day there); its `date_sub` counts whole
units, as Athena does, so durations and the rules on them agree between the two engines.
Percentiles are not a dialect difference: both engines compute them with the same exact SQL
(queries.py), since DuckDB's quantile_cont and Athena's approx_percentile disagree.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mlexp.errors import ConfigError

# strptime directives (preprocessing.timestamp_formats) in Athena's date_parse (MySQL) spelling
DATE_PARSE = {"%Y": "%Y", "%y": "%y", "%m": "%m", "%d": "%d", "%H": "%H", "%I": "%h", "%M": "%i", "%S": "%s"}
DATE_PARSE |= {"%p": "%p", "%b": "%b", "%f": "%f", "%%": "%%"}
# what every DuckDB connection of the task defines: Trino's day_of_week (ISO: Monday 1 ... Sunday 7) and is_nan, so a
# rule and the queries read the same on both engines. Not isnan(x): DuckDB 2.0 folds it to false for a Parquet column
# whose statistics (which leave NaN out) show no null; isfinite() it evaluates (and an infinity is in the statistics)
DUCKDB_MACROS = (
    "CREATE MACRO day_of_week(ts) AS isodow(ts)",
    "CREATE MACRO is_nan(x) AS NOT isfinite(x) AND NOT isinf(x)",
)
# the floating-point types, as DuckDB and Athena name them (real TLC files of 2023 store passenger_count as DOUBLE)
FLOAT_TYPES = ("DOUBLE", "FLOAT", "REAL", "FLOAT4", "FLOAT8", "DOUBLE PRECISION")
WIDER_INTEGERS = ("UBIGINT", "HUGEINT", "UHUGEINT")


def date_parse_lacks(fmt: str) -> list[str]:
    """The strptime directives of `fmt` that Athena's date_parse has no spelling for here."""
    return [directive for directive in re.findall(r"%.", fmt) if directive not in DATE_PARSE]


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def is_text(sql_type: str) -> bool:
    return sql_type.lower().startswith(("varchar", "string", "char"))


@dataclass(frozen=True)
class Dialect:
    name: str
    duration_function: str

    def duration(self, unit: str, start: str, end: str) -> str:
        """Whole `unit`s from start to end (negative when end is earlier)."""
        return f"{self.duration_function}('{unit}', {start}, {end})"

    def typed(
        self,
        column: str,
        source_type: str | None,
        target_type: str,
        formats: Sequence[str] = (),
        codes: Mapping[str, int] | None = None,
    ) -> str:
        """`column` (of `source_type`; None: absent) as `target_type`; values that do not convert become null.

        `codes` maps older text values (matched in upper case, trimmed) to today's numeric codes.
        """
        if source_type is None:
            return f"CAST(NULL AS {target_type})"
        if source_type.upper() == target_type.upper():
            return column
        if not is_text(source_type):
            if target_type.upper() == "BIGINT" and holds_non_bigints(source_type):
                return whole_number(column)
            return f"try_cast({column} AS {target_type})"
        # files of 2014 pad values with spaces. DuckDB's casts from text skip surrounding spaces themselves, so
        # there only the code lookup and the timestamp formats read the value trimmed (casting untrimmed copies
        # no string: about a fifth of the CPU time of staging a CSV); Trino's casts may not, so Athena trims
        text = f"trim({column})"
        value = column if self.name == "duckdb" else text
        parsed = [whole_number(value) if target_type.upper() == "BIGINT" else f"try_cast({value} AS {target_type})"]
        if codes:
            cases = " ".join(f"WHEN {literal(key.strip().upper())} THEN {int(code)}" for key, code in codes.items())
            parsed = [f"CASE upper({text}) {cases} ELSE {parsed[0]} END"]
        if target_type.upper() == "TIMESTAMP":
            parsed += [self._parse_timestamp(text, fmt) for fmt in formats]
        return parsed[0] if len(parsed) == 1 else f"coalesce({', '.join(parsed)})"

    def _parse_timestamp(self, text: str, fmt: str) -> str:
        if self.name == "duckdb":
            return f"try_strptime({text}, {literal(fmt)})"
        unknown = date_parse_lacks(fmt)
        if unknown:
            raise ConfigError(
                f"preprocessing.timestamp_formats: {fmt!r} uses {', '.join(unknown)}, which Athena's date_parse "
                f"has no equivalent for here; use only {' '.join(DATE_PARSE)}"
            )
        athena_format = re.sub(r"%.", lambda m: DATE_PARSE[m.group(0)], fmt)
        return f"try(date_parse({text}, {literal(athena_format)}))"

    def month_of_path(self) -> str:
        """The first instant of the month named in the row's file name (Athena's "$path"), or null."""
        month = """regexp_extract("$path", '((?:19|20)[0-9]{2}-(?:0[1-9]|1[0-2]))[^/0-9]*$', 1)"""
        return f"try(date_parse({month}, '%Y-%m'))"


def is_float(sql_type: str) -> bool:
    return sql_type.strip().upper() in FLOAT_TYPES


def holds_non_bigints(sql_type: str) -> bool:
    """Whether a numeric type holds numbers a BIGINT does not: a float's or a decimal's with a fraction (VendorID
    2.5), or a wider integer's beyond its range. Such a column is read through `whole_number`, and checked."""
    upper = sql_type.strip().upper()
    return is_float(upper) or upper in WIDER_INTEGERS or upper.startswith(("DECIMAL", "NUMERIC"))


def nan_as_null(value: str) -> str:
    """A floating-point value with NaN as null: a missing value, not a number above every other (DuckDB sorts NaN
    last and answers NaN > 6 true, so a rule would flag a trip for the value it lacks, and avg() of a column holding
    one is NaN). Not nullif(value, nan()): Trino's NaN equals nothing, and DuckDB answers a comparison on a Parquet
    column from the file's statistics, which leave NaN out (NaN > 1.0 reads false where the largest number is 1.0).
    """
    return f"CASE WHEN is_nan({value}) THEN NULL ELSE {value} END"


def whole_number(value: str) -> str:
    """Text or a number as BIGINT when it is a whole number (`2`, `2.0`), else null: the casts round `2.5` (DuckDB's
    from text to 3, from a DOUBLE to 2), a code (VendorID, payment_type) or location the row does not hold; null is
    counted and warned about instead."""
    number = f"try_cast({value} AS DOUBLE)"
    return f"CASE WHEN {number} = floor({number}) THEN try_cast({value} AS BIGINT) END"


DUCKDB = Dialect("duckdb", duration_function="date_sub")
ATHENA = Dialect("athena", duration_function="date_diff")
