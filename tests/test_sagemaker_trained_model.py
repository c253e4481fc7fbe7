"""compute=sagemaker, then the job's model registered on this machine: the deploy stage joins the job's trial.

AWS is moto in this process (tests/sagemaker_aws.py). The job's container is played for real: on CreateTrainingJob
the code archive that was uploaded runs `python -m mlexp.sagemaker.entry` in a temporary /opt/ml, and its model
folder becomes the job's model.tar.gz in S3, its metric lines the job's final metrics. The tabular jobs that train
alike, whatever this machine then does with their model, play it once per module (`tabular_job`).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from conftest import store_client, trials_of
from mlexp.runner import TrialFailed
from mlexp.sagemaker import trained_model
from sagemaker_aws import FakeAws, archive_of, run_in_process, sagemaker_aws  # noqa: F401
from sagemaker_aws import job_overrides as sagemaker_job
from sagemaker_fixtures import job_aws, job_project_per_test, sdk_loaded_once  # noqa: F401
from sagemaker_jobs import completed_job, registered_version, run_entry, unpack_code

TASK = "tabular_regression"
JOB_TINY = ("dataset.n_rows=300", "model.epochs=1")
Container = Callable[[dict[str, Any]], tuple[bytes, dict[str, float]]]


def job_overrides(aws: FakeAws, *more: str) -> list[str]:
    return sagemaker_job(aws, TASK, "abalone_jobs", *JOB_TINY, *more)


@pytest.fixture(scope="module")
def tabular_job(tmp_path_factory: pytest.TempPathFactory) -> Callable[[FakeAws, Path], Container]:
    """`tabular_job(aws, opt_ml)` plays the job's container in `opt_ml`, its entry run for real once per module.

    A job that trains from the same inputs as one played before (training_inputs) gets that run's /opt/ml model and
    output folders beside its own unpacked code, and its model.tar.gz and metrics; any other job runs the entry. The
    entry is a new interpreter and a trial: 5 CPU s, which the tests of what this machine does with its model paid
    each."""
    played: dict[str, tuple[Path, tuple[bytes, dict[str, float]]]] = {}

    def container(aws: FakeAws, opt_ml: Path) -> Container:
        def play(params: dict[str, Any]) -> tuple[bytes, dict[str, float]]:
            inputs = training_inputs(unpack_code(aws, params, opt_ml), params)
            if inputs not in played:
                first = tmp_path_factory.mktemp("tabular_job") / "opt_ml"
                played[inputs] = first, run_entry(aws, params, first)
            first, outcome = played[inputs]
            for folder in ("model", "output"):
                shutil.copytree(first / folder, opt_ml / folder)
            return outcome

        return play

    return container


def training_inputs(code: Path, params: dict[str, Any]) -> str:
    """What a job's trial is made from: the travelled config and group choices, and the hyperparameters. Its deploy
    section is cut to the target (none: the job does not deploy; the rest says how this machine will), and the job's
    command line and trial name only label its own records, which do not come back."""
    from mlexp.sagemaker.packaging import CONFIG_FILE, JOB_FILE

    config = yaml.safe_load((code / CONFIG_FILE).read_text())
    config["deploy"] = {"target": config["deploy"]["target"]}
    choices = json.loads((code / JOB_FILE).read_text())["choices"]
    choices.pop("deploy")
    return json.dumps([config, choices, params["HyperParameters"]], sort_keys=True)


def deploy_overrides(command: str, job_name: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The printed command's overrides, its MLEXP_PIPELINE_RUN set in this process's environment."""
    words = shlex.split(command)
    assert words[:2] == [f"MLEXP_PIPELINE_RUN=sagemaker-{job_name}", "mlexp"], command
    monkeypatch.setenv("MLEXP_PIPELINE_RUN", f"sagemaker-{job_name}")
    return words[2:]


