"""Malformed abalone files: one line naming the file (and the member of a zip), the line and the column."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from conftest import TINY, run_cli, store_client, trials_of
from mlexp.data import abalone
from mlexp.errors import DataError

ROWS = [
    "M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15,15",
    "F,0.53,0.42,0.135,0.677,0.2565,0.1415,0.21,9",
    "I,0.33,0.255,0.08,0.205,0.0895,0.0395,0.055,7",
]
HEADER = ",".join(abalone.COLUMNS)
NINE = f"the 9 abalone columns ({', '.join(abalone.COLUMNS)})"


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def _zip(path: Path, members: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    return path


def _truncated_zip(path: Path) -> Path:
    """A zip cut short, as an interrupted download or copy leaves it."""
    data = _zip(path, {"abalone.data": "\n".join(ROWS * 50) + "\n"}).read_bytes()
    path.write_bytes(data[:200])
    return path


def _refusal(path: Path) -> str:
    with pytest.raises(DataError) as refused:
        abalone.load(path)
    return str(refused.value)


@pytest.mark.parametrize("value", ["inf", "-inf", "1e308", "-1e200"])
def test_a_measurement_that_is_infinite_or_too_large_to_scale_is_refused_with_its_line(tmp_path, value):
    # inf made the length column NaN in every scaled row, 1e308 made it 0, and the model was registered
    path = _write(tmp_path / "abalone.data", [ROWS[0], ROWS[1].replace("0.53", value, 1), ROWS[2]])
    assert _refusal(path) == (
        f"{path}: column length is infinite or too large to scale (beyond ±1e+149) in line 2; correct the value or "
        "remove the row"
    )


@pytest.mark.parametrize("rings", ["-3", "7.5", "0", "1e300"])
def test_rings_that_are_not_a_count_are_refused_with_their_line(tmp_path, rings):
    path = _write(tmp_path / "abalone.data", [ROWS[0], ROWS[1], ROWS[2].removesuffix(",7") + f",{rings}"])
    assert _refusal(path) == (
        f"{path}: column rings is not a count of growth rings (a whole number from 1 to 16777216) in line 3; correct "
        "the value or remove the row"
    )


def test_a_header_in_another_order_is_read_by_its_names(tmp_path):
    order = ["rings", "sex", *abalone.COLUMNS[1:-1]]
    moved = [",".join([row.split(",")[-1], *row.split(",")[:-1]]) for row in ROWS]
    permuted = _write(tmp_path / "permuted.csv", [",".join(order), *moved])
    uci_names = _write(
        tmp_path / "uci.csv",
        ["Sex,Length,Diameter,Height,Whole weight,Shucked weight,Viscera weight,Shell weight,Rings", *ROWS],
    )
    plain = abalone.load(_write(tmp_path / "abalone.data", ROWS))
    assert abalone.load(permuted).equals(plain)
    assert abalone.load(uci_names).equals(plain)
    assert plain["rings"].tolist() == [15, 9, 7]


@pytest.mark.parametrize(
    ("header", "wrong"),
    [
        (f"id,{HEADER}", "unknown column 'id'"),
        (HEADER.removesuffix(",rings"), "no column 'rings'"),
        (
            HEADER.replace("diameter", "length").replace("rings", "Ringz"),
            "unknown column 'Ringz', no column 'diameter', no column 'rings', column 'length' 2 times",
        ),
    ],
)
def test_a_header_with_unknown_or_missing_names_is_refused_naming_them(tmp_path, header, wrong):
    path = _write(tmp_path / "abalone.csv", [header, *ROWS])
    assert _refusal(path) == (f"{path}: line 1 (the header) has {wrong}; a header names {NINE} once each, in any order")


def test_lines_are_counted_as_in_the_file_with_the_header_and_blank_lines(tmp_path):
    path = _write(tmp_path / "abalone.csv", [HEADER, ROWS[0], "", ROWS[1].replace("0.42", "abc"), ROWS[2]])
    assert _refusal(path) == f"{path}: column diameter is not numeric in line 4; correct the value or remove the row"


def test_a_row_of_the_wrong_width_says_how_many_columns_it_has(tmp_path):
    short = _write(tmp_path / "short.data", [ROWS[0], "M,0.455,0.365,0.095", ROWS[1]])
    assert _refusal(short) == f"{short}: line 2 does not have {NINE}: it has 4"
    trailing = _write(tmp_path / "trailing.data", [row + "," for row in ROWS])
    assert _refusal(trailing) == (
        f"{trailing}: lines 1, 2, 3 do not have {NINE}: they have 10; remove the trailing commas"
    )


def test_a_zip_is_read_as_a_folder_is_every_data_file_in_it(tmp_path):
    # only the first member was read: a second file, or the data after a README, was never looked at
    archive = _zip(
        tmp_path / "abalone.zip",
        {"README.txt": "readme", "a.data": ROWS[0] + "\n", "parts/b.csv": "\n".join(ROWS[1:]) + "\n"},
    )
    assert abalone.load(archive)["rings"].tolist() == [15, 9, 7]


def test_a_bad_row_in_a_zip_names_the_member(tmp_path):
    archive = _zip(tmp_path / "abalone.zip", {"a.data": ROWS[0] + "\n", "b.data": "\n\nF,nan,0.42,0.1,1,1,1,1,9\n"})
    assert _refusal(archive) == (
        f"{archive}:b.data: column length is not numeric in line 3; correct the value or remove the row"
    )


def test_a_zip_that_is_truncated_empty_or_without_data_files_is_one_line_naming_it(tmp_path):
    truncated = _truncated_zip(tmp_path / "truncated.zip")
    assert _refusal(truncated) == (
        f"{truncated}: not a readable zip archive (File is not a zip file); re-create it, e.g. `zip abalone.zip "
        "abalone.data`, or give the data file itself"
    )
    empty = _zip(tmp_path / "empty.zip", {})
    assert _refusal(empty) == f"{empty}: a zip without .data/.csv/.zip files (it is empty); zip the data files"
    readme = _zip(tmp_path / "readme.zip", {"README.txt": "readme"})
    assert _refusal(readme) == (
        f"{readme}: a zip without .data/.csv/.zip files (it holds README.txt); zip the data files"
    )


def _bad_file(project: Path, kind: str) -> Path:
    """One file of each kind of refusal, as the prepare stage meets it."""
    if kind == "infinite":
        return _write(project / "abalone.data", [ROWS[0], ROWS[1].replace("0.53", "inf", 1), *ROWS * 20])
    if kind == "header":
        return _write(project / "abalone.csv", [f"id,{HEADER}", *ROWS * 20])
    if kind == "rings":
        return _write(project / "abalone.data", [*ROWS * 20, ROWS[0].removesuffix("15") + "-3"])
    if kind == "zip member":
        return _zip(project / "abalone.zip", {"a.data": "\n".join(ROWS * 20), "b.data": "I,0.3,nan,1,1,1,1,1,7"})
    return _truncated_zip(project / "abalone.zip")


@pytest.mark.usefixtures("tmp_project_with_store")
@pytest.mark.parametrize(
    ("kind", "says"),
    [
        ("infinite", "abalone.data: column length is infinite or too large to scale (beyond ±1e+149) in line 2;"),
        ("header", "abalone.csv: line 1 (the header) has unknown column 'id';"),
        ("rings", "abalone.data: column rings is not a count of growth rings (a whole number from 1 to 16777216)"),
        ("zip member", "abalone.zip:b.data: column diameter is not numeric in line 1"),
        ("truncated zip", "abalone.zip: not a readable zip archive (File is not a zip file);"),
    ],
)
def test_the_prepare_stage_fails_the_trial_with_one_line_and_registers_nothing(tmp_project, kind, says):
    path = _bad_file(tmp_project, kind)
    with pytest.raises(DataError) as refused:
        abalone.load(path)
    done = run_cli(
        tmp_project, "task=tabular_regression", f"dataset.path={path}", "deploy=registry", *TINY, check=False
    )

    assert done.returncode == 1, done.stderr
    [trial] = trials_of(tmp_project)
    assert says in str(refused.value)
    assert done.stderr.strip() == (
        f"mlexp: error: stage 'prepare' failed: {refused.value} (trial {trial.run_id} marked FAILED)"
    )
    assert trial.status == "FAILED"
    assert not store_client(tmp_project).search_registered_models()
