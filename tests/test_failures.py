"""Bad input: one clear line, a non-zero exit, the trial stored as FAILED with its error."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import TINY, one_line_error, run_cli, store_client, trials_of

GOOD_ROW = "M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15,15"


@pytest.mark.usefixtures("tmp_project_with_store")  # the store's first set-up is other tests' concern
def test_malformed_row_fails_the_trial_with_one_clear_line(tmp_project):
    data = tmp_project / "abalone.data"
    data.write_text("\n".join([GOOD_ROW, "F,0.53,oops,0.135,0.677,0.2565,0.1415,0.21,9", GOOD_ROW]) + "\n")
    done = run_cli(tmp_project, "task=tabular_regression", f"dataset.path={data}", check=False)

    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("mlexp: error:")]
    assert len(errors) == 1
    assert "column diameter is not numeric in line 2" in errors[0]
    assert "marked FAILED" in errors[0]

    [trial] = trials_of(tmp_project)
    assert trial.status == "FAILED"
    assert trial.component_names == {"Pre-processing"}
    client = store_client(tmp_project)
    component = client.get_run(trial.components["Pre-processing"])
    assert component.info.status == "FAILED"
    assert "not numeric" in component.data.tags["mlexp.error"]
    error_text = client.download_artifacts(component.info.run_id, "error.txt", str(tmp_project / "dl"))
    assert "DataError" in Path(error_text).read_text()
    # nothing of the failed trial is reported as a result
    assert not list(tmp_project.rglob("metrics.json"))


@pytest.mark.usefixtures("tmp_project_with_store")  # the store's first set-up is other tests' concern
def test_unexpected_error_points_at_the_stored_traceback(tmp_project):
    # an error mlexp does not explain: the prepare stage's output folder cannot be made (procfs takes no folders)
    done = run_cli(tmp_project, "task=tabular_regression", "paths.data=/proc/self/mlexp-data", *TINY, check=False)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "FileNotFoundError" in done.stderr and "error.txt" in done.stderr
    [trial] = trials_of(tmp_project)
    assert trial.status == "FAILED"
    assert "FileNotFoundError" in trial.tags["mlexp.error"]


def test_missing_file_names_the_path_and_the_fix(tmp_project):
    # refused before the trial opens (tests/test_input_paths.py): one line, exit 2, nothing recorded
    message = one_line_error(tmp_project, "task=tabular_regression", "dataset.path=nowhere/abalone.data")
    assert message.startswith(f"dataset.path=nowhere/abalone.data: no such file ({tmp_project.resolve()}/nowhere/")
    assert "give the path of your copy" in message
    assert not list(tmp_project.rglob("reports"))


def test_a_stage_without_its_inputs_is_refused_before_a_trial_opens_with_the_way_out(tmp_project):
    done = run_cli(tmp_project, "task=tabular_regression", "stage=train", *TINY, check=False)
    assert done.returncode == 2  # refused, as a missing input path is
    assert "stage=train reads" in done.stderr and "/data, which no earlier stage wrote there" in done.stderr
    # train writes paths.models: pointing it at an earlier run's folder overwrote that run's model.params
    assert "dvc repro" in done.stderr and done.stderr.rstrip().endswith("folder: paths.data=<run folder>/data")
    done = run_cli(tmp_project, "task=tabular_regression", "stage=evaluate", *TINY, check=False)
    assert done.stderr.rstrip().endswith("folder: paths.data=<run folder>/data paths.models=<run folder>/models")
    assert not (tmp_project / "mlflow.db").exists() or not trials_of(tmp_project)


def test_deploy_local_for_a_task_without_an_endpoint_is_refused_before_training(tmp_project):
    done = run_cli(tmp_project, "task=tabular_regression", "deploy=local", *TINY, check=False)
    assert done.returncode == 2
    assert "deploy=local: task 'tabular_regression' has no HTTP endpoint" in done.stderr
    assert not (tmp_project / "mlflow.db").exists() or not trials_of(tmp_project)


def test_a_folder_path_that_names_a_file_is_refused_before_training(tmp_project):
    (tmp_project / "a_file").write_text("kept\n")
    done = run_cli(tmp_project, "task=tabular_regression", f"paths.models={tmp_project / 'a_file'}", *TINY, check=False)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"mlexp: error: paths.models={tmp_project / 'a_file'} is a file, not a folder; point paths.models at a folder"
    ]
    below = tmp_project / "a_file" / "models"
    done = run_cli(tmp_project, "task=tabular_regression", f"paths.models={below}", *TINY, check=False)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"mlexp: error: paths.models={below} lies under {tmp_project / 'a_file'}, which is a file, not a folder; "
        "point paths.models at a folder"
    ]
    assert (tmp_project / "a_file").read_text() == "kept\n"
    assert not (tmp_project / "mlflow.db").exists()  # no trial opened
