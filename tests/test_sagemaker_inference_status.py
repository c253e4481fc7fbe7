"""The endpoint's status codes: what the framework container's inference toolkit answers for the archive's handler.

The PyTorch inference container runs sagemaker-pytorch-inference, whose sagemaker_inference Transformer calls
code/inference.py's four functions and turns any exception into HTTP 500, except its GenericInferenceToolkitError,
answered with that error's status and message. Here the toolkit's own package (sagemaker-inference, the same
Transformer) serves the archive of a real churn model; TorchServe's part is the context it hands the handler.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd
import pytest

import mlexp
from conftest import REPO, TINY
from mlexp.sagemaker import model_package

TASK = "churn_incentives"
SHAPES = (
    '{"dataframe_split": {"columns": [...], "data": [[...], ...]}}, {"dataframe_records": [{...}, ...]}, '
    '{"inputs": [{...}, ...]} (or "instances") or a column dict {"inputs": {"<column>": [...], ...}}'
)


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """model.tar.gz of a churn trial's registered model, unpacked as SageMaker unpacks it into /opt/ml/model."""
    folder = tmp_path_factory.mktemp("inference-status")
    project = folder / "project"
    shutil.copytree(REPO / "conf", project / "conf")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MLEXP_TRACKING_WRITER", "inline")
        mlexp.run(TASK, ["deploy=registry", TINY[0], "model.num_round=5"], root=project)
    saved = model_package.registered_model(f"sqlite:///{project / 'mlflow.db'}", TASK, "1", folder / "package")
    model_dir = folder / "opt_ml_model"
    with tarfile.open(model_package.write_archive(saved, folder / "model.tar.gz")) as tar:
        tar.extractall(model_dir, filter="data")
    return model_dir


def request_with(model_dir: Path, row: int, column: str, value: object) -> bytes:
    """The model's input example (five customers) with one value changed."""
    example = json.loads((model_dir / "model" / "serving_input_example.json").read_text())
    split = example["dataframe_split"]
    split["data"][row][split["columns"].index(column)] = value
    return json.dumps(example).encode()


class TorchServeContext:
    """What TorchServe hands the toolkit's handler for one request: the model folder and the request's headers in,
    the answer's status and content type out (ts.context.Context's methods of these names)."""

    def __init__(self, model_dir: Path, headers: dict[str, str]) -> None:
        self.system_properties = {"model_dir": str(model_dir)}
        self.request_processor = [self]
        self.headers = headers
        self.status: tuple[int, str] = (200, "")
        self.content_type = ""

    def get_request_properties(self) -> dict[str, str]:
        return self.headers

    def set_response_status(self, code: int = 200, phrase: str = "", idx: int = 0) -> None:
        self.status = (code, phrase)

    def set_response_content_type(self, idx: int, value: str) -> None:
        self.content_type = value


