"""The task's SQL, written once for both engines: the post's queries, the rules, the cleaning.

Every query starts from the same common table expressions:
  trips      the source rows with today's TLC column names and types (older names and codes mapped,
             NaN null in a floating-point column a rule reads) and `file_month`, the first instant of
             the month the row's file is named for
  durations  trips plus duration_second/_minute/_hour/_day: date_diff from pickup to dropoff
  flags      durations plus one boolean per enabled rule (each predicate evaluated once, in
             rule_values), `unevaluable` and `flagged`

NULL semantics: a rule is a SQL predicate, and SQL answers NULL when a value it needs is
missing. A row no rule flags but for which some rule answered NULL, or which has no duration
at all, is flagged under the reason `unevaluable`: a row is kept only when every enabled rule
answered false, so no row without a duration reaches the cleaned output. NaN is missing too: a
trip whose passenger_count is NaN is no outlier of `passenger_count > 6`, and no statistic of the
column (avg, a percentile) is NaN for its sake.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from mlexp.data.nyc_taxi import COLUMNS, COORDINATES, DROPOFF, PICKUP, extra_columns, match_columns
from mlexp.tasks.anomaly_detection.dialects import (
    Dialect,
    holds_non_bigints,
    is_float,
    is_text,
    literal,
    nan_as_null,
    quote,
)
from mlexp.tasks.anomaly_detection.rules import STATISTICS, UNEVALUABLE, Rule, columns_used, number

UNITS = ("second", "minute", "hour", "day")
# ends a rule's text inside the queries: a `-- comment` at its end stops at this line break, not at the query's end
COMMENT_END = "\n"
# the columns of the post's top-50 tables
TOP_COLUMNS = [DROPOFF, PICKUP, *(f"duration_{unit}" for unit in UNITS)]
# where a row came from, for the rules (pickup_outside_month); not part of the cleaned trips
FILE_MONTH = "file_month"
# the staged CSV's text of a coded column (preprocessing.value_codes) that is neither a code nor a number,
# counted per value while staging and not stored: the prepare stage warns about them (they read as null)
UNKNOWN_CODE = "__unknown_code_"
# likewise the text of a numeric column (trip_distance, fare_amount, ...) that does not read as a number
# ('two point five', 'abc'): it reads as null too, and the prepare stage warns about it the same way
UNREADABLE_NUMBER = "__unreadable_number_"
# the column of `TripQueries.unread`: per row, null, or the list of its values that read as null though written,
# each {marker: UNKNOWN_CODE or UNREADABLE_NUMBER + column, value: the text, trimmed}
UNREAD = "__unread"
# the characters DuckDB's casts skip around a number (C's isspace), as a SQL string: space, \t, \n, \v, \f, \r
WHITESPACE = "' ' || chr(9) || chr(10) || chr(11) || chr(12) || chr(13)"
# the declared types of the numeric columns (COLUMNS, COORDINATES)
NUMERIC_TYPES = ("BIGINT", "DOUBLE")
QUARTILES = {"duration_q1": 0.25, "duration_median": 0.5, "duration_q3": 0.75}


@dataclass(frozen=True)
class Source:
    """What the queries read: a relation (table or file reader), its columns (name → type), its file's month.

    file_month: SQL giving the first instant of the month the row's file is named for (null: unknown).
    """

    relation: str
    columns: dict[str, str]
    file_month: str = "CAST(NULL AS TIMESTAMP)"


@dataclass(frozen=True)
class TripQueries:
    dialect: Dialect
    source: Source
    aliases: Mapping[str, Sequence[str]]
    timestamp_formats: Sequence[str] = ()
    rules: Sequence[Rule] = ()
    # duration_q1 ... duration_mad, once computed, as constants the rules can use
    statistics: Mapping[str, float] = field(default_factory=dict)
    # column -> older text value -> today's code (preprocessing.value_codes)
    value_codes: Mapping[str, Mapping[str, int]] = field(default_factory=dict)

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

    def _with(self, flags: bool = False) -> str:
        durations = [self.dialect.duration(unit, PICKUP, DROPOFF) + f" AS duration_{unit}" for unit in UNITS]
        durations += [f"CAST({number(value)} AS DOUBLE) AS {name}" for name, value in self.statistics.items()]
        parts = [
            f"trips AS (\n{self.trips(nan_as_missing=columns_used(self.rules, self.data_columns))}\n)",
            "durations AS (SELECT *, " + ", ".join(durations) + " FROM trips)",
        ]
        if flags:
            # each predicate once, as true, false or NULL; the flag and the NULL test both read that value
            values = [f"({rule.predicate}{COMMENT_END}) AS {quote('value_' + rule.name)}" for rule in self.rules]
            parts.append("rule_values AS (SELECT *" + "".join(f",\n  {v}" for v in values) + " FROM durations)")
            checks = [f"coalesce({quote('value_' + r.name)}, false) AS {quote('rule_' + r.name)}" for r in self.rules]
            any_rule = " OR ".join(quote("rule_" + rule.name) for rule in self.rules) or "false"
            # NULL from any rule, or no duration at all: the row cannot be judged, so it is not kept
            unknown = " OR ".join(
                ["duration_second IS NULL", *(f"{quote('value_' + r.name)} IS NULL" for r in self.rules)]
            )
            checks.append(f"(NOT ({any_rule}) AND ({unknown})) AS {UNEVALUABLE}")
            parts.append("rule_flags AS (SELECT *" + "".join(f",\n  {c}" for c in checks) + " FROM rule_values)")
            parts.append(f"flags AS (SELECT *, ({any_rule} OR {UNEVALUABLE}) AS flagged FROM rule_flags)")
        return "WITH " + ",\n".join(parts) + "\n"

    def top(self, n: int, longest: bool) -> str:
        """The post's query: the n longest (or shortest) trips by duration_second, in all four units."""
        order = "DESC" if longest else "ASC"
        return (
            self._with() + f"SELECT {', '.join(TOP_COLUMNS)}\nFROM durations\n"
            f"ORDER BY duration_second {order} NULLS LAST, {PICKUP}, {DROPOFF}\nLIMIT {n}"
        )

    def duration_counts(self) -> str:
        """Trips per duration_second value, smallest first: the exact data of the post's sorted scatter."""
        return (
            self._with() + "SELECT duration_second, count(*) AS trips\nFROM durations\n"
            "GROUP BY duration_second\nORDER BY duration_second NULLS FIRST"
        )

    def _exact_quantiles(self, expression: str, fractions: Mapping[str, float]) -> str:
        """Exact percentiles by linear interpolation (numpy's default, DuckDB's quantile_cont), in SQL both
        engines run alike: counts per distinct value, a running sum, then the values at the two ranks
        around (n - 1) * p. Durations have few distinct values, so this is a small GROUP BY, not a sort."""
        values = (
            f"quantile_values AS (SELECT CAST({expression} AS DOUBLE) AS v, count(*) AS c FROM durations\n"
            "WHERE duration_second IS NOT NULL GROUP BY 1),\n"
            "quantile_ranks AS (SELECT v, sum(c) OVER (ORDER BY v ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
            " AS upto, sum(c) OVER () AS n FROM quantile_values)"
        )
        bounds = ["max(n) AS n"]
        for name, p in fractions.items():
            bounds.append(f"min(CASE WHEN upto > floor((n - 1) * {p}) THEN v END) AS {name}_low")
            bounds.append(f"min(CASE WHEN upto > ceil((n - 1) * {p}) THEN v END) AS {name}_high")
        picked = [
            f"{name}_low + ((n - 1) * {p} - floor((n - 1) * {p})) * ({name}_high - {name}_low) AS {name}"
            for name, p in fractions.items()
        ]
        ranked = f"(SELECT {', '.join(bounds)} FROM quantile_ranks) AS bounds"
        return self._with().rstrip("\n") + f",\n{values}\nSELECT {', '.join(picked)}\nFROM {ranked}"

    def quartiles(self) -> str:
        return self._exact_quantiles("duration_second", QUARTILES)

    def median_absolute_deviation(self, median: float) -> str:
        return self._exact_quantiles(f"abs(duration_second - {number(median)})", {"duration_mad": 0.5})

    def rule_columns(self) -> list[str]:
        """The columns a rule may name, those of `durations`: the trips' (today's, the coordinates the source has,
        file_month, the source's other ones), the durations, and the statistics (computed when a rule names one)."""
        extra = [name.strip() for name in self._extra()]
        durations = [f"duration_{unit}" for unit in UNITS]
        return [*COLUMNS, *self._coordinates(), FILE_MONTH, *extra, *durations, *STATISTICS]

    def rule_check(self, rule: Rule) -> str:
        """Binds one rule's predicate without reading rows (DuckDB names a wrong column at once)."""
        return self._with() + f"SELECT ({rule.predicate}{COMMENT_END}) AS {quote(rule.name)}\nFROM durations\nLIMIT 0"

    def duration_flags(self, bins_per_decade: int) -> str:
        """Detection's one scan: per duration_second value, its trips, the trips each rule flags (rule_<name>),
        the unevaluable ones, the trips kept, and the value's logarithmic histogram bin (positive values only;
        bin b: 10^(b/k) to 10^((b+1)/k) seconds). Every count, the histogram and the sorted chart after
        cleaning are sums over these rows, so no second pass over the trips is needed for them."""
        counts = ["count(*) AS trips"]
        counts += [f"count_if({quote('rule_' + r.name)}) AS {quote('rule_' + r.name)}" for r in self.rules]
        counts += [f"count_if({UNEVALUABLE}) AS {UNEVALUABLE}", "count_if(NOT flagged) AS kept"]
        log_bin = f"CAST(floor(log10(duration_second) * {bins_per_decade}) AS BIGINT)"
        bin = f"CASE WHEN duration_second > 0 THEN {log_bin} END"
        return (
            self._with(flags=True)
            + f"SELECT duration_second, {bin} AS bin,\n  "
            + ",\n  ".join(counts)
            + "\nFROM flags\nGROUP BY duration_second\nORDER BY duration_second NULLS FIRST"
        )

    def rule_counts(self) -> str:
        """duration_flags' totals in one row: rows_in, rows of 0 s or less and without a duration, each rule's
        flags, unevaluable rows, any flag (what the detect stage sums from duration_flags itself)."""
        totals = [
            "coalesce(sum(trips), 0) AS rows_in",
            "coalesce(sum(CASE WHEN duration_second <= 0 THEN trips ELSE 0 END), 0) AS rows_non_positive",
            "coalesce(sum(CASE WHEN duration_second IS NULL THEN trips ELSE 0 END), 0) AS rows_without_duration",
        ]
        totals += [f"coalesce(sum({quote('rule_' + r.name)}), 0) AS {quote(r.name)}" for r in self.rules]
        totals += [f"coalesce(sum({UNEVALUABLE}), 0) AS {UNEVALUABLE}"]
        totals += ["coalesce(sum(trips) - sum(kept), 0) AS rows_flagged"]
        return f"SELECT {', '.join(totals)}\nFROM (\n{self.duration_flags(1)}\n) AS by_duration"

    def flagged_rows(self, limit: int) -> str:
        """Rows that fail a rule or cannot be judged, with duration_second and the names of the reasons."""
        fired = [f"CASE WHEN {quote('rule_' + r.name)} THEN {literal(r.name)} END" for r in self.rules]
        fired.append(f"CASE WHEN {UNEVALUABLE} THEN {literal(UNEVALUABLE)} END")
        names = f"concat_ws(';', {', '.join(fired)})"
        columns = ", ".join(quote(c) for c in self.data_columns)
        return self._with(flags=True) + (
            f"SELECT {columns}, duration_second, {names} AS rules\nFROM flags\nWHERE flagged\nLIMIT {limit}"
        )

    def cleaned(self) -> str:
        """The rows that pass every rule, in today's schema: the post's CTAS query."""
        columns = ", ".join(quote(c) for c in self.data_columns)
        return self._with(flags=True) + f"SELECT {columns}\nFROM flags\nWHERE NOT flagged"

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
