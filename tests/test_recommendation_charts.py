"""Every chart the recommendation task writes says what it plots, on which period, in which units, with a key."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from drawn_charts import keep_figures
from mlexp.tasks.recommendation import charts, metadata_selection

UNIT = re.compile(r"\(.+\)")  # a label's unit or scale, in brackets after what is plotted


def _labelled(axis) -> None:
    assert axis.get_title().strip()
    for label in (axis.get_xlabel(), axis.get_ylabel()):
        assert UNIT.search(label), label


def test_metrics_at_k_title_names_the_metrics_the_period_and_the_ks(monkeypatch, tmp_path):
    figures = keep_figures(monkeypatch, charts)
    rows = [
        {"k": k, "precision": 0.1, "recall": 0.2, "normalized_discounted_cumulative_gain": 0.3} for k in (5, 10, 25)
    ]
    charts.metrics_at_k(rows, tmp_path / "metrics_at_k.png", "held-out test period", "recommendation: als", (25, 0.1))
    [axis] = figures["metrics_at_k.png"].axes
    assert axis.get_title().splitlines() == [
        "Precision, recall and NDCG at k = 5, 10, 25 on the held-out test period",
        "recommendation: als",
    ]
    _labelled(axis)
    assert [text.get_text() for text in axis.get_legend().get_texts()] == [
        "precision",
        "recall",
        "NDCG",
        "recall@25, cold items",
    ]


def test_training_curve_names_each_series_period_and_unit(monkeypatch, tmp_path):
    figures = keep_figures(monkeypatch, charts)
    rows = [{"epoch": e, "train_loss": 2.0 / e, "val_ndcg_at_10": 0.1 * e} for e in (1, 2, 3)]
    charts.training_curve(rows, 3, "val_ndcg_at_10", "NDCG@10", tmp_path / "training_curve.png")
    loss_axis, metric_axis = figures["training_curve.png"].axes
    assert loss_axis.get_title() == "Training loss (training interactions) and NDCG@10 (validation period) by epoch"
    _labelled(loss_axis)
    assert metric_axis.get_ylabel() == "validation NDCG@10 (0 to 1)"
    assert [text.get_text() for text in loss_axis.get_legend().get_texts()] == [
        "training loss",
        "best epoch (3)",
        "validation NDCG@10",
    ]


def test_the_metadata_selection_chart_labels_both_axes(monkeypatch, tmp_path):
    closed = []
    monkeypatch.setattr(metadata_selection.plt, "close", closed.append)
    table = pd.DataFrame(
        [
            {"variant": "interactions_only", "test_delta": 0.0, "test_delta_std": 0.0},
            {"variant": "signal_users", "test_delta": 0.02, "test_delta_std": 0.004},
        ]
    )
    metadata_selection.delta_chart(table, tmp_path / "chart.png", (metadata_selection.TEST_METRIC,))
    [figure] = closed
    [axis] = figure.axes
    _labelled(axis)
    assert axis.get_ylabel() == "variant\n(features option, CreateSolution settings)"
    assert figure.legends


@pytest.mark.parametrize(
    ("variants", "metrics"),
    [(17, metadata_selection.METRICS), (1, metadata_selection.METRICS), (1, ("cold_users_precision_at_10",))],
    ids=["filters sweep", "one variant", "one variant, metric="],
)
def test_long_names_and_any_number_of_variants_stay_on_the_selection_chart(monkeypatch, tmp_path, variants, metrics):
    # the docs' filters chart: its baseline ran off the figure's right edge, and its key sat two inches under the
    # axis; with one variant the key covered the x label, or (metric=) fell off the figure
    closed = []
    monkeypatch.setattr(metadata_selection.plt, "close", closed.append)
    baseline = "all_metadata event_type=watch event_value_threshold=0.0"
    names = [baseline] + [
        f"all_metadata event_type=watch event_value_threshold=0.{i} history_days=60.0 recency_half_life_days=14.0"
        for i in range(1, variants + 1)
    ]
    columns = [metadata_selection.short(m) for m in metrics]
    rows = [{"variant": v, **{f"{c}_{x}": 0.001 * i for c in columns for x in ("delta", "delta_std")}}
            for i, v in enumerate(names)]  # fmt: skip
    metadata_selection.delta_chart(pd.DataFrame(rows), tmp_path / "chart.png", metrics, baseline)
    [figure] = closed
    [axis] = figure.axes
    renderer = figure.canvas.get_renderer()
    page = figure.bbox
    for text in (axis.title, axis.xaxis.label, axis.yaxis.label):
        extent = text.get_window_extent(renderer)
        assert page.x0 <= extent.x0 and extent.x1 <= page.x1, text.get_text()
        assert page.y0 <= extent.y0 and extent.y1 <= page.y1, text.get_text()
    [key] = figure.legends
    key_box, label_box = key.get_window_extent(renderer), axis.xaxis.label.get_window_extent(renderer)
    assert page.y0 <= key_box.y0 and key_box.y1 <= label_box.y0  # on the figure, under the x label
    assert (label_box.y0 - key_box.y1) / figure.dpi < 0.5  # inches: not a third of the chart lower
    assert axis.get_window_extent(renderer).height / figure.dpi > 0.5 * variants  # the bars keep their room
