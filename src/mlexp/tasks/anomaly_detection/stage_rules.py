"""The enabled rules as a stage runs them: read from the config (a rule added but not enabled is named), checked
against the input's columns, bound by the trial's engine, with the statistics they use computed first."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from omegaconf import DictConfig, OmegaConf

from mlexp.console import warn
from mlexp.errors import DataError
from mlexp.tasks.anomaly_detection import inputs
from mlexp.tasks.anomaly_detection.dialects import ATHENA
from mlexp.tasks.anomaly_detection.engines import Engine
from mlexp.tasks.anomaly_detection.queries import TripQueries
from mlexp.tasks.anomaly_detection.rules import Rule, enabled_rules, not_enabled, statistics_used
from mlexp.tasks.anomaly_detection.trip_rows import FILE_MONTH
from mlexp.tracking import Tracker


def model_settings(cfg: DictConfig) -> dict[str, Any]:
    """cfg.model resolved, as the rules read it."""
    return OmegaConf.to_container(cfg.model, resolve=True)  # type: ignore[return-value]


def warn_not_enabled(cfg: DictConfig, tracker: Tracker) -> None:
    """A rule added to model.rules but not to model.enabled does not run: say so rather than ignore it."""
    idle = not_enabled(model_settings(cfg))
    if idle:
        listed = ",".join([*cfg.model.enabled, *idle])
        warn(
            f"model.rules.{idle[0]} is not in model.enabled, so it does not run"
            f"{' (nor ' + ', '.join(idle[1:]) + ')' if idle[1:] else ''}; to run it: model.enabled=[{listed}]"
        )
        tracker.log_parameters({"rules_not_enabled": ",".join(idle)})


def statistics_for(engine: Engine, queries: TripQueries) -> dict[str, float]:
    """duration_q1/_median/_q3/_mad over every trip, only when an enabled rule uses them."""
    wanted = statistics_used(queries.rules)
    if not wanted:
        return {}
    quartiles = engine.query("duration_quartiles", queries.quartiles()).iloc[0].tolist()
    values = dict(zip(["duration_q1", "duration_median", "duration_q3"], map(float, quartiles)))
    if "duration_mad" in wanted:
        mad = engine.query("duration_mad", queries.median_absolute_deviation(values["duration_median"]))
        values["duration_mad"] = float(mad.iloc[0, 0])
        if values["duration_mad"] == 0:
            # the robust z-score divides by the MAD: 0 would leave every row unjudged (all 'unevaluable')
            [name, *_] = [rule.name for rule in queries.rules if rule.uses("duration_mad")]
            raise DataError(
                f"model.rules.{name}: the median absolute deviation of duration_second is 0 (at least half "
                f"the trips last exactly the median, {values['duration_median']:,.0f} s), so the robust z-score "
                f"is undefined for every trip; use duration_iqr or too_long instead of {name} in model.enabled"
            )
    return values


def rules_and_queries(
    cfg: DictConfig, statistics: dict[str, float] | None = None
) -> tuple[list[Rule], Engine, TripQueries]:
    """The enabled rules, checked against the input's columns and bound by the engine, in the queries."""
    rules = enabled_rules(model_settings(cfg))
    inputs.check_rule_columns(cfg, rules)
    engine, queries = inputs.open_engine(cfg)
    queries = replace(queries, rules=rules)
    if engine.dialect is ATHENA and any(rule.uses(FILE_MONTH) for rule in rules):
        # Athena reads the month from each row's S3 object name ("$path") only when a rule asks
        queries = replace(queries, source=replace(queries.source, file_month=ATHENA.month_of_path()))
    queries = replace(queries, statistics=statistics_for(engine, queries) if statistics is None else statistics)
    for rule in rules:
        engine.check_rule(rule.name, queries.rule_check(rule), queries.rule_columns())
    return rules, engine, queries