def test_a_training_jobs_model_is_registered_here_and_predicts(
    aws: FakeAws,
    project: Path,
    tabular_job: Callable[[FakeAws, Path], Container],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
):
    opt_ml = tmp_path / "opt_ml"
    with completed_job(aws, tabular_job(aws, opt_ml)):
        run_id = run_in_process(project, job_overrides(aws))
    name = aws.calls("CreateTrainingJob")[0]["TrainingJobName"]
    # in the job, the fitted preprocessors went to output.tar.gz's data and into model.tar.gz beside the network
    job_preprocessors = opt_ml / "output" / "data" / "data" / "preprocessors.json"
    assert (opt_ml / "model" / "mlexp_data" / "preprocessors.json").read_bytes() == job_preprocessors.read_bytes()
    # here, the network in the run's models/ and the job's preprocessors in its data/
    (run,) = (project / "outputs" / TASK).iterdir()
    models, data = run / "models", run / "data"
    assert (models / "model.params").is_file() and not (models / "mlexp_data").exists()
    assert (data / "preprocessors.json").read_bytes() == job_preprocessors.read_bytes()
    out = capsys.readouterr().out
    (command,) = re.findall(r"^register its model: (.*)$", out, re.MULTILINE)
    assert command == (
        f"MLEXP_PIPELINE_RUN=sagemaker-{name} mlexp task={TASK} tracking.experiment_name=abalone_jobs "
        f"dataset.n_rows=300 model.epochs=1 paths.data={data} paths.models={models} stage=deploy deploy=registry"
    )

    # a later job in the same experiment records its own trial: this job's command still joins this job's trial
    trained_model.join(trial_cfg(run), f"sqlite:///{project / 'mlflow.db'}", "abalone_jobs", "0" * 32, "a-later-job")
    deployed_in = run_in_process(project, deploy_overrides(command, name, monkeypatch))
    assert deployed_in == run_id  # the deploy stage joined the job's trial: one trial, ranked by the job's metrics
    out = capsys.readouterr().out
    assert f"registered models:/{TASK}@champion (version 1, test_msle " in out, out
    (trial,) = trials_of(project, "abalone_jobs")
    assert trial.status == "FINISHED" and trial.tags["mlexp.sagemaker.job_name"] == name
    assert list(trial.components) == ["Deployment"]
    client = store_client(project)
    (version,) = client.search_model_versions(f"name = '{TASK}'")
    assert version.tags["mlexp.trial_run_id"] == run_id
    assert float(version.tags["mlexp.objective_value"]) == trial.metrics["test_msle"]
    assert client.get_model_version_by_alias(TASK, "champion").version == version.version

    model = registered_version(project, TASK, version.version)
    rows = model.input_example
    assert isinstance(rows, pd.DataFrame) and len(rows) == 5
    predicted = model.predict(rows)["rings"]
    # the first test rows: what the job's evaluate stage predicted for them (its report came back in models/)
    evaluated = pd.read_csv(models / "reports" / "plots" / "predictions.csv")["predicted"].head(len(rows))
    assert predicted.to_numpy() == pytest.approx(evaluated.to_numpy(), rel=1e-5)


def test_deploy_registry_with_a_training_job_registers_its_model_here_when_it_comes_back(
    aws: FakeAws,
    project: Path,
    tabular_job: Callable[[FakeAws, Path], Container],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
):
    # `compute=sagemaker deploy=registry` was refused: the deploy stage would have run inside the job
    opt_ml = tmp_path / "opt_ml"
    with completed_job(aws, tabular_job(aws, opt_ml)):
        run_id = run_in_process(project, job_overrides(aws, "deploy=registry"))
    travelled = yaml.safe_load((opt_ml / "input" / "data" / "code" / "mlexp_config.yaml").read_text())
    assert travelled["deploy"]["target"] == "none"  # the job trains; this machine deploys
    out = capsys.readouterr().out
    assert f"registered models:/{TASK}@champion (version 1, test_msle " in out, out
    assert "register its model:" not in out  # done: no command to run later
    (trial,) = trials_of(project, "abalone_jobs")
    assert trial.run_id == run_id and trial.status == "FINISHED"
    assert list(trial.components) == ["Deployment"]  # the stages ran in the job; the deployment here
    client = store_client(project)
    (version,) = client.search_model_versions(f"name = '{TASK}'")
    assert version.tags["mlexp.trial_run_id"] == run_id
    assert float(version.tags["mlexp.objective_value"]) == trial.metrics["test_msle"]
    assert client.get_model_version_by_alias(TASK, "champion").version == version.version


