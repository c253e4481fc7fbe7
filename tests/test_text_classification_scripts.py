"""Text in any script: accented Latin, Cyrillic and Greek documents keep their words through the corpus and prepare
stages, class names in another script make distinct metric names, and the served model refuses rows without text."""

from __future__ import annotations

import json

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from conftest import run_cli, scoring_client
from mlexp.serving import pyfunc_model
from mlexp.tasks.text_classification import registered_model
from mlexp.tasks.text_classification.corpora import normalize
from mlexp.tasks.text_classification.scores import metric_name
from text_classification_service_setup import shared_model

TASK = "text_classification"


def test_normalisation_keeps_the_letters_of_every_script():
    assert normalize("Café über Straße, niño!") == "café über strasse niño"
    assert normalize("Сборная России выиграла матч") == "сборная россии выиграла матч"
    assert normalize("Η ΕΘΝΙΚΗ ομάδα κέρδισε") == "η εθνικη ομάδα κέρδισε"
    assert normalize("हिन्दी समाचार") == "हिन्दी समाचार"  # combining vowel signs stay in their words
    assert normalize("cafe\u0301 ＦＩＦＡ ２０２４ snake_case") == "café fifa 2024 snake case"  # NFKC; _ separates
    assert normalize("東京のニュース、今日") == "東京のニュース 今日"  # no spaces: a run of letters is one word
    assert normalize("Red Sox beat the Yankees 5-3") == "red sox beat the yankees 5 3"  # ASCII as before
    assert [metric_name(c) for c in ("Sci/Tech", "Спорт", "Экономика")] == ["sci_tech", "спорт", "экономика"]


def test_accented_and_cyrillic_documents_keep_their_words_through_prepare(tmp_project):
    rows = [
        ("Sport", "Le club de Montréal a gagné le championnat"),
        ("Sport", "Сборная России выиграла матч в Москве"),
        ("Sport", "Der Torwart hielt den Elfmeter in München"),
        ("Wirtschaft", "La Bourse de Zürich a baissé après la crise"),
        ("Wirtschaft", "Центральный банк снизил ставку"),
        ("Wirtschaft", "Η τράπεζα αύξησε τα επιτόκια"),
    ] * 4
    corpus = tmp_project / "news.csv"
    pd.DataFrame(rows).to_csv(corpus, header=False, index=False)
    holdout = tmp_project / "holdout.csv"
    pd.DataFrame([("Sport", "Ο αγώνας έληξε ισόπαλος"), ("Wirtschaft", "Акции упали")]).to_csv(
        holdout, header=False, index=False
    )
    reviews = tmp_project / "reviews.jsonl"
    reviews.write_text(json.dumps({"text": "Банк выпустил облигации", "final_label": "Wirtschaft"}) + "\n")
    args = (
        f"task={TASK}",
        f"dataset.path={corpus}",
        "dataset.labels=[Sport,Wirtschaft]",
        f"dataset.reviews={reviews}",
        f"dataset.holdout_path={holdout}",
        f"paths.data={tmp_project / 'data'}",
    )
    done = run_cli(tmp_project, *args, "stage=corpus")
    assert "left out" not in done.stderr, done.stderr
    run_cli(tmp_project, *args, "stage=prepare")
    training_set = pd.read_csv(tmp_project / "data" / "train.csv", header=None, names=["label", "text"])
    texts = set(training_set.text)
    assert {
        "le club de montréal a gagné le championnat",
        "сборная россии выиграла матч в москве",
        "der torwart hielt den elfmeter in münchen",
        "η τράπεζα αύξησε τα επιτόκια",
        "банк выпустил облигации",
    } <= texts


