"""Outlier rules from config: named SQL predicates, their {threshold} placeholders filled in.

`{name}` stands for the numeric model value `name`; `{name:seconds}` for that value in seconds,
converted by the unit its name ends in (_seconds, _minutes, _hours, _days), so a fractional
threshold (max_duration_hours=6.5) compares exactly (duration_second >= 23400), and the
histogram marks the number the resolved predicate holds, never a second computation of it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mlexp.errors import ConfigError
from mlexp.tasks.anomaly_detection.rule_columns import reads

# per-data statistics a rule may use, computed over every trip's duration_second before the rules run
STATISTICS = ("duration_q1", "duration_median", "duration_q3", "duration_mad")
OUTPUT_SETTINGS = ("top_n", "flagged_rows_max", "histogram_bins_per_decade")
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::(seconds))?\}")
# a placeholder with another unit than seconds ({max_duration_hours:second}): left in the SQL it reads as a struct
UNIT_TYPO = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*):(?!seconds\})([A-Za-z_]*)\}")
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SECONDS_PER = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}
# the reason a row is flagged when no rule flags it but some rule could not be evaluated (NULL)
UNEVALUABLE = "unevaluable"
# the rules conf/model/sql_outliers.yaml ships, as it writes them: another one not in model.enabled draws a warning,
# and these texts are known to bind, so the check before a trial binds only the others (config_rules; DuckDB is not
# imported before a trial of the shipped rules). A test keeps them in step with the file.
BUILT_IN = {
    "unparsable_timestamp": "tpep_pickup_datetime IS NULL OR tpep_dropoff_datetime IS NULL",
    "non_positive_duration": "duration_second <= {min_duration_seconds}",
    "too_long": "duration_second >= {max_duration_hours:seconds}",
    "duration_iqr": "duration_second < duration_q1 - {iqr_k} * (duration_q3 - duration_q1) OR duration_second > "
    "duration_q3 + {iqr_k} * (duration_q3 - duration_q1)",
    "duration_robust_z": "0.6745 * abs(duration_second - duration_median) / nullif(duration_mad, 0) > {robust_z_max}",
    "non_positive_distance": "trip_distance <= 0",
    "pickup_outside_month": "tpep_pickup_datetime < file_month OR tpep_pickup_datetime >= file_month + INTERVAL '1' "
    "MONTH",
    "implausible_speed": "duration_second > 0 AND trip_distance * 3600.0 / duration_second > {max_speed_mph}",
    "negative_fare": "fare_amount < 0 OR total_amount < 0",
    "zero_distance_long_duration": "trip_distance = 0 AND duration_second >= {zero_distance_max_minutes:seconds}",
    "dst_fall_back": "duration_second < 0 AND duration_second >= -{dst_fall_back_max_minutes:seconds} AND "
    "month(tpep_pickup_datetime) = 11 AND day(tpep_pickup_datetime) <= 7 AND day_of_week(tpep_pickup_datetime) = 7 "
    "AND hour(tpep_pickup_datetime) = 1",
}
# a threshold on duration_second in a resolved predicate: what the histogram marks. Only a comparison
# of duration_second on its own (at the start, after "(", AND, OR or NOT) with a number that ends the
# comparison (then the end, ")", AND or OR): `x / duration_second > 100` is a speed, `>= 600 * 2` not 600
DURATION_CUT = re.compile(
    r"(?:^|\(|\bAND\b|\bOR\b|\bNOT\b)\s*(duration_second\s*(?:>=|>|<=|<)\s*(-?\d+(?:\.\d+)?(?:e[+-]?\d+)?))"
    r"\s*(?=$|\)|\bAND\b|\bOR\b)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Rule:
    """One outlier rule: true for the rows it flags."""

    name: str
    template: str
    predicate: str

    def uses(self, column: str) -> bool:
        """Whether the predicate reads `column` (of the trips, a duration, a statistic), qualified or not: as DuckDB
        parses it, so the name in a string or as a struct's field does not count (rule_columns)."""
        return reads(self.predicate, column)

    def uses_value(self, name: str) -> bool:
        return any(m.group(1) == name for m in PLACEHOLDER.finditer(self.template))


