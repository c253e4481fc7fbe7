"""The endpoint's inference handler: SageMaker's model_fn, input_fn, predict_fn and output_fn.

This file travels as `code/inference.py` in the endpoint's model.tar.gz (model_package.py) and the
framework container imports it by itself, outside the mlexp package: it imports only the standard
library at the top and MLflow inside the functions. The model is the task's registered pyfunc model
(`model/` in the archive, the MLflow Model folder `deploy=registry` registers), so the endpoint runs the
task's own predict code, and requests and answers are those of `mlflow models serve`:
`{"dataframe_records": [...]}`, `{"dataframe_split": {...}}`, `{"instances": ...}` or `{"inputs": ...}`
with optional `"params"`, or CSV with a header row; the answer is `{"predictions": [one object per row]}`
(or CSV when the request accepts only text/csv).

A body is read in the charset its Content-Type names (`text/csv; charset=latin-1`), UTF-8 when it names none.
A request the handler or the model refuses is a client error with a one-line message: 400 for a body it
cannot read (a charset Python does not know, not text in its charset, malformed, in none of MLflow's formats) and
for values the model's checks refuse (a 4xx MlflowException such as INVALID_PARAMETER_VALUE), 415 for a content
type, 406 for an accept header it does not serve. The container's inference toolkit (sagemaker_inference, which the
PyTorch container's sagemaker-pytorch-inference carries) answers those as its GenericInferenceToolkitError and any
other exception with 500: a model failing at predict stays a server error. pre_model_fn keeps the toolkit from
decoding bodies itself.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import Message
from email.utils import collapse_rfc2231_value
from typing import Any

MODEL_FOLDER = "model"
JSON = "application/json"
CSV = "text/csv"
BAD_REQUEST, NOT_ACCEPTABLE, UNSUPPORTED_MEDIA_TYPE = 400, 406, 415
# MLflow's scoring formats (mlexp.serving.request_rows names them alike; this file imports no mlexp)
JSON_SHAPES = (
    '{"dataframe_split": {"columns": [...], "data": [[...], ...]}}, {"dataframe_records": [{...}, ...]}, '
    '{"inputs": [{...}, ...]} (or "instances") or a column dict {"inputs": {"<column>": [...], ...}}'
)
WHAT_TO_SEND = {JSON: f"rows as {JSON_SHAPES}", CSV: "CSV with a header row"}


class RefusedRequest(ValueError):
    """A client error where the container's toolkit is missing (the handler called on its own); it carries the
    toolkit error's attributes."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code, self.message, self.phrase = status_code, message, message


def refused(status_code: int, message: str) -> Exception:
    """The error the container's toolkit answers with `status_code` and `message`: its GenericInferenceToolkitError
    (the toolkit turns any other exception into a 500)."""
    message = " ".join(message.split())  # the toolkit sends it as the HTTP reason phrase too: one line
    try:
        from sagemaker_inference.errors import GenericInferenceToolkitError
    except ImportError:
        return RefusedRequest(status_code, message)
    return GenericInferenceToolkitError(status_code, message)