@pytest.fixture(scope="module")
def scoring_server(tmp_path_factory):
    """The text classifier behind the app `mlflow models serve` runs (in this process)."""

    folder = tmp_path_factory.mktemp("text_pyfunc")
    model = pyfunc_model.PyfuncModel(
        python_model=registered_model.TextClassification,
        artifacts={"classifier": shared_model(tmp_path_factory)},
        input_example=pd.DataFrame({"text": registered_model.EXAMPLE}),
        signature=registered_model.signature(),
    )
    pyfunc_model.save(model, folder / "model")
    loaded = mlflow.pyfunc.load_model(str(folder / "model"))
    return scoring_client(loaded), loaded


SEND = 'a request holds one text a row: {"inputs": ["<text>", ...]}'


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"inputs": [1, 2]}, "rows 1, 2 of the request hold no text (row 1: 1; the first row is row 1)"),
        ({"inputs": ["nasa probe", None]}, "row 2 of the request holds no text (row 2: null; the first row is row 1)"),
        ({"dataframe_records": [{"text": "a"}, {"text": 5}]}, "row 2 of the request holds no text (row 2: 5;"),
        ({"dataframe_records": [{"text": "   "}]}, 'row 1 of the request holds no text (row 1: "   ";'),
        ({"inputs": []}, "the request holds no rows"),
        ({"dataframe_split": {"columns": ["text"], "data": []}}, "the request holds no rows"),
        ({"dataframe_records": [{"body": "x"}]}, "the request has no column text (its columns: body)"),
    ],
    ids=["numbers", "null", "number in records", "blank", "empty inputs", "empty split", "no text column"],
)
def test_a_served_request_without_text_is_a_400_naming_its_rows(scoring_server, body, problem):
    server, _ = scoring_server
    answer = server.post("/invocations", json=body)
    assert answer.status_code == 400, answer.text
    reply = answer.json()
    assert reply["error_code"] == "INVALID_PARAMETER_VALUE" and "stack_trace" not in reply
    error = reply["message"].split("\nError: ", 1)[1]
    assert error.startswith(problem) and SEND in error and "\n" not in error, error


def test_served_texts_in_any_shape_are_classified(scoring_server):
    server, loaded = scoring_server
    texts = ["the red sox beat the yankees", "new graphics card driver for windows"]
    expected = loaded.predict(pd.DataFrame({"text": texts})).to_dict("records")
    for body in (
        {"inputs": texts},
        {"dataframe_records": [{"text": t} for t in texts]},
        {"inputs": [{"text": t} for t in texts]},
        {"inputs": {"text": texts}},
    ):
        answer = server.post("/invocations", json=body)
        assert answer.status_code == 200 and answer.json()["predictions"] == expected, (body, answer.text)
    csv = server.post("/invocations", content="text\n" + "\n".join(texts), headers={"Content-Type": "text/csv"})
    assert csv.status_code == 200 and csv.json()["predictions"] == expected


def test_a_served_csv_column_of_codes_is_refused_saying_why(scoring_server):
    """MLflow reads a CSV request with pandas before the model runs: a column of digits alone arrives as numbers (007
    as 7), its characters gone. It was refused as rows holding no text, showing a 7 the client never sent."""
    server, _ = scoring_server
    answer = server.post("/invocations", content="text\n007\n12345\n", headers={"Content-Type": "text/csv"})
    assert answer.status_code == 400, answer.text
    error = answer.json()["message"].split("\nError: ", 1)[1]
    assert error.startswith(
        "the request's column text holds numbers, not texts (e.g. 7; a CSV column of digits alone is read as numbers, "
        "leading zeros lost); send each text as a JSON string: " + SEND
    ), error
    answer = server.post("/invocations", json={"dataframe_records": [{"text": "007"}, {"text": "12345"}]})
    assert answer.status_code == 200, answer.text


def test_metric_names_of_classes_in_another_script_are_accepted_by_mlflow(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = client.create_run(client.create_experiment("scripts")).info.run_id
    for label in ("Спорт", "Экономика"):
        client.log_metric(run, f"f1_{metric_name(label)}", 0.5)
    assert set(client.get_run(run).data.metrics) == {"f1_спорт", "f1_экономика"}
