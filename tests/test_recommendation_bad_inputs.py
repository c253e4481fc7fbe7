"""Malformed Personalize CSVs (interactions, users, items): one line naming the file, the line and the field."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pandas as pd
import pytest

from conftest import REPO, run_cli, trials_of
from mlexp.data import personalize_datasets, pulselive_videos
from mlexp.errors import DataError

HEADER = "(the header is line 1)"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid dataset folder at the generator's smallest size: 30 users, 20 videos, about 1,870 interactions."""
    folder = tmp_path_factory.mktemp("pulselive")
    pulselive_videos.write(folder, REPO / "conf" / "recommendation_schemas", 30, 20, 1750, 0)
    return folder


@pytest.fixture
def folder(generated: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(generated, tmp_path / "pz"))


def _set(file: Path, line: int, field: str, value: str) -> None:
    """Write `value` as `field` on the file's `line` (the header is line 1)."""
    with file.open(newline="") as handle:
        rows = list(csv.reader(handle))
    rows[line - 1][rows[0].index(field)] = value
    with file.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)


def _refusal(folder: Path) -> str:
    with pytest.raises(DataError) as raised:
        personalize_datasets.load(folder)
    return str(raised.value)


STRING_FIX = "correct the value, or declare the field a string in its schema"


@pytest.mark.parametrize(
    ("name", "field", "value", "rule", "fix"),
    [
        ("interactions", "EVENT_VALUE", "inf", "must be float (a finite number)", STRING_FIX),
        ("interactions", "EVENT_VALUE", "-Infinity", "must be float (a finite number)", STRING_FIX),
        (
            "interactions",
            "TIMESTAMP",
            "-5",
            "is Unix epoch time in seconds: an interaction is not before 1970",
            "correct the value or remove the row",
        ),
        (
            "items",
            "DURATION_SECONDS",
            "3000000000",
            "must be int, from -2147483648 to 2147483647",
            "declare the field long in its schema",
        ),
    ],
)
def test_an_impossible_value_names_the_file_line_field_and_value(folder, name, field, value, rule, fix):
    _set(folder / f"{name}.csv", 11, field, value)
    assert _refusal(folder) == (
        f"{folder / name}.csv: field {field!r} {rule}; not so on line 11 {HEADER}: {value!r}; {fix}"
    )


@pytest.mark.parametrize(("name", "field"), [("interactions", "TIMESTAMP"), ("items", "CREATION_TIMESTAMP")])
@pytest.mark.parametrize("value", ["1700000199000", "1e30"])
def test_a_time_past_epoch_seconds_is_refused_with_the_hint_to_divide_milliseconds(folder, name, field, value):
    _set(folder / f"{name}.csv", 3, field, value)
    assert _refusal(folder) == (
        f"{folder / name}.csv: field {field!r} is Unix epoch time in seconds, below 100,000,000,000 (the year 5138); "
        f"not so on line 3 {HEADER}: {value!r}; if it is in milliseconds, divide it by 1000"
    )


def test_an_item_created_before_1970_is_accepted(folder):
    _set(folder / "items.csv", 3, "CREATION_TIMESTAMP", "-965001600")  # a film of 1939, as MovieLens has
    assert personalize_datasets.load(folder).items["CREATION_TIMESTAMP"].min() == -965001600


@pytest.mark.parametrize(
    ("name", "key", "what", "prefix"), [("users", "USER_ID", "user", "user"), ("items", "ITEM_ID", "item", "video")]
)
def test_repeated_user_and_item_ids_are_refused_naming_the_first_ids_and_their_lines(folder, name, key, what, prefix):
    file = folder / f"{name}.csv"
    with file.open(newline="") as handle:
        rows = list(csv.reader(handle))
    copies = [[row[0], "other", *row[2:]] for row in rows[1:7]]  # the same 6 IDs with other metadata
    with file.open("a", newline="") as handle:
        csv.writer(handle).writerows(copies)
    n = len(rows)
    shown = "; ".join(f"'{prefix}_{i:06d}' on lines {i + 2}, {n + i + 1}" for i in range(5))
    assert _refusal(folder) == (
        f"{file}: {key} must be unique (one row per {what}), and 6 are repeated: {shown} and 1 more {HEADER}; "
        f"keep one row per {key}"
    )


