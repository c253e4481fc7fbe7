"""What a solution trains on: the time split, CreateSolution's filters, history depth and recency weights."""

from __future__ import annotations

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from mlexp.config.constraints import leave_a_training_share
from mlexp.errors import ConfigError, DataError, did_you_mean
from mlexp.tasks.recommendation.solution_rules import (
    add_objective_k,
    ks_at_least_one,
    ks_hold_objective_k,
    objective_k,
    threshold_has_event_type,
)

DAY = 86_400


def check_solution(solution: DictConfig) -> None:
    """CreateSolution's rule: an event value threshold applies to one event type, so it needs `event_type`."""
    if not threshold_has_event_type(solution.event_value_threshold, solution.event_type):
        raise ConfigError(
            f"solution.event_value_threshold={solution.event_value_threshold} needs solution.event_type "
            "(CreateSolution accepts an eventType, an eventType with an eventValueThreshold, or neither); "
            "add solution.event_type=<type> or remove the threshold"
        )


def time_split(interactions: pd.DataFrame, validation_fraction: float, test_fraction: float) -> pd.DataFrame:
    """`interactions` sorted by time with a `split` column: train, then validation, then test (global cut-offs)."""
    shares = (validation_fraction, test_fraction)
    if not (all(0 < share < 1 for share in shares) and leave_a_training_share(*shares)):
        raise ConfigError(
            f"preprocessing.validation_fraction={validation_fraction} and test_fraction={test_fraction}: each must "
            "be in (0, 1) and their sum below 1"
        )
    frame = interactions.sort_values(["TIMESTAMP", "USER_ID"], kind="stable").reset_index(drop=True)
    n = len(frame)
    times = frame["TIMESTAMP"].to_numpy()
    # cut at a timestamp, so one second never straddles two periods
    validation_start = times[int(n * (1 - validation_fraction - test_fraction))]
    test_start = times[int(n * (1 - test_fraction))]
    frame["split"] = np.where(times >= test_start, "test", np.where(times >= validation_start, "validation", "train"))
    return frame


def for_training(history: pd.DataFrame, solution: DictConfig, cut_off: int) -> pd.DataFrame:
    """The rows a solution learns from, with a `weight` column: filtered by event type and value, windowed, weighted."""
    check_solution(solution)
    frame = history
    if solution.event_type is not None:
        if "EVENT_TYPE" not in frame:
            raise ConfigError(f"solution.event_type={solution.event_type}: the interactions have no EVENT_TYPE field")
        types = sorted(frame["EVENT_TYPE"].dropna().unique())
        if solution.event_type not in types:
            raise ConfigError(
                f"solution.event_type={solution.event_type!r} is not an event type of the data: {types}; "
                f"{did_you_mean(str(solution.event_type), types)}choose one, or set solution.event_type=null"
            )
        frame = frame[frame["EVENT_TYPE"] == solution.event_type]
        if solution.event_value_threshold is not None:
            frame = _reaching(frame, solution.event_type, solution.event_value_threshold)
    if solution.history_days is not None:
        frame = frame[frame["TIMESTAMP"] >= cut_off - solution.history_days * DAY]
    age_days = (cut_off - frame["TIMESTAMP"].to_numpy()) / DAY
    weight = (
        np.power(0.5, np.maximum(age_days, 0) / solution.recency_half_life_days)
        if solution.recency_half_life_days
        else np.ones(len(frame))
    )
    return frame.assign(weight=weight.astype("float32")).reset_index(drop=True)


def _reaching(events: pd.DataFrame, event_type: str, threshold: float) -> pd.DataFrame:
    """The events whose EVENT_VALUE reaches `threshold`; a threshold that keeps none of them is refused, saying why."""
    values = events["EVENT_VALUE"].astype(float) if "EVENT_VALUE" in events else pd.Series(np.nan, events.index)
    kept = events[values >= threshold]
    if kept.empty and not events.empty:
        why = "none has an EVENT_VALUE" if values.isna().all() else f"the highest EVENT_VALUE is {values.max():g}"
        raise ConfigError(
            f"solution.event_value_threshold={threshold:g} keeps none of the {event_type} events it filters "
            f"({len(events)}; {why}); lower it, or set solution.event_value_threshold=null"
        )
    return kept


def check_settings(cfg: DictConfig, frame: pd.DataFrame) -> None:
    """model.ks, the relevance rule and the solution's filters against the objective and the data's fields."""
    check_solution(cfg.solution)
    metric, ks = str(cfg.task.objective.metric), [int(k) for k in cfg.model.ks]
    if not ks_hold_objective_k(ks, metric):
        k = objective_k(metric)
        assert k is not None  # an objective without a k holds the rule
        raise ConfigError(
            f"model.ks={ks} lacks {k}, the k of the objective {cfg.task.objective.metric}; "
            f"{add_objective_k(ks, metric)}"
        )
    if not ks_at_least_one(ks):
        raise ConfigError(f"model.ks={ks}: each k must be at least 1")
    dataset = cfg.dataset
    if dataset.relevant_event_type is not None:
        types = sorted(frame["EVENT_TYPE"].dropna().unique()) if "EVENT_TYPE" in frame else []
        if dataset.relevant_event_type not in types:
            raise ConfigError(
                f"dataset.relevant_event_type={dataset.relevant_event_type!r} is not an event type of the data "
                f"({', '.join(types) or 'no EVENT_TYPE field'}); "
                f"{did_you_mean(str(dataset.relevant_event_type), types)}choose one or set it to null"
            )
    for setting, value in (
        ("dataset.relevant_min_value", dataset.relevant_min_value),
        ("solution.event_value_threshold", cfg.solution.event_value_threshold),
    ):
        if value is not None and ("EVENT_VALUE" not in frame or frame["EVENT_VALUE"].isna().all()):
            raise ConfigError(f"{setting}={value} needs an EVENT_VALUE field in the interactions; set it to null")


def relevance_rule(dataset: DictConfig) -> str:
    """The dataset's relevance rule in words, for messages."""
    parts = [f"EVENT_TYPE = {dataset.relevant_event_type}"] if dataset.relevant_event_type is not None else []
    if dataset.relevant_min_value is not None:
        parts.append(f"EVENT_VALUE >= {dataset.relevant_min_value}")
    return " and ".join(parts) or "every interaction"


def relevant(period: pd.DataFrame, dataset: DictConfig) -> pd.DataFrame:
    """The interactions of an evaluation period that count as a hit (the dataset's relevance rule)."""
    frame = period
    if dataset.relevant_event_type is not None:
        frame = frame[frame["EVENT_TYPE"] == dataset.relevant_event_type]
    if dataset.relevant_min_value is not None:
        frame = frame[frame["EVENT_VALUE"].astype(float) >= dataset.relevant_min_value]
    if frame.empty and not period.empty:
        raise DataError(
            f"no interaction of the period is relevant under the rule {relevance_rule(dataset)} "
            "(dataset.relevant_event_type / relevant_min_value); relax the rule"
        )
    return frame
