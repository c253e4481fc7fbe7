"""The task's SQL, written once for both engines: the post's queries, the rules, the cleaning.

Every query starts from the same common table expressions:
  trips      the source rows with today's TLC column names and types (older names mapped)
  durations  trips plus duration_second/_minute/_hour/_day: date_diff from pickup to dropoff
  flags      durations plus one boolean per enabled rule and `flagged` (any rule true)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from mlexp.data.nyc_taxi import COLUMNS, DROPOFF, PICKUP, extra_columns, match_columns
from mlexp.tasks.anomaly_detection.dialects import Dialect, literal, quote
from mlexp.tasks.anomaly_detection.rules import Rule, number

UNITS = ("second", "minute", "hour", "day")
# the columns of the post's top-50 tables
TOP_COLUMNS = [DROPOFF, PICKUP, *(f"duration_{unit}" for unit in UNITS)]


@dataclass(frozen=True)
class Source:
    """What the queries read: a relation (table or file reader) and its columns (name → type)."""

    relation: str
    columns: dict[str, str]


@dataclass(frozen=True)
class TripQueries:
    dialect: Dialect
    source: Source
    aliases: Mapping[str, Sequence[str]]
    timestamp_formats: Sequence[str] = ()
    rules: Sequence[Rule] = ()
    # duration_q1 ... duration_mad, once computed, as constants the rules can use
    statistics: Mapping[str, float] = field(default_factory=dict)

    @property
    def data_columns(self) -> list[str]:
        """Today's columns, then the source's extra ones: the columns of the cleaned data."""
        return [*COLUMNS, *extra_columns(self.source.columns, self.aliases)]

    def trips(self) -> str:
        """The source rows in today's schema: each column typed, older names mapped, missing ones null."""
        matched = match_columns(self.source.columns, self.aliases)
        selected = []
        for column, sql_type in COLUMNS.items():
            formats = self.timestamp_formats if sql_type == "TIMESTAMP" else ()
            found = [
                self.dialect.typed(quote(n), self.source.columns[n], sql_type, formats) for n in matched.get(column, [])
            ]
            if not found:
                found = [self.dialect.typed("", None, sql_type)]
            selected.append(
                f"{found[0] if len(found) == 1 else 'coalesce(' + ', '.join(found) + ')'} AS {quote(column)}"
            )
        selected += [quote(name) for name in extra_columns(self.source.columns, self.aliases)]
        return "SELECT\n  " + ",\n  ".join(selected) + f"\nFROM {self.source.relation}"

    def _with(self, flags: bool = False) -> str:
        durations = [self.dialect.duration(unit, PICKUP, DROPOFF) + f" AS duration_{unit}" for unit in UNITS]
        durations += [f"CAST({number(value)} AS DOUBLE) AS {name}" for name, value in self.statistics.items()]
        parts = [f"trips AS (\n{self.trips()}\n)", "durations AS (SELECT *, " + ", ".join(durations) + " FROM trips)"]
        if flags:
            checks = [f"coalesce(({rule.predicate}), false) AS {quote('rule_' + rule.name)}" for rule in self.rules]
            any_rule = " OR ".join(quote("rule_" + rule.name) for rule in self.rules) or "false"
            parts.append("rule_flags AS (SELECT *" + "".join(f",\n  {c}" for c in checks) + " FROM durations)")
            parts.append(f"flags AS (SELECT *, ({any_rule}) AS flagged FROM rule_flags)")
        return "WITH " + ",\n".join(parts) + "\n"

    def top(self, n: int, longest: bool) -> str:
        """The post's query: the n longest (or shortest) trips by duration_second, in all four units."""
        order = "DESC" if longest else "ASC"
        return (
            self._with() + f"SELECT {', '.join(TOP_COLUMNS)}\nFROM durations\n"
            f"ORDER BY duration_second {order} NULLS LAST, {PICKUP}, {DROPOFF}\nLIMIT {n}"
        )

    def duration_counts(self, clean: bool) -> str:
        """Trips per duration_second value, smallest first: the exact data of the post's sorted scatter."""
        where = "FROM flags WHERE NOT flagged" if clean else "FROM durations"
        return (
            self._with(flags=clean) + f"SELECT duration_second, count(*) AS trips\n{where}\n"
            "GROUP BY duration_second\nORDER BY duration_second NULLS FIRST"
        )

    def quartiles(self) -> str:
        q = self.dialect.quantile
        return self._with() + (
            f"SELECT {q('duration_second', 0.25)} AS duration_q1, {q('duration_second', 0.5)} AS duration_median, "
            f"{q('duration_second', 0.75)} AS duration_q3\nFROM durations"
        )

    def median_absolute_deviation(self, median: float) -> str:
        expression = f"abs(duration_second - {number(median)})"
        return self._with() + f"SELECT {self.dialect.quantile(expression, 0.5)} AS duration_mad\nFROM durations"

    def rule_check(self, rule: Rule) -> str:
        """Binds one rule's predicate without reading rows (DuckDB names a wrong column at once)."""
        return self._with() + f"SELECT ({rule.predicate}) AS {quote(rule.name)}\nFROM durations\nLIMIT 0"

    def rule_counts(self) -> str:
        """rows_in, rows of 0 s or less and without a duration, the rows each rule flags, the rows any rule flags."""
        counts = ["count(*) AS rows_in", "count_if(duration_second <= 0) AS rows_non_positive"]
        counts += ["count_if(duration_second IS NULL) AS rows_without_duration"]
        counts += [f"count_if({quote('rule_' + rule.name)}) AS {quote(rule.name)}" for rule in self.rules]
        return (
            self._with(flags=True)
            + "SELECT "
            + ",\n  ".join([*counts, "count_if(flagged) AS rows_flagged"])
            + "\nFROM flags"
        )

    def flagged_rows(self, limit: int) -> str:
        """Rows that fail a rule, with duration_second and the names of the rules they fail."""
        fired = [f"CASE WHEN {quote('rule_' + r.name)} THEN {literal(r.name)} END" for r in self.rules]
        names = f"concat_ws(';', {', '.join(fired)})" if fired else "CAST(NULL AS VARCHAR)"
        columns = ", ".join(quote(c) for c in self.data_columns)
        return self._with(flags=True) + (
            f"SELECT {columns}, duration_second, {names} AS rules\nFROM flags\nWHERE flagged\nLIMIT {limit}"
        )

    def histogram(self, bins_per_decade: int) -> str:
        """Trips per logarithmic bin of positive duration_second (bin b: 10^(b/k) to 10^((b+1)/k) seconds)."""
        return self._with() + (
            f"SELECT CAST(floor(log10(duration_second) * {bins_per_decade}) AS BIGINT) AS bin, count(*) AS trips\n"
            "FROM durations\nWHERE duration_second > 0\nGROUP BY 1\nORDER BY 1"
        )

    def cleaned(self) -> str:
        """The rows that pass every rule, in today's schema: the post's CTAS query."""
        columns = ", ".join(quote(c) for c in self.data_columns)
        return self._with(flags=True) + f"SELECT {columns}\nFROM flags\nWHERE NOT flagged"