def _edit_line(file: Path, line: int, edit) -> None:
    lines = file.read_bytes().split(b"\n")
    lines[line - 1] = edit(lines[line - 1])
    file.write_bytes(b"\n".join(lines))


def test_a_row_with_a_field_too_many_or_too_few_names_its_line(folder):
    file = folder / "interactions.csv"
    _edit_line(file, 11, lambda line: line + b",extra")
    assert _refusal(folder) == (
        f'{file}: line 11 has 10 fields, the header (line 1) 9: quote a value that holds a comma ("a,b")'
    )
    _edit_line(file, 11, lambda line: line.rsplit(b",", 2)[0])
    _edit_line(file, 20, lambda line: line.rsplit(b",", 1)[0])
    assert _refusal(folder) == (
        f"{file}: line 11 has 8 fields, the header (line 1) 9; 2 lines differ: 11, 20: write every field, an empty "
        "one as nothing between two commas"
    )


def test_blank_lines_and_values_over_two_lines_do_not_shift_the_line_named(folder):
    file = folder / "users.csv"
    with file.open(newline="") as handle:
        header, first, second, third, *rest = csv.reader(handle)
    second[header.index("AGE_GROUP")] = "a value\nover two lines"  # lines 4 and 5, after a blank line 3
    third[header.index("SHIRT_SIZE")] = ""  # on line 6
    with file.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerows([header, first, [], second, third, *rest])
    assert _refusal(folder) == f"{file}: field 'SHIRT_SIZE' is not nullable but is empty on line 6 {HEADER}"


def test_a_line_of_spaces_is_blank_and_a_quoted_empty_value_is_a_record_of_one_field(folder):
    # `""` alone on its line was dropped as a blank line: a record the file holds, left out without a word
    file = folder / "users.csv"
    lines = file.read_bytes().split(b"\n")
    header = lines[0].decode().split(",")
    file.write_bytes(b"\n".join([*lines[:3], b" \t ", *lines[3:5], b'""', *lines[5:]]))
    assert _refusal(folder) == (
        f"{file}: line 7 has 1 fields, the header (line 1) {len(header)}: write every field, an empty one as nothing "
        "between two commas"
    )


def test_a_value_past_the_csv_readers_limit_is_one_line_when_a_message_counts_the_lines(folder):
    # Arrow reads the long value; counting the lines for the message about line 6 met csv's field limit, and its
    # error escaped unexplained (_NotCsv: field larger than field limit (131072))
    file = folder / "users.csv"
    _set(file, 6, "SHIRT_SIZE", "")
    _set(file, 3, "AGE_GROUP", "a" * 140_000)  # last: _set reads the file with the csv module too
    assert _refusal(folder) == (
        f"{file}: line 3: a value runs past 131,072 characters, the most Python's csv reader takes: close a quote left "
        "open there, or shorten the value"
    )


@pytest.mark.parametrize(
    ("byte", "found"),
    [
        (
            b"\xe4",
            "found the byte 0xe4: the file is not UTF-8 (Latin-1 or Windows-1252, as Excel saves CSV?); re-save it as "
            'UTF-8, e.g. `iconv -f cp1252 -t utf-8 in.csv > out.csv`, or in Excel as "CSV UTF-8"',
        ),
        # an ASCII file goes to Arrow undecoded, as UTF-8 already; a NUL byte is ASCII too, yet no text file holds one
        (b"\x00", "found a NUL byte: the file is binary, not a text (CSV) file; point the dataset at the text file"),
    ],
    ids=["latin1", "nul"],
)
def test_a_users_csv_that_is_not_utf8_text_names_its_line_and_says_personalize_reads_utf8(folder, byte, found):
    file = folder / "users.csv"
    _edit_line(file, 6, lambda line: line.replace(b"player", b"pl" + byte + b"yer"))
    assert _refusal(folder) == (
        f"{file}: line 6: expected UTF-8 text, {found} (Personalize imports CSV files as UTF-8 only)"
    )


