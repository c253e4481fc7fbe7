"""What a stage after prepare queries: the trial's engine over the trips prepare checked, the queries (the detection
SQL) in its dialect, and the enabled rules in them, checked against the input's columns, bound by the engine, with
the statistics they use computed first."""

from __future__ import annotations

from dataclasses import replace

from omegaconf import DictConfig

from mlexp.config.schema import choice_text
from mlexp.data import nyc_taxi
from mlexp.errors import DataError
from mlexp.tasks.anomaly_detection import inputs
from mlexp.tasks.anomaly_detection.athena_engine import AthenaEngine
from mlexp.tasks.anomaly_detection.dialects import ATHENA, Dialect
from mlexp.tasks.anomaly_detection.engines import Engine
from mlexp.tasks.anomaly_detection.queries import TripQueries
from mlexp.tasks.anomaly_detection.rule_settings import model_settings
from mlexp.tasks.anomaly_detection.rules import Rule, enabled_rules, statistics_used
from mlexp.tasks.anomaly_detection.trip_rows import FILE_MONTH, Source


def trip_queries(cfg: DictConfig, dialect: Dialect, source: Source) -> TripQueries:
    """The queries over `source` with the trial's column aliases, timestamp formats and value codes (no rules yet)."""
    return TripQueries(dialect, source, **inputs.reading(cfg))


def open_engine(cfg: DictConfig) -> tuple[Engine, TripQueries]:
    """The trial's engine over the prepared trips, and the queries in its dialect (no rules yet)."""
    engine: Engine
    manifest = inputs.read_manifest(cfg)
    if cfg.engine.name == "athena":
        engine = AthenaEngine(cfg.engine)
    else:
        files = inputs.check_files(cfg, manifest["files"], [nyc_taxi.PICKUP, nyc_taxi.DROPOFF])
        compression = choice_text(cfg.engine.compression)
        engine = inputs.duckdb_engine(cfg, files, cfg.engine.memory_limit, cfg.engine.threads, compression)
    return engine, trip_queries(cfg, engine.dialect, engine.source())


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
    engine, queries = open_engine(cfg)
    queries = replace(queries, rules=rules)
    if engine.dialect is ATHENA and any(rule.uses(FILE_MONTH) for rule in rules):
        # Athena reads the month from each row's S3 object name ("$path") only when a rule asks
        queries = replace(queries, source=replace(queries.source, file_month=ATHENA.month_of_path()))
    queries = replace(queries, statistics=statistics_for(engine, queries) if statistics is None else statistics)
    for rule in rules:
        engine.check_rule(rule.name, queries.rule_check(rule), queries.rule_columns())
    return rules, engine, queries
