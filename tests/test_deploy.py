"""deploy=registry on tabular_regression: parallel trials register MLflow pyfunc models, the best one is
the champion, `mlflow.pyfunc` loads it and `mlflow models serve` answers with it; failures never register."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.models import Model
from mlflow.tracking import MlflowClient
from mlflow.tracking._tracking_service.utils import _use_tracking_uri

from conftest import REPO, TINY, cli_env, run_cli, seed_store, stop_process_group, store_client, trials_of
from mlexp.serving import champion

NAME = "tabular_regression"
CHAMPION = f"models:/{NAME}@champion"


def store_uri(project: Path) -> str:
    return f"sqlite:///{project / 'mlflow.db'}"


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, empty_store):
    """Three trials at once, each registering its model; then a trial that fails in prepare."""
    project = tmp_path_factory.mktemp("registry") / "project"
    shutil.copytree(REPO / "conf", project / "conf")
    seed_store(project, empty_store)  # the store's first set-up is other tests' concern
    run_cli(
        project,
        "-m",
        f"task={NAME}",
        "deploy=registry",
        *TINY,
        "model.l1_size=4,8,16",
        "sweep=grid",
        "sweep.max_parallel_jobs=3",
    )
    bad = project / "bad.data"
    bad.write_text("M,1,2,3\n")
    failed = run_cli(project, f"task={NAME}", "deploy=registry", *TINY, f"dataset.path={bad}", check=False)
    return project, failed


def champion_example(project: Path, into: Path) -> tuple[pd.DataFrame, Path]:
    """The champion's input example, as MLflow stored it with the model."""
    with _use_tracking_uri(store_uri(project)):
        folder = Path(mlflow.artifacts.download_artifacts(CHAMPION, dst_path=str(into)))
    return Model.load(str(folder)).load_input_example(str(folder)), folder


def test_parallel_trials_leave_the_champion_on_the_best_version(sweep):
    project, _ = sweep
    client = store_client(project)
    trials = [t for t in trials_of(project) if t.status == "FINISHED"]
    assert len(trials) == 3
    versions = client.search_model_versions(f"name = '{NAME}'")
    assert len(versions) == 3
    assert {v.tags[champion.DECISION] for v in versions} <= {"moved", "kept"}  # every trial settled the alias
    best = min(trials, key=lambda t: t.metrics["test_msle"])
    holder = client.get_model_version_by_alias(NAME, "champion")
    assert holder.tags["mlexp.trial_run_id"] == best.run_id
    assert holder.run_id == best.components["Deployment"]
    assert float(holder.tags[champion.OBJECTIVE_VALUE]) == pytest.approx(best.metrics["test_msle"])
    # a LoggedModel of the Deployment component, with the trial's metrics
    model_id = holder.source.removeprefix("models:/")
    logged = client.get_logged_model(model_id)
    assert logged.source_run_id == best.components["Deployment"] and str(logged.status) == "READY"
    assert {m.key for m in logged.metrics} >= {"test_msle", "test_mae"}


def test_the_failed_trial_registered_nothing(sweep):
    project, failed = sweep
    assert failed.returncode == 1
    assert len(store_client(project).search_model_versions(f"name = '{NAME}'")) == 3


def test_pyfunc_champion_predicts_like_the_trials_own_evaluation(sweep, tmp_path):
    project, _ = sweep
    example, folder = champion_example(project, tmp_path)
    assert list(example.columns) == [
        "sex",
        "length",
        "diameter",
        "height",
        "whole_weight",
        "shucked_weight",
        "viscera_weight",
        "shell_weight",
    ]
    assert set(example["sex"]) <= {"M", "F", "I"}  # raw UCI rows: the model applies the preprocessors itself
    assert (folder / "code" / "mlexp" / "tasks" / "tabular_regression" / "registered_model.py").is_file()
    with _use_tracking_uri(store_uri(project)):
        predicted = mlflow.pyfunc.load_model(CHAMPION).predict(example)
    assert list(predicted.columns) == ["rings"] and len(predicted) == len(example)

    holder = store_client(project).get_model_version_by_alias(NAME, "champion")
    trial = store_client(project).get_run(holder.tags["mlexp.trial_run_id"])
    evaluated = pd.read_csv(Path(trial.data.tags["paths.reports"]) / "plots" / "predictions.csv")
    np.testing.assert_allclose(predicted["rings"], evaluated["predicted"][: len(example)], rtol=1e-5)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def post_json(url: str, body: bytes, timeout: float = 120) -> dict:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def test_mlflow_models_serve_answers_with_the_champion(sweep, tmp_path):
    project, _ = sweep
    example, folder = champion_example(project, tmp_path)
    with _use_tracking_uri(store_uri(project)):
        expected = mlflow.pyfunc.load_model(CHAMPION).predict(example)["rings"].tolist()
    port = free_port()
    env = {**cli_env(project), "MLFLOW_TRACKING_URI": store_uri(project)}
    # `--env-manager local` starts uvicorn from PATH: the project's environment
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    mlflow_cli = str(Path(sys.executable).parent / "mlflow")
    command = [mlflow_cli, "models", "serve", "-m", CHAMPION, "--env-manager", "local", "-p", str(port)]
    server = subprocess.Popen(
        [*command, "-h", "127.0.0.1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: uvicorn runs as a child and is stopped with it
    )
    output: list[str] = []
    threading.Thread(target=lambda: output.extend(server.stdout or []), daemon=True).start()
    try:
        deadline = time.monotonic() + 300
        while True:
            assert server.poll() is None, "mlflow models serve exited:\n" + "".join(output)
            assert time.monotonic() < deadline, "mlflow models serve did not answer /ping in 300 s:\n" + "".join(output)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=30) as ping:
                    if ping.status == 200:
                        break
            except OSError:  # not listening yet, or a slow first answer (a read timeout is no URLError)
                time.sleep(0.5)
        body = (folder / "serving_input_example.json").read_bytes()
        answer = post_json(f"http://127.0.0.1:{port}/invocations", body)
    finally:
        stop_process_group(server)
    served = [row["rings"] for row in answer["predictions"]]
    np.testing.assert_allclose(served, expected, rtol=1e-6)


