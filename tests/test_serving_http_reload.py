"""Hot reload of a promoted champion from a real MLflow SQLite registry, and `serve` stopping gracefully."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mlexp.serving.http import (
    ModelSlot,
    ServiceSettings,
    champion_loader,
    champion_probe,
    create_app,
    json_response,
    serve,
    start_in_thread,
)
from mlexp.tracking import Tracker

MODEL = "demo_classifier"


class ConstantModel(mlflow.pyfunc.PythonModel):
    """A model that answers its own name: which version served a request is visible in the response."""

    def __init__(self, label: str) -> None:
        self.label = label

    def predict(self, context, model_input: list[str], params=None) -> list[str]:
        return [self.label] * len(model_input)


@pytest.fixture(autouse=True)
def _unbounded_retries(monkeypatch):
    """Each test starts as a user's shell does, without MLflow's retry variables, and leaves none behind: the
    champion probe sets them for its process (bound_store_retries), which would outlive the test in this worker."""
    for name in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT"):
        monkeypatch.setenv(name, "")  # recorded, so that monkeypatch restores what was there
        monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite MLflow store holding versions 1 and 2 of MODEL, alias champion on version 1."""
    folder = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{folder}/mlflow.db"
    client = MlflowClient(uri, uri)
    experiment = client.create_experiment("serving", artifact_location=(folder / "artifacts").as_uri())
    with _tracking(uri):
        for label in ("model-v1", "model-v2"):
            with mlflow.start_run(experiment_id=experiment):
                mlflow.pyfunc.log_model(
                    name="model", python_model=ConstantModel(label), registered_model_name=MODEL, pip_requirements=[]
                )
    client.set_registered_model_alias(MODEL, "champion", "1")
    return uri


def _tracking(uri: str):
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    return _use_tracking_uri(uri)


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_a_promoted_champion_is_swapped_in_without_a_failed_request(registry):
    slot = ModelSlot(champion_loader(MODEL, tracking_uri=registry))
    assert (slot.version, slot.current.predict(["text"])) == ("1", ["model-v1"])

    async def predict(request: Request) -> Response:
        model = slot.current  # read once: a swap during this request does not change its model
        time.sleep(0.005)
        return json_response({"label": model.predict(["text"])[0]})

    service = start_in_thread(create_app("demo", [Route("/predict", predict)], ServiceSettings(), api_keys=None))
    answers: list[tuple[int, dict]] = []
    failures: list[str] = []  # requests that raised (a dropped connection, a timeout, a body that is not JSON)
    done = threading.Event()

    latest: dict[str, str] = {}  # each client thread's last answered label

    def load_loop() -> None:
        while not done.is_set():
            try:
                answer = get(service.url + "/predict")
            except Exception as error:  # noqa: BLE001 -- any error is a failed request, counted below
                failures.append(repr(error))
                continue
            answers.append(answer)
            latest[threading.current_thread().name] = answer[1].get("label")

    def labels_after_swap() -> int:
        return sum(body.get("label") == "model-v2" for _, body in answers)

    loops = [threading.Thread(target=load_loop, name=f"load-{n}") for n in range(4)]
    for loop in loops:
        loop.start()
    slot.start_polling(champion_probe(MODEL, tracking_uri=registry), interval_s=0.1)
    try:
        # requests before the swap, counted (not timed: a busy machine answered 2 in 0.3 s)
        _wait_for(lambda: len(answers) + len(failures) > 10)
        MlflowClient(registry, registry).set_registered_model_alias(MODEL, "champion", "2")
        _wait_for(lambda: slot.version == "2")
        # and after it: every client thread has had a new-model answer, so none has an old request still open
        _wait_for(lambda: set(latest.values()) == {"model-v2"} and len(latest) == len(loops) or bool(failures))
        _wait_for(lambda: labels_after_swap() > 10 or bool(failures))
    finally:
        done.set()
        for loop in loops:
            loop.join()
        slot.stop_polling()
        service.stop()
    labels = [body.get("label") for _, body in answers]
    assert failures == []
    assert slot.version == "2"
    assert {status for status, _ in answers} == {200}
    assert labels[0] == "model-v1" and labels[-1] == "model-v2"
    assert set(labels) == {"model-v1", "model-v2"} and len(answers) > 20


def test_a_failed_reload_keeps_the_model_and_logs_one_line(registry, caplog):
    loads = iter([("old model", "1")])

    def load() -> tuple[str, str]:
        for loaded in loads:
            return loaded
        raise OSError("artifact store unreachable")

    slot = ModelSlot(load)
    with caplog.at_level("WARNING", logger="mlexp.serving"):
        assert not slot.reload_if_changed(lambda: "2")
        assert not slot.reload_if_changed(lambda: "2")
    assert (slot.current, slot.version) == ("old model", "1")
    assert [r.getMessage() for r in caplog.records] == [
        "model reload failed, still serving version 1: OSError: artifact store unreachable"
    ]


