"""README: a trial that reuses the shared Pre-processing gets hard-linked copies of the files kept in
`.mlexp/shared/<task>/`, not copies of their bytes."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import TINY, run_cli, trials_of
from run_folders import run_folder


@pytest.mark.usefixtures("tmp_project_with_store")  # the store's first set-up is other tests' concern
def test_a_trial_reusing_the_shared_preprocessing_gets_hard_links_to_its_files(tmp_project: Path):
    run_cli(tmp_project, "task=tabular_regression", *TINY, "model.l1_size=4")
    later = run_cli(tmp_project, "task=tabular_regression", *TINY, "model.l1_size=8")
    reusing = next(t for t in trials_of(tmp_project) if t.params["model.l1_size"] == "8")
    assert "Pre-processing" not in reusing.component_names  # the README's case: it reused, it did not run the stage

    [kept] = [f for f in (tmp_project / ".mlexp" / "shared" / "tabular_regression").iterdir() if f.is_dir()]
    shared = sorted(p.relative_to(kept / "data") for p in (kept / "data").rglob("*") if p.is_file())
    assert shared  # the stage's outputs are kept there
    own = run_folder(later) / "data"
    for relative in shared:
        original, copy = (kept / "data" / relative).stat(), (own / relative).stat()
        assert (copy.st_dev, copy.st_ino) == (original.st_dev, original.st_ino), relative
