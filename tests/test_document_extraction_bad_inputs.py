"""Ground truth that reads as the schema but does not fit its document (another page count, a page number past the
last page, a page size or boxes of another image) is rejected naming the file and what is wrong; it was scored
(2 pages for a 1-page scan gave cer 0.50 with no warning). Charts with nothing to show say so, without a warning."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli, trials_of
from mlexp.errors import DataError
from test_document_extraction_parts import _user_cfg

WHERE = "see 'Output schema' in docs/tasks/document_extraction.md"
WIDTH, HEIGHT = 80, 60
LINE = {"text": "Net pay", "box": [2, 2, 40, 12]}


def _scan(folder: Path, truth: object, name: str = "scan") -> Path:
    """A one-page scan (noise: a blank page is refused as empty) of WIDTH × HEIGHT and its ground truth beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(1).integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(folder / f"{name}.png")
    (folder / f"{name}.json").write_text(json.dumps(truth))
    return folder / f"{name}.png"


def _page(**fields: object) -> dict:
    return {"number": 1, "width": WIDTH, "height": HEIGHT, "lines": [LINE], **fields}


@pytest.mark.parametrize(
    ("truth", "problem"),
    [
        (
            {"pages": [_page(), _page(number=2)]},
            ": ground truth has 2 pages but scan.png has 1 page; give one entry of 'pages' per page of the document, "
            "in order",
        ),
        (
            {"pages": []},
            ": ground truth has 0 pages but scan.png has 1 page; give one entry of 'pages' per page of the document, "
            "in order",
        ),
        (
            {"pages": [_page(number=5)]},
            " page 1: ground truth says number 5, but it is listed as page 1 and scan.png has 1 page; give it number 1 "
            "(or leave 'number' out)",
        ),
        (
            {"pages": [_page(width=1700)]},
            " page 1: ground truth says the page's width is 1700 pixels, but page 1 of scan.png is 80×60; give that "
            "size and boxes in its pixels",
        ),
        (
            {"pages": [_page(lines=[LINE, {"text": "x", "box": [math.nan, 2, 40, 12]}])]},
            " page 1: ground truth field 'lines[1].box' is [nan, 2, 40, 12]; its numbers must be finite",
        ),
        (
            {"pages": [_page(lines=[{"text": "x", "box": [1e300, 0, 1e301, 10]}])]},
            " page 1: ground truth field 'lines[0].box' is [1e+300, 0, 1e+301, 10]; it lies off the 80×60 page; "
            "boxes are [x0, y0, x1, y1] in pixels of the page image",
        ),
        (
            {"pages": [_page(selection_elements=[{"box": [70, 10, 10, 5], "state": "SELECTED"}])]},
            " page 1: ground truth field 'selection_elements[0].box' is [70, 10, 10, 5]; it must be [x0, y0, x1, y1] "
            "with x0 ≤ x1 and y0 ≤ y1",
        ),
        (
            {"pages": [_page(tables=[{"cells": [{"row": 0, "column": 0, "text": "a", "box": [0, 0, 10, 90]}]}])]},
            " page 1: ground truth field 'tables[0].cells[0].box' is [0, 0, 10, 90]; it lies off the 80×60 page; "
            "boxes are [x0, y0, x1, y1] in pixels of the page image",
        ),
    ],
)
def test_ground_truth_that_does_not_fit_its_document_is_named_with_the_fix(tmp_path, truth, problem):
    from mlexp.tasks.document_extraction.user_documents import truth_problem

    scan = _scan(tmp_path, truth)
    assert truth_problem(scan.with_suffix(".json"), scan, [(WIDTH, HEIGHT)]) == (
        f"{scan.with_suffix('.json')}{problem}; {WHERE}"
    )


NOTHING_TO_SCORE = (
    ": ground truth holds nothing to score: no line with text, table, key-value or check box on any page; give what "
    "the document shows, or remove the file to report extraction only"
)


@pytest.mark.parametrize(
    "truth",
    [
        {"pages": [{}]},
        # lines of blank text (and words, which no metric reads) and empty lists: still nothing a metric measures
        {
            "pages": [
                _page(
                    lines=[{"text": " ", "box": [2, 2, 40, 12], "words": [{"text": "x", "box": [2, 2, 9, 12]}]}],
                    tables=[],
                    key_values=[],
                    selection_elements=[],
                )
            ]
        },
    ],
)
def test_ground_truth_with_nothing_to_score_is_named_with_the_fix(tmp_path, truth):
    # it ended the trial with "no extraction_score to report", exit 0
    from mlexp.tasks.document_extraction.user_documents import truth_problem

    scan = _scan(tmp_path, truth)
    assert truth_problem(scan.with_suffix(".json"), scan, [(WIDTH, HEIGHT)]) == (
        f"{scan.with_suffix('.json')}{NOTHING_TO_SCORE}; {WHERE}"
    )


