"""A text_classification and a recommendation training job's model, brought back and registered on this machine.

AWS is moto in this process (tests/sagemaker_aws.py); each job's container is played for real (tests/sagemaker_jobs.py):
the uploaded code's entry runs the trial in a temporary /opt/ml, its model folder becomes the job's model.tar.gz.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from conftest import TEXT_TINY, store_client, trials_of
from sagemaker_aws import FakeAws, run_in_process, sagemaker_aws  # noqa: F401
from sagemaker_aws import job_overrides as sagemaker_job
from sagemaker_fixtures import job_aws, job_project_per_test, sdk_loaded_once  # noqa: F401
from sagemaker_jobs import completed_job, registered_version, run_entry

TEXT = "text_classification"


def test_the_job_reads_each_chosen_groups_section_as_its_schema_types_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # the config travels as plain YAML: the job's active_learning stage got a dict where it reads its dataclass
    import json

    from omegaconf import OmegaConf

    from drawn_charts import task_config
    from mlexp.sagemaker import entry, packaging
    from mlexp.tasks.text_classification.config import ActiveLearning, Calibration, Strategy

    monkeypatch.setenv("MLEXP_ROOT", str(tmp_path))
    cfg = task_config(TEXT, "model=tfidf_naive_bayes")
    (tmp_path / packaging.CONFIG_FILE).write_text(OmegaConf.to_yaml(packaging.container_config(cfg)))
    choices = {"task": TEXT, "model": "tfidf_naive_bayes", "active_learning": "uncertainty_sampling"}
    (tmp_path / packaging.JOB_FILE).write_text(json.dumps({"choices": choices}))
    monkeypatch.setenv("SM_HPS", json.dumps({"model.calibration": "isotonic"}))

    job = entry.load_config(tmp_path)
    settings = OmegaConf.to_object(job.active_learning)
    assert isinstance(settings, ActiveLearning) and settings.strategies[0] is Strategy.random
    assert job.model.calibration is Calibration.isotonic  # a hyperparameter is typed by the schema too
    assert job.compute.target == "local"


def test_a_text_jobs_model_comes_back_with_its_holdout_registers_and_classifies_as_the_job_did(
    aws: FakeAws, project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    from mlexp.tasks.text_classification.classifier import TextClassifier

    opt_ml = tmp_path / "opt_ml"
    with completed_job(aws, lambda params: run_entry(aws, params, opt_ml)) as job_metrics:
        run_id = run_in_process(project, sagemaker_job(aws, TEXT, "text_jobs", *TEXT_TINY))
    name = aws.calls("CreateTrainingJob")[0]["TrainingJobName"]
    # the holdout the deploy stage re-scores a champion on came back beside the classifier
    (run,) = (project / "outputs" / TEXT).iterdir()
    job_holdout = opt_ml / "output" / "data" / "data" / "corpus" / "holdout.csv"
    assert (run / "data" / "corpus" / "holdout.csv").read_bytes() == job_holdout.read_bytes()
    assert (run / "models" / "classifier.pkl").is_file() and not (run / "models" / "mlexp_data").exists()

    (command,) = re.findall(r"^register its model: (.*)$", capsys.readouterr().out, re.MULTILINE)
    words = shlex.split(command)
    assert words[:2] == [f"MLEXP_PIPELINE_RUN=sagemaker-{name}", "mlexp"], command
    monkeypatch.setenv("MLEXP_PIPELINE_RUN", f"sagemaker-{name}")
    assert run_in_process(project, words[2:]) == run_id  # the deploy stage joined the job's trial
    assert f"registered models:/{TEXT}@champion (version 1, holdout_macro_f1 " in capsys.readouterr().out

    (trial,) = trials_of(project, "text_jobs")
    assert trial.status == "FINISHED" and list(trial.components) == ["Deployment"]
    assert {key: trial.metrics[key] for key in job_metrics} == job_metrics  # what the job's log reported
    (version,) = store_client(project).search_model_versions(f"name = '{TEXT}'")
    assert version.tags["mlexp.trial_run_id"] == run_id
    assert float(version.tags["mlexp.objective_value"]) == job_metrics["holdout_macro_f1"]

    model = registered_version(project, TEXT, version.version)
    texts = model.input_example
    answers = model.predict(texts)
    # what the job's own classifier, as it left /opt/ml/model, says of the same texts
    expected = TextClassifier.load(opt_ml / "model").predict_many(texts["text"].tolist())
    assert answers["class"].tolist() == [label for label, _ in expected]
    assert answers["score"].to_numpy() == pytest.approx([score for _, score in expected], rel=1e-9)


RECOMMENDATION = "recommendation"
# a trained recipe (ALS factors in the model folder), at the recommendation tests' tiny sizes
RECOMMENDATION_TINY = (
    "dataset.n_users=300",
    "dataset.n_videos=300",
    "dataset.n_interactions=10000",
    "model.user_personalization.iterations=3",
)


def test_deploy_registry_with_a_recommendation_job_registers_its_model_here_and_recommends_as_the_job_would(
    aws: FakeAws, project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    import pandas as pd

    from mlexp.tasks.recommendation import registered_dataset
    from mlexp.tasks.recommendation.registered_model import Recommendations

    opt_ml = tmp_path / "opt_ml"
    overrides = sagemaker_job(aws, RECOMMENDATION, "recommendation_jobs", *RECOMMENDATION_TINY, "deploy=registry")
    with completed_job(aws, lambda params: run_entry(aws, params, opt_ml)) as job_metrics:
        run_id = run_in_process(project, overrides)
    objective = "val_normalized_discounted_cumulative_gain_at_10"
    assert f"registered models:/{RECOMMENDATION}@champion (version 1, {objective} " in capsys.readouterr().out
    # the whole model is model.tar.gz: nothing of paths.data travelled, no mlexp_data folder is left behind
    (run,) = (project / "outputs" / RECOMMENDATION).iterdir()
    assert not (run / "data").exists() and not (run / "models" / "mlexp_data").exists()

    (trial,) = trials_of(project, "recommendation_jobs")
    assert trial.run_id == run_id and trial.status == "FINISHED" and list(trial.components) == ["Deployment"]
    assert objective in job_metrics and {key: trial.metrics[key] for key in job_metrics} == job_metrics
    (version,) = store_client(project).search_model_versions(f"name = '{RECOMMENDATION}'")
    assert version.tags["mlexp.trial_run_id"] == run_id
    assert float(version.tags["mlexp.objective_value"]) == job_metrics[objective]
    assert version.tags[registered_dataset.DATASET_TAG].startswith("pulselive_videos (")  # the job's catalogue

    model = registered_version(project, RECOMMENDATION, version.version)
    users = model.input_example
    answers = model.predict(users)
    # what the job's own model folder, as it left /opt/ml/model, recommends to the same users
    job_model = Recommendations()
    job_model.load_context(type("Context", (), {"artifacts": {"model": str(opt_ml / "model")}})())
    expected = job_model.predict(None, users)
    pd.testing.assert_frame_equal(answers, expected)
    assert [len(items.split("|")) for items in answers["itemList"]] == users["numResults"].tolist()


DETECTION = "object_detection"
# a tiny generated football job: its data made in the job (dataset.path=null), one epoch (about 20 s)
DETECTION_TINY = ("model.epochs=1", "compute.num_threads=1")


@pytest.mark.filterwarnings("ignore:Cannot decide type")  # MXNet's first forward, about its own graph
def test_deploy_registry_with_a_detection_job_registers_its_network_here_and_detects_as_the_job_would(
    aws: FakeAws, project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    import sys

    import numpy as np
    from omegaconf import OmegaConf

    from mlexp.tasks.object_detection import registered_model
    from mlexp.tasks.object_detection.config import DetectionAugmentation
    from mlexp.tasks.object_detection.endpoint import FootballDetector
    from object_detection_tiny import TINY_TILED_TRIAL

    opt_ml = tmp_path / "opt_ml"
    overrides = sagemaker_job(aws, DETECTION, "detection_jobs", *TINY_TILED_TRIAL, *DETECTION_TINY, "deploy=registry")
    with completed_job(aws, lambda params: run_entry(aws, params, opt_ml)) as job_metrics:
        run_id = run_in_process(project, overrides)
    assert f"registered models:/{DETECTION}@champion (version 1, val_map_50 " in capsys.readouterr().out
    # the input example's frames came back, not the job's splits
    (run,) = (project / "outputs" / DETECTION).iterdir()
    assert sorted(p.name for p in (run / "data").iterdir()) == ["input_example.idx", "input_example.rec"]

    (trial,) = trials_of(project, "detection_jobs")
    assert trial.run_id == run_id and trial.status == "FINISHED" and list(trial.components) == ["Deployment"]
    assert "val_map_50" in job_metrics and {key: trial.metrics[key] for key in job_metrics} == job_metrics
    (version,) = store_client(project).search_model_versions(f"name = '{DETECTION}'")
    assert version.tags["mlexp.trial_run_id"] == run_id
    assert float(version.tags["mlexp.objective_value"]) == job_metrics["val_map_50"]

    path_before = list(sys.path)  # loading prepends the model's code/ to sys.path
    try:
        model = registered_version(project, DETECTION, version.version)
        frames = model.input_example
        answers = model.predict(frames, params={"score_threshold": 0.0})
    finally:
        sys.path[:] = path_before
    job_val = opt_ml / "output" / "data" / "data" / "val.rec"
    assert frames["image"].tolist() == registered_model.example_images(job_val)["image"].tolist()
    # what the job's own network, as it left /opt/ml/model, finds in the same frames
    travelled = OmegaConf.load(opt_ml / "input" / "data" / "code" / "mlexp_config.yaml")
    augmentation = DetectionAugmentation(**OmegaConf.to_container(travelled.preprocessing))  # type: ignore[arg-type]
    job_network = FootballDetector(opt_ml / "model", augmentation, float(travelled.model.score_threshold))
    expected = [job_network.detect(image, 0.0) for image in frames["image"]]
    for answer, found in zip(answers.itertuples(), expected, strict=True):
        assert list(answer.scores) == pytest.approx(found["scores"]) and len(found["scores"]) > 0
        assert np.array([list(box) for box in answer.boxes]) == pytest.approx(np.array(found["boxes"]))
