"""The ranges of text_classification's, recommendation's and document_extraction's numeric settings: a value out
of its range is one line before a trial or a sweep opens, never a stage failing (or finishing on nonsense) later;
and a document_extraction ground-truth file of the wrong shape is one line naming the file, page and field."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from conftest import REPO, one_line_error
from mlexp import tasks
from mlexp.config import make_composable
from mlexp.config.bounds import check_bounds
from mlexp.errors import ConfigError, DataError


# each value below failed a stage after the trial had opened, or worse, finished the trial on nonsense
@pytest.mark.parametrize(
    ("args", "line"),
    [
        # finished with every n-gram kept, as min_df=1 does
        (["task=text_classification", "model.min_df=-1"], "model.min_df=-1 is out of range: it must be at least 0"),
        # finished with a holdout macro-F1 of 0.08 (log(0) weights)
        (
            ["task=text_classification", "model=tfidf_naive_bayes", "model.smoothing=0"],
            "model.smoothing=0 is out of range: it must be above 0",
        ),
        # finished, every strategy "reaching random's accuracy with 100 % of its labels" from the seed set alone
        (
            ["task=text_classification", "active_learning.labels_per_round=0"],
            "active_learning.labels_per_round=0 is out of range: it must be at least 1",
        ),
        (
            ["task=text_classification", "service.threshold=1.5"],
            "service.threshold=1.5 is out of range: it must be between 0 and 1",
        ),
        # a user corpus all in the holdout: the corpus stage failed, no document of any class to train on
        (
            ["task=text_classification", "preprocessing.holdout_fraction=1"],
            "preprocessing.holdout_fraction=1 is out of range: it must be above 0 and below 1",
        ),
        # MXNet failed on a batch without negatives
        (
            ["task=recommendation", "model.metadata_hybrid.batch_size=1"],
            "model.metadata_hybrid.batch_size=1 is out of range: it must be at least 2",
        ),
        # finished, ranking every user's items by popularity
        (
            ["task=recommendation", "model.user_personalization.alpha=0"],
            "model.user_personalization.alpha=0 is out of range: it must be above 0",
        ),
        (
            ["task=recommendation", "preprocessing.test_fraction=1.5"],
            "preprocessing.test_fraction=1.5 is out of range: it must be above 0 and below 1",
        ),
        (
            ["task=recommendation", "model.metadata_hybrid.history_decay=-0.5"],
            "model.metadata_hybrid.history_decay=-0.5 is out of range: it must be between 0 and 1",
        ),
        (["task=recommendation", "dataset.n_users=-5"], "dataset.n_users=-5 is out of range: it must be at least 0"),
        # finished, every text row read as a table row (column-count accuracy 0)
        (
            ["task=document_extraction", "model.table_min_columns=1"],
            "model.table_min_columns=1 is out of range: it must be at least 2",
        ),
        # finished, every check box SELECTED whatever its ink
        (
            ["task=document_extraction", "model.checkbox_fill_threshold=0"],
            "model.checkbox_fill_threshold=0 is out of range: it must be above 0 and at most 1",
        ),
        (
            ["task=document_extraction", "engine.rec_batch=0"],
            "engine.rec_batch=0 is out of range: it must be at least 1",
        ),
        (
            ["task=document_extraction", "engine.currency_threshold=2"],
            "engine.currency_threshold=2 is out of range: it must be between 0 and 1",
        ),
        # finished with no document and no objective
        (
            ["task=document_extraction", "dataset.n_per_type=0"],
            "dataset.n_per_type=0 is out of range: it must be at least 1",
        ),
    ],
)
def test_a_setting_out_of_its_range_is_one_line_before_a_trial_opens(tmp_project, args, line):
    assert one_line_error(tmp_project, *args) == line


def test_a_swept_value_out_of_its_range_is_one_line_before_the_sweep_opens(tmp_project):
    message = one_line_error(tmp_project, "-m", "task=text_classification", "active_learning.labels_per_round=0,20")
    assert message == (
        "active_learning.labels_per_round=0,20: active_learning.labels_per_round=0 is out of range: "
        "it must be at least 1"
    )


def _composed(*overrides: str) -> DictConfig:
    make_composable()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose("config", overrides=list(overrides))


# the edge of a bound, and the value just past it; an off-by-one bound fails one of the two
EDGES = {
    "text_classification": [
        ("model.calibration_folds", 2, 1),
        ("preprocessing.max_chars", 0, -1),  # 0: texts are not cut
        ("model.max_word_features", 0, -1),  # 0: character n-grams alone
        ("model.word_ngrams.0", 3, 4),  # [4,3] was refused as reversed, with [3,4] (above the limit) as the fix
        ("model.char_ngrams.0", 0, -1),
        ("active_learning.seed_labels", 1, 0),
        ("service.threshold", 1.0, 1.0001),
        ("service.review_lease_minutes", 0, -0.5),
    ],
    "recommendation": [
        ("model.metadata_hybrid.batch_size", 2, 1),
        ("model.metadata_hybrid.history_decay", 1.0, 1.01),
        ("solution.recency_half_life_days", 0, -1),  # 0: every interaction counts 1, as null
        ("model.user_personalization.regularization", 0, -0.01),
        ("dataset.n_interactions", 0, -1),  # 0: movielens_100k's and personalize_csv's value
    ],
    "document_extraction": [
        ("model.table_min_columns", 2, 1),
        ("model.checkbox_fill_threshold", 1.0, 1.01),
        ("model.gutter_word_spaces", 0, -0.1),  # 0: gutters by column_gap
        ("engine.currency_threshold", 0, -0.1),  # 0: plain greedy decoding
        ("engine.min_width", 0, -1),
        ("dataset.n_rows", 1, 0),
    ],
}


@pytest.mark.parametrize("task", sorted(EDGES))
def test_the_edge_of_each_bound_passes_and_the_value_past_it_does_not(task):
    bounds = tasks.get(task).bounds
    for key, edge, past in EDGES[task]:
        check_bounds(_composed(f"task={task}", f"{key}={edge}"), bounds)
        with pytest.raises(ConfigError, match=rf"^{re.escape(key)}=\S+ is out of range"):
            check_bounds(_composed(f"task={task}", f"{key}={past}"), bounds)
    # null is an optional key's default: it always passes
    nulls = {"text_classification": "dataset.n_rows", "recommendation": "solution.history_days"}
    if task in nulls:
        check_bounds(_composed(f"task={task}", f"{nulls[task]}=null"), bounds)


def _page_and_truth(folder: Path, truth: object) -> Path:
    """A scan (noise: a blank page would be refused as empty) and its ground truth beside it."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(folder / "scan.png")
    (folder / "scan.json").write_text(json.dumps(truth))
    return folder / "scan.png"


