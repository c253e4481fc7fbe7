"""The endpoint's inference handler: SageMaker's model_fn, input_fn, predict_fn and output_fn.

This file travels as `code/inference.py` in the endpoint's model.tar.gz (model_package.py) and the
framework container imports it by itself, outside the mlexp package: it imports only the standard
library at the top and MLflow inside the functions. The model is the task's registered pyfunc model
(`model/` in the archive, the MLflow Model folder `deploy=registry` registers), so the endpoint runs the
task's own predict code, and requests and answers are those of `mlflow models serve`:
`{"dataframe_records": [...]}`, `{"dataframe_split": {...}}`, `{"instances": ...}` or `{"inputs": ...}`
with optional `"params"`, or CSV with a header row; the answer is `{"predictions": [one object per row]}`
(or CSV when the request accepts only text/csv).
"""

from __future__ import annotations

import io
import json
import os
from typing import Any

MODEL_FOLDER = "model"
JSON = "application/json"
CSV = "text/csv"


class UnsupportedFormat(ValueError):
    """A content type or accept header the handler cannot read or write."""


def model_fn(model_dir: str) -> Any:
    """Load the archive's MLflow pyfunc model (the task's PythonModel behind its saved preprocessing)."""
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(os.path.join(model_dir, MODEL_FOLDER))


def _mime(content_type: str | None) -> str:
    return (content_type or JSON).split(";")[0].strip().lower()


def input_fn(request_body: bytes | str, request_content_type: str | None) -> tuple[Any, dict[str, Any] | None]:
    """The request as (DataFrame, params): MLflow's scoring JSON or CSV with a header row."""
    from mlflow.pyfunc.scoring_server import infer_and_parse_data

    text = request_body.decode("utf-8") if isinstance(request_body, bytes | bytearray) else request_body
    mime = _mime(request_content_type)
    if mime == CSV:
        import pandas as pd

        return pd.read_csv(io.StringIO(text)), None
    if mime != JSON:
        raise UnsupportedFormat(f"content type {request_content_type!r} is not supported; send {JSON} or {CSV}")
    body = json.loads(text)
    if not isinstance(body, dict):
        raise UnsupportedFormat('send a JSON object such as {"dataframe_records": [{...}, ...]}')
    params = body.pop("params", None)
    return infer_and_parse_data(body), params


def predict_fn(input_data: tuple[Any, dict[str, Any] | None], model: Any) -> Any:
    """The task's predictions: the pyfunc model's predict with the request's params."""
    frame, params = input_data
    return model.predict(frame, params=params) if params else model.predict(frame)


def output_fn(prediction: Any, accept: str | None) -> tuple[str, str]:
    """(body, content type): `{"predictions": [...]}` as `mlflow models serve` answers, or CSV when asked."""
    import pandas as pd

    frame = prediction if isinstance(prediction, pd.DataFrame) else pd.DataFrame(prediction)
    wanted = [_mime(part) for part in (accept or JSON).split(",")]
    if CSV in wanted and JSON not in wanted and "*/*" not in wanted:
        return frame.to_csv(index=False), CSV
    if not {JSON, "*/*"} & set(wanted):
        raise UnsupportedFormat(f"accept {accept!r} is not supported; ask for {JSON} or {CSV}")
    # pandas writes numpy values, lists (boxes) and NaN (as null) the way JSON clients expect
    records = json.loads(frame.to_json(orient="records"))
    return json.dumps({"predictions": records}), JSON
