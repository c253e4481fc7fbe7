"""The post's charts from SQL aggregates: a million trips in seconds, and the same picture as plt.scatter."""

from __future__ import annotations

import time

import duckdb
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from mlexp.data import nyc_taxi, nyc_taxi_synthetic  # noqa: E402
from mlexp.tasks.anomaly_detection import charts, stages  # noqa: E402
from mlexp.tasks.anomaly_detection.dialects import DUCKDB  # noqa: E402
from mlexp.tasks.anomaly_detection.duckdb_engine import DuckDBEngine  # noqa: E402
from mlexp.tasks.anomaly_detection.queries import TripQueries  # noqa: E402

RATES = {"multi_day": 2e-5, "zero_duration": 8e-4, "negative_duration": 1e-5, "null_timestamp": 5e-6}


def test_a_million_trips_are_charted_in_seconds(tmp_path):
    month = nyc_taxi_synthetic.generate(1_000_000, 11, "2019-01", RATES)
    path = nyc_taxi_synthetic.write(month, tmp_path / "yellow_tripdata_2019-01.parquet", "parquet")
    started = time.perf_counter()
    engine = DuckDBEngine([nyc_taxi.inspect(path, duckdb.connect())], "1GB", 0, {}, [], {})
    queries = TripQueries(DUCKDB, engine.source(), {})
    counts = engine.query("duration_counts", queries.duration_counts())
    runs = charts.sorted_runs(counts)
    chart = charts.sorted_durations(runs, tmp_path / "sorted.png", "All trips", [12, 12])
    histogram = stages._histogram(engine.query("duration_flags", queries.duration_flags(10)))
    charts.duration_histogram(histogram, 10, {"too_long": 86400.0}, "note", tmp_path / "histogram.png", [12, 12])
    elapsed = time.perf_counter() - started

    assert elapsed < 15, f"{elapsed:.1f} s"
    assert chart.stat().st_size > 10_000 and (tmp_path / "histogram.png").stat().st_size > 10_000
    # every trip with a duration is drawn: the runs cover indexes 0..n-1 without gap
    assert runs["index"].iloc[0] == 0 and runs["last_index"].iloc[-1] == 1_000_000 - month.counts["null_timestamp"] - 1
    assert (runs["index"].iloc[1:].to_numpy() == runs["last_index"].iloc[:-1].to_numpy() + 1).all()
    assert len(runs) < 20_000  # one row per distinct duration, not per trip
    assert int(histogram["trips"].sum()) == int(counts.loc[counts["duration_second"] > 0, "trips"].sum())


def test_the_runs_chart_draws_the_same_picture_as_the_posts_scatter_of_every_point(tmp_path):
    rng = np.random.default_rng(5)
    seconds = np.concatenate([rng.lognormal(np.log(660), 0.75, 200_000).astype(int), [-300, 0, 0, 90_000, 250_000]])
    ours = tmp_path / "ours.png"
    values, trips = np.unique(seconds, return_counts=True)
    charts.sorted_durations(
        charts.sorted_runs(pd.DataFrame({"duration_second": values, "trips": trips})), ours, "t", [6, 6]
    )
    # the post's chart: plt.scatter(range(len(df)), np.sort(df["duration_second"]))
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.scatter(range(len(seconds)), np.sort(seconds))
    ax.set(xlabel="index", ylabel="duration_second", title=f"t: {len(seconds):,} trips sorted by duration_second")
    ax.ticklabel_format(style="plain", axis="both", useOffset=False)
    ax.secondary_yaxis("right", functions=(charts._hours, charts._seconds)).set_ylabel("hours")
    fig.tight_layout()
    fig.savefig(tmp_path / "post.png", dpi=100)
    plt.close(fig)

    a, b = plt.imread(ours), plt.imread(tmp_path / "post.png")
    assert a.shape == b.shape
    differing = np.abs(a[..., :3] - b[..., :3]).max(axis=2) > 0.25
    assert differing.mean() < 0.001, f"{differing.mean():.3%} of pixels differ"


