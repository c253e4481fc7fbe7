"""params.yaml stays compiled from conf/, DVC stages run what it says, `dvc repro` is reproducible."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, TINY, cli_env, run_cli, store_client, trials_of
from mlexp import tasks
from mlexp.config import params

VENV_BIN = str(Path(sys.executable).parent)


def test_params_yaml_is_in_sync_with_conf():
    fresh = params.render(params.compile_params(REPO / "conf", sorted(tasks.load_all())))
    assert (REPO / "params.yaml").read_text() == fresh, "params.yaml drifted from conf/: run `mlexp params`"


def test_params_check_command_detects_drift(tmp_project):
    run_cli(tmp_project, "params")
    assert run_cli(tmp_project, "params", "--check").returncode == 0
    (tmp_project / "conf" / "model" / "mlp_regressor.yaml").write_text(
        (tmp_project / "conf" / "model" / "mlp_regressor.yaml").read_text().replace("l1_size: 32", "l1_size: 33")
    )
    done = run_cli(tmp_project, "params", "--check", check=False)
    assert done.returncode == 1 and "out of date" in done.stderr


def test_params_file_decides_what_the_stage_runs_with_and_cli_values_still_win(tmp_project):
    run_cli(tmp_project, "params")
    sections = yaml.safe_load((tmp_project / "params.yaml").read_text())
    sections["tabular_regression"]["model"]["l1_size"] = 5
    sections["tabular_regression"]["model"]["epochs"] = 3
    (tmp_project / "params.yaml").write_text(yaml.safe_dump(sections))
    run_cli(tmp_project, "task=tabular_regression", "params_file=params.yaml", "dataset.n_rows=300", "model.epochs=1")
    [trial] = trials_of(tmp_project)
    assert trial.params["model.l1_size"] == "5"
    assert trial.params["model.epochs"] == "1"


def _dvc(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in cli_env(workdir).items() if k != "MLEXP_ROOT"}
    env["PATH"] = VENV_BIN + os.pathsep + env.get("PATH", "")
    done = subprocess.run(
        [os.path.join(VENV_BIN, "dvc"), *args], cwd=workdir, env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, f"dvc {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """The project's tracked files in a fresh git repository, with tiny sizes in params.yaml."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True, text=True)
    copy = tmp_path / "repo"
    for name in listed.stdout.splitlines():
        source = REPO / name
        if source.is_file() and not name.startswith(("data/", "models/", "reports/")):
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    for lock in copy.rglob("dvc.lock"):
        lock.unlink()
    sections = yaml.safe_load((copy / "params.yaml").read_text())
    for override in TINY:
        key, value = override.split("=")
        group, name = key.split(".")
        sections["tabular_regression"][group][name] = int(value)
    (copy / "params.yaml").write_text(yaml.safe_dump(sections, sort_keys=False))
    for command in (["init", "-q"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"]):
        subprocess.run(["git", *command], cwd=copy, check=True, capture_output=True)
    return copy


@pytest.mark.slow
def test_dvc_repro_runs_the_pipeline_as_one_trial_then_nothing(repo_copy):
    pipeline = "pipelines/tabular_regression/dvc.yaml"  # each task's tests cover its own pipeline
    first = _dvc(repo_copy, "repro", pipeline)
    for stage in ("abalone_raw", "prepare", "train", "evaluate"):
        assert "Running stage" in first.stdout and stage in first.stdout
    [trial] = trials_of(repo_copy)
    assert trial.status == "FINISHED"
    assert trial.component_names == {"Pre-processing", "Training", "Evaluation"}
    assert trial.params["model.epochs"] == "2"
    assert (repo_copy / "reports" / "tabular_regression" / "metrics.json").exists()
    assert "tabular_regression" in _dvc(repo_copy, "metrics", "show").stdout

    second = _dvc(repo_copy, "repro", pipeline)
    assert "Running stage" not in second.stdout
    assert "up to date" in second.stdout
    assert len(trials_of(repo_copy)) == 1

    # a changed model parameter reruns train and evaluate only, as a new trial
    _dvc(repo_copy, "exp", "run", "-S", "tabular_regression.model.l1_size=4", pipeline)
    trials = trials_of(repo_copy)
    assert len(trials) == 2
    newest = next(t for t in trials if t.run_id != trial.run_id)
    assert newest.params["model.l1_size"] == "4"
    assert newest.component_names == {"Training", "Evaluation"}
    assert store_client(repo_copy).get_run(newest.run_id).data.metrics["test_msle"] > 0
