"""Deleting an experiment hierarchically: its trials, components, artifacts, sweep records, registered versions and
shared Pre-processing outputs go for good, the name can be used again, and other experiments keep everything."""

from __future__ import annotations

import json
import os
import pty
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from mlflow.entities import ViewType
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from conftest import TINY, run_cli, store_client, trials_of
from mlexp.cleanup import DeletionNotConfirmed, ExperimentNotFound, delete_experiment
from mlexp.commands.store import run_delete
from mlexp.tracking import TrackingStore
from mlexp.trial_continuation import Marker, marker_path, write_marker


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def _shared(project: Path) -> dict[str, Path]:
    """Component run id -> the shared Pre-processing folder it published."""
    records = (project / ".mlexp" / "shared").glob("*/*/component.json")
    return {json.loads(r.read_text())["run_id"]: r.parent for r in records}


@pytest.fixture(autouse=True)
def _project_store_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.mark.usefixtures("tmp_project_with_store")  # the store's first set-up is other tests' concern
def test_delete_removes_the_experiment_and_leaves_the_other(
    tmp_project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("MLEXP_ROOT", str(tmp_project))  # run_delete finds the project as the CLI does
    # "kept": one trial on other data (its own shared outputs); "doomed": a sweep of 2 trials. One after the other,
    # both forked from the suite's CLI server: a trial of its own interpreter alongside cost seconds more CPU
    kept_args = ["task=tabular_regression", "dataset.n_rows=320", "model.epochs=2", "tracking.experiment_name=kept"]
    run_cli(tmp_project, *kept_args, "deploy=registry")
    run_cli(
        tmp_project,
        "-m",
        "task=tabular_regression",
        *TINY,
        "tracking.experiment_name=doomed",
        "deploy=registry",
        # a `'` in the name, as a user may type one: it ended MLflow's search filters (registration's, deletion's)
        'deploy.model_name="doomed\'s_model"',
        "model.l1_size=4,8",
    )
    client = store_client(tmp_project)
    doomed, kept = trials_of(tmp_project, "doomed", client), trials_of(tmp_project, "kept", client)
    doomed_runs = {t.run_id for t in doomed} | {c for t in doomed for c in t.components.values()}
    sweep_ids = {t.tags["mlexp.sweep_id"] for t in doomed if "mlexp.sweep_id" in t.tags}
    artifacts = tmp_project / "mlartifacts"
    kept_files = _files(artifacts / "kept")
    assert len(doomed) == 2 and len(sweep_ids) == 1 and _files(artifacts / "doomed") and kept_files
    sweep_jobs = [tmp_project / ".mlexp" / "sweeps" / sweep_id for sweep_id in sweep_ids]
    assert all(folder.exists() for folder in sweep_jobs)
    assert len(client.search_model_versions('name = "doomed\'s_model"')) == 2
    shared_before = _shared(tmp_project)
    doomed_shared = [folder for run_id, folder in shared_before.items() if run_id in doomed_runs]
    kept_shared = [folder for run_id, folder in shared_before.items() if run_id not in doomed_runs]
    assert len(doomed_shared) == 1 and len(kept_shared) == 1

    # without force: one line saying what would go and how to confirm; nothing touched
    with pytest.raises(DeletionNotConfirmed) as refused:
        delete_experiment("doomed", root=tmp_project)
    message = str(refused.value)
    assert "\n" not in message
    for expected in ("2 trials", "1 sweep record", "2 registered model versions", "force=True", "--force"):
        assert expected in message
    assert run_delete(["experiment=doomed"]) == 1  # stdin is not a terminal under pytest: refused
    assert "no terminal to confirm on; add --force" in capsys.readouterr().err
    assert len(trials_of(tmp_project, "doomed", client)) == 2 and doomed_shared[0].exists()

    report = delete_experiment("doomed", force=True, root=tmp_project)
    assert report.deleted and report.permanent and report.registered_models == ["doomed's_model"]

    # gone for good: no experiment (even deleted), no run, no artifact folder, no version, no sweep, no shared output
    names = {e.name for e in client.search_experiments(view_type=ViewType.ALL)}
    assert names == {"Default", "kept"}
    for run_id in doomed_runs | sweep_ids:
        with pytest.raises(MlflowException):
            client.get_run(run_id)
    assert not (artifacts / "doomed").exists() and not (artifacts / "doomed-sweeps").exists()
    assert [m.name for m in client.search_registered_models()] == ["tabular_regression"]
    assert not doomed_shared[0].exists()
    assert not any(folder.exists() for folder in sweep_jobs)

    # the other experiment keeps its trial, artifacts, registered model and shared outputs
    (after,) = trials_of(tmp_project, "kept", client)
    assert (after.run_id, after.status, after.components) == (kept[0].run_id, "FINISHED", kept[0].components)
    assert _files(artifacts / "kept") == kept_files
    assert client.get_model_version_by_alias("tabular_regression", "champion").run_id in kept[0].components.values()
    assert kept_shared[0].exists()

    # the name is free: mlexp creates it afresh, empty
    experiment_id = TrackingStore.resolve(None, tmp_project).experiment_id("doomed")
    assert client.search_runs([experiment_id], run_view_type=ViewType.ALL) == []


def _trial(client: MlflowClient, experiment_id: str, name: str) -> tuple[str, str]:
    """A trial with one Training component holding a file, as mlexp records them (no training needed here)."""
    trial = client.create_run(experiment_id, run_name=name, tags={"mlexp.kind": "trial"})
    component = client.create_run(
        experiment_id,
        run_name="Training",
        tags={"mlexp.kind": "component", "mlflow.parentRunId": trial.info.run_id},
    )
    client.log_text(component.info.run_id, "weights", "model/weights.txt")
    for run in (component, trial):
        client.set_terminated(run.info.run_id)
    return trial.info.run_id, component.info.run_id


def _register(client: MlflowClient, trial_id: str, component_id: str, test_msle: float) -> str:
    about = {"mlexp.trial_run_id": trial_id, "mlexp.objective": "test_msle", "mlexp.direction": "minimize"}
    version = client.create_model_version(
        "abalone",
        f"runs:/{component_id}/model",
        run_id=component_id,
        tags={**about, "mlexp.objective_value": repr(test_msle)},
    )
    return str(version.version)


@pytest.fixture
def hand_made_store(tmp_project_with_store: Path) -> MlflowClient:
    """Experiments a (the champion's trial) and b (two worse versions), written with MLflow's client
    (in a copy of an empty store: creating one takes seconds)."""
    store = TrackingStore.resolve(None, tmp_project_with_store)
    client = store.client()
    client.create_registered_model("abalone")
    trial_a = _trial(client, store.experiment_id("a"), "a-0")
    trials_b = [_trial(client, store.experiment_id("b"), f"b-{i}") for i in range(2)]
    champion = _register(client, *trial_a, test_msle=0.1)
    _register(client, *trials_b[0], test_msle=0.3)
    _register(client, *trials_b[1], test_msle=0.2)
    client.set_registered_model_alias("abalone", "champion", champion)
    return client


def test_after_a_yes_on_the_terminal_the_champion_moves_to_the_best_version_left(
    tmp_project: Path,
    hand_made_store: MlflowClient,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    client = hand_made_store
    with pytest.raises(ExperimentNotFound, match="no experiment named 'c' .* its experiments: .*a"):
        delete_experiment("c", force=True, root=tmp_project)
    # a `dvc repro` left each experiment a marker of the trial its next stage continues
    uri = TrackingStore.resolve(None, tmp_project).uri
    markers = {}
    for name in ("a", "b"):
        markers[name] = marker_path(tmp_project, uri, name, "tabular_regression")
        write_marker(markers[name], Marker(trials_of(tmp_project, name, client)[0].run_id, "dvc-1-1"))
    # a terminal on stdin, the user's yes already typed on it; in this process (MLflow loaded), not a new interpreter
    terminal, answering = pty.openpty()
    os.write(terminal, b"y\n")
    monkeypatch.setenv("MLEXP_ROOT", str(tmp_project))  # run_delete finds the project as the CLI does
    with open(answering, encoding="utf-8") as stdin, monkeypatch.context() as patch:
        patch.setattr(sys, "stdin", stdin)
        code = run_delete(["experiment=a"])
    os.close(terminal)
    out, err = capsys.readouterr()

    assert code == 0, err
    assert "would delete experiment 'a'" in out and "1 registered model version (abalone/1)" in out
    assert "delete all of it? [y/N]" in out and "deleted experiment 'a' for good" in out
    assert "moved abalone@champion to version 3 (test_msle 0.2), the best version left" in out
    assert client.get_experiment_by_name("a") is None
    assert sorted(int(v.version) for v in client.search_model_versions("name = 'abalone'")) == [2, 3]
    assert int(client.get_model_version_by_alias("abalone", "champion").version) == 3  # 0.2 beats 0.3
    assert len(trials_of(tmp_project, "b", client)) == 2
    assert not markers["a"].exists() and markers["b"].exists()


def test_delete_on_a_server_that_is_down_fails_in_seconds_in_one_line(tmp_project: Path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed once the block ends: nothing listens there
    started = time.monotonic()
    done = run_cli(
        tmp_project, "delete", "experiment=doomed", "--force", f"tracking.uri=http://127.0.0.1:{port}", check=False
    )
    assert time.monotonic() - started < 60  # MLflow's own retries take minutes
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"mlexp delete: error: cannot reach the tracking server http://127.0.0.1:{port} (Connection refused); "
        "check that it runs and that the address is right (tracking.uri, or $MLFLOW_TRACKING_URI)"
    )


# what a server answers every request with: MLflow's basic-auth app to no credentials (401, text) and to a user
# without the permission (403, MLflow's JSON error), or another web server at the address (404, a page)
ANSWERS = {
    401: b"You are not authenticated. Please see the MLflow docs on how to authenticate.",
    403: json.dumps({"error_code": "PERMISSION_DENIED", "message": "Permission denied"}).encode(),
    404: b"<html>Not Found</html>",
}


class _Refusing(BaseHTTPRequestHandler):
    """A web server on loopback that answers every request with one of ANSWERS."""

    status = 403

    def _answer(self) -> None:
        body = ANSWERS[self.status]
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize(
    ("status", "line"),
    [
        (
            401,
            "the tracking server {uri} refused the request (API request to endpoint /api/2.0/mlflow/experiments/search "
            "failed with error code 401 != 200. Response body: 'You are not authenticated. Please see the MLflow docs "
            "on how to authenticate.'); sign in with MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or "
            "MLFLOW_TRACKING_TOKEN) in the environment",
        ),
        (
            403,
            "the tracking server {uri} refused the request (PERMISSION_DENIED: Permission denied); use an account the "
            "server lets read its experiments",
        ),
        (
            404,
            "MLflow: API request to endpoint /api/2.0/mlflow/experiments/get-by-name failed with error code 404 != "
            "200. Response body: '<html>Not Found</html>'",
        ),
    ],
)
def test_a_server_that_refuses_the_commands_requests_is_one_line(tmp_project: Path, status: int, line: str):
    handler = type("Answering", (_Refusing,), {"status": status})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    uri = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        for command in (["compare", "experiment=x"], ["delete", "experiment=x", "--force"]):
            done = run_cli(tmp_project, *command, f"tracking.uri={uri}", check=False)
            assert done.stderr.strip() == f"mlexp {command[0]}: error: " + line.format(uri=uri), done.stderr
            assert done.returncode == (1 if status == 404 else 2)
    finally:
        server.shutdown()


def test_reading_commands_on_a_project_with_no_store_create_none(tmp_project: Path):
    for command in (["delete", "experiment=doomed", "--force"], ["compare", "task=tabular_regression"]):
        done = run_cli(tmp_project, *command, check=False)
        assert done.returncode == 2
        assert done.stderr.strip() == (
            f"mlexp {command[0]}: error: no tracking store at {tmp_project / 'mlflow.db'}: nothing has been recorded "
            "there yet; run `mlexp task=...` first, or point tracking.uri (or $MLFLOW_TRACKING_URI) at the store"
        )
        assert not list(tmp_project.glob("mlflow.db*"))


def test_a_running_experiment_is_refused_even_with_force(tmp_project: Path, hand_made_store: MlflowClient):
    client = hand_made_store
    experiment_id = client.get_experiment_by_name("b").experiment_id
    running = client.create_run(experiment_id, run_name="b-live", tags={"mlexp.kind": "trial"})  # a sweep in progress
    with pytest.raises(DeletionNotConfirmed, match="1 run\\(s\\) of 'b' are still RUNNING"):
        delete_experiment("b", force=True, root=tmp_project)
    assert client.get_run(running.info.run_id).info.status == "RUNNING"
    assert len(client.search_model_versions("name = 'abalone'")) == 3  # nothing deleted


def test_delete_takes_a_task_for_its_experiment_and_names_a_close_experiment(
    tmp_project: Path, hand_made_store: MlflowClient
):
    # a task's experiment is named by task=, as compare names it; was "unexpected argument 'task=...'"
    client = hand_made_store
    client.create_experiment("tabular_regression")
    done = run_cli(tmp_project, "delete", "task=tabular_regression", "--force")
    assert "the name 'tabular_regression' can be used again" in done.stdout
    assert client.get_experiment_by_name("tabular_regression") is None
    assert client.get_experiment_by_name("a") is not None
    done = run_cli(tmp_project, "delete", "experiment=bb", "--force", check=False)
    assert done.returncode == 2 and "no experiment named 'bb'" in done.stderr
    assert "did you mean b? its experiments:" in done.stderr
    done = run_cli(tmp_project, "delete", "task=tabular_regresion", check=False)
    assert done.returncode == 2
    assert "task='tabular_regresion' is not a task; did you mean tabular_regression? choose one of" in done.stderr
    done = run_cli(tmp_project, "delete", "task=tabular_regression", "experiment=a", check=False)
    assert done.returncode == 2 and "not both" in done.stderr
    # a task's experiment that other tasks' trials share (tracking.experiment_name) is not deleted by task=
    shared = client.create_experiment("tabular_regression")
    for name, task in (("abalone", "tabular_regression"), ("churn", "churn_incentives")):
        client.set_terminated(
            client.create_run(shared, run_name=name, tags={"mlexp.kind": "trial", "mlexp.task": task}).info.run_id
        )
    done = run_cli(tmp_project, "delete", "task=tabular_regression", "--force", check=False)
    assert done.returncode == 2
    assert "experiment 'tabular_regression' of task=tabular_regression also holds trials of churn_incentives" in (
        done.stderr
    )
    assert client.get_experiment_by_name("tabular_regression") is not None


def test_a_forced_delete_by_task_reads_the_experiment_once(
    tmp_project: Path, hand_made_store: MlflowClient, monkeypatch: pytest.MonkeyPatch, capsys
):
    # it read every run and logged model of the experiment three times (the task check, the plan, the deletion)
    from mlexp import cleanup

    monkeypatch.setenv("MLEXP_ROOT", str(tmp_project))
    experiment = hand_made_store.create_experiment("tabular_regression")
    run = hand_made_store.create_run(experiment, tags={"mlexp.kind": "trial", "mlexp.task": "tabular_regression"})
    hand_made_store.set_terminated(run.info.run_id)
    surveys = []
    survey = cleanup._survey
    monkeypatch.setattr(cleanup, "_survey", lambda *args: surveys.append(args) or survey(*args))
    assert run_delete(["task=tabular_regression", "--force"]) == 0
    assert len(surveys) == 1 and hand_made_store.get_experiment_by_name("tabular_regression") is None
    assert "1 trial" in capsys.readouterr().out


def test_a_refused_delete_names_the_usage_its_help_prints(capsys):
    from mlexp import commands

    assert commands.run("delete", ["--help"]) == 0
    usage = capsys.readouterr().out.splitlines()[0]
    assert commands.run("delete", ["experiment=a", "task=tabular_regression"]) == 2
    assert capsys.readouterr().err.rstrip().endswith(f"; {usage}")