@pytest.fixture
def endpoint(archive: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The toolkit's handler service with the archive's code/inference.py, started as the container starts it."""
    from sagemaker_inference import content_types

    # the handler's pre_model_fn replaces the toolkit's list: set back after the test, as the toolkit ships it
    monkeypatch.setattr(content_types, "UTF8_TYPES", content_types.UTF8_TYPES)
    yield from _started(archive, monkeypatch)


def _started(archive: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from sagemaker_inference import default_handler_service as handler_service  # a dev dependency: never skipped

    monkeypatch.setenv("SAGEMAKER_PROGRAM", "inference.py")  # the endpoint's environment (endpoint_model.py)
    monkeypatch.setenv("PYTHONPATH", "")  # the service adds code/ to it
    monkeypatch.syspath_prepend(str(archive / "code"))
    service = handler_service.DefaultHandlerService()
    try:
        service.initialize(TorchServeContext(archive, {}))
        yield service
    finally:
        sys.modules.pop("inference", None)


def answer(service: Any, model_dir: Path, body: bytes, content_type: str, accept: str = "application/json") -> Any:
    """(status, reason phrase, content type, body) of one request through the toolkit's handle()."""
    context = TorchServeContext(model_dir, {"Content-Type": content_type, "Accept": accept})
    [response] = service.handle([{"body": body}], context)
    return (*context.status, context.content_type, response)


def test_a_request_the_model_or_handler_refuses_is_a_client_error_with_the_models_one_line_message(
    endpoint: Any, archive: Path
):
    status, _, content_type, body = answer(
        endpoint, archive, request_with(archive, 0, "State", "KS"), "application/json"
    )
    assert (status, content_type) == (200, "application/json") and len(json.loads(body)["predictions"]) == 5

    # the churn model's own row check: MLflow's INVALID_PARAMETER_VALUE naming the request's row and column
    refused_row = request_with(archive, 1, "CustServ Calls", -3)
    message = (
        "column CustServ Calls is negative in row 2 (e.g. -3; the first row is row 1); counts, minutes, charges "
        "and codes are 0 or more: correct it"
    )
    status, phrase, _, body = answer(endpoint, archive, refused_row, "application/json")
    assert (status, phrase) == (400, message)
    assert body.splitlines()[0] == message  # the rest of the body is the toolkit's traceback

    missing = json.dumps({"dataframe_records": [{"State": "KS"}]}).encode()
    status, phrase, _, _ = answer(endpoint, archive, missing, "application/json")
    assert status == 400 and phrase.startswith("customer rows lack the columns Account Length, Area Code")

    status, phrase, _, _ = answer(endpoint, archive, b'{"dataframe_records": [', "application/json")
    assert status == 400 and phrase.startswith("the request is not readable application/json (Expecting value")
    assert phrase.endswith("; send rows as " + SHAPES)
    status, phrase, _, _ = answer(endpoint, archive, b"[1, 2]", "application/json")
    assert (status, phrase) == (
        400,
        "the request is not readable application/json (a JSON list, not an object); send rows as " + SHAPES,
    )
    status, phrase, _, _ = answer(endpoint, archive, b'{"rows": []}', "application/json")
    assert status == 400 and "exactly one of the input fields" in phrase  # MLflow's BAD_REQUEST
    status, phrase, _, _ = answer(endpoint, archive, b'State,"Account Length\n', "text/csv; charset=utf-8")
    assert status == 400 and phrase.startswith("the request is not readable text/csv (Error tokenizing data")

    # a bare application/json or text/csv body, which the toolkit would decode before the handler (its own 500)
    for content_type in ("application/json", "text/csv"):
        status, phrase, _, _ = answer(endpoint, archive, b'{"inputs": "\xff"}', content_type)
        assert (status, phrase) == (
            400,
            "the request body is not UTF-8 text ('utf-8' codec can't decode byte 0xff in position 12: invalid start "
            f"byte); send {content_type} encoded as UTF-8, or name the body's charset in its content type "
            f"({content_type}; charset=latin-1)",
        )

    status, phrase, _, _ = answer(endpoint, archive, b"\x89PNG", "image/png")
    assert (status, phrase) == (415, "content type 'image/png' is not supported; send application/json or text/csv")
    status, phrase, _, _ = answer(
        endpoint, archive, request_with(archive, 0, "State", "KS"), "application/json", "text/html"
    )
    assert (status, phrase) == (406, "accept 'text/html' is not supported; ask for application/json or text/csv")


def noted_customers(model_dir: Path) -> tuple[str, str]:
    """The model's input example as (JSON, CSV) text, with a spreadsheet's note column the model does not read."""
    split = json.loads((model_dir / "model" / "serving_input_example.json").read_text())["dataframe_split"]
    frame = pd.DataFrame(split["data"], columns=split["columns"]).assign(Note="Zoë Müller, déçue: 12 €")
    return frame.to_json(orient="split", index=False), frame.to_csv(index=False)


@pytest.mark.parametrize(
    ("shape", "encoding", "content_type"),
    [
        ("json", "utf-16", "application/json; charset=utf-16"),  # Python's utf-16 writes a byte order mark
        ("json", "utf-16-le", 'application/json; Charset="UTF-16LE"'),
        ("json", "utf-8-sig", "application/json"),
        ("csv", "cp1252", "text/csv; charset=windows-1252"),  # Excel's "CSV" on Windows
        ("csv", "utf-8-sig", "text/csv"),  # Excel's "CSV UTF-8": a byte order mark, no charset named
        ("csv", "utf-16", "text/csv;charset=UTF-16"),
        ("json", "utf-16-le", "application/json; charset=utf-16"),  # no byte order mark: read little-endian
        ("csv", "cp1252", "text/csv; charset='windows-1252'"),  # single quotes, as some clients write them
    ],
)
def test_a_body_in_the_charset_its_content_type_names_is_answered_as_its_utf8_equivalent(
    endpoint: Any, archive: Path, shape: str, encoding: str, content_type: str
):
    json_text, csv_text = noted_customers(archive)
    text = {"json": '{"dataframe_split": ' + json_text + "}", "csv": csv_text}[shape]
    mime = content_type.split(";")[0]
    expected = answer(endpoint, archive, text.encode(), mime)
    assert expected[0] == 200 and len(json.loads(expected[3])["predictions"]) == 5
    assert answer(endpoint, archive, text.encode(encoding), content_type) == expected
    # the toolkit's own input_fn call: the note arrives with its accents, not merely some text that parses
    frame, _ = endpoint._service._input_fn(text.encode(encoding), content_type)
    assert frame.equals(endpoint._service._input_fn(text.encode(), mime)[0])
    assert set(frame["Note"]) == {"Zoë Müller, déçue: 12 €"}


def test_a_latin1_csv_named_so_is_read_with_its_accents(endpoint: Any, archive: Path):
    csv_text = noted_customers(archive)[1].replace(" €", "")  # Latin-1 has no euro sign
    expected = answer(endpoint, archive, csv_text.encode(), "text/csv")
    assert answer(endpoint, archive, csv_text.encode("latin-1"), "text/csv; charset=ISO-8859-1") == expected
    frame, _ = endpoint._service._input_fn(csv_text.encode("latin-1"), "text/csv; charset=latin-1")
    assert set(frame["Note"]) == {"Zoë Müller, déçue: 12"}


FIX = "send {mime} encoded as UTF-8, or name the body's charset in its content type ({mime}; charset=latin-1)"


@pytest.mark.parametrize(
    ("encoding", "content_type", "problem"),
    [
        (
            "utf-8",
            "text/csv; charset=klingon",
            "charset 'klingon' of content type 'text/csv; charset=klingon' is not a known text encoding",
        ),
        (
            "utf-8",
            "application/json; charset=base64",
            "charset 'base64' of content type 'application/json; charset=base64' is not a known text encoding",
        ),
        (
            "cp1252",
            "text/csv; charset=utf-8",
            "the request body is not utf-8 text as its content type says ('utf-8' codec can't decode byte 0xeb in "
            "position 7: invalid continuation byte)",
        ),
        (
            "utf-8",
            "text/csv; charset=us-ascii",
            "the request body is not us-ascii text as its content type says ('ascii' codec can't decode byte 0xc3 "
            "in position 7: ordinal not in range(128))",
        ),
    ],
    ids=["unknown charset", "not a text codec", "Windows-1252 named UTF-8", "UTF-8 named ASCII"],
)
def test_a_body_in_another_charset_than_its_content_type_names_is_a_400_naming_the_charset_and_the_fix(
    endpoint: Any, archive: Path, encoding: str, content_type: str, problem: str
):
    status, phrase, _, _ = answer(endpoint, archive, "Note\nZoë\n".encode(encoding), content_type)
    assert (status, phrase) == (400, f"{problem}; {FIX.format(mime=content_type.split(';')[0])}")


def test_a_charset_holding_a_nul_or_a_body_decoding_to_a_lone_surrogate_is_a_400_not_a_500(
    endpoint: Any, archive: Path
):
    fix = FIX.format(mime="text/csv")
    named_nul = 'text/csv; charset="utf\x008"'  # Python's codec lookup raises ValueError for it, not LookupError
    status, phrase, _, _ = answer(endpoint, archive, b"Note\nZoe\n", named_nul)
    assert (status, phrase) == (
        400,
        f"charset 'utf\\x008' of content type {named_nul!r} is not a known text encoding; {fix}",
    )
    # UTF-7 spells a lone surrogate in plain bytes; pandas could not hold it as text
    status, phrase, _, _ = answer(endpoint, archive, b"Note\n+2AA-\n", "text/csv; charset=utf-7")
    assert (status, phrase) == (
        400,
        f"the request body is not utf-7 text as its content type says (it decodes to a lone UTF-16 surrogate); {fix}",
    )


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"inputs": 5}, "the request's input is a single value (5), not rows"),
        ({"instances": "x"}, 'the request\'s input is a single value ("x"), not rows'),
        ({"inputs": None}, "the request's input is a single value (null), not rows"),
        (
            {"inputs": {"State": "KS", "Account Length": [128]}},
            'the request\'s column State holds one value ("KS"), not a list of one per row',
        ),
        ({"dataframe_split": 3}, "Invalid input. Dataframe split format must be a dictionary. Got type <class 'int'>"),
        ({"dataframe_records": "x"}, "Invalid input. Dataframe records format must be a list of records. Got type"),
    ],
    ids=["number", "text", "null", "column of one value", "split not an object", "records not a list"],
)
def test_a_body_in_none_of_mlflows_shapes_is_a_400_naming_it_and_the_shapes(
    endpoint: Any, archive: Path, body: dict, problem: str
):
    status, phrase, _, _ = answer(endpoint, archive, json.dumps(body).encode(), "application/json")
    assert status == 400 and phrase.startswith(problem) and phrase.endswith("; send rows as " + SHAPES), phrase


