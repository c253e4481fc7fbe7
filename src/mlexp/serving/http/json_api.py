"""JSON in and out: standard JSON responses, request bodies checked field by field, errors as {"error": ...}."""

from __future__ import annotations

import codecs
import json
import math
import re
from collections.abc import Mapping
from email.message import Message
from email.utils import collapse_rfc2231_value
from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import Response

JSON_TYPE = "application/json"
# what a client sent, in JSON's words, for "field 'x' must be a string, got number"
_JSON_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    list: "an array",
    dict: "an object",
}
# JSON escapes a body may spell text with that no store takes: a lone UTF-16 surrogate (\uD800-\uDFFF), which
# UTF-8 cannot hold, and NUL (\u0000), which a PostgreSQL text column refuses
_UNSTORABLE_ESCAPE = re.compile(r"\\u(?:[dD][89a-fA-F]|0000)")
_SURROGATE_CODECS = {"utf-7", "unicode-escape", "raw-unicode-escape"}
_CHARSET_FIX = (
    f"send JSON encoded as UTF-8, or name the body's charset in its content type ({JSON_TYPE}; charset=latin-1)"
)


class ServiceError(Exception):
    """Raised anywhere in a request: the client gets `{"error": message}` with this status and headers."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


def standard_json(value: Any) -> Any:
    """`value` with numpy scalars/arrays as Python values and NaN/±Infinity as None (JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): standard_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [standard_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return standard_json(value.tolist())
    if isinstance(value, np.generic):
        return standard_json(value.item())
    return value


def json_bytes(payload: Any) -> bytes:
    """Compact standard JSON; the common case (plain finite values) is dumped once, without a copy."""
    try:
        text = json.dumps(payload, allow_nan=False, separators=(",", ":"), ensure_ascii=False)
    except (ValueError, TypeError):
        text = json.dumps(standard_json(payload), allow_nan=False, separators=(",", ":"), ensure_ascii=False)
    return text.encode()


def json_response(payload: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """A JSON response that never holds `NaN`/`Infinity` tokens; numpy values are converted."""
    return Response(json_bytes(payload), status_code=status, headers=dict(headers or {}), media_type=JSON_TYPE)


def error_body(message: str) -> bytes:
    return json_bytes({"error": message})


def _reject_constant(token: str) -> Any:
    raise ServiceError(422, f"the body is not standard JSON: {token} is not a JSON value")


def _json_name(value: Any) -> str:
    if value is None:
        return "null"
    for kind, name in ((bool, "true/false"), (str, "string"), (int, "number"), (float, "number")):
        if isinstance(value, kind):
            return name
    return "array" if isinstance(value, list) else "object"


def _has_type(value: Any, kind: type) -> bool:
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def _unstorable(text: str) -> str | None:
    if "\x00" in text:
        return "a NUL character (\\u0000), which a text column does not store; send the text without it"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "a lone UTF-16 surrogate escape (\\ud800-\\udfff); send valid Unicode text"
    return None


def unstorable_field(value: Any, where: str = "") -> str | None:
    """`field '<a.b[0]>' holds <what>` for the first string (or key) in `value` no store takes: a lone surrogate
    (JSON's `\\ud800` escape decodes to one) or a NUL character; None when every string is storable."""
    if isinstance(value, str):
        reason = _unstorable(value)
        return f"field '{where or '(the body)'}' holds {reason}" if reason else None
    if isinstance(value, dict):
        for key, item in value.items():
            name = key.encode("utf-8", "backslashreplace").decode().replace("\x00", "\\u0000")
            path = f"{where}.{name}" if where else name
            found = unstorable_field(key, f"{path} (a key)") or unstorable_field(item, path)
            if found:
                return found
    elif isinstance(value, list):
        for position, item in enumerate(value):
            found = unstorable_field(item, f"{where}[{position}]")
            if found:
                return found
    return None


def charset_of(content_type: str | None) -> str | None:
    """The charset parameter of a Content-Type (quoted or not, any case), None when it names none."""
    if content_type is None or "charset" not in content_type.lower():  # most clients: no header parsing
        return None
    header = Message()
    header["Content-Type"] = content_type
    charset = header.get_param("charset")
    return (collapse_rfc2231_value(charset) or None) if charset is not None else None  # `charset=""`: none named


def body_text(body: bytes, content_type: str | None) -> str:
    """The body decoded in the charset its Content-Type names, UTF-8 when it names none, else ServiceError 422.

    The rules of the SageMaker endpoint's handler (sagemaker/inference.py, which cannot import this module).
    """
    charset = charset_of(content_type)
    try:
        text = body.decode(charset or "utf-8")
    except UnicodeError as error:
        read_as = f"{charset} text as its content type says" if charset else "UTF-8 text"
        raise ServiceError(422, f"the body is not {read_as} ({error}); {_CHARSET_FIX}") from None
    # not a codec, one that is not for text (base64, rot13), or a name holding a NUL (ValueError)
    except (LookupError, ValueError):
        raise ServiceError(
            422, f"charset {charset!r} of content type {content_type!r} is not a known text encoding; {_CHARSET_FIX}"
        ) from None
    # utf-7 and the *_escape codecs decode a lone UTF-16 surrogate from plain bytes, with no \ud800 escape for
    # parse_json_object to find; the others (UTF-8, UTF-16, single-byte charsets) refuse or cannot spell one, so
    # their bodies are not read a second time
    if charset is not None and codecs.lookup(charset).name in _SURROGATE_CODECS and _lone_surrogate(text):
        problem = "it decodes to a lone UTF-16 surrogate, which no store takes"
        raise ServiceError(422, f"the body is not {charset} text as its content type says ({problem}); {_CHARSET_FIX}")
    # a byte order mark is no part of the JSON; Python's utf-16 and utf-8-sig codecs drop theirs themselves
    return text.removeprefix("\ufeff")


def _lone_surrogate(text: str) -> bool:
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def parse_json_object(body: bytes, required: Mapping[str, type], content_type: str | None = None) -> dict[str, Any]:
    """The body as a JSON object holding every required field with its type, else ServiceError 422.

    Args:
        content_type: the request's Content-Type; its charset (UTF-8 when it names none) decodes the body.
    """
    text = body_text(body, content_type)
    try:
        document = json.loads(text, parse_constant=_reject_constant)
    except ValueError as error:
        raise ServiceError(422, f"the body is not valid JSON: {error}") from None
    except RecursionError:
        raise ServiceError(422, "the body is not valid JSON: its arrays or objects nest too deeply") from None
    if not isinstance(document, dict):
        raise ServiceError(422, f"the body must be a JSON object, got {_json_name(document)}")
    if _UNSTORABLE_ESCAPE.search(text):  # rare: only such a body is walked
        problem = unstorable_field(document)
        if problem is not None:
            raise ServiceError(422, problem)
    for field, kind in required.items():
        if field not in document:
            raise ServiceError(422, f"field {field!r} is missing")
        if not _has_type(document[field], kind):
            expected = _JSON_NAMES.get(kind, kind.__name__)
            raise ServiceError(422, f"field {field!r} must be {expected}, got {_json_name(document[field])}")
    return document


async def read_json(request: Request, required: Mapping[str, type]) -> dict[str, Any]:
    """Read the request body as a JSON object with the required fields and types (422 otherwise)."""
    return parse_json_object(await request.body(), required, request.headers.get("content-type"))