@contextmanager
def _mlflow_refusals(fix: str = "") -> Iterator[None]:
    """MLflow's and the model's own refusals (a 4xx MlflowException) as client errors, `fix` appended to the message
    when given; a 5xx one stays a 500."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as error:
        status = error.get_http_status_code()
        if not 400 <= status < 500:
            raise
        raise refused(status, f"{error.message.rstrip('. ')}; {fix}" if fix else error.message) from None


def pre_model_fn(model_dir: str) -> None:
    """Run by the container's toolkit before model_fn: it hands input_fn every body as bytes from then on.

    Its Transformer decodes a body whose Content-Type is exactly one of content_types.UTF8_TYPES (a bare
    application/json or text/csv) before any function here runs, and answers bytes that are not UTF-8 with its own
    500; input_fn decodes them instead and refuses them with a 400. The list is the toolkit's only switch for this
    (sagemaker-inference 1.10, and the PyTorch container's transformer, read it at each request). A Content-Type
    with parameters (`; charset=utf-16`) never equals an entry, so its bytes reach input_fn, with the whole header,
    whatever the list holds."""
    try:
        from sagemaker_inference import content_types

        # a new object, not an edit in place: the transformer looks the name up at each request, whatever its type
        content_types.UTF8_TYPES = [kind for kind in content_types.UTF8_TYPES if kind not in WHAT_TO_SEND]
    except Exception:  # no toolkit, or one without this list: such bodies get its own 500, the model still loads
        return


def model_fn(model_dir: str) -> Any:
    """Load the archive's MLflow pyfunc model (the task's PythonModel behind its saved preprocessing)."""
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(os.path.join(model_dir, MODEL_FOLDER))


def _mime(content_type: str | None) -> str:
    return (content_type or JSON).split(";")[0].strip().lower()


def _charset(content_type: str | None) -> str | None:
    """The charset parameter of a Content-Type (quoted or not, any case), None when it names none."""
    header = Message()
    header["Content-Type"] = content_type or JSON
    charset = header.get_param("charset")
    return None if charset is None else collapse_rfc2231_value(charset)


def _text(request_body: bytes | str, content_type: str | None, mime: str) -> str:
    """The body decoded in the charset its Content-Type names, UTF-8 when it names none."""
    if isinstance(request_body, str):  # decoded by the toolkit: a bare type, so UTF-8
        text = request_body
    else:
        charset = _charset(content_type)
        fix = f"send {mime} encoded as UTF-8, or name the body's charset in its content type ({mime}; charset=latin-1)"
        read_as = f"{charset} text as its content type says" if charset else "UTF-8 text"
        try:
            text = request_body.decode(charset or "utf-8")
        except UnicodeError as error:
            raise refused(BAD_REQUEST, f"the request body is not {read_as} ({error}); {fix}") from None
        # not a codec, one that is not for text (base64, rot13), or a name holding a NUL (ValueError)
        except (LookupError, ValueError):
            raise refused(
                BAD_REQUEST, f"charset {charset!r} of content type {content_type!r} is not a known text encoding; {fix}"
            ) from None
        # utf-7 and the *_escape codecs decode a lone UTF-16 surrogate from plain bytes, which pandas cannot hold as
        # text; UTF-8's decoder never yields one, so a UTF-8 body is not read a second time
        if charset is not None and not text.isascii() and not _encodable(text):
            problem = "it decodes to a lone UTF-16 surrogate"
            raise refused(BAD_REQUEST, f"the request body is not {read_as} ({problem}); {fix}")
    # a byte order mark (Excel's "CSV UTF-8", utf-16-le) is no part of the JSON or of the first column's name;
    # Python's utf-16 and utf-8-sig codecs drop theirs themselves
    return text.removeprefix("\ufeff")


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def input_fn(request_body: bytes | str, request_content_type: str | None) -> tuple[Any, dict[str, Any] | None]:
    """The request as (DataFrame, params): MLflow's scoring JSON or CSV with a header row."""
    mime = _mime(request_content_type)
    if mime not in WHAT_TO_SEND:
        raise refused(
            UNSUPPORTED_MEDIA_TYPE, f"content type {request_content_type!r} is not supported; send {JSON} or {CSV}"
        )
    text = _text(request_body, request_content_type, mime)
    # MLflow's own refusal of a body in none of its formats names the problem, not the formats
    with _mlflow_refusals(fix=f"send {WHAT_TO_SEND[mime]}"):
        try:
            return _parsed(text, mime)
        # malformed JSON or CSV, values pandas cannot shape into a table
        except (ValueError, TypeError) as error:
            raise refused(
                BAD_REQUEST, f"the request is not readable {mime} ({error}); send {WHAT_TO_SEND[mime]}"
            ) from None


def _parsed(text: str, mime: str) -> tuple[Any, dict[str, Any] | None]:
    from mlflow.pyfunc.scoring_server import infer_and_parse_data

    if mime == CSV:
        import pandas as pd

        return pd.read_csv(io.StringIO(text)), None
    body = json.loads(text)
    if not isinstance(body, dict):
        raise ValueError(f"a JSON {type(body).__name__}, not an object")
    params = body.pop("params", None)
    return infer_and_parse_data(body), params


def predict_fn(input_data: tuple[Any, dict[str, Any] | None], model: Any) -> Any:
    """The task's predictions: the pyfunc model's predict with the request's params."""
    frame, params = input_data
    # the model's checks refuse a request with INVALID_PARAMETER_VALUE naming its row and column; other errors are 500s
    with _mlflow_refusals():
        return model.predict(frame, params=params) if params else model.predict(frame)


def output_fn(prediction: Any, accept: str | None) -> tuple[str, str]:
    """(body, content type): `{"predictions": [...]}` as `mlflow models serve` answers, or CSV when asked."""
    import pandas as pd

    frame = prediction if isinstance(prediction, pd.DataFrame) else pd.DataFrame(prediction)
    wanted = [_mime(part) for part in (accept or JSON).split(",")]
    if CSV in wanted and JSON not in wanted and "*/*" not in wanted:
        return frame.to_csv(index=False), CSV
    if not {JSON, "*/*"} & set(wanted):
        raise refused(NOT_ACCEPTABLE, f"accept {accept!r} is not supported; ask for {JSON} or {CSV}")
    # pandas writes numpy values, lists (boxes) and NaN (as null) the way JSON clients expect
    records = json.loads(frame.to_json(orient="records"))
    return json.dumps({"predictions": records}), JSON
