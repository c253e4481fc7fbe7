"""A served request's rows: what MLflow's scoring parser hands a model without an input schema, as a DataFrame.

MLflow checks the shape of a request only against a model's input schema. A model without one (churn's, so that
every value reaches the loader's check) gets whatever the JSON held: `{"inputs": 5}` arrives as a 0-d array and
`{"inputs": {"State": "KS"}}` as a column of one value, which pandas refuses with an error that both
`mlflow models serve` and the SageMaker handler would answer as the model's own failure.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException

from mlexp.errors import first_few

# MLflow's scoring formats, as `mlflow models serve` and the SageMaker handler read them
ACCEPTED_SHAPES = (
    'send rows as {"dataframe_split": {"columns": [...], "data": [[...], ...]}}, {"dataframe_records": [{...}, ...]}, '
    '{"inputs": [{...}, ...]} (or "instances") or a column dict {"inputs": {"<column>": [...], ...}}'
)
SHOWN_CHARACTERS = 40


def _single_value(value: Any) -> bool:
    return (isinstance(value, np.ndarray) and value.ndim == 0) or not isinstance(
        value, list | tuple | dict | np.ndarray | pd.Series
    )


def _as_json(value: Any) -> str:
    plain = value.item() if isinstance(value, np.ndarray) else value
    text = json.dumps(plain, default=repr)
    return text if len(text) <= SHOWN_CHARACTERS else text[: SHOWN_CHARACTERS - 3] + "..."


def _not_rows(model_input: Any) -> str | None:
    """What the input is instead of rows, or None when pandas may read it as rows."""
    if _single_value(model_input):
        return f"the request's input is a single value ({_as_json(model_input)}), not rows"
    if isinstance(model_input, dict):
        single = [name for name, column in model_input.items() if _single_value(column)]
        example = _as_json(model_input[single[0]]) if single else ""
        if len(single) == 1:
            return f"the request's column {single[0]} holds one value ({example}), not a list of one per row"
        if single:
            return f"the request's columns {first_few(single)} hold one value each (e.g. {example}), not lists"
    return None


def request_rows(model_input: Any) -> pd.DataFrame:
    """`model_input` as a DataFrame; an input that holds no rows is a client error (MLflow's INVALID_PARAMETER_VALUE,
    HTTP 400 when served) naming what it is and the shapes to send instead."""
    if isinstance(model_input, pd.DataFrame):
        return model_input
    problem = _not_rows(model_input)
    if problem is None:
        try:
            return pd.DataFrame(model_input)
        except (ValueError, TypeError) as error:  # e.g. a list of lists of lists: no table
            problem = f"the request's input is not a table ({error})"
    raise MlflowException.invalid_parameter_value(f"{problem}; {ACCEPTED_SHAPES}")
