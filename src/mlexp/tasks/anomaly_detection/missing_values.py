"""Trips a rule cannot judge because they lack a value it reads: SQL answers NULL, not true, for a comparison with a
missing value (NaN reads as one, trip_rows.py), so `fare_amount < 0` flags no trip without a fare. Such a trip leaves
the cleaned trips as `unevaluable` (unless another rule flags it); the detect stage says which column and which rules,
once per column, from the counts of its one scan (queries.py's duration_flags).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from mlexp.console import warn
from mlexp.tasks.anomaly_detection.dialects import quote
from mlexp.tasks.anomaly_detection.rules import Rule
from mlexp.tracking.metric_names import data_metric_name


@dataclass(frozen=True)
class MissingValues:
    """The trips lacking a column's value, and how many of them each rule reading it answers NULL for."""

    column: str
    trips: int
    unjudged: dict[str, int]

    def warning(self) -> str | None:
        """One line naming the count, the column, the rules that cannot flag those trips, and what to do; None when
        every rule reading the column judges them (`fare_amount IS NULL OR fare_amount < 0`)."""
        by_count: dict[int, list[str]] = {}
        for name, n in sorted(self.unjudged.items(), key=lambda rule: -rule[1]):
            if n:
                by_count.setdefault(n, []).append(name)
        if not by_count:
            return None
        them = "it" if self.trips == 1 else "them"
        cannot = "; ".join(
            f"{_rules(names)} cannot flag {them if n == self.trips else f'{n:,} of {them}'}"
            for n, names in by_count.items()
        )
        trips = "1 trip lacks" if self.trips == 1 else f"{self.trips:,} trips lack"
        return (
            f"{self.column}: {trips} a value (NaN or empty): {cannot}, since a comparison with a missing value is "
            "NULL, not true (a trip no other rule flags counts as unevaluable); fill or drop such trips before the "
            "trial (mlexp has no setting for it), or say in the rule what a missing value means (e.g. "
            f"{_in_sql(self.column)} IS NULL OR …)"
        )


def _in_sql(column: str) -> str:
    """The column as a rule writes it: quoted when it is not a plain identifier (`"tip (%)"`)."""
    return column if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", column) else quote(column)


def _rules(names: Sequence[str]) -> str:
    return f"rule {names[0]}" if len(names) == 1 else f"rules {', '.join(names[:-1])} and {names[-1]}"


def missing_values(by_duration: pd.DataFrame, checks: Mapping[str, Sequence[Rule]]) -> list[MissingValues]:
    """Per column of `checks` (TripQueries.missing_value_checks), its counts summed from duration_flags' rows. Columns
    are looked up in lower case: Athena (Trino) folds names."""
    table = by_duration.set_axis([str(name).lower() for name in by_duration.columns], axis=1)
    return [
        MissingValues(
            column,
            int(table[f"missing_{i}"].sum()),
            {rule.name: int(table[f"missing_{i}_{rule.name}".lower()].sum()) for rule in rules},
        )
        for i, (column, rules) in enumerate(checks.items())
    ]


def warn_missing(found: Sequence[MissingValues]) -> dict[str, int]:
    """Warn once per column whose missing values some rule cannot judge; returns rows_missing_<column> for each column
    a rule reads (0 too: the trial records that it looked)."""
    for values in found:
        if (line := values.warning()) is not None:
            warn(line)
    return {data_metric_name("rows_missing_", values.column): values.trips for values in found}
