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
