"""`make clean` removes what runs leave behind, but never the only copy of a killed trial's records."""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import REPO


def _clean(project: Path) -> str:
    done = subprocess.run(
        ["make", "-s", "-C", str(project), "-f", str(REPO / "Makefile"), "clean"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def test_make_clean_keeps_journals_not_yet_in_the_store(tmp_path):
    for folder in ("outputs/tabular_regression/x", "multirun", ".mlexp/shared/t", ".mlexp/journal/abc"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / ".mlexp/journal/abc/ops.jsonl").write_text("{}\n")
    said = _clean(tmp_path)
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == [
        ".mlexp",
        ".mlexp/journal",
        ".mlexp/journal/abc",
        ".mlexp/journal/abc/ops.jsonl",
    ]
    assert "run `mlexp sync`, then make clean again" in said


def test_make_clean_removes_the_journal_folder_once_synced(tmp_path):
    for folder in (".mlexp/journal", ".mlexp/checked_overrides"):
        (tmp_path / folder).mkdir(parents=True)
    assert _clean(tmp_path) == ""
    assert list(tmp_path.iterdir()) == []
