"""The texts of a request to the registered text classifier, as `mlflow models serve` or a SageMaker handler parses it.

Every row must hold a text: a number, a null, a list or a blank string is refused with MLflow's
INVALID_PARAMETER_VALUE (HTTP 400), naming the rows, rather than answered with the prior of an empty
document. A request without rows is refused too, as MLflow's own flavors refuse an empty DataFrame
(scikit-learn's "Found array with 0 sample(s)", the tensor schema's "Input DataFrame is empty").

A CSV request whose text column is digits alone (product codes) reaches the model as numbers: MLflow's scoring
server and the SageMaker handler read CSV with pandas before the model runs, and 007 arrives as 7. The characters
are gone by then, so such a column is refused with that reason rather than classified as other text. Only an input
schema would make them read it as strings, and with one MLflow turns a null of {"inputs": [...]} into the text
"None" (registered_model.signature).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from mlflow.exceptions import MlflowException
from pandas.api.types import is_bool_dtype, is_numeric_dtype

from mlexp.errors import lines_named
from mlexp.serving.request_rows import request_rows

COLUMN = "text"
SEND = (
    'a request holds one text a row: {"inputs": ["<text>", ...]}, {"dataframe_records": [{"text": "<text>"}, ...]} '
    'or {"dataframe_split": {"columns": ["text"], "data": [["<text>"], ...]}}'
)
SHOWN_CHARACTERS = 40


def _plain(value: Any) -> Any:
    """A value as the JSON held it: MLflow parses {"inputs": [{...}]} into a 0-d array per value."""
    return (
        value.item() if isinstance(value, np.generic) or (isinstance(value, np.ndarray) and value.ndim == 0) else value
    )


def _shown(value: Any) -> str:
    if isinstance(value, float) and np.isnan(value):
        return "null"  # pandas reads a missing value (null, an empty CSV field) as NaN
    text = json.dumps(value.tolist() if isinstance(value, np.ndarray) else value, default=repr)
    return text if len(text) <= SHOWN_CHARACTERS else text[: SHOWN_CHARACTERS - 3] + "..."


def _column(model_input: Any) -> list[Any]:
    """The request's texts column: a flat list of values is the texts themselves; a table needs a column `text`."""
    records = isinstance(model_input, list) and any(isinstance(v, dict) for v in model_input)
    if isinstance(model_input, np.ndarray | list) and not records and np.ndim(model_input) == 1:
        return [_plain(v) for v in model_input]
    rows = request_rows(model_input)
    if rows.empty:
        return []
    if COLUMN not in rows:
        columns = ", ".join(map(str, rows.columns)) or "none"
        raise MlflowException.invalid_parameter_value(
            f"the request has no column {COLUMN} (its columns: {columns}); {SEND}"
        )
    texts = rows[COLUMN]
    if is_numeric_dtype(texts) and not is_bool_dtype(texts) and texts.notna().any():
        first = _plain(texts[texts.notna()].iloc[0])
        raise MlflowException.invalid_parameter_value(
            f"the request's column {COLUMN} holds numbers, not texts (e.g. {_shown(first)}; a CSV column of digits "
            f"alone is read as numbers, leading zeros lost); send each text as a JSON string: {SEND}"
        )
    return [_plain(v) for v in texts]


def request_texts(model_input: Any) -> list[str]:
    """The request's texts, one a row; a request without rows, or a row without a text, is a client error."""
    values = _column(model_input)
    if not values:
        raise MlflowException.invalid_parameter_value(f"the request holds no rows; {SEND}")
    refused = [i for i, v in enumerate(values, start=1) if not isinstance(v, str) or not v.strip()]
    if refused:
        first = values[refused[0] - 1]
        raise MlflowException.invalid_parameter_value(
            f"{lines_named(refused, noun='row')} of the request {'holds' if len(refused) == 1 else 'hold'} no text "
            f"(row {refused[0]}: {_shown(first)}; "
            f"the first row is row 1); {SEND}"
        )
    return [str(v) for v in values]
