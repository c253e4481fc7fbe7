"""Outlier rules from config: named SQL predicates, their {threshold} placeholders filled in."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mlexp.errors import ConfigError

# per-data statistics a rule may use, computed over every trip's duration_second before the rules run
STATISTICS = ("duration_q1", "duration_median", "duration_q3", "duration_mad")
OUTPUT_SETTINGS = ("top_n", "flagged_rows_max", "histogram_bins_per_decade")
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Rule:
    """One outlier rule: true for the rows it flags."""

    name: str
    template: str
    predicate: str

    def uses(self, word: str) -> bool:
        """Whether the predicate mentions `word` (a column or statistic) as a whole word."""
        return re.search(rf"(?<![\w.]){re.escape(word)}(?!\w)", self.predicate, re.IGNORECASE) is not None

    def uses_value(self, name: str) -> bool:
        return "{" + name + "}" in self.template


def number(value: float) -> str:
    """A threshold as SQL text: 24.0 → 24, so the resolved rule reads like the post's."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def thresholds(model: Mapping[str, Any]) -> dict[str, float]:
    """The model's numeric values a rule may name as {name} (not the output settings)."""
    numeric = {str(k): v for k, v in model.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return {k: v for k, v in numeric.items() if k not in OUTPUT_SETTINGS}


def enabled_rules(model: Mapping[str, Any]) -> list[Rule]:
    """The rules in model.enabled, in that order, each checked and filled in."""
    rules: Mapping[str, str] = model["rules"]
    values = thresholds(model)
    chosen = []
    for name in dict.fromkeys(model["enabled"]):
        if name not in rules:
            raise ConfigError(
                f"model.enabled: {name!r} is not a rule in model.rules; rules: {', '.join(rules)} "
                "(add model.rules.<name>='<SQL predicate>' for a new one)"
            )
        if not NAME.fullmatch(name):
            raise ConfigError(f"model.rules.{name}: a rule name must be letters, digits and _ (it names a metric)")
        template = str(rules[name])
        missing = [key for key in PLACEHOLDER.findall(template) if key not in values]
        if missing:
            raise ConfigError(
                f"model.rules.{name}: {{{missing[0]}}} is not a numeric model value; use one of "
                + ", ".join("{" + key + "}" for key in values)
            )
        predicate = PLACEHOLDER.sub(lambda m: number(values[m.group(1)]), template)
        chosen.append(Rule(name, template, predicate))
    return chosen


def statistics_used(rules: Iterable[Rule]) -> list[str]:
    return [name for name in STATISTICS if any(rule.uses(name) for rule in rules)]


def columns_used(rules: Iterable[Rule], columns: Iterable[str]) -> list[str]:
    return [column for column in columns if any(rule.uses(column) for rule in rules)]


def threshold_markers(rules: Iterable[Rule], model: Mapping[str, Any], statistics: Mapping[str, float]) -> dict:
    """Durations in seconds where the enabled rules cut, labelled with the rule, for the histogram."""
    marks: dict[str, float] = {}
    for rule in rules:
        if rule.uses_value("max_duration_hours"):
            marks[f"{rule.name}: {rule.predicate}"] = float(model["max_duration_hours"]) * 3600
        if rule.uses_value("min_duration_seconds") and model["min_duration_seconds"] > 0:
            marks[f"{rule.name}: {rule.predicate}"] = float(model["min_duration_seconds"])
        if rule.uses("duration_q1") and {"duration_q1", "duration_q3"} <= set(statistics):
            q1, q3 = statistics["duration_q1"], statistics["duration_q3"]
            marks[f"{rule.name}: upper fence"] = q3 + float(model["iqr_k"]) * (q3 - q1)
            marks[f"{rule.name}: lower fence"] = q1 - float(model["iqr_k"]) * (q3 - q1)
        if rule.uses("duration_mad") and {"duration_median", "duration_mad"} <= set(statistics):
            spread = float(model["robust_z_max"]) * statistics["duration_mad"] / 0.6745
            marks[f"{rule.name}: upper bound"] = statistics["duration_median"] + spread
            marks[f"{rule.name}: lower bound"] = statistics["duration_median"] - spread
    return {label: seconds for label, seconds in marks.items() if seconds > 0}
