"""The order of the trials' rows: by a column (the objective unless told), scored rows first, ties by their settings."""

from __future__ import annotations

import math

import pandas as pd

from mlexp.experiment_analytics.columns import column, find_column


def sorted_rows(
    frame: pd.DataFrame, sort_by: str, ascending: bool | None, objective: str, direction: str
) -> pd.DataFrame:
    """Finished rows with a value by `sort_by`, then the rest (failed, killed, unscored) in search order.

    Rows tied on `sort_by` follow their choices' and parameters' values, ascending: the same order on every
    read, and a report sweep whose figure grows with its parameter (churn's profit by budget) reads by it."""
    key = find_column(frame, sort_by)
    if ascending is None:
        objective_columns = {"ObjectiveValue", *(column(objective, s) for s in ("Min", "Max", "Avg", "Last"))}
        ascending = key not in objective_columns or direction != "maximize"
    scored = (frame["Status"] == "FINISHED") & frame[key].notna()
    ties = [c for c in [*frame.attrs.get("choices", []), *frame.attrs.get("params", [])] if c != key]
    ranked = (
        frame[scored]
        .sort_values(
            [key, *ties],
            ascending=[ascending, *(True for _ in ties)],
            kind="stable",
            na_position="last",
            key=_numbers_before_text,
        )
        .index
    )
    return frame.loc[[*ranked, *frame.index[~scored]]].reset_index(drop=True)


def _numbers_before_text(values: pd.Series) -> pd.Series:
    """A column of text values in the order a reader expects: numbers by value ("5" before "10"), then text."""
    if not (pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)):
        return values

    def order(value: object) -> tuple[int, float, str]:
        if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
            return (2, 0.0, "")
        try:
            number = float(str(value))
        except ValueError:
            return (1, 0.0, str(value))
        return (0, number, "") if not math.isnan(number) else (1, 0.0, str(value))

    return values.map(order)