def test_deploy_sagemaker_with_a_training_job_serves_its_model_from_an_endpoint(
    aws: FakeAws, project: Path, tabular_job: Callable[[FakeAws, Path], Container], tmp_path: Path
):
    endpoint = ["deploy=sagemaker", f"deploy.role_arn={aws.role_arn}", f"deploy.model_data_prefix=s3://{aws.bucket}/e"]
    with completed_job(aws, tabular_job(aws, tmp_path / "opt_ml")):
        run_id = run_in_process(project, job_overrides(aws, *endpoint))
    # the job's model was registered here first, then served: the endpoint's model is that version
    (model_request,) = aws.calls("CreateModel")
    assert model_request["PrimaryContainer"]["Environment"]["MLEXP_MODEL_SOURCE"] == f"models:/{TASK}/1"
    (created,) = aws.calls("CreateEndpoint")
    assert created["EndpointName"] == f"mlexp-{TASK.replace('_', '-')}"
    (trial,) = trials_of(project, "abalone_jobs")
    assert trial.run_id == run_id and trial.status == "FINISHED" and list(trial.components) == ["Deployment"]
    assert trial.tags["mlexp.sagemaker.model_source"] == f"models:/{TASK}/1"
    (version,) = store_client(project).search_model_versions(f"name = '{TASK}'")
    assert version.tags["mlexp.trial_run_id"] == run_id


CHURN = "churn_incentives"
# its four stages at their smallest: no budget curve (an optimisation per budget on it)
CHURN_JOB_TINY = ("dataset.n_rows=400", "model.num_round=5", "model.incentives.budget_curve=[]")


