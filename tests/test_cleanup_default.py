"""MLflow's Default experiment is never deleted: the refusal names the MLflow command that deletes its runs
instead, and that command, run as written, does."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from conftest import cli_env, run_cli, store_client
from mlexp import cleanup_plan
from mlexp.cleanup import DeletionNotConfirmed, delete_experiment

KEPT = "MLflow expects its Default experiment (id 0) to exist, so it is not deleted"


def _runs_in_default(client: MlflowClient, count: int) -> list[str]:
    """Runs MLflow logged where no experiment was set."""
    ids = []
    for number in range(count):
        run = client.create_run("0", run_name=f"default-{number}")
        client.set_terminated(run.info.run_id)
        ids.append(run.info.run_id)
    return ids


def _refusal(project: Path, *args: str) -> str:
    done = run_cli(project, "delete", "experiment=Default", *args, check=False)
    assert done.returncode == 2, done.stdout + done.stderr
    (line,) = done.stderr.splitlines()
    prefix = "mlexp delete: error: "
    assert line.startswith(prefix)
    return line.removeprefix(prefix)


def _commands(message: str) -> list[str]:
    return re.findall(r"`([^`]+)`", message)


def _run_in_shell(project: Path, command: str) -> str:
    """Run a command a message names as a user pastes it; its output."""
    # `mlflow` is the one installed beside mlexp, as in the user's activated environment
    env = cli_env(project) | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(command, shell=True, cwd=project, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(autouse=True)
def _project_store_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def test_the_refusal_names_the_command_that_deletes_the_default_experiments_runs(tmp_project_with_store: Path):
    # was "...; delete its runs, not it", without saying how
    project = tmp_project_with_store
    client = store_client(project)
    (only,) = _runs_in_default(client, 1)
    uri = f"sqlite:///{project / 'mlflow.db'}"
    for force in ((), ("--force",)):
        message = _refusal(project, *force)
        assert message == (
            f"{KEPT}; delete its 1 run instead: `MLFLOW_TRACKING_URI={uri} mlflow runs delete --run-id {only}`"
        )
    client.delete_run(only)  # the command the loop below runs for each id (each `mlflow` call costs 4 CPU s)

    several = _runs_in_default(client, 2)
    message = _refusal(project)
    loop = f"for run in (.+); do MLFLOW_TRACKING_URI={re.escape(uri)} mlflow runs delete --run-id \\$run; done"
    listed = re.fullmatch(f"{re.escape(KEPT)}; delete its 2 runs instead: `{loop}`", message)
    assert listed is not None and sorted(listed[1].split()) == sorted(several), message
    _run_in_shell(project, *_commands(message))
    assert [client.get_run(run_id).info.lifecycle_stage for run_id in several] == ["deleted", "deleted"]

    assert _refusal(project) == f"{KEPT}; it holds no runs to delete"
    default = client.get_experiment("0")
    assert (default.name, default.lifecycle_stage) == ("Default", "active")


def test_too_many_runs_to_list_are_named_by_the_command_that_lists_them(
    tmp_project_with_store: Path, monkeypatch: pytest.MonkeyPatch
):
    project = tmp_project_with_store
    monkeypatch.setattr(cleanup_plan, "LISTED_DEFAULT_RUNS", 1)  # two runs stand for the many
    ids = _runs_in_default(store_client(project), 2)
    with pytest.raises(DeletionNotConfirmed) as refused:
        delete_experiment("Default", force=True, root=project)
    message = str(refused.value)
    uri = f"sqlite:///{project / 'mlflow.db'}"
    listing = f"MLFLOW_TRACKING_URI={uri} mlflow runs list --experiment-id 0"
    assert message == (
        f"{KEPT}; delete its 2 runs instead: `MLFLOW_TRACKING_URI={uri} mlflow runs delete --run-id <id>` for each id "
        f"`{listing}` prints"
    )
    printed = _run_in_shell(project, _commands(message)[1])
    assert all(run_id in printed for run_id in ids)
