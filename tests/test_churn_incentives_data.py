"""The churn.txt loader: the packaged real copy, its export, and errors that name rows and columns."""

from __future__ import annotations

import os
import resource
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import cli_env, run_cli
from mlexp.data import export_packaged, telecom_churn
from mlexp.errors import DataError
from mlexp.tasks.churn_incentives import features


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("churn") / "churn.txt"
    assert export_packaged("churn", out) == 3333
    return out


def test_packaged_copy_is_the_classic_table_with_total_spend():
    frame = telecom_churn.load()
    assert len(frame) == 3333 and int(frame["Churn?"].sum()) == 483
    first = frame.iloc[0]
    assert (first["State"], first["Account Length"], first["Area Code"], first["Day Charge"]) == ("KS", 128, 415, 45.07)
    assert first["Total Spend"] == pytest.approx(45.07 + 16.78 + 11.01 + 2.7)
    np.testing.assert_allclose(frame["Total Spend"], frame[telecom_churn.CHARGES].sum(axis=1), atol=0.006)


def test_export_writes_churn_txt_that_loads_back_identically(exported):
    header = exported.read_text().splitlines()[0]
    assert header.split(",") == telecom_churn.COLUMNS
    assert exported.read_text().splitlines()[1].endswith(",1,False.")
    pd.testing.assert_frame_equal(telecom_churn.load(exported), telecom_churn.load())
    folder = telecom_churn.load(exported.parent, n_rows=300, seed=1)
    assert len(folder) == 300 and folder.equals(telecom_churn.load(exported, n_rows=300, seed=1))


def _write(path: Path, exported: Path, edit) -> Path:
    frame = pd.read_csv(exported, dtype=str, keep_default_na=False)
    edit(frame)
    frame.to_csv(path, index=False)
    return path


def _set(rows: list[int], column: str, value: str):
    def edit(frame: pd.DataFrame) -> None:
        frame.loc[rows, column] = value

    return edit


def _drop(*columns: str):
    def edit(frame: pd.DataFrame) -> None:
        frame.drop(columns=list(columns), inplace=True)

    return edit


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_drop("Day Charge", "Churn?"), r"missing churn.txt columns Day Charge, Churn\?"),
        (_set([4, 9], "Eve Charge", "n/a"), "column Eve Charge is not a number in lines 6, 11"),
        (
            _set([7], "Churn?", "maybe"),
            r"column Churn\? has labels other than True./False. in line 9 \(e.g. 'maybe'; line 1 is the header\)",
        ),
        (_set([2], "VMail Plan", "sometimes"), "column VMail Plan is not yes/no in line 4"),
        (_set([0], "Intl Charge", "-1"), "column Intl Charge is negative in line 2"),
    ],
    ids=["missing columns", "non-numeric charge", "unknown label", "bad plan", "negative charge"],
)
def test_bad_input_names_the_file_rows_and_columns(tmp_path, exported, edit, message):
    path = _write(tmp_path / "bad.csv", exported, edit)
    with pytest.raises(DataError, match=message) as failure:
        telecom_churn.load(path)
    assert str(path) in str(failure.value)


def test_mlexp_data_refuses_a_folder_as_its_output_and_leaves_nothing_behind(tmp_project):
    folder = tmp_project / "conf"
    done = run_cli(tmp_project, "data", "churn", str(folder), check=False)
    assert list(tmp_project.rglob("*.partial")) == []
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"mlexp data: error: {folder} is a folder; give the path of the file to write the churn dataset to"
    )


def _small_file_limit() -> None:
    # Python ignores SIGXFSZ, so a write past the limit fails with EFBIG, as on a full disk
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))


@pytest.mark.parametrize(("dataset", "file"), [("churn", "churn.txt"), ("abalone", "abalone.data")])
def test_an_export_that_fails_half_way_leaves_no_file_half_written(tmp_project, dataset, file):
    out = tmp_project / "data" / "raw" / file
    done = subprocess.run(
        [sys.executable, "-m", "mlexp.cli", "data", dataset, str(out)],
        cwd=tmp_project,
        env=cli_env(tmp_project),
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_small_file_limit,
    )
    assert list(out.parent.iterdir()) == []  # neither the file DVC would take as good nor its .partial
    assert done.returncode == 2
    assert (
        done.stderr.strip()
        == f"mlexp data: error: cannot write {out} (File too large); give a file path you can write to"
    )


def test_split_is_stratified_and_covers_every_customer_once():
    frame = telecom_churn.load()
    parts = features.split(frame, validation_fraction=0.15, test_fraction=0.45, seed=42)
    assert {name: len(part) for name, part in parts.items()} == {"train": 1333, "validation": 500, "test": 1500}
    for part in parts.values():
        assert part["Churn?"].mean() == pytest.approx(483 / 3333, abs=0.005)
    ids = np.concatenate([part[features.CUSTOMER].to_numpy() for part in parts.values()])
    assert sorted(ids) == list(range(1, 3334))


def test_a_broken_installation_is_told_apart_from_an_output_path_a_killed_export_left(tmp_path, monkeypatch):
    out = tmp_path / "churn.txt"
    (tmp_path / "churn.txt.partial").write_text("State,Account Length\nKS,12")  # cut mid-row by a kill

    def unreadable() -> pd.DataFrame:
        raise PermissionError(13, "Permission denied", "site-packages/mlexp/data/packaged/churn.txt")

    monkeypatch.setattr(telecom_churn, "read_packaged", unreadable)
    with pytest.raises(
        DataError, match=r"^cannot read mlexp's packaged churn dataset \(Permission denied\); reinstall"
    ):
        export_packaged("churn", out)
    assert list(tmp_path.iterdir()) == []  # the stale part is gone, nothing written


def test_an_export_onto_a_pipe_is_refused_and_the_pipe_stays(tmp_project):
    # the export is written beside its target and renamed over it: `mlexp data churn /dev/full` turned the device
    # into a regular file, exit 0
    pipe = tmp_project / "pipe"
    os.mkfifo(pipe)
    done = run_cli(tmp_project, "data", "churn", str(pipe), check=False)
    assert done.returncode == 2
    assert (
        done.stderr.strip() == f"mlexp data: error: {pipe} is not a regular file (a device or a pipe); "
        "give the path of the file to write the churn dataset to"
    )
    assert stat.S_ISFIFO(pipe.stat().st_mode)