def test_a_toolkit_whose_list_of_decoded_types_is_a_tuple_still_loads_the_model(
    archive: Path, monkeypatch: pytest.MonkeyPatch
):
    # AWS patches its containers under the same image tag: the handler's edit of the toolkit's list must never stop
    # the model from loading (an edit in place raised TypeError on a tuple there)
    from sagemaker_inference import content_types

    monkeypatch.setattr(content_types, "UTF8_TYPES", ("application/json", "text/csv"))
    endpoint = _started(archive, monkeypatch)
    service = next(endpoint)
    try:
        status, _, _, body = answer(service, archive, request_with(archive, 0, "State", "KS"), "application/json")
        assert status == 200 and len(json.loads(body)["predictions"]) == 5
        assert answer(service, archive, b'{"inputs": "\xff"}', "application/json")[0] == 400  # read by the handler
    finally:
        endpoint.close()


def test_a_model_failing_at_predict_stays_a_server_error(endpoint: Any, archive: Path):
    model = endpoint._service._model  # the model the toolkit loaded with model_fn
    model.unwrap_python_model().booster = None  # a booster lost after loading: the model's fault, not the request's
    status, phrase, _, _ = answer(endpoint, archive, request_with(archive, 0, "State", "KS"), "application/json")
    assert status == 500 and "NoneType" in phrase


def packaged_handler(model_dir: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("packaged_inference", model_dir / "code" / "inference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_handler_on_its_own_raises_the_same_status_and_message_without_the_toolkit(
    archive: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setitem(sys.modules, "sagemaker_inference.errors", None)  # as on a machine without the toolkit
    handler = packaged_handler(archive)
    model = handler.model_fn(str(archive))
    data = handler.input_fn(request_with(archive, 3, "Int'l Plan", "maybe"), "application/json")
    with pytest.raises(handler.RefusedRequest) as refused:
        handler.predict_fn(data, model)
    assert refused.value.status_code == 400 and str(refused.value) == refused.value.message
    assert refused.value.message.startswith("column Int'l Plan is not yes/no in row 4")
    with pytest.raises(handler.RefusedRequest) as refused:
        handler.input_fn(b"...", "image/png")
    assert refused.value.status_code == 415
    with pytest.raises(handler.RefusedRequest) as refused:
        handler.input_fn(b"State\nKS\n", "text/csv; charset=klingon")
    assert refused.value.status_code == 400 and refused.value.message.startswith("charset 'klingon' of content type")
