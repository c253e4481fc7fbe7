"""A copied or moved project keeps reading and writing its own artifact folder after `mlexp relocate`."""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import TINY, run_cli, store_client, trials_of


def test_a_moved_project_is_refused_then_relocated_and_its_artifacts_read_from_the_new_place(tmp_project, tmp_path):
    run_cli(tmp_project, "task=tabular_regression", *TINY)
    moved = tmp_path / "moved"
    shutil.move(str(tmp_project), moved)

    refused = run_cli(moved, "task=tabular_regression", *TINY, check=False)
    assert refused.returncode == 2 and "run `mlexp relocate`" in refused.stderr
    assert not (tmp_project / "mlartifacts").exists()  # nothing written to the old place

    done = run_cli(moved, "relocate")
    assert "experiments" in done.stdout
    client = store_client(moved)
    for trial in trials_of(moved, client=client):
        run = client.get_run(trial.run_id)
        assert run.info.artifact_uri.startswith((moved / "mlartifacts").as_uri())
        config = client.download_artifacts(trial.run_id, "config.yaml", str(tmp_path / trial.run_id))
        assert "tabular_regression" in Path(config).read_text()
    again = run_cli(moved, "task=tabular_regression", *TINY)
    assert "relocate" not in again.stderr
