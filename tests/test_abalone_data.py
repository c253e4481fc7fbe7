"""The abalone loader reads the UCI format (with or without header) and names bad rows and columns."""

from __future__ import annotations

import pytest

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


def test_export_writes_the_uci_format_that_load_reads_back(tmp_path):
    out = tmp_path / "raw" / "abalone.data"
    assert abalone.export_packaged(out) == 4177
    assert out.read_text().splitlines()[0].startswith("M,0.455,0.365")
    assert abalone.load(out).equals(abalone.load())


def test_sample_is_seeded(tmp_path):
    first = abalone.load(n_rows=50, seed=1)
    assert first.equals(abalone.load(n_rows=50, seed=1))
    assert not first.equals(abalone.load(n_rows=50, seed=2))


@pytest.mark.parametrize(
    ("bad_row", "message"),
    [
        ("M,0.455,0.365,0.095", "line 2 does not have the 9 abalone columns"),
        ("X,0.455,0.365,0.095,0.514,0.2245,0.101,0.15,15", "column sex has codes other than M/F/I in line 2"),
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
