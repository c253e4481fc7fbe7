"""The task's SQL, written once for both engines: the post's queries, the rules, the cleaning.

Every query starts from the same common table expressions:
  trips      the source rows with today's TLC column names and types (trip_rows.py: older names and codes
             mapped, NaN null in a floating-point column a rule reads) and `file_month`, the first instant
             of the month the row's file is named for
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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from mlexp.data.nyc_taxi import COLUMNS, DROPOFF, PICKUP
from mlexp.tasks.anomaly_detection.dialects import literal, quote
from mlexp.tasks.anomaly_detection.rules import STATISTICS, UNEVALUABLE, Rule, columns_used, number
from mlexp.tasks.anomaly_detection.trip_rows import FILE_MONTH, TripRows

UNITS = ("second", "minute", "hour", "day")
# ends a rule's text inside the queries: a `-- comment` at its end stops at this line break, not at the query's end
COMMENT_END = "\n"
# the columns of the post's top-50 tables
TOP_COLUMNS = [DROPOFF, PICKUP, *(f"duration_{unit}" for unit in UNITS)]
QUARTILES = {"duration_q1": 0.25, "duration_median": 0.5, "duration_q3": 0.75}


@dataclass(frozen=True)
class TripQueries(TripRows):
    """The queries over the trips (TripRows) that the enabled `rules` flag, with the statistics they use."""

    rules: Sequence[Rule] = ()
    # duration_q1 ... duration_mad, once computed, as constants the rules can use
    statistics: Mapping[str, float] = field(default_factory=dict)

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

    def missing_value_checks(self) -> dict[str, list[Rule]]:
        """Each column of the trips an enabled rule reads, with the rules reading it: a trip lacking its value (NaN or
        empty) is one those rules may be unable to judge. Not the timestamps: a trip lacking one has no duration, which
        the trial reports as such."""
        readers = {column: [rule for rule in self.rules if rule.uses(column)] for column in self.data_columns}
        return {column: rules for column, rules in readers.items() if rules and column not in (PICKUP, DROPOFF)}

    def duration_flags(self, bins_per_decade: int) -> str:
        """Detection's one scan: per duration_second value, its trips, the trips each rule flags (rule_<name>),
        the unevaluable ones, the trips kept, and the value's logarithmic histogram bin (positive values only;
        bin b: 10^(b/k) to 10^((b+1)/k) seconds). Every count, the histogram and the sorted chart after
        cleaning are sums over these rows, so no second pass over the trips is needed for them. Then, for the i-th
        column of missing_value_checks, the trips lacking its value (missing_<i>) and of those the ones each rule
        reading it answers NULL for (missing_<i>_<rule>)."""
        counts = ["count(*) AS trips"]
        counts += [f"count_if({quote('rule_' + r.name)}) AS {quote('rule_' + r.name)}" for r in self.rules]
        counts += [f"count_if({UNEVALUABLE}) AS {UNEVALUABLE}", "count_if(NOT flagged) AS kept"]
        for i, (column, rules) in enumerate(self.missing_value_checks().items()):
            missing = f"{quote(column)} IS NULL"
            counts.append(f"count_if({missing}) AS {quote(f'missing_{i}')}")
            counts += [
                f"count_if({missing} AND {quote('value_' + r.name)} IS NULL) AS {quote(f'missing_{i}_{r.name}')}"
                for r in rules
            ]
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
