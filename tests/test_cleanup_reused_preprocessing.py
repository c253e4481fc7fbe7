"""Deleting an experiment whose Pre-processing another experiment's trial reused: the summary counts that trial,
the shared outputs go with the component, and the trial keeps its results and its own hard-linked copies."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.exceptions import MlflowException

from conftest import TINY, run_cli, store_client, trials_of
from mlexp.cleanup import DeletionReport
from run_folders import run_folder

SHARED_TAG = "mlexp.shared_component.prepare"
# was "1 trial of other experiments keep their results but lose the Pre-processing they reused"
LOSS = "1 trial of another experiment keeps its results but loses the Pre-processing it reused"


def _files(folder: Path) -> dict[Path, int]:
    """Each file under `folder` with its inode."""
    return {p.relative_to(folder): p.stat().st_ino for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(autouse=True)
def _project_store_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.mark.usefixtures("tmp_project_with_store")  # the store's first set-up is other tests' concern
def test_deleting_a_reused_pre_processing_counts_the_trials_of_other_experiments_that_reused_it(tmp_project: Path):
    run_cli(tmp_project, "task=tabular_regression", *TINY, "tracking.experiment_name=first")
    reusing = run_cli(tmp_project, "task=tabular_regression", *TINY, "tracking.experiment_name=second")
    client = store_client(tmp_project)
    (producer,) = trials_of(tmp_project, "first", client)
    (reuser,) = trials_of(tmp_project, "second", client)
    component = producer.components["Pre-processing"]
    assert reuser.tags[SHARED_TAG] == component and "Pre-processing" not in reuser.components
    (shared,) = (tmp_project / ".mlexp" / "shared" / "tabular_regression").glob("*/component.json")
    own_data = run_folder(reusing) / "data"
    linked = _files(own_data)
    assert linked and linked == _files(shared.parent / "data")  # hard links to the shared outputs

    # the preview (no terminal: nothing deleted) and the deletion both count the trial that reused it
    asked = run_cli(tmp_project, "delete", "experiment=first", check=False)
    assert asked.returncode == 1 and LOSS in asked.stdout, asked.stdout + asked.stderr
    done = run_cli(tmp_project, "delete", "experiment=first", "--force")
    assert "1 shared pre-processing output" in done.stdout and LOSS in done.stdout, done.stdout

    # the component and its shared outputs are gone; the tag that named it stays
    with pytest.raises(MlflowException):
        client.get_run(component)
    assert not shared.parent.exists()
    (after,) = trials_of(tmp_project, "second", client)
    assert (after.status, after.metrics, after.tags[SHARED_TAG]) == ("FINISHED", reuser.metrics, component)
    assert _files(own_data) == linked  # its copies outlive the shared folder they were linked from

    # the next trial on the same data runs Pre-processing itself instead of linking to the deleted component
    run_cli(tmp_project, "task=tabular_regression", *TINY, "tracking.experiment_name=second", "model.l1_size=8")
    (rerun,) = [t for t in trials_of(tmp_project, "second", client) if t.run_id != reuser.run_id]
    assert rerun.tags[SHARED_TAG] == rerun.components["Pre-processing"] != component


def test_the_count_of_trials_that_reused_it_reads_in_the_plural_too():
    report = DeletionReport("first", "sqlite:///mlflow.db", trials=["t"], linked_elsewhere=2)
    assert report.contents() == (
        "1 trial with 0 components; 2 trials of other experiments keep their results but lose the Pre-processing "
        "they reused"
    )
