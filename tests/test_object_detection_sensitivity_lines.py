"""The sensitivity table's lines and chart note: a count of one frame is singular (it said "1 frames")."""

from __future__ import annotations

from pathlib import Path

from mlexp.tasks.object_detection import charts, stages

ROWS = [
    {"attribute": "ball_size", "value": "small", "frames": 1, "map_50": 0.5},
    {"attribute": "ball_size", "value": "large", "frames": 3, "map_50": 0.25},
    {"attribute": "ball", "value": "none", "frames": 1, "map_50": 0.0, "false_positive_rate": 1.0},
]


def test_one_frame_is_singular_and_the_columns_stay_aligned():
    lines = [stages._table_line(row) for row in ROWS]
    assert lines[0].split() == ["ball_size", "small", "1", "frame", "mAP@0.5", "0.500"]
    assert lines[1].split() == ["ball_size", "large", "3", "frames", "mAP@0.5", "0.250"]
    assert lines[2].split()[2:] == ["1", "frame", "false", "positives", "on", "100.0%", "of", "it"]
    assert lines[0].index("mAP@0.5") == lines[1].index("mAP@0.5")


def test_the_chart_notes_one_frame_without_a_ball_in_the_singular(monkeypatch, tmp_path):
    titles = []
    monkeypatch.setattr(charts, "_save", lambda fig, path: titles.append(fig.axes[0].get_title()) or Path(path))
    charts.sensitivity_bars(ROWS, 0.4, tmp_path / "sensitivity.png")
    assert "no ball: 1 frame, a false positive on 100% of it" in titles[0]


def _figures(monkeypatch) -> list:
    figures: list = []
    monkeypatch.setattr(charts, "_save", lambda fig, path: figures.append(fig) or Path(path))
    return figures


def test_the_chart_labels_each_bar_and_names_a_single_value_instead_of_comparing_it(monkeypatch, tmp_path):
    figures = _figures(monkeypatch)
    rows = [*ROWS, {"attribute": "camera_angle", "value": "wide", "frames": 4, "map_50": 0.3}]
    charts.sensitivity_bars(rows, 0.4, tmp_path / "sensitivity.png")
    ax = figures[0].axes[0]
    labels = sorted(t.get_text() for t in ax.texts if t.get_text().startswith("0."))
    assert labels == ["0.250", "0.500"]  # bar_label on the ball size bars; none drawn for the camera angle
    assert any(t.get_text().startswith("1 value only") and "wide" in t.get_text() for t in ax.texts)
    assert len({tuple(p.get_facecolor()) for p in ax.patches}) == 1


def test_training_curves_have_integer_epochs_a_data_range_and_the_kept_epoch(monkeypatch, tmp_path):
    figures = _figures(monkeypatch)
    epochs = [{"epoch": e, "losses": {"cls": 1.0 / e}, "val_map_50": v} for e, v in [(1, 0.01), (2, 0.04), (3, 0.02)]]
    charts.training_curves(epochs, tmp_path / "training_curves.png", best_epoch=2)
    fig = figures[0]
    fig.canvas.draw()
    left, right = fig.axes
    assert all(float(t).is_integer() for t in right.get_xticks())
    assert right.get_ylim()[0] == 0 and right.get_ylim()[1] < 0.1
    assert any("epoch 2" in t.get_text() for t in right.get_legend().get_texts())


def test_a_precision_recall_curve_without_a_true_positive_says_so(monkeypatch, tmp_path):
    import numpy as np

    figures = _figures(monkeypatch)
    charts.precision_recall(np.zeros(3), np.zeros(3), 0.0, tmp_path / "pr.png", "t")
    assert any("no true positive at any threshold" in t.get_text() for t in figures[0].axes[0].texts)