def test_the_chart_after_cleaning_draws_when_every_trip_is_flagged(tmp_path):
    from mlexp.tasks.anomaly_detection.rules import Rule

    month = nyc_taxi_synthetic.generate(500, 3, "2019-01", {"null_timestamp": 0.01})
    path = nyc_taxi_synthetic.write(month, tmp_path / "yellow_tripdata_2019-01.parquet", "parquet")
    engine = DuckDBEngine([nyc_taxi.inspect(path, duckdb.connect())], "1GB", 1, {}, [], {})
    queries = TripQueries(DUCKDB, engine.source(), {}, rules=[Rule("everything", "true", "true")])
    counts = stages._kept(engine.query("duration_flags", queries.duration_flags(10)))
    assert counts.empty  # zero cleaned rows
    runs = charts.sorted_runs(counts)
    assert runs.empty and list(runs.columns) == ["index", "last_index", "duration_second"]
    chart = charts.sorted_durations(runs, tmp_path / "clean.png", "After removing outliers", [4, 4])
    assert chart.stat().st_size > 1_000


def _drawn(monkeypatch):
    figures = []
    monkeypatch.setattr(charts, "_save", lambda fig, path: figures.append(fig) or path)
    return figures


def test_the_sorted_chart_marks_the_enabled_rules_thresholds_read_from_the_config(monkeypatch, tmp_path):
    from anomaly_detection_helpers import config

    cfg = config(tmp_path, "model.max_duration_hours=6")
    thresholds = stages.duration_thresholds(cfg, {})
    assert sorted(thresholds.values()) == [0.0, 6 * 3600.0]  # from the rules, not a constant 86,400

    figures = _drawn(monkeypatch)
    runs = charts.sorted_runs(pd.DataFrame({"duration_second": [-5, 0, 600, 90_000], "trips": [1, 2, 50, 1]}))
    charts.sorted_durations(runs, tmp_path / "sorted.png", "All trips", [6, 6], thresholds)
    [ax, *others] = figures[0].axes
    lines = {line.get_ydata()[0] for line in ax.get_lines() if line.get_linestyle() == "--"}
    assert lines == {0.0, 21600.0}
    assert any("too_long: duration_second >= 21600" in t.get_text() for t in ax.get_legend().get_texts())
    # hours on a second axis: 21,600 s reads as 6 h
    [hours] = ax.child_axes if ax.child_axes else others
    assert hours.get_ylabel() == "hours"


def test_a_threshold_beyond_the_trips_is_named_without_flattening_the_chart(monkeypatch, tmp_path):
    figures = _drawn(monkeypatch)
    runs = charts.sorted_runs(pd.DataFrame({"duration_second": [10, 600, 3000], "trips": [1, 5, 1]}))
    charts.sorted_durations(
        runs, tmp_path / "clean.png", "After", [6, 6], {"too_long: duration_second >= 86400": 86400.0}
    )
    ax = figures[0].axes[0]
    assert ax.get_ylim()[1] < 4000
    assert "off the chart" in ax.get_legend().get_texts()[0].get_text()


def test_the_histograms_note_is_outside_the_bars(monkeypatch, tmp_path):
    figures = _drawn(monkeypatch)
    histogram = pd.DataFrame({"bin": [10, 20, 30], "trips": [5, 500, 5]})
    note = "not on the log axis: 3 trips of 0 s or less, 1 without a duration"
    charts.duration_histogram(histogram, 10, {"too_long": 86400.0}, note, tmp_path / "h.png", [12, 12])
    fig = figures[0]
    fig.canvas.draw()
    [ax] = fig.axes
    [text] = [t for t in fig.findobj(matplotlib.text.Text) if note in t.get_text()]
    assert not text.get_window_extent().overlaps(ax.get_window_extent())