def test_ground_truth_of_the_wrong_type_is_one_data_error_naming_file_page_field_and_type(tmp_path):
    """`"lines": "oops"` failed with Python's reason ("string indices must be integers")."""
    from mlexp.tasks.document_extraction.config import DocumentPages
    from mlexp.tasks.document_extraction.user_documents import write_pages

    good = {"lines": [{"text": "Net pay", "box": [0, 0, 10, 5]}]}
    scan = _page_and_truth(tmp_path / "scans", {"pages": [good, {"lines": "oops"}]})
    pages, truth = tmp_path / "out" / "pages", tmp_path / "out" / "truth"
    pages.mkdir(parents=True)
    truth.mkdir()
    cfg = OmegaConf.create(
        {"dataset": {"path": str(scan), "ground_truth": None}, "preprocessing": OmegaConf.structured(DocumentPages)}
    )
    with pytest.raises(DataError) as refused:
        write_pages(cfg, pages, truth)
    assert str(refused.value) == (
        f"{scan.with_suffix('.json')} page 2: ground truth field 'lines' is a string (\"oops\"); it must be a list "
        "of objects; see 'Output schema' in docs/tasks/document_extraction.md"
    )


@pytest.mark.parametrize(
    ("page", "problem"),
    [
        ({"lines": [{"text": 7, "box": [0, 0, 1, 1]}]}, "field 'lines[0].text' is the number 7; it must be a string"),
        (  # a box of 3 numbers was accepted, and evaluate failed on it with an IndexError
            {"lines": [{"text": "a", "box": [0, 0, 1]}]},
            "field 'lines[0].box' is a list of 3 items; it must be a list of 4 numbers [x0, y0, x1, y1]",
        ),
        (
            {"lines": [{"text": "a", "box": [0, 0, 1, 1], "words": [{"text": "a", "box": [0, "0", 1, 1]}]}]},
            "field 'lines[0].words[0].box[1]' is a string (\"0\"); it must be a number",
        ),
        ({"tables": {"cells": []}}, "field 'tables' is an object; it must be a list of objects"),
        (
            {"tables": [{"cells": [{"row": "1", "column": 0, "text": "x"}]}]},
            "field 'tables[0].cells[0].row' is a string (\"1\"); it must be an integer of at least 0 (rows and "
            "columns count from 0)",
        ),
        (
            {"tables": [{"rows": 2.5, "cells": []}]},
            "field 'tables[0].rows' is the number 2.5; it must be an integer of at least 0, or null (0 or null: "
            "counted from the cells)",
        ),
        (
            {"key_values": [{"key": "Net pay", "value": None}]},
            "field 'key_values[0].value' is null; it must be a string",
        ),
        (  # a state no extraction has was accepted, and every such box counted as wrongly read
            {"selection_elements": [{"box": [0, 0, 1, 1], "state": "checked"}]},
            "field 'selection_elements[0].state' is a string (\"checked\"); it must be SELECTED or NOT_SELECTED",
        ),
        ({"selection_elements": ["x"]}, "field 'selection_elements[0]' is a string (\"x\"); it must be an object"),
        ({"number": True}, "field 'number' is a boolean (true); it must be an integer of at least 1"),
        ([], "the page is a list of 0 items; it must be an object"),
        ({"lines": [{"text": "a"}]}, "misses key 'box'"),  # as before
    ],
)
def test_each_field_of_the_ground_truth_is_checked_as_the_loader_reads_it(tmp_path, page, problem):
    from mlexp.tasks.document_extraction.user_documents import truth_problem

    truth = _page_and_truth(tmp_path, {"pages": [page]}).with_suffix(".json")
    assert truth_problem(truth) == (
        f"{truth} page 1: ground truth {problem}; see 'Output schema' in docs/tasks/document_extraction.md"
    )


def test_ground_truth_with_only_some_fields_and_unknown_keys_still_reads(tmp_path):
    from mlexp.tasks.document_extraction.structure import page_from_json
    from mlexp.tasks.document_extraction.user_documents import truth_problem

    page = {
        "lines": [{"text": "a", "box": [0, 0, 1, 1], "words": [{"text": "a", "box": [0, 0, 1, 1], "note": "mine"}]}],
        "tables": [{"rows": None, "cells": [{"row": 0, "column": 1, "text": "x"}]}],
        "key_values": [{"key": "k", "value": "v", "value_box": None}],
        "selection_elements": [{"box": [0, 0, 1, 1], "state": "SELECTED"}],
        "comment": "not part of the schema",
    }
    truth = _page_and_truth(tmp_path, {"pages": [page]}).with_suffix(".json")
    assert truth_problem(truth) is None
    read = page_from_json(page)
    assert read.lines[0].words[0].text == "a" and (read.tables[0].rows, read.tables[0].columns) == (1, 2)
