"""The ranges anomaly_detection and object_detection declare: a value out of range is one line before a trial (or a
sweep) opens, where it used to fail a stage later (a LIMIT error, a LinAlgError, an IndexError) or run on silently."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir

from conftest import REPO, one_line_error, run_cli
from mlexp import tasks
from mlexp.config import make_composable
from mlexp.config.bounds import check_bounds
from mlexp.errors import ConfigError


@pytest.mark.parametrize(
    ("args", "line"),
    [
        # a SQL syntax error in the detect stage: -{minutes:seconds} became `--600`, a comment
        (
            ["task=anomaly_detection", "model.dst_fall_back_max_minutes=-10"],
            "model.dst_fall_back_max_minutes=-10 is out of range: it must be between 0 and 60",
        ),
        # DuckDB's "LIMIT/OFFSET cannot be negative" in the query stage
        (["task=anomaly_detection", "model.top_n=-1"], "model.top_n=-1 is out of range: it must be at least 0"),
        # a division by zero, then matplotlib's "cannot be log-scaled" in the detect stage
        (
            ["task=anomaly_detection", "model.histogram_bins_per_decade=0"],
            "model.histogram_bins_per_decade=0 is out of range: it must be at least 1",
        ),
        # "ask for more rows than the 1000 generated" in prepare
        (
            ["task=anomaly_detection", "dataset.anomalies.zero_distance=1.5"],
            "dataset.anomalies.zero_distance=1.5 is out of range: it must be between 0 and 1",
        ),
        # "LinAlgError: Singular matrix" drawing the first chart
        (
            ["task=anomaly_detection", "model.figure_size=[0,12]"],
            "model.figure_size.0=0 is out of range: it must be above 0",
        ),
        # flagged every trip, and the trial finished
        (
            ["task=anomaly_detection", "model.max_duration_hours=0"],
            "model.max_duration_hours=0 is out of range: it must be above 0",
        ),
        # refused by prepare, after the trial opened
        (["task=object_detection", "model.tile_size=8"], "model.tile_size=8 is out of range: it must be at least 16"),
        (
            ["task=object_detection", "dataset.val_fraction=1.2"],
            "dataset.val_fraction=1.2 is out of range: it must be above 0 and below 1",
        ),
        # an IndexError after the train stage, a ZeroDivisionError in it
        (["task=object_detection", "model.epochs=0"], "model.epochs=0 is out of range: it must be at least 1"),
        (
            ["task=object_detection", "model.val_interval=0"],
            "model.val_interval=0 is out of range: it must be at least 1",
        ),
        # numpy's "probabilities are not non-negative" in training
        (
            ["task=object_detection", "preprocessing.flip_prob=1.5"],
            "preprocessing.flip_prob=1.5 is out of range: it must be between 0 and 1",
        ),
        # a NaN box loss, reported as "training diverged ... lower model.lr"
        (
            ["task=object_detection", "model.anchor_scale=0"],
            "model.anchor_scale=0 is out of range: it must be above 0",
        ),
        # ran, and reported a negative inference_fps
        (
            ["task=object_detection", "model.speed_frames=-1"],
            "model.speed_frames=-1 is out of range: it must be at least 1",
        ),
        (
            ["task=object_detection", "model=faster_rcnn", "model.rcnn_rois=0"],
            "model.rcnn_rois=0 is out of range: it must be at least 1",
        ),
        (
            ["task=object_detection", "model.momentum=1"],
            "model.momentum=1 is out of range: it must be at least 0 and below 1",
        ),
    ],
)
def test_a_setting_out_of_its_range_is_one_line_before_a_trial_opens(tmp_project, args, line):
    done = run_cli(tmp_project, *args, check=False)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip().splitlines() == [f"mlexp: error: {line}"]
    assert not (tmp_project / "mlflow.db").exists()  # nothing recorded


def test_a_swept_value_out_of_its_range_is_one_line_before_the_sweep_opens(tmp_project):
    message = one_line_error(tmp_project, "-m", "task=anomaly_detection", "model.max_duration_hours=0,24")
    assert message == "model.max_duration_hours=0,24: model.max_duration_hours=0 is out of range: it must be above 0"
    # an interval reaching past a probability's end (its end is checked against the upper end alone)
    message = one_line_error(
        tmp_project, "-m", "task=object_detection", "sweep=tpe", "model.score_threshold=interval(0.5,1.5)"
    )
    assert message == (
        "model.score_threshold=interval(0.5,1.5): model.score_threshold=1.5 is out of range: it must be at most 1"
    )
    # a swept list: its items' ranges
    message = one_line_error(tmp_project, "-m", "task=anomaly_detection", "model.figure_size=[0,12],[12,12]")
    assert message == "model.figure_size=[0,12],[12,12]: model.figure_size.0=0 is out of range: it must be above 0"


# (task, key, the value at the edge of its range, the nearest value past it)
EDGES = [
    ("anomaly_detection", "dataset.n_rows", "1", "0"),
    ("anomaly_detection", "dataset.anomalies.zero_distance", "1", "1.01"),
    ("anomaly_detection", "dataset.anomalies.negative_fare", "0", "-0.01"),
    ("anomaly_detection", "engine.threads", "0", "-1"),  # 0: one thread per core
    ("anomaly_detection", "model.zero_distance_max_minutes", "0", "-0.01"),  # 0: any zero-distance trip
    ("anomaly_detection", "model.dst_fall_back_max_minutes", "60", "60.01"),
    ("anomaly_detection", "model.dst_fall_back_max_minutes", "0", "-0.01"),
    ("anomaly_detection", "model.top_n", "0", "-1"),
    ("anomaly_detection", "model.flagged_rows_max", "0", "-1"),
    ("anomaly_detection", "model.histogram_bins_per_decade", "1", "0"),
    ("anomaly_detection", "model.iqr_k", "0.01", "0"),
    ("object_detection", "dataset.n_frames", "3", "2"),
    ("object_detection", "dataset.frames_per_play", "1", "0"),
    ("object_detection", "dataset.no_ball_fraction", "0", "-0.01"),
    ("object_detection", "dataset.no_ball_fraction", "0.99", "1"),  # no frame would hold a ball
    ("object_detection", "dataset.val_fraction", "0.99", "1"),
    ("object_detection", "preprocessing.tile_around_ball", "1", "1.01"),
    ("object_detection", "preprocessing.tile_around_ball", "0", "-0.01"),
    ("object_detection", "preprocessing.small_box_px", "0", "-1"),
    ("object_detection", "model.tile_size", "16", "15"),
    ("object_detection", "model.tile_overlap", "0", "-1"),
    ("object_detection", "model.min_hard_negatives", "0", "-1"),
    ("object_detection", "model.batch_size", "1", "0"),
    ("object_detection", "model.warmup_epochs", "0", "-1"),
    ("object_detection", "model.val_interval", "1", "0"),
    ("object_detection", "model.lr_decay", "1", "1.01"),
    ("object_detection", "model.data_workers", "0", "-1"),
    ("object_detection", "model.score_threshold", "0", "-0.01"),
    ("object_detection", "model.score_threshold", "1", "1.01"),
    ("object_detection", "model.speed_frames", "1", "0"),
]


def _composed(task: str, *overrides: str):
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose("config", overrides=[f"task={task}", *overrides])


@pytest.mark.parametrize(("task", "key", "edge", "past"), EDGES)
def test_a_value_at_the_edge_of_its_range_passes_and_the_next_one_does_not(task, key, edge, past):
    make_composable()
    bounds = tasks.get(task).bounds
    check_bounds(_composed(task, f"{key}={edge}"), bounds)
    with pytest.raises(ConfigError, match=rf"^{key}=\S+ is out of range: it must be "):
        check_bounds(_composed(task, f"{key}={past}"), bounds)


def test_null_passes_where_it_means_the_default():
    make_composable()
    bounds = tasks.get("object_detection").bounds
    # the whole frame, anchors from the boxes, no time limit
    nulls = ("model.tile_size=null", "model.anchor_scale=null", "model.max_train_seconds=null")
    check_bounds(_composed("object_detection", *nulls), bounds)


def test_the_smallest_tile_is_the_one_the_network_check_takes():
    from mlexp.tasks.object_detection import network_choice

    assert tasks.get("object_detection").bounds["model.tile_size"].low == network_choice.MIN_TILE