def test_ground_truth_with_one_thing_to_score_is_read(tmp_path):
    from mlexp.tasks.document_extraction.user_documents import truth_problem

    for page in (
        {"tables": [{"cells": []}]},
        {"key_values": [{"key": "Net pay", "value": ""}]},
        {"selection_elements": [{"box": [2, 2, 9, 9], "state": "SELECTED"}]},
    ):
        scan = _scan(tmp_path, {"pages": [{}, page]})
        assert truth_problem(scan.with_suffix(".json"), scan, [(WIDTH, HEIGHT)] * 2) is None, page


def test_ground_truth_that_fits_is_read_boxes_near_the_edge_and_empty_cells_included(tmp_path):
    from mlexp.tasks.document_extraction.stages import generated_page
    from mlexp.tasks.document_extraction.user_documents import truth_problem

    # a box a few pixels past the edge (rounding), an empty cell's box of no size, no number nor size given
    page = {
        "lines": [{"text": "a", "box": [-2, 0, WIDTH + 3, HEIGHT]}],
        "tables": [{"cells": [{"row": 0, "column": 0, "text": "", "box": [30, 30, 30, 30]}]}],
    }
    scan = _scan(tmp_path, {"pages": [page]})
    assert truth_problem(scan.with_suffix(".json"), scan, [(WIDTH, HEIGHT)]) is None
    # the generator's own ground truth (a statement at 100 dpi with noise, empty cells) fits its page
    levels = {"dpi100_noise": {"dpi": 100, "noise_sigma": 6}}
    drawn, truth = generated_page("account_statement", 1, 0, 4, levels, "dpi100_noise")
    assert any(c["box"][0] == c["box"][2] for table in truth["tables"] for c in table["cells"])
    generated = _scan(tmp_path, {"pages": [truth]}, "generated")
    assert truth_problem(generated.with_suffix(".json"), generated, [drawn.image.size]) is None


def test_a_batch_skips_the_document_whose_ground_truth_does_not_fit_and_fails_when_none_is_left(tmp_path, capsys):
    from mlexp.tasks.document_extraction.user_documents import write_pages

    folder = tmp_path / "scans"
    _scan(folder, {"pages": [_page()]}, "good")
    _scan(folder, {"pages": [_page(), _page(number=2)]}, "twice")
    entries, rejected = write_pages(*_user_cfg(folder, tmp_path))
    assert [e["name"] for e in entries] == ["good.png"]
    message = (
        f"{folder / 'twice.json'}: ground truth has 2 pages but twice.png has 1 page; give one entry of 'pages' per "
        f"page of the document, in order; {WHERE}"
    )
    assert rejected == [{"file": str(folder / "twice.json"), "error": message}]
    assert f"mlexp: skipped {message}" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "out" / "pages").iterdir()) == ["good.png_p1.png"]

    (folder / "good.json").write_text(json.dumps({"pages": []}))
    with pytest.raises(DataError, match=r"^no readable document in dataset\.path=.*good\.json: ground truth has 0"):
        write_pages(*_user_cfg(folder, tmp_path))


def test_a_batch_whose_only_ground_truth_is_rejected_has_no_document_left_to_score(tmp_path, capsys):
    from mlexp.tasks.document_extraction.user_documents import write_pages

    folder = tmp_path / "scans"
    _scan(folder, {"pages": [{}]}, "empty")
    _scan(folder, {"pages": [_page()]}, "good")
    entries, _ = write_pages(*_user_cfg(folder, tmp_path))
    assert [e["name"] for e in entries] == ["good.png"]
    assert f"mlexp: skipped {folder / 'empty.json'}{NOTHING_TO_SCORE}" in capsys.readouterr().err

    # a document without ground truth is extracted only: with it alone, nothing the user gave would be scored
    (folder / "good.json").unlink()
    with pytest.raises(DataError) as refused:
        write_pages(*_user_cfg(folder, tmp_path))
    assert str(refused.value) == (
        f"no document in dataset.path={folder} is left to score: {folder / 'empty.json'}{NOTHING_TO_SCORE}; {WHERE}"
    )
    # so with the scored document unreadable: the batch was quietly extraction-only
    (folder / "empty.json").write_text(json.dumps({"pages": [_page()]}))
    (folder / "empty.png").write_bytes(b"not a PNG")
    with pytest.raises(DataError, match=f"^no document in dataset.path={folder} is left to score: {folder}"):
        write_pages(*_user_cfg(folder, tmp_path))
    # no ground truth at all: an extraction-only trial, as before
    _scan(folder, {}, "empty")
    (folder / "empty.json").unlink()
    entries, _ = write_pages(*_user_cfg(folder, tmp_path))
    assert [e["ground_truth"] for e in entries] == [None, None]


