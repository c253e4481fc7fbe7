"""A trial that reuses an earlier trial's Pre-processing repeats the warnings that Pre-processing printed about the
data, marked as coming from it: another model on the same bad file still says the file has bad rows. A record kept
before warnings were kept repeats nothing."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import run_cli, trials_of

TASK = "anomaly_detection"
HEADER = "VendorID,tpep_pickup_datetime,tpep_dropoff_datetime,passenger_count,trip_distance,fare_amount,total_amount"
ROWS = [
    "1,2019-01-01 00:46:40,2019-01-01 00:53:20,1,1.5,6.5,7.55",
    "2,2019-01-01 00:59:47,2019-01-01 01:18:59,1,2.6,12,14.58",
    "1,2019-01-04 08:00:00,2019-01-04 08:30:00,1,two point five,21,24.3",  # reads as null, with a warning
]


def _warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("mlexp: warning: ")]


def _bad_file(project: Path) -> Path:
    path = project / "yellow_tripdata_2019-01.csv"
    path.write_text("\n".join([HEADER, *ROWS]) + "\n")
    return path


def test_a_reused_pre_processing_repeats_its_warnings_marked_as_reused(tmp_project_with_store):
    project = tmp_project_with_store
    data = f"dataset.path={_bad_file(project)}"
    first = run_cli(project, f"task={TASK}", data)
    warned = _warnings(first.stderr)
    assert any("trip_distance: 1 row holds text that is not a number" in line for line in warned), first.stderr

    second = run_cli(project, f"task={TASK}", data, "model.iqr_k=2")
    assert "Pre-processing: reusing component" in second.stdout, second.stdout
    [source] = [t for t in trials_of(project, TASK) if "Pre-processing" in t.components]  # the one that ran it
    assert f"reusing component {source.components['Pre-processing']} of trial {source.run_id}" in second.stdout
    mark = f" (from the reused pre-processing of trial {source.run_id})"
    assert _warnings(second.stderr) == [line + mark for line in warned]


def test_a_record_from_before_warnings_were_kept_repeats_none(tmp_project_with_store):
    project = tmp_project_with_store
    data = f"dataset.path={_bad_file(project)}"
    assert _warnings(run_cli(project, f"task={TASK}", data).stderr)
    [record] = (project / ".mlexp" / "shared" / TASK).glob("*/component.json")
    older = {k: v for k, v in json.loads(record.read_text()).items() if k != "warnings"}
    record.chmod(0o644)  # published read-only, as trials share its files
    record.write_text(json.dumps(older) + "\n")

    second = run_cli(project, f"task={TASK}", data, "model.iqr_k=2")
    assert "Pre-processing: reusing component" in second.stdout
    assert _warnings(second.stderr) == []
