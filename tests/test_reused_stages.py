"""A partial `dvc repro` reuses the stages DVC kept: its trial links each to the component that made its outputs,
with that component's metrics, so it compares with full trials; a source the store does not hold is said, not made up.
(The tabular pipeline's partial runs follow its full run in test_params_and_dvc.py, which pays for one pipeline run;
the churn pipeline's stages kept after the one that ran: test_churn_incentives_reused_stages.py.)"""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml

from conftest import seed_store, store_client, trials_of
from mlexp import tasks
from mlexp.kept_stages import Pipeline
from mlexp.tracking.producers import agrees


def by_start(repo: Path, experiment: str):
    """The experiment's trials, oldest first."""
    client = store_client(repo)
    return sorted(trials_of(repo, experiment), key=lambda t: client.get_run(t.run_id).info.start_time)


def metrics_of(repo: Path, run_id: str) -> dict[str, float]:
    return store_client(repo).get_run(run_id).data.metrics


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_a_stage_is_kept_when_command_dependencies_params_and_outputs_are_those_of_the_lock(tmp_path):
    (tmp_path / "pipelines" / "tabular_regression").mkdir(parents=True)
    (tmp_path / "in.txt").write_text("data\n")
    (tmp_path / "out.txt").write_text("result\n")
    stage = {"wdir": "../..", "cmd": "mlexp stage=evaluate", "deps": ["in.txt"], "outs": ["out.txt"]}
    stage["params"] = ["tabular_regression.model.learning_rate"]
    (tmp_path / "pipelines" / "tabular_regression" / "dvc.yaml").write_text(
        yaml.safe_dump({"stages": {"evaluate": stage}})
    )
    # DVC writes the lock as YAML 1.2, where 1e-10 is a number (YAML 1.1 reads it as text)
    lock = (
        "schema: '2.0'\nstages:\n  evaluate:\n    cmd: mlexp stage=evaluate\n"
        f"    deps:\n    - path: in.txt\n      md5: {_md5(tmp_path / 'in.txt')}\n"
        "    params:\n      params.yaml:\n        tabular_regression.model.learning_rate: 1e-10\n"
        f"    outs:\n    - path: out.txt\n      md5: {_md5(tmp_path / 'out.txt')}\n"
    )
    (tmp_path / "pipelines" / "tabular_regression" / "dvc.lock").write_text(lock)
    params = tmp_path / "params.yaml"
    params.write_text("tabular_regression:\n  model:\n    learning_rate: 1.0e-10\n")
    task = tasks.get("tabular_regression")

    def kept() -> bool:
        pipeline = Pipeline.read(tmp_path, task)
        assert pipeline is not None
        return pipeline.unchanged("evaluate")

    assert kept()
    params.write_text("tabular_regression:\n  model:\n    learning_rate: 0.01\n")
    assert not kept()
    params.write_text("tabular_regression:\n  model:\n    learning_rate: 1.0e-10\n")
    (tmp_path / "in.txt").write_text("other data\n")
    assert not kept()
    (tmp_path / "in.txt").write_text("data\n")
    (tmp_path / "out.txt").unlink()
    assert not kept()


def test_a_trials_params_agree_with_the_locked_values_whatever_their_text():
    logged = {"model.gamma": "4.0", "model.num_round": "24", "preprocessing.drop_columns": "['Phone', 'Day Charge']"}
    assert agrees(
        logged, {"model.gamma": 4.0, "model.num_round": 24.0, "preprocessing.drop_columns": ["Phone", "Day Charge"]}
    )
    assert not agrees(logged, {"model.gamma": 5.0})
    assert not agrees(logged, {"model.eta": 0.2})  # a param the trial did not record cannot vouch for it


def test_the_producer_is_the_component_whose_trial_ran_with_the_locked_params_not_the_first_with_the_digest(
    tmp_path, empty_store
):
    from mlexp.tracking import tags
    from mlexp.tracking.producers import Wanted, read_producers

    seed_store(tmp_path, empty_store)  # MLflow's schema, made once per test process (its migration: seconds)
    client = store_client(tmp_path)
    experiment = client.create_experiment("churn", artifact_location=(tmp_path / "artifacts").as_uri())
    made = {}
    for threads, auc in ((1, 0.81), (2, 0.83), (2, 0.99)):  # the third: its component is not FINISHED
        trial = client.create_run(experiment, run_name=f"trial-{len(made)}")
        client.log_param(trial.info.run_id, "model.nthread", threads)
        component = client.create_run(
            experiment,
            run_name="Training",
            tags={tags.MLFLOW_PARENT_RUN_ID: trial.info.run_id, tags.STAGE: "train", tags.OUTPUTS_DIGEST: "d1"},
        )
        client.log_metric(component.info.run_id, "val_auc", auc)
        if auc < 0.9:
            client.set_terminated(component.info.run_id, "FINISHED")
        made[component.info.run_id] = trial.info.run_id
    # the same outputs from two trials (nthread changes no bit of them): the one whose params dvc.lock records
    found = read_producers(client, "churn", [Wanted("train", "d1", {"model.nthread": 2}, ["val_auc"])])
    assert found["train"].metrics == {"val_auc": 0.83} and found["train"].histories == {"val_auc": [(0, 0.83)]}
    assert made[found["train"].run_id] == found["train"].trial_id
    earliest = read_producers(client, "churn", [Wanted("train", "d1", {"model.nthread": 1})])
    assert earliest["train"].metrics == {"val_auc": 0.81}
    assert read_producers(client, "churn", [Wanted("train", "d1", {"model.nthread": 3})]) == {}
    client.delete_run(found["train"].trial_id)  # a deleted trial (MLflow can restore it) is no source to show
    assert read_producers(client, "churn", [Wanted("train", "d1", {"model.nthread": 2})]) == {}
    assert read_producers(client, "churn", [Wanted("train", "other", {"model.nthread": 2})]) == {}


def test_a_link_that_cannot_be_made_is_a_warning_not_a_failed_stage(monkeypatch, capsys):
    from types import SimpleNamespace

    from mlexp import reused_stages
    from mlexp.trial_continuation import DVC_STAGE_ENV

    def store_refuses(*args):
        raise OSError("database is locked")

    monkeypatch.setenv(DVC_STAGE_ENV, "train")
    monkeypatch.setattr(reused_stages, "_link_kept_stages", store_refuses)
    trial = SimpleNamespace(component_runs={"train": "run-1"})
    reused_stages.link_kept_stages(None, None, trial)  # type: ignore[arg-type]  # the stage ran: nothing is raised
    assert capsys.readouterr().err == (
        "mlexp: warning: the stages DVC kept are not linked to their components: OSError: database is locked\n"
    )