def stage_tracker(client: MlflowClient, run_id: str) -> Tracker:
    """The Tracker a stage gets for its component run (the tracker takes a store writer since the journal work)."""
    from mlexp.tracking import tracker as tracker_module

    as_writer = getattr(tracker_module, "as_writer", None)
    return Tracker(as_writer(client) if as_writer else client, run_id)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10):
            return True
    except OSError:
        return False


def test_serve_logs_the_endpoint_and_stops_gracefully_on_sigterm(registry, tmp_path: Path, capsys):
    client = MlflowClient(registry, registry)
    run = client.create_run(client.get_experiment_by_name("serving").experiment_id)
    tracker = stage_tracker(client, run.info.run_id)
    port = _free_port()
    # max_seconds far beyond the SIGTERM's effect below: a stop by max_seconds is told apart by time
    deploy = {"host": "127.0.0.1", "port": port, "max_seconds": 300, "keys_db": str(tmp_path / "keys.sqlite")}
    cfg = OmegaConf.create({"task": {"name": "demo"}, "deploy": deploy})
    entered = threading.Event()  # the slow request reached its handler
    stopping_seen: list[bool] = []

    async def slow(request: Request) -> Response:
        entered.set()
        # in flight when SIGTERM arrives, and until serve() is stopping (it closes its listening socket first):
        # observed, not timed
        deadline = time.monotonic() + 60
        while _listening(port) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        stopping_seen.append(not _listening(port))
        return json_response({"finished": True})

    app = create_app("demo", [Route("/slow", slow)], ServiceSettings(), api_keys=None)
    in_flight: list[tuple[int, dict]] = []
    helper_errors: list[str] = []
    sigterm_sent: list[float] = []

    def client_then_sigterm() -> None:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not returned.is_set():
            try:
                get(url + "/ping")
                break
            except OSError:
                time.sleep(0.05)

        def slow_call() -> None:
            try:
                in_flight.append(get(url + "/slow"))
            except Exception as error:  # noqa: BLE001 -- reported by the assertion on in_flight
                helper_errors.append(repr(error))

        slow_request = threading.Thread(target=slow_call)
        slow_request.start()
        entered.wait(60)
        if entered.is_set() and not returned.is_set():  # a SIGTERM after serve() returned would end pytest itself
            sigterm_sent.append(time.monotonic())
            os.kill(os.getpid(), signal.SIGTERM)
        slow_request.join()

    returned = threading.Event()
    helper = threading.Thread(target=client_then_sigterm)
    helper.start()
    try:
        serve(cfg, tracker, app, description="demo model v1", endpoints=['POST /classify {"sentence": "hi"}'])
    finally:
        returned.set()
        helper.join()
    stopped = time.monotonic()
    assert in_flight == [(200, {"finished": True})], helper_errors
    assert stopping_seen == [True]  # the request was still in its handler when serve() began to stop
    # stopped by the SIGTERM, not by max_seconds (300 s)
    assert sigterm_sent and stopped - sigterm_sent[0] < 120
    printed = capsys.readouterr().out
    assert f"service: http://127.0.0.1:{port}  serving demo model v1; Ctrl-C stops it" in printed
    assert f'-d \'{{"sentence": "hi"}}\' http://127.0.0.1:{port}/classify' in printed
    tracker.flush()
    data = client.get_run(run.info.run_id).data
    assert data.params == {"endpoint": f"http://127.0.0.1:{port}", "served_model": "demo model v1"}
    assert data.metrics["requests_served"] >= 2


def test_serve_stops_after_max_seconds_and_logs_requests_served(registry, tmp_path: Path, capsys):
    client = MlflowClient(registry, registry)
    run = client.create_run(client.get_experiment_by_name("serving").experiment_id)
    tracker = stage_tracker(client, run.info.run_id)
    deploy = {"port": 0, "max_seconds": 0.5, "keys_db": str(tmp_path / "keys.sqlite")}
    app = create_app("demo", [], ServiceSettings(), api_keys=None)
    started = time.monotonic()
    serve(OmegaConf.create({"task": {"name": "demo"}, "deploy": deploy}), tracker, app, description="d", endpoints=[])
    # at least max_seconds; the upper bound only says it stopped by itself (start-up and stop take seconds when busy)
    assert 0.5 <= time.monotonic() - started < 60
    printed = capsys.readouterr().out
    assert "mlexp keys create <name>" in printed and "service stopped after 0 request(s)" in printed
    tracker.flush()
    assert client.get_run(run.info.run_id).data.metrics["requests_served"] == 0


