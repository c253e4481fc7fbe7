"""A sweep's end: its trials ranked best first, the comparison table and charts, the best marked, the record closed.

The tracking writer does this when the sweep's process reaches one (`mlexp.tracking.writer_process`): it has
MLflow, pandas and the store loaded already, which the sweep's process would import and open only now, in
series after the last trial (seconds on every sweep). Without a writer (MLEXP_TRACKING_WRITER=inline, or none
reachable) the sweep's process runs the same function itself. The writer's key covers this module's code
(writer_address._code_stamp): a writer never summarises with older code than the sweep's.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

NAMED_TIES = 5  # tied trials named under the best-trial line, then "and N more"


@dataclass(frozen=True)
class SweepEnd:
    """What the sweep's process knows at its end, in plain values: it travels to the writer as JSON."""

    uri: str
    experiment: str
    sweep_id: str
    name: str
    metric: str
    reporting_only: bool  # the task's objective is reported per trial, never optimised: no trial is marked best
    headline_metrics: list[str]
    charts_dir: str
    failed_jobs: int


@dataclass
class SweepSummary:
    """What the sweep's process prints, and what it needs for the UI link and its exit status."""

    lines: list[str]
    experiment_id: str
    params: list[str] = field(default_factory=list)
    best: bool = False

    def to_reply(self) -> dict[str, Any]:
        return asdict(self)


def summarise(end: SweepEnd) -> SweepSummary:
    """Rank the sweep's trials, log the table and charts on its record, mark the best trial, close the record."""
    from mlflow.entities import RunStatus

    from mlexp import compare
    from mlexp.experiment_analytics.trials import ExperimentAnalytics
    from mlexp.tracking import TrackingStore, tags

    client = TrackingStore(end.uri, None).client()
    trials = ExperimentAnalytics(end.experiment, sweep=end.sweep_id, tracking_uri=end.uri)
    ranked = trials.dataframe()
    table = compare.format_table(ranked, end.headline_metrics)
    lines = [table]
    client.log_text(end.sweep_id, table + "\n", "comparison/trials.txt")
    for chart in compare.write_charts(ranked, trials.metric_history(), Path(end.charts_dir)):
        client.log_artifact(end.sweep_id, str(chart), artifact_path="comparison")
    # rows come best first: the first is the best when it finished with a value of the objective
    top = ranked.iloc[0] if len(ranked) else None
    scored = top is not None and top["Status"] == "FINISHED" and not math.isnan(top["ObjectiveValue"])
    best = top if scored else None
    if end.reporting_only and best is not None:
        lines.append(
            f"{end.metric} is reported per trial above; the task's objective is reporting-only: no trial is marked best"
        )
    elif best is not None:
        rest = ranked.iloc[1:]
        tied = rest[(rest["Status"] == "FINISHED") & (rest["ObjectiveValue"] == best["ObjectiveValue"])]
        client.set_tag(best["RunId"], tags.BEST_IN_SWEEP, "true")
        client.set_tag(end.sweep_id, "mlexp.best_trial", best["RunId"])
        client.set_tag(end.sweep_id, "mlexp.best_trial_name", best["TrialName"])
        client.set_tag(end.sweep_id, tags.BEST_TRIAL_TIES, str(len(tied)))
        client.log_metric(end.sweep_id, f"best_{end.metric}", best["ObjectiveValue"])
        lines.append(f"best trial: {best['TrialName']} ({best['RunId']}) {end.metric} = {best['ObjectiveValue']:.6g}")
        lines += _tie(best["TrialName"], list(tied["TrialName"]))
    else:
        lines.append(f"no trial of sweep {end.name} finished with a {end.metric}")
    lines.append(f"charts: {end.charts_dir}")
    if scored:
        sweep_tag = f"{tags.CHOICE_PREFIX}sweep"  # the sweep file the trials ran in
        sweep_file = next((run.data.tags[sweep_tag] for run in trials.trials if sweep_tag in run.data.tags), "")
        report = _sweep_report(trials.task, sweep_file, end.name)
        if report:
            lines.append(report)
    status = RunStatus.FAILED if end.failed_jobs or best is None else RunStatus.FINISHED
    client.set_terminated(end.sweep_id, RunStatus.to_string(status))
    return SweepSummary(lines, trials.experiment_id, list(ranked.attrs["params"]), best is not None)


def _tie(best: str, tied: list[str]) -> list[str]:
    """What follows the best-trial line when other trials have its value: which, and that the pick is the table's."""
    if not tied:
        return []
    names = ", ".join(tied[:NAMED_TIES]) + (f" and {len(tied) - NAMED_TIES} more" if len(tied) > NAMED_TIES else "")
    return [
        f"  tied with {'1 other trial' if len(tied) == 1 else f'{len(tied)} other trials'} at that value: {names}",
        f"  the objective cannot choose between them: {best} is marked best only as the first in the table",
    ]


def _sweep_report(task: str, sweep_file: str, name: str) -> str:
    """The line naming the report the task declares for this sweep file (`Task.sweep_reports`), run on this sweep."""
    from mlexp import tasks
    from mlexp.errors import ConfigError

    try:
        report = tasks.get(task).sweep_reports.get(sweep_file)
    except ConfigError:  # trials of a task this installation no longer has: the table is all there is
        return ""
    return f"{report.what}: {report.command.format(sweep=name)}" if report else ""