# --- the alias rule on a bare store: fast, no trial needed ---


@pytest.fixture(scope="module")
def registry_store(tmp_path_factory, empty_store):
    """One bare store for these tests (a copy: creating an MLflow database takes seconds); each uses its own model."""
    folder = tmp_path_factory.mktemp("registry-store")
    seed_store(folder, empty_store)
    uri = store_uri(folder)
    return MlflowClient(tracking_uri=uri), uri, folder


def alias_of(client: MlflowClient, uri: str, model: str, direction: str = "minimize") -> champion.Alias:
    return champion.Alias(client, uri, model, "champion", "test_msle", direction)


def register(alias: champion.Alias, folder: Path, value: float) -> tuple[int, champion.Standing | None]:
    tags = {champion.OBJECTIVE: "test_msle", champion.OBJECTIVE_VALUE: repr(value)}
    version, holder = alias.register(str(folder), run_id="", tags=tags, model_id="")
    return int(version.version), holder


def test_the_alias_moves_only_to_a_better_objective(registry_store):
    client, uri, folder = registry_store
    minimize = alias_of(client, uri, "moves")
    assert register(minimize, folder, 0.5) == (1, champion.Standing(1, 0.5))
    assert register(minimize, folder, 0.7) == (2, champion.Standing(1, 0.5))  # worse: kept
    assert register(minimize, folder, 0.5) == (3, champion.Standing(1, 0.5))  # a tie does not move it
    assert register(minimize, folder, 0.2) == (4, champion.Standing(4, 0.2))
    decisions = {int(v.version): v.tags[champion.DECISION] for v in client.search_model_versions("name = 'moves'")}
    assert decisions == {1: "moved", 2: "kept", 3: "kept", 4: "moved"}
    maximize = champion.Alias(client, uri, "moves", "best-auc", "test_msle", "maximize")
    assert register(maximize, folder, 0.3)[1] == champion.Standing(5, 0.3)
    assert register(maximize, folder, 0.9)[1] == champion.Standing(6, 0.9)


def test_without_a_lock_each_trial_settles_on_the_best_pending_version(registry_store):
    """A tracking server has no shared lock: a trial settling late still picks the best concurrent version."""
    client, uri, folder = registry_store
    alias = alias_of(client, uri, "server")
    register(alias, folder, 0.5)
    pending = {champion.OBJECTIVE: "test_msle", champion.DECISION: "pending"}
    for value in (0.3, 0.1, 0.4):  # three trials registered at once, none has settled yet
        client.create_model_version("server", str(folder), tags={**pending, champion.OBJECTIVE_VALUE: repr(value)})
    assert alias.settle(4, locked=False) == champion.Standing(3, 0.1)  # version 4 (0.4) settles first
    assert alias.settle(2, locked=False) == champion.Standing(3, 0.1)  # version 2 (0.3) does not take it back
    assert alias.settle(3, locked=False) == champion.Standing(3, 0.1)
    decisions = {int(v.version): v.tags[champion.DECISION] for v in client.search_model_versions("name = 'server'")}
    assert decisions == {1: "moved", 2: "kept", 3: "moved", 4: "kept"}


def test_registering_waits_for_the_store_lock(registry_store):
    """On the SQLite store, reading the holder and moving the alias happen under a lock beside the database."""
    client, uri, folder = registry_store
    alias = alias_of(client, uri, "locked")
    register(alias, folder, 0.5)
    lock = champion.lock_for(uri)
    assert lock is not None and lock.lock_file == str(folder / "mlflow.db") + ".registry.lock"
    done: list[tuple[int, champion.Standing | None]] = []
    with lock:
        worker = threading.Thread(target=lambda: done.append(register(alias_of(client, uri, "locked"), folder, 0.1)))
        worker.start()
        worker.join(timeout=2)
        assert worker.is_alive() and not done  # blocked while another trial holds the lock
        assert len(client.search_model_versions("name = 'locked'")) == 1
    worker.join(timeout=60)
    assert done == [(2, champion.Standing(2, 0.1))]


def test_a_pending_version_whose_trial_died_never_takes_the_alias(registry_store):
    """A trial killed between registering and settling leaves its version pending: it must not win later."""
    client, uri, folder = registry_store
    alias = alias_of(client, uri, "abandoned")
    register(alias, folder, 0.5)
    experiment = client.create_experiment("abandoned-trials")
    killed = client.create_run(experiment).info.run_id
    client.set_terminated(killed, "KILLED")
    pending = {champion.OBJECTIVE: "test_msle", champion.DECISION: "pending", champion.OBJECTIVE_VALUE: "0.01"}
    client.create_model_version("abandoned", str(folder), run_id=killed, tags=pending)  # better, but abandoned
    assert register(alias, folder, 0.4) == (3, champion.Standing(3, 0.4))