@pytest.mark.parametrize("name", ["interactions", "users", "items"])
def test_an_empty_csv_or_a_folder_in_its_place_is_one_line(folder, name):
    file = folder / f"{name}.csv"
    text = file.read_text()
    header = text.splitlines()[0]
    file.write_text("")
    assert _refusal(folder) == f"{file} is empty; expected a header line ({header}) then the rows"
    file.unlink()
    file.mkdir()
    assert _refusal(folder) == f"{file} is a folder, not a CSV file: put the CSV file there, or remove the folder"
    schema = folder / f"{name}.schema.json"
    file.rmdir()
    file.write_text(text)
    schema.unlink()
    schema.mkdir()
    assert _refusal(folder) == (
        f"{schema} is a folder, not a schema file: put the schema's JSON there, or remove the folder"
    )


def test_a_header_naming_a_field_twice_and_an_unclosed_quote_are_one_line(folder):
    file = folder / "items.csv"
    original = file.read_bytes()
    _edit_line(file, 1, lambda line: line.replace(b"THUMBNAIL_COLOR", b"CATEGORY"))
    assert _refusal(folder) == f"{file}: line 1 (the header) names 'CATEGORY' more than once"
    file.write_bytes(original)
    _edit_line(file, 21, lambda line: line.replace(b",", b',"', 1))
    assert _refusal(folder) == (
        f"{file}: line 21: not valid CSV (unexpected end of data); a quoted value ends with a quote, and a quote "
        'inside it is doubled ("")'
    )


@pytest.mark.usefixtures("tmp_project_with_store")
@pytest.mark.parametrize("kind", ["milliseconds", "repeated item", "extra field"])
def test_the_trial_fails_with_the_loaders_one_line(tmp_project, folder, kind):
    if kind == "milliseconds":
        _set(folder / "interactions.csv", 11, "TIMESTAMP", "1700000199000")
    elif kind == "repeated item":  # popularity failed in train with an IndexError of 20 vs 21 items
        with (folder / "items.csv").open("a") as handle:
            handle.write("video_000003,games,cup,player_01,300,white,1697491136\n")
    else:
        _edit_line(folder / "interactions.csv", 11, lambda line: line + b",extra")
    refused = _refusal(folder)
    done = run_cli(
        tmp_project,
        "task=recommendation",
        "dataset=personalize_csv",
        f"dataset.path={folder}",
        "model.recipe=popularity",
        check=False,
    )
    assert done.returncode == 1, done.stderr
    [trial] = trials_of(tmp_project, experiment="recommendation")
    assert (
        done.stderr.strip() == f"mlexp: error: stage 'prepare' failed: {refused} (trial {trial.run_id} marked FAILED)"
    )
    assert trial.status == "FAILED"


def test_the_fast_reader_reads_what_the_strict_one_does_lines_included(tmp_path):
    # Arrow's reader takes well-formed files (Python's csv module took 4x the CPU and 3x the memory of pandas on
    # 1M interactions); its records and their file lines must be the strict reader's. Arrow reads the file's own
    # bytes: the byte order mark Excel's "CSV UTF-8" writes is no part of the first name, and text beyond ASCII
    # (2- and 4-byte UTF-8) is read as the strict reader decodes it
    from mlexp.data import personalize_csv

    text = 'USER_ID,ITEM_ID,TIMESTAMP\r\nu1,"i,1",5\r\n\r\n"u\r\n2",i2,6\r\nu3,,7\r\nzoë,vidéo 🎬,8\r\n'
    path = tmp_path / "interactions.csv"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert personalize_csv._arrow_records(text.encode()) is not None
    frame, lines = personalize_csv.read(path, [])
    strict, strict_lines = personalize_csv._strict_records(path, text.encode(), [])
    pd.testing.assert_frame_equal(frame, strict)
    assert lines[:].tolist() == strict_lines[:].tolist() == [2, 4, 6, 7]
    assert list(frame.columns) == ["USER_ID", "ITEM_ID", "TIMESTAMP"]
    assert frame.to_numpy().tolist() == [
        ["u1", "i,1", "5"],
        ["u\r\n2", "i2", "6"],
        ["u3", "", "7"],
        ["zoë", "vidéo 🎬", "8"],
    ]
