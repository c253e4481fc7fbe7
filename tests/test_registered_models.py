"""deploy=registry for churn_incentives and object_detection: the champion is an MLflow pyfunc model that
predicts like the trial's own model; anomaly_detection, which has no predictive model, is refused."""

from __future__ import annotations

import base64
import json
import shutil
import time
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from mlflow.models import Model
from mlflow.tracking._tracking_service.utils import _use_tracking_uri

from conftest import REPO, run_cli, scoring_client, seed_store, store_client, trials_of
from mlexp.data import telecom_churn
from mlexp.tasks.churn_incentives import classifier, customers, features
from mlexp.tasks.object_detection.config import DetectionAugmentation
from mlexp.tasks.object_detection.endpoint import FootballDetector

DETECTION = (
    "task=object_detection",
    "dataset.n_frames=24",
    "dataset.frames_per_play=4",
    "dataset.frame_width=192",
    "dataset.frame_height=128",
    "dataset.ball_length=[0.06,0.1]",
    "model.input_size=128",
    "model.epochs=1",
    "model.batch_size=4",
    "model.speed_frames=1",
    "compute.num_threads=1",
)


@pytest.fixture(scope="module")
def project(tmp_path_factory, empty_store):
    """One project (one MLflow store) for the three tasks' trials."""
    folder = tmp_path_factory.mktemp("registered") / "project"
    shutil.copytree(REPO / "conf", folder / "conf")
    seed_store(folder, empty_store)  # the store's first set-up is other tests' concern
    return folder


def champion(project: Path, name: str, into: Path) -> tuple[mlflow.pyfunc.PyFuncModel, pd.DataFrame, dict]:
    """The loaded champion of `name`, its input example and the example's parameters."""
    with _use_tracking_uri(f"sqlite:///{project / 'mlflow.db'}"):
        loaded = mlflow.pyfunc.load_model(f"models:/{name}@champion")
        folder = mlflow.artifacts.download_artifacts(f"models:/{name}@champion", dst_path=str(into))
    description = Model.load(folder)
    return loaded, description.load_input_example(folder), description.load_input_example_params(folder) or {}


def trial_paths(project: Path, experiment: str) -> dict[str, Path]:
    [trial] = trials_of(project, experiment)
    assert trial.status == "FINISHED" and "Deployment" in trial.component_names
    return {key: Path(trial.tags[f"paths.{key}"]) for key in ("data", "models")}


def test_churn_champion_gives_the_boosters_probabilities_for_churn_txt_rows(project, tmp_path):
    run_cli(project, "task=churn_incentives", "deploy=registry", "dataset.n_rows=600", "model.num_round=5")
    loaded, example, _ = champion(project, "churn_incentives", tmp_path)
    assert list(example.columns) == [c for c in telecom_churn.COLUMNS if c != telecom_churn.LABEL]
    predicted = loaded.predict(example)
    assert list(predicted.columns) == ["churn_probability"] and len(predicted) == len(example)
    assert predicted["churn_probability"].between(0, 1).all()

    paths = trial_paths(project, "churn_incentives")
    encoding = features.Encoding.load(paths["data"] / "encoding.json")
    test = pd.read_csv(paths["data"] / "test.csv", dtype=customers.TEXT_COLUMNS, keep_default_na=False)
    test = test.head(len(example))
    booster = classifier.load(paths["models"])
    expected = classifier.predict(booster, encoding.transform(test), encoding.feature_names)
    np.testing.assert_allclose(predicted["churn_probability"], expected, rtol=1e-6)
    # plans as churn.txt may spell them: the model reads them as the loader does
    shouted = example.assign(**{"Int'l Plan": example["Int'l Plan"].str.upper(), "VMail Plan": " yes"})
    np.testing.assert_allclose(
        loaded.predict(shouted)["churn_probability"],
        loaded.predict(example.assign(**{"VMail Plan": "yes"}))["churn_probability"],
    )


