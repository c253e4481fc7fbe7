"""Fixtures: a throw-away copy of the project, the real CLI, and a reader of its MLflow store."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

REPO = Path(__file__).resolve().parents[1]
# tiny sizes: a trial of the abalone task takes a few seconds
TINY = ("dataset.n_rows=300", "model.epochs=2")


@pytest.fixture
def tmp_project(tmp_path: Path) -> Path:
    """A project folder with the repository's conf/: trials, data and stores land in it."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copytree(REPO / "conf", project / "conf")
    return project


def cli_env(project: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLEXP_"))}
    env["MLEXP_ROOT"] = str(project)
    return env


def run_cli(project: Path, *args: str, check: bool = True, env: dict[str, str] | None = None):
    """Run the real `mlexp` entry point in `project`; returns the finished process."""
    done = subprocess.run(
        [sys.executable, "-m", "mlexp.cli", *args],
        cwd=project,
        env=env or cli_env(project),
        capture_output=True,
        text=True,
        timeout=600,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"mlexp {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


@dataclass
class TrialView:
    run_id: str
    name: str
    status: str
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]
    components: dict[str, str] = field(default_factory=dict)  # display name -> run id

    @property
    def component_names(self) -> set[str]:
        return set(self.components)


def store_client(project: Path) -> MlflowClient:
    return MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")


def trials_of(project: Path, experiment: str = "tabular_regression", client: MlflowClient | None = None):
    client = client or store_client(project)
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no experiment {experiment!r}"
    runs = client.search_runs([found.experiment_id], max_results=1000)
    trials = {
        r.info.run_id: TrialView(
            r.info.run_id, r.info.run_name, r.info.status, r.data.params, r.data.metrics, r.data.tags
        )
        for r in runs
        if r.data.tags.get("mlexp.kind") == "trial"
    }
    for r in runs:
        parent = r.data.tags.get("mlflow.parentRunId")
        if r.data.tags.get("mlexp.kind") == "component" and parent in trials:
            trials[parent].components[r.info.run_name] = r.info.run_id
    return list(trials.values())