def test_a_churn_jobs_model_is_registered_here_and_scores_customers_as_the_job_did(
    aws: FakeAws, project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    from mlexp.tasks.churn_incentives import customers, registered_model

    opt_ml = tmp_path / "opt_ml"
    overrides = sagemaker_job(aws, CHURN, "churn_jobs", *CHURN_JOB_TINY, "deploy=registry")
    with completed_job(aws, lambda params: run_entry(aws, params, opt_ml)):
        run_id = run_in_process(project, overrides)
    out = capsys.readouterr().out
    assert f"registered models:/{CHURN}@champion (version 1, val_auc " in out, out
    # the job shipped its encoding and the input example's rows, not its test split
    (run,) = (project / "outputs" / CHURN).iterdir()
    assert sorted(p.name for p in (run / "data").iterdir()) == ["encoding.json", "input_example.csv"]
    (version,) = store_client(project).search_model_versions(f"name = '{CHURN}'")
    assert version.tags["mlexp.trial_run_id"] == run_id

    model = registered_version(project, CHURN, version.version)
    rows = model.input_example
    job_data = opt_ml / "output" / "data" / "data"
    job_test = pd.read_csv(job_data / "test.csv", dtype=customers.TEXT_COLUMNS, keep_default_na=False)
    expected_rows = job_test[registered_model.INPUT_COLUMNS].head(registered_model.EXAMPLE_ROWS)
    pd.testing.assert_frame_equal(rows, expected_rows)  # the job's first test customers
    predicted = model.predict(rows)["churn_probability"]
    # what the job's incentives stage scored those customers with its booster (its report came back in models/)
    scored = pd.read_csv(run / "models" / "reports" / "incentives.csv")["churn_probability"].head(len(rows))
    assert predicted.to_numpy() == pytest.approx(scored.to_numpy(), rel=1e-6)


DETECTION = "object_detection"


def detection_cfg(run: Path) -> Any:
    """A detection trial's config as its registered model reads it: folders, input normalisation, threshold."""
    from dataclasses import asdict

    from omegaconf import OmegaConf

    from mlexp.tasks.object_detection.config import DetectionAugmentation

    settings = {"preprocessing": asdict(DetectionAugmentation()), "model": {"score_threshold": 0.3}}
    return OmegaConf.merge(trial_cfg(run, DETECTION), settings)


@pytest.mark.filterwarnings("ignore:Cannot decide type")  # MXNet's first forward, about its own graph
def test_a_detection_jobs_model_carries_its_input_examples_frames_not_val_rec_and_registers_from_them(
    tmp_path: Path,
):
    import mlflow.pyfunc
    import mxnet as mx

    from mlexp.serving import pyfunc_model
    from mlexp.tasks.object_detection import networks, registered_model
    from mlexp.tasks.object_detection.config import Detector
    from object_detection_tiny import HEIGHT, WIDTH, write_frames

    # the job, after its stages: the prepare stage's val.rec in its data folder, a (fresh, tiny) network in models/
    job = detection_cfg(tmp_path / "job" / "outputs" / DETECTION / "2026-01-01_00-00-00")
    job_data, job_models = Path(job.paths.data), Path(job.paths.models)
    job_data.mkdir(parents=True)
    val_rec = job_data / "val.rec"
    write_frames(val_rec, 12, seed=3)
    detector = Detector(input_size=128, pretrained_base=None, tile_size=None)
    net, _ = networks.build(detector, lambda message: None)
    net(mx.nd.zeros((1, 3, 128, 128)))  # shapes are inferred at the first forward
    networks.save(net, detector, job_models)

    assert trained_model.ship(job) == ["input_example.rec", "input_example.idx"]
    first_frames = registered_model.example_images(val_rec)["image"].tolist()
    assert len(first_frames) == registered_model.EXAMPLE_IMAGES
    shipped = job_models / trained_model.DATA_FOLDER
    # the example's frames as val.rec holds them, and only them: not the validation split
    assert registered_model.example_images(shipped / "input_example.rec", count=100)["image"].tolist() == first_frames
    assert (shipped / "input_example.rec").stat().st_size * 4 < val_rec.stat().st_size

    # here: model.tar.gz unpacked into the run's models/, its data files moved into a data folder without val.rec
    run = tmp_path / "project" / "outputs" / DETECTION / "2026-01-01_00-00-00"
    shutil.copytree(job_models, run / "models")
    here = detection_cfg(run)
    assert trained_model.bring_back(here, "job-1") is True
    assert sorted(p.name for p in (run / "data").iterdir()) == ["input_example.idx", "input_example.rec"]
    saved = tmp_path / "registered"
    pyfunc_model.save(registered_model.pyfunc_model(here, tmp_path / "staging"), saved)
    path_before = list(sys.path)  # loading prepends the model's code/ to sys.path
    try:
        model = mlflow.pyfunc.load_model(str(saved))
        example = model.input_example
        answer = model.predict(example, params={"score_threshold": 0.0})
    finally:
        sys.path[:] = path_before
    assert example["image"].tolist() == first_frames
    assert list(answer.columns) == registered_model.OUTPUT_COLUMNS and len(answer) == len(first_frames)
    assert set(answer["width"]) == {WIDTH} and set(answer["height"]) == {HEIGHT}


def _fake_network(params: dict[str, Any]) -> tuple[bytes, dict[str, float]]:
    """A job whose model.tar.gz has a network but not the data files (its stages did not write them)."""
    archive = archive_of({"model.params": b"weights", "model.json": b"{}"})
    return archive, {"test_msle": 0.01, "test_mae": 1.0, "final_train_loss": 2.0}


def test_a_model_tar_gz_without_the_data_files_keeps_the_jobs_trial_and_registers_nothing(
    aws: FakeAws, project: Path, capsys: pytest.CaptureFixture[str]
):
    with completed_job(aws, _fake_network):
        run_in_process(project, job_overrides(aws))
    name = aws.calls("CreateTrainingJob")[0]["TrainingJobName"]
    out = capsys.readouterr().out
    assert (
        f"notice: training job {name}'s model.tar.gz lacks mlexp_data/preprocessors.json, which {TASK}'s registered "
        "model reads (its stages did not write it): its model cannot be registered from this machine" in out
    )
    assert "register its model" not in out
    (trial,) = trials_of(project, "abalone_jobs")
    assert trial.status == "FINISHED" and trial.metrics["test_msle"] == 0.01  # the job's results are kept


def test_deploy_registry_with_a_model_tar_gz_without_the_data_files_fails_the_trial_and_registers_nothing(
    aws: FakeAws, project: Path
):
    with completed_job(aws, _fake_network), pytest.raises(TrialFailed) as raised:
        run_in_process(project, job_overrides(aws, "deploy=registry"))
    name = aws.calls("CreateTrainingJob")[0]["TrainingJobName"]
    assert str(raised.value) == (
        f"deploy=registry: training job {name}'s model.tar.gz lacks mlexp_data/preprocessors.json, which {TASK}'s "
        "registered model reads (its stages did not write it): its model cannot be registered from this machine; the "
        f"job's metrics are in this trial (trial {raised.value.run_id} marked FAILED)"
    )
    (trial,) = trials_of(project, "abalone_jobs")
    assert trial.status == "FAILED" and trial.metrics["test_msle"] == 0.01
    assert store_client(project).search_registered_models() == []


def _complete_without_objective(params: dict[str, Any]) -> tuple[bytes, dict[str, float]]:
    """A job whose model.tar.gz is complete but whose log printed no objective line."""
    archive = archive_of({"model.params": b"{}", "mlexp_data/preprocessors.json": b"{}"})
    return archive, {"test_mae": 1.0, "final_train_loss": 2.0}


def test_deploy_registry_after_a_job_that_reported_no_objective_says_so_and_registers_nothing(
    aws: FakeAws, project: Path
):
    with completed_job(aws, _complete_without_objective), pytest.raises(TrialFailed) as raised:
        run_in_process(project, job_overrides(aws, "deploy=registry"))
    name = aws.calls("CreateTrainingJob")[0]["TrainingJobName"]
    assert str(raised.value).startswith(
        f"deploy=registry: training job {name} reported no test_msle to rank its model by (see the notice above); its "
        "model.tar.gz is this trial's artifact sagemaker/model.tar.gz"
    )
    assert store_client(project).search_registered_models() == []


def test_a_task_whose_model_reads_nothing_from_its_data_folder_comes_back_registrable(tmp_path: Path):
    # recommendation names no data file: nothing was shipped, so there is no mlexp_data folder to remove
    run = tmp_path / "project" / "outputs" / "recommendation" / "2026-01-01_00-00-00"
    (run / "models").mkdir(parents=True)
    assert trained_model.bring_back(trial_cfg(run, "recommendation"), "job-1") is True


def trial_cfg(run: Path, task: str = TASK, deploy: str = "none") -> Any:
    from omegaconf import OmegaConf

    paths = {"root": str(run.parents[2]), "data": str(run / "data"), "models": str(run / "models")}
    return OmegaConf.create({"task": {"name": task}, "paths": paths, "deploy": {"target": deploy}})


def test_the_deploy_command_repeats_the_jobs_settings_not_where_it_ran():
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({"task": {"name": TASK}, "paths": {"data": "/runs/1/data", "models": "/runs/1 b/models"}})
    overrides = [
        f"task={TASK}",
        "compute=sagemaker",
        "compute.role_arn=arn:aws:iam::111111111111:role/r",
        "+compute.extra=1",
        "dataset.path=s3://bucket/abalone.data",  # the job's input channel: the input example reads local data
        "dataset.n_rows=300",
        "task.objective.metric=test_mae",  # ranks the model: repeated
        "model.l1_size=16",
        "tracking.experiment_name=my jobs",
        "deploy=none",
        "stage=train",
        "paths.models=/elsewhere",  # the command names the folders the results came back to
    ]
    assert trained_model.deploy_command(cfg, overrides, "mlexp-tabular-regression-1", "sagemaker") == (
        "MLEXP_PIPELINE_RUN=sagemaker-mlexp-tabular-regression-1 mlexp task=tabular_regression dataset.n_rows=300 "
        "task.objective.metric=test_mae model.l1_size=16 'tracking.experiment_name=my jobs' paths.data=/runs/1/data "
        "'paths.models='\"'\"'/runs/1 b/models'\"'\"'' stage=deploy deploy=sagemaker"
    )


@pytest.mark.parametrize(
    "folder", ["/p/proj (copy)/models", "/p/a,b/models", "/p/it's/models", "/p/${x}/m", "/p/m-1.2"]
)
def test_a_folder_in_the_deploy_command_reads_back_as_itself(folder: str):
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    override = OverridesParser.create().parse_override(f"paths.models={trained_model.hydra_quoted(folder)}")
    assert OmegaConf.create({"folder": override.value()}).folder == folder


def test_every_task_with_a_registered_model_names_the_data_files_it_reads():
    """A task whose registered model does not name them (a plugin's) gets a notice, not a registrable trial."""
    from mlexp import tasks

    named = {task.name: trained_model.data_files(task) for task in tasks.load_all().values()}
    assert named == {
        "anomaly_detection": None,
        "churn_incentives": ("encoding.json", "input_example.csv"),
        "document_extraction": None,
        "object_detection": ("input_example.rec", "input_example.idx"),
        "recommendation": (),
        "tabular_regression": ("preprocessors.json",),
        "text_classification": ("corpus/holdout.csv",),
    }