@pytest.fixture(scope="module")
def churn_server(project, tmp_path_factory):
    """The churn champion behind the app `mlflow models serve` runs (in this process), the model and its example."""
    if not store_client(project).search_registered_models("name = 'churn_incentives'"):
        run_cli(project, "task=churn_incentives", "deploy=registry", "dataset.n_rows=600", "model.num_round=5")
    loaded, example, _ = champion(project, "churn_incentives", tmp_path_factory.mktemp("churn_champion"))
    return scoring_client(loaded), loaded, example.head(3)


JSON = {"Content-Type": "application/json"}
ROW_2 = "in row 2 (e.g. {}; the first row is row 1); "
NOT_A_NUMBER = ROW_2 + "give a number"


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("CustServ Calls", -3, "is negative " + ROW_2 + "counts, minutes, charges and codes are 0 or more: correct it"),
        (
            "Day Calls",
            2.5,
            "is not a whole number " + ROW_2 + "calls, messages, account lengths and area codes are whole numbers "
            "(only minutes and charges have decimals): correct it",
        ),
        (
            "Day Charge",
            float("inf"),
            "is infinite or too large " + ROW_2 + "give a number of at most 3.4e+38 (the classifier reads 32-bit "
            "numbers)",
        ),
        ("Day Mins", float("nan"), "is not a number " + NOT_A_NUMBER),
        ("Night Mins", "abc", "is not a number " + NOT_A_NUMBER),
        ("Eve Calls", None, "is not a number " + NOT_A_NUMBER),  # a record without the key reads the same
        ("VMail Plan", "maybe", "is not yes/no " + ROW_2 + "give yes or no"),
        ("Day Calls", True, "is not a number " + NOT_A_NUMBER),  # to_numeric would read a JSON true as 1
    ],
    ids=[
        "negative count",
        "fractional count",
        "infinite charge",
        "NaN minutes",
        "text",
        "null count",
        "bad plan",
        "true count",
    ],
)
def test_a_churn_request_with_a_value_the_loader_refuses_is_a_400_naming_its_row_and_column(
    churn_server, column, value, message
):
    server, loaded, example = churn_server
    records = example.to_dict(orient="records")
    records[1][column] = value
    # json.dumps writes NaN and Infinity, as MLflow's own clients send them (httpx's json= refuses them)
    body = json.dumps({"dataframe_records": records})
    answer = server.post("/invocations", content=body, headers={"Content-Type": "application/json"})
    shown = {"abc": "'abc'", "maybe": "'maybe'", None: "nan"}.get(value, repr(value))
    expected = f"column {column} " + message.format(shown)
    assert answer.status_code == 400, answer.text
    reply = answer.json()
    assert reply["error_code"] == "INVALID_PARAMETER_VALUE" and "stack_trace" not in reply
    assert reply["message"].endswith("\nError: " + expected)
    # the same refusal without HTTP (a SageMaker endpoint's handler calls predict)
    with pytest.raises(MlflowException) as refused:
        loaded.predict(pd.DataFrame(records))
    assert str(refused.value).endswith(expected)
    # the same from the records format MLflow parses into 0-d arrays ({"inputs": [...]})
    as_inputs = server.post("/invocations", content=json.dumps({"inputs": records}), headers=JSON)
    assert as_inputs.status_code == 400 and as_inputs.json()["message"].endswith("\nError: " + expected)


def test_a_churn_request_without_a_column_the_model_reads_is_a_400_naming_it(churn_server):
    server, _, example = churn_server
    answer = server.post(
        "/invocations", json={"dataframe_records": example.drop(columns="Day Calls").to_dict("records")}
    )
    assert answer.status_code == 400
    message = answer.json()["message"]
    assert (
        "\nError: customer rows lack the columns Day Calls; send the churn.txt columns the model reads: State, "
        in message
    )