def test_ground_truth_that_matches_no_document_is_named_in_a_warning(tmp_path, capsys):
    # `scan.png.json` (or a misspelt name) was left unread without a word: its document was scored without it
    from mlexp.tasks.document_extraction.user_documents import write_pages

    folder = tmp_path / "scans"
    _scan(folder, {"pages": [_page()]}, "scan")
    (folder / "scan.png.json").write_text(json.dumps({"pages": [_page()]}))
    (folder / "other").mkdir()
    (folder / "other" / "orphan.json").write_text("{}")
    # a document refused for itself: its ground truth did match it
    (folder / "broken.png").write_bytes(b"not a PNG")
    (folder / "broken.json").write_text(json.dumps({"pages": [_page()]}))
    entries, _ = write_pages(*_user_cfg(folder, tmp_path))
    assert [e["ground_truth"] for e in entries] == ["scan.png.json"]
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"mlexp: warning: 2 JSON files matched no document as its ground truth: {folder / 'other' / 'orphan.json'}, "
        f"{folder / 'scan.png.json'}; a document's ground truth is its name with .json for its extension (x.json "
        "for x.png)"
    )
    # one document: the other files of its folder are not the run's
    write_pages(*_user_cfg(folder / "scan.png", tmp_path))
    assert "matched no document" not in capsys.readouterr().err


def test_ground_truth_of_two_pages_for_a_one_page_scan_fails_the_trial_in_one_line(tmp_project_with_store):
    project = tmp_project_with_store
    folder = project / "scans"
    _scan(folder, {"pages": [_page(), _page(number=2)]}, "stub")

    done = run_cli(project, "task=document_extraction", f"dataset.path={folder}", check=False)

    assert done.returncode == 1, done.stdout + done.stderr
    [line] = [x for x in done.stderr.splitlines() if x.startswith("mlexp: error:")]
    assert line.startswith(
        f"mlexp: error: stage 'prepare' failed: no readable document in dataset.path={folder}: {folder / 'stub.json'}: "
        f"ground truth has 2 pages but stub.png has 1 page; give one entry of 'pages' per page of the document, in "
        f"order; {WHERE}"
    )
    assert "marked FAILED" in line
    [trial] = trials_of(project, "document_extraction")
    assert trial.status == "FAILED" and trial.component_names == {"Pre-processing"}


def test_ground_truth_with_nothing_to_score_fails_the_trial_in_one_line(tmp_project_with_store):
    project = tmp_project_with_store
    folder = project / "scans"
    _scan(folder, {"pages": [{}]}, "stub")
    _scan(folder, {"pages": [{}]}, "unread").with_suffix(".json").unlink()

    done = run_cli(project, "task=document_extraction", f"dataset.path={folder}", check=False)

    assert done.returncode == 1, done.stdout + done.stderr
    assert "no extraction_score to report" not in done.stdout + done.stderr
    [line] = [x for x in done.stderr.splitlines() if x.startswith("mlexp: error:")]
    assert line.startswith(
        f"mlexp: error: stage 'prepare' failed: no document in dataset.path={folder} is left to score: "
        f"{folder / 'stub.json'}{NOTHING_TO_SCORE}; {WHERE}"
    )
    assert "marked FAILED" in line
    [trial] = trials_of(project, "document_extraction")
    assert trial.status == "FAILED" and trial.component_names == {"Pre-processing"}


def test_charts_with_nothing_to_show_say_so_without_a_warning(tmp_path):
    from mlexp.tasks.document_extraction import charts

    # a ground truth with no text, table, key-value or check box: no metric, no symbol
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        symbols = charts.symbol_accuracy({}, tmp_path / "symbols.png", "symbols", {})
        levels = charts.accuracy_by_degradation([{"group": "as_scanned"}], tmp_path / "levels.png")
    assert symbols.is_file() and levels.is_file()