def number(value: float) -> str:
    """A threshold as SQL text: 24.0 → 24, so the resolved rule reads like the post's."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def thresholds(model: Mapping[str, Any]) -> dict[str, float]:
    """The model's numeric values a rule may name as {name} (not the output settings)."""
    numeric = {str(k): v for k, v in model.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return {k: v for k, v in numeric.items() if k not in OUTPUT_SETTINGS}


def in_seconds(name: str, value: float) -> float:
    return float(value) * SECONDS_PER[name.rsplit("_", 1)[-1]]


def rule_problem(name: str, template: str, values: Mapping[str, float]) -> str | None:
    """What keeps rule `name` from running, as the words after `model.rules.<name>: `, or None: a name that is not
    an identifier or is reserved, a {placeholder} naming no numeric model value (`values`) or without a unit."""
    if not NAME.fullmatch(name):
        return "a rule name must be letters, digits and _ (it names a metric)"
    if name == UNEVALUABLE:
        return "the name is reserved for rows no rule can judge; rename the rule"
    if typo := UNIT_TYPO.search(template):
        key = typo.group(1)
        return f"{typo.group(0)} is no placeholder: write {{{key}}}, or {{{key}:seconds}} for it in seconds"
    for match in PLACEHOLDER.finditer(template):
        key, unit = match.group(1), match.group(2)
        if key not in values:
            return f"{{{key}}} is not a numeric model value; use one of " + ", ".join("{" + k + "}" for k in values)
        if unit and key.rsplit("_", 1)[-1] not in SECONDS_PER:
            units = ", ".join("_" + u for u in SECONDS_PER)
            return f"{{{key}:seconds}}: {key} does not end in a unit ({units}); write {{{key}}}"
    return None


def _fill(template: str, values: Mapping[str, float]) -> str:
    def value(match: re.Match[str]) -> str:
        key, unit = match.group(1), match.group(2)
        return number(in_seconds(key, values[key]) if unit else values[key])

    return PLACEHOLDER.sub(value, template)


def enabled_problem(model: Mapping[str, Any]) -> tuple[str, str] | None:
    """The first rule of model.enabled (of those model.rules has) that cannot run, and what keeps it (rule_problem)."""
    rules: Mapping[str, str] = model["rules"]
    values = thresholds(model)
    for name in dict.fromkeys(model["enabled"]):
        if name in rules and (problem := rule_problem(str(name), str(rules[name]), values)) is not None:
            return str(name), problem
    return None


def enabled_rules(model: Mapping[str, Any]) -> list[Rule]:
    """The rules in model.enabled, in that order, each checked and filled in. That each is a rule of model.rules, and
    what rule_problem checks, is checked before the trial opens too (config_rules, for every run: the runner's check,
    a params file's)."""
    rules: Mapping[str, str] = model["rules"]
    values = thresholds(model)
    chosen = []
    for name in dict.fromkeys(model["enabled"]):
        template = str(rules[name])
        if (problem := rule_problem(name, template, values)) is not None:
            raise ConfigError(f"model.rules.{name}: {problem}")
        chosen.append(Rule(name, template, _fill(template, values)))
    return chosen


def not_enabled(model: Mapping[str, Any]) -> list[str]:
    """Rules added to model.rules (not shipped) but missing from model.enabled: they do not run."""
    return [name for name in model["rules"] if name not in BUILT_IN and name not in model["enabled"]]


def statistics_used(rules: Iterable[Rule]) -> list[str]:
    return [name for name in STATISTICS if any(rule.uses(name) for rule in rules)]


def columns_used(rules: Iterable[Rule], columns: Iterable[str]) -> list[str]:
    return [column for column in columns if any(rule.uses(column) for rule in rules)]


def threshold_markers(rules: Iterable[Rule], model: Mapping[str, Any], statistics: Mapping[str, float]) -> dict:
    """Durations in seconds where the enabled rules cut, labelled with the rule, for the histogram.

    A constant compared with duration_second is read from the resolved predicate itself, so the
    chart marks exactly the value the rule uses.
    """
    marks: dict[str, float] = {}
    for rule in rules:
        for found in DURATION_CUT.finditer(rule.predicate):
            marks[f"{rule.name}: {found.group(1)}"] = float(found.group(2))
        if rule.uses("duration_q1") and {"duration_q1", "duration_q3"} <= set(statistics):
            q1, q3 = statistics["duration_q1"], statistics["duration_q3"]
            marks[f"{rule.name}: upper fence"] = q3 + float(model["iqr_k"]) * (q3 - q1)
            marks[f"{rule.name}: lower fence"] = q1 - float(model["iqr_k"]) * (q3 - q1)
        if rule.uses("duration_mad") and {"duration_median", "duration_mad"} <= set(statistics):
            spread = float(model["robust_z_max"]) * statistics["duration_mad"] / 0.6745
            marks[f"{rule.name}: upper bound"] = statistics["duration_median"] + spread
            marks[f"{rule.name}: lower bound"] = statistics["duration_median"] - spread
    return {label: seconds for label, seconds in marks.items() if seconds > 0}
