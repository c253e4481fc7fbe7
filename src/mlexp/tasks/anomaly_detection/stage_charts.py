"""A stage's charts, drawn in a thread while its next query runs: DuckDB, pyarrow and PyAthena release the GIL,
matplotlib holds it, so on two cores the two overlap. Queries stay on the main thread, where Ctrl-C interrupts
DuckDB and PyAthena cancels the running Athena query. matplotlib itself is imported in a thread while the stage's
first queries run (the prepare stage does not load it)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pandas as pd
from omegaconf import DictConfig

from mlexp.tracking import Tracker


def _charts() -> ModuleType:
    """The charts module (matplotlib). Imported with a statement, not importlib: `mlexp pipelines` reads the
    statement to make charts.py a code dep of the stages that draw."""
    from mlexp.tasks.anomaly_detection import charts

    return charts


def _import_charts() -> None:
    with contextlib.suppress(BaseException):  # a failing import fails where a chart imports it, in one line
        _charts()


@contextmanager
def charts_loading() -> Iterator[None]:
    """matplotlib (about 0.6 s) imported in a thread meanwhile: a chart's own import then waits only for the rest.
    A stage that fails leaves it to finish on its own (a daemon thread) rather than wait for it."""
    thread = threading.Thread(target=_import_charts, name="mlexp-charts-import", daemon=True)
    thread.start()
    yield
    thread.join()


@dataclass(frozen=True)
class Chart:
    """A chart drawn to reports/plots/<name>.png, not yet logged (it is drawn in a thread beside a query)."""

    name: str
    path: Path
    seconds: float
    trips_shown: int = 0

    def log(self, tracker: Tracker) -> None:
        tracker.log_artifact(self.path, name="plots", media_type="image/png")
        tracker.log_metric(f"elapsed_s_chart_{self.name}", self.seconds)


def _plots(cfg: DictConfig) -> Path:
    path = Path(cfg.paths.reports) / "plots"
    path.mkdir(parents=True, exist_ok=True)
    return path


def sorted_chart(cfg: DictConfig, counts: pd.DataFrame, name: str, title: str, thresholds: dict[str, float]) -> Chart:
    """The post's sorted scatter of duration_second, every trip drawn, with the enabled rules' `thresholds`."""
    charts = _charts()

    started = time.perf_counter()
    runs = charts.sorted_runs(counts.set_axis(["duration_second", "trips"], axis=1))
    plots = _plots(cfg)
    runs.to_csv(plots / f"{name}.csv", index=False)
    path = charts.sorted_durations(runs, plots / f"{name}.png", title, cfg.model.figure_size, thresholds)
    shown = int(runs["last_index"].iloc[-1] + 1) if len(runs) else 0
    return Chart(name, path, time.perf_counter() - started, shown)


def histogram_chart(cfg: DictConfig, histogram: pd.DataFrame, markers: dict[str, float], note: str) -> Chart:
    """Trips per logarithmic bin of duration_second, the rules' thresholds marked, its data beside it as CSV."""
    charts = _charts()

    started = time.perf_counter()
    bins = cfg.model.histogram_bins_per_decade
    plots = _plots(cfg)
    edges = histogram.assign(
        seconds_from=10 ** (histogram["bin"] / bins), seconds_to=10 ** ((histogram["bin"] + 1) / bins)
    )
    edges[["seconds_from", "seconds_to", "trips"]].to_csv(plots / "duration_histogram.csv", index=False)
    path = charts.duration_histogram(
        histogram, bins, markers, note, plots / "duration_histogram.png", cfg.model.figure_size
    )
    return Chart("duration_histogram", path, time.perf_counter() - started)
