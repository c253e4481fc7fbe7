"""A wrong override fails before any work, naming the key, the bad value and the valid choices."""

from __future__ import annotations

import time
from pathlib import Path

from conftest import run_cli


def _fails(project: Path, *args: str) -> str:
    started = time.monotonic()
    done = run_cli(project, *args, check=False)
    assert done.returncode != 0, done.stdout
    # no trial was opened: validation runs before anything is tracked
    assert not (project / "mlflow.db").exists()
    assert time.monotonic() - started < 30
    return done.stderr


def test_unknown_key_names_the_key(tmp_project):
    message = _fails(tmp_project, "task=tabular_regression", "model.l1_sise=64")
    assert "model.l1_sise is not a key of model; did you mean model.l1_size?" in message
    assert "valid keys: batch_size, epochs, l1_activation, l1_size" in message


def test_unknown_key_in_a_sweep_is_refused_before_any_trial(tmp_project):
    message = _fails(tmp_project, "-m", "task=tabular_regression", "model.l1_sise=8,16")
    assert "did you mean model.l1_size?" in message


def test_wrong_type_names_key_and_value(tmp_project):
    message = _fails(tmp_project, "task=tabular_regression", "model.l1_size=big")
    assert "model.l1_size" in message and "big" in message


def test_unknown_enum_value_lists_valid_values(tmp_project):
    message = _fails(tmp_project, "task=tabular_regression", "model.l1_activation=swish")
    assert "swish" in message
    assert "relu" in message and "tanh" in message


def test_unknown_group_option_lists_the_options(tmp_project):
    message = _fails(tmp_project, "task=tabular_regression", "model=transformer")
    assert "transformer" in message and "mlp_regressor" in message


def test_unknown_task_lists_the_tasks(tmp_project):
    message = _fails(tmp_project, "task=no_such_task")
    assert "no_such_task" in message and "tabular_regression" in message


def test_option_of_another_task_is_refused_with_the_task_options(tmp_project):
    # a model option that exists in conf/ but does not belong to this task
    other = tmp_project / "conf" / "model" / "other_regressor.yaml"
    other.write_text((tmp_project / "conf" / "model" / "mlp_regressor.yaml").read_text())
    message = _fails(tmp_project, "task=tabular_regression", "model=other_regressor")
    assert "model='other_regressor' is not a model option of task 'tabular_regression'" in message
    assert "mlp_regressor" in message
    assert "Traceback" not in message


def test_unknown_stage_lists_the_stages(tmp_project):
    message = _fails(tmp_project, "task=tabular_regression", "stage=fit")
    assert "stage='fit'" in message and "prepare, train, evaluate" in message


def test_cfg_job_prints_the_composed_config(tmp_project):
    done = run_cli(tmp_project, "--cfg", "job", "task=tabular_regression", "model.l1_size=7")
    assert "l1_size: 7" in done.stdout
    assert "metric: test_msle" in done.stdout


def test_help_lists_tasks_and_groups(tmp_project):
    out = run_cli(tmp_project, "--help").stdout
    task_line = next(line for line in out.splitlines() if line.strip().startswith("task:"))
    assert "tabular_regression" in task_line
    assert "Abalone age regression" in out  # each task with its description
    for group in ("dataset", "preprocessing", "model", "sweep", "compute", "deploy", "tracking"):
        assert f"{group}:" in out
    assert "schema/" not in out