@pytest.mark.parametrize(
    ("inputs", "problem"),
    [
        (5, "the request's input is a single value (5), not rows"),
        ("x", 'the request\'s input is a single value ("x"), not rows'),
        (
            {"State": "KS", "Day Calls": [110]},
            'the request\'s column State holds one value ("KS"), not a list of one per row',
        ),
        (
            {"State": "KS", "Day Calls": 110, "Eve Calls": [1]},
            'the request\'s columns State, Day Calls hold one value each (e.g. "KS"), not lists',
        ),
    ],
    ids=["number", "text", "column of one value", "columns of one value"],
)
def test_a_churn_request_that_holds_no_rows_is_a_400_naming_it_and_mlflows_shapes(churn_server, inputs, problem):
    server, _, _ = churn_server
    answer = server.post("/invocations", content=json.dumps({"inputs": inputs}), headers=JSON)
    expected = (
        f"{problem}; send rows as "
        '{"dataframe_split": {"columns": [...], "data": [[...], ...]}}, {"dataframe_records": [{...}, ...]}, '
        '{"inputs": [{...}, ...]} (or "instances") or a column dict {"inputs": {"<column>": [...], ...}}'
    )
    assert answer.status_code == 400 and answer.json()["message"].endswith("\nError: " + expected), answer.text


def test_a_churn_request_as_csv_or_with_counts_written_415_0_gets_the_same_probabilities(churn_server):
    server, _, example = churn_server
    as_json = server.post("/invocations", json={"dataframe_records": example.to_dict("records")})
    as_csv = server.post("/invocations", content=example.to_csv(index=False), headers={"Content-Type": "text/csv"})
    decimal = example.astype({"Area Code": float, "Day Calls": float}).to_dict("records")
    as_decimals = server.post("/invocations", json={"dataframe_records": decimal})
    # MLflow parses {"inputs": [records]} (the docs' and SageMaker's format) into 0-d arrays, one per value
    as_inputs = server.post("/invocations", json={"inputs": example.to_dict("records")})
    answers = (as_json, as_csv, as_decimals, as_inputs)
    assert [answer.status_code for answer in answers] == [200] * 4, as_inputs.text
    assert as_json.json() == as_csv.json() == as_decimals.json() == as_inputs.json()


def test_detection_champion_answers_boxes_scores_and_classes_per_image(project, tmp_path):
    run_cli(project, *DETECTION, "deploy=registry")
    loaded, example, params = champion(project, "object_detection", tmp_path)
    assert list(example.columns) == ["image"] and isinstance(example["image"][0], bytes)
    assert params == {"score_threshold": 0.3}
    answer = loaded.predict(example, params={"score_threshold": 0.0})
    assert list(answer.columns) == ["boxes", "scores", "classes", "width", "height"]
    assert len(answer) == len(example) and set(answer["width"]) == {192} and set(answer["height"]) == {128}
    for boxes, scores, classes in zip(answer["boxes"], answer["scores"], answer["classes"]):
        assert len(boxes) == len(scores) == len(classes) > 0
        assert all(len(box) == 4 for box in boxes) and set(classes) == {"football"}
        assert all(0.0 <= s <= 1.0 for s in scores)
    # the same detections as the trial's own model behind deploy=local
    detector = FootballDetector(trial_paths(project, "object_detection")["models"], DetectionAugmentation(), 0.0)
    direct = detector.detect(example["image"][0])
    assert answer["boxes"][0] == direct["boxes"] and answer["scores"][0] == direct["scores"]
    # without params, the trial's model.score_threshold (0.3) applies
    default = loaded.predict(example)
    assert [len(s) for s in default["scores"]] == [sum(x >= 0.3 for x in s) for s in answer["scores"]]