def test_serve_refuses_a_sweep():
    from hydra.conf import HydraConf
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from mlexp.errors import ConfigError

    HydraConfig.instance().set_config(
        OmegaConf.create({"hydra": OmegaConf.structured(HydraConf(mode=RunMode.MULTIRUN))})
    )
    try:
        with pytest.raises(ConfigError, match="deploy=local serves one model and would stop the sweep"):
            serve(OmegaConf.create({"task": {"name": "demo"}, "deploy": {}}), None, None, description="", endpoints=[])
    finally:
        HydraConfig.instance().cfg = None


def test_champion_from_config_reads_the_trials_store_and_a_missing_alias_is_a_clear_error(registry, tmp_path):
    from mlexp.errors import DataError
    from mlexp.serving.http import champion_from_config

    cfg = OmegaConf.create(
        {
            "task": {"name": MODEL},
            "paths": {"root": str(tmp_path)},
            "tracking": {"uri": registry},
            "deploy": {"model_name": None, "alias": "champion"},
        }
    )
    load, probe = champion_from_config(cfg, load_model=lambda uri: uri)
    assert load() == (f"models:/{MODEL}/{probe()}", probe())
    cfg.deploy.alias = "no_such_alias"
    with pytest.raises(DataError, match=f"registered model '{MODEL}' has no alias 'no_such_alias'"):
        ModelSlot(champion_from_config(cfg)[0])


def _wait_for(condition, seconds: float = 60) -> None:
    """Until `condition()` holds, at most `seconds` (the assertions after it say what did not happen)."""
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)


def test_a_registry_that_is_down_is_said_so_in_seconds_not_as_a_missing_champion():
    from mlexp.errors import DataError

    # the probe called every MLflow error "has no alias 'champion' ...; register one with deploy=registry first",
    # an outage too, after MLflow's default retries (minutes)
    with socket.socket() as closed:  # a loopback port nothing listens on
        closed.bind(("127.0.0.1", 0))
        uri = f"http://127.0.0.1:{closed.getsockname()[1]}"
    probe = champion_probe("shop", "champion", uri)
    started = time.monotonic()
    with pytest.raises(DataError, match=rf"^cannot reach the tracking server {uri} \(") as down:
        probe()
    assert "has no alias" not in str(down.value) and time.monotonic() - started < 60
    assert "MLFLOW_HTTP_REQUEST_TIMEOUT" not in os.environ  # bounded for the lookup only, not the model's download


@pytest.mark.parametrize(
    ("uri", "missing", "install"),
    [
        ("postgresql://u@127.0.0.1:1/x", "psycopg", "'psycopg[binary]'"),  # to SQLAlchemy: psycopg 3, not psycopg2
        ("mysql://u@127.0.0.1:1/x", "MySQLdb", "mysqlclient"),
        ("mssql://u@127.0.0.1:1/x", "pyodbc", "pyodbc"),  # imported by SQLAlchemy's connectors, not its dialect
    ],
)
def test_a_database_store_whose_driver_is_missing_is_one_line_naming_the_package(tmp_path, uri, missing, install):
    from mlexp.errors import DataError
    from mlexp.serving.http import champion_from_config

    # was SQLAlchemy's ModuleNotFoundError traceback, from the MlflowClient the probe opens
    cfg = OmegaConf.create(
        {"task": {"name": MODEL}, "paths": {"root": str(tmp_path)}, "tracking": {"uri": uri}, "deploy": {}}
    )
    with pytest.raises(DataError) as refused:
        champion_from_config(cfg)
    line = str(refused.value)
    assert line.startswith(
        f"the tracking store's database driver is not installed (No module named '{missing}'); "
        f"install it (pip install {install}), or name one that is in tracking.uri"
    )
    assert len(line.splitlines()) == 1


def test_the_service_and_the_reading_commands_tell_a_missing_driver_in_the_same_line(tmp_project):
    from conftest import run_cli
    from mlexp.errors import DataError
    from mlexp.serving.http import champion_probe

    uri = "mysql://u@127.0.0.1:1/x"
    with pytest.raises(DataError) as refused:
        champion_probe(MODEL, "champion", uri)
    done = run_cli(tmp_project, "compare", "task=tabular_regression", f"tracking.uri={uri}", check=False)
    assert (done.returncode, done.stderr.splitlines()) == (1, [f"mlexp compare: error: {refused.value}"])