def test_detection_service_serves_the_champion_and_reloads_it_when_the_alias_moves(project, tmp_path):
    """deploy=local deploy.source=champion: the registered detector behind /invocations, swapped on promotion."""
    from omegaconf import OmegaConf

    from mlexp.serving.http import ServiceSettings, start_in_thread
    from mlexp.tasks.object_detection.deployment import build_app, model_slot

    if not store_client(project).search_registered_models("name = 'object_detection'"):
        run_cli(project, *DETECTION, "deploy=registry")
    cfg = OmegaConf.create(
        {
            "task": {"name": "object_detection"},
            "tracking": {"uri": None},
            "paths": {"root": str(project)},
            "deploy": {"source": "champion"},
            "model": {"score_threshold": 0.3},
        }
    )
    with _use_tracking_uri(f"sqlite:///{project / 'mlflow.db'}"):
        slot, probe, description = model_slot(cfg, None, DetectionAugmentation())  # type: ignore[arg-type]
        assert probe is not None
        client = store_client(project)
        holder = client.get_model_version_by_alias("object_detection", "champion")
        assert description.startswith(f"registered model object_detection v{holder.version} @champion")
        loaded, example, _ = champion(project, "object_detection", tmp_path)
        expected = loaded.predict(example, params={"score_threshold": 0.0})
        settings = ServiceSettings(require_api_key=False, reload_interval_s=0.2)
        running = start_in_thread(build_app(slot, settings, probe))
        try:
            body = json.dumps({"image": base64.b64encode(example["image"][0]).decode(), "score_threshold": 0.0})
            request = urllib.request.Request(
                running.url + "/invocations", body.encode(), {"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=60) as response:
                answer = json.loads(response.read())
            assert answer["boxes"] == expected["boxes"][0] and answer["scores"] == expected["scores"][0]
            # a promotion: the alias moves to a new version, which the running service loads and swaps in
            promoted = client.create_model_version("object_detection", holder.source, holder.run_id)
            client.set_registered_model_alias("object_detection", "champion", promoted.version)
            deadline = time.monotonic() + 60
            while slot.version != str(promoted.version) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert slot.version == str(promoted.version)
            with urllib.request.urlopen(request, timeout=60) as response:
                assert json.loads(response.read())["boxes"] == answer["boxes"]
        finally:
            running.stop()
            client.set_registered_model_alias("object_detection", "champion", holder.version)


def test_detection_service_serves_the_best_trial_or_a_given_trial_run(project):
    """deploy.source=best (the post's tuner.deploy) and deploy.source=<trial run id> load that trial's network."""
    from types import SimpleNamespace

    from omegaconf import OmegaConf

    from mlexp.errors import DataError
    from mlexp.tasks.object_detection.deployment import model_slot

    if not trials_of(project, "object_detection"):
        run_cli(project, *DETECTION, "deploy=registry")
    [trial] = trials_of(project, "object_detection")
    objective = OmegaConf.load(REPO / "conf/task/object_detection.yaml").task.objective
    cfg = OmegaConf.create(
        {
            "task": {"name": "object_detection", "objective": objective},
            "tracking": {"uri": None, "experiment_name": None},
            "paths": {"root": str(project), "models": str(project / "nowhere")},
            "deploy": {"source": "best"},
            "model": {"score_threshold": 0.3},
        }
    )
    tracker = SimpleNamespace(client=store_client(project))  # what the deploy stage's tracker offers: its client
    slot, probe, description = model_slot(cfg, tracker, DetectionAugmentation())  # type: ignore[arg-type]
    assert probe is None and description.startswith(f"best trial {trial.name} ({objective.metric} = ")
    network = slot.current.architecture["network"]
    cfg.deploy.source = trial.run_id
    slot, _, description = model_slot(cfg, tracker, DetectionAugmentation())  # type: ignore[arg-type]
    assert description == f"trial {trial.run_id}" and slot.current.architecture["network"] == network
    cfg.deploy.source = "trial"  # this run trained nothing
    with pytest.raises(DataError, match="model.params is missing"):
        model_slot(cfg, tracker, DetectionAugmentation())  # type: ignore[arg-type]
    cfg.deploy.source = "0123456789abcdef"
    with pytest.raises(DataError, match="no trial run with a trained model has this id"):
        model_slot(cfg, tracker, DetectionAugmentation())  # type: ignore[arg-type]


def test_anomaly_detection_has_no_model_to_register(project):
    done = run_cli(project, "task=anomaly_detection", "deploy=registry", "dataset.n_rows=2000", check=False)
    assert done.returncode == 2
    # refused by the registry, or up front if the task's conf lists its deploy options
    assert "anomaly_detection" in done.stderr and ("deploy=none" in done.stderr or "one of: none" in done.stderr)
    assert not store_client(project).search_registered_models("name = 'anomaly_detection'")
