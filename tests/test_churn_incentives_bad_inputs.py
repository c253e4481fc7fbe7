"""churn.txt values no customer can have, and an empty file: one line naming the file, the line and the column.

A probe found `Account Length=-50` and `CustServ Calls=-3` accepted, `Day Charge=inf` written to train.csv as
`Total Spend=inf`, `Day Mins=inf` failing in XGBoost with a native stack dump, `Day Charge=1e308` failing only in the
last stage (`spend is NaN, infinite or negative for customers 4`) and an empty file failing with pandas'
`EmptyDataError: No columns to parse from file`. A later one found `Day Calls=2.5` and `CustServ Calls=1.5` accepted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import run_cli, trials_of
from mlexp.data import telecom_churn
from mlexp.errors import DataError

TASK = "churn_incentives"
HEADER_NOTE = "line 1 is the header"


def _churn_txt(path: Path, rows: int = 12, **values: tuple[int, str]) -> Path:
    """The first `rows` customers of the packaged copy as churn.txt, with `column=(row, text)` written over them."""
    frame = telecom_churn.read_packaged().head(rows).reset_index(drop=True).astype(str)
    for column, (row, text) in values.items():
        frame.loc[row, column.replace("_", " ")] = text
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("column", "text", "message"),
    [
        (
            "Account_Length",
            "-50",
            "is negative in line 6 (e.g. '-50'; {note}); counts, minutes, charges and codes are 0 or more: correct it",
        ),
        (
            "CustServ_Calls",
            "-3",
            "is negative in line 6 (e.g. '-3'; {note}); counts, minutes, charges and codes are 0 or more: correct it",
        ),
        (
            "Day_Mins",
            "inf",
            "is infinite or too large in line 6 (e.g. 'inf'; {note}); give a number of at most "
            "3.4e+38 (the classifier reads 32-bit numbers)",
        ),
        (
            "Day_Charge",
            "-inf",
            "is infinite or too large in line 6 (e.g. '-inf'; {note}); give a number of at most "
            "3.4e+38 (the classifier reads 32-bit numbers)",
        ),
        (
            "Day_Charge",
            "1e308",
            "is infinite or too large in line 6 (e.g. '1e308'; {note}); give a number of at "
            "most 3.4e+38 (the classifier reads 32-bit numbers)",
        ),
        ("Eve_Calls", "nan", "is not a number in line 6 (e.g. 'nan'; {note}); give a number"),
    ],
    ids=[
        "negative account length",
        "negative calls",
        "infinite minutes",
        "minus infinite charge",
        "1e308 charge",
        "nan",
    ],
)
def test_an_impossible_number_is_refused_naming_the_file_line_and_column(tmp_path, column, text, message):
    path = _churn_txt(tmp_path / "churn.txt", **{column: (4, text)})
    with pytest.raises(DataError) as refused:
        telecom_churn.load(path)
    name = column.replace("_", " ")
    assert str(refused.value) == f"{path}: column {name} " + message.format(note=HEADER_NOTE)


WHOLE = (
    "is not a whole number in line 6 (e.g. '2.5'; {note}); calls, messages, account lengths and area codes are whole "
    "numbers (only minutes and charges have decimals): correct it"
)


@pytest.mark.parametrize("column", telecom_churn.COUNTS)
def test_a_fractional_count_is_refused_naming_the_file_line_and_column(tmp_path, column):
    path = _churn_txt(tmp_path / "churn.txt", **{column.replace(" ", "_"): (4, "2.5")})
    with pytest.raises(DataError) as refused:
        telecom_churn.load(path)
    assert str(refused.value) == f"{path}: column {column} " + WHOLE.format(note=HEADER_NOTE)


def test_the_counts_are_the_real_tables_whole_number_columns():
    frame = telecom_churn.load()
    assert [c for c in telecom_churn.NUMERIC if (frame[c] % 1 == 0).all()] == telecom_churn.COUNTS


def test_minutes_and_charges_keep_decimals_and_a_count_written_as_12_0_reads_as_12(tmp_path):
    path = _churn_txt(tmp_path / "churn.txt", Day_Mins=(0, "2.5"), Intl_Charge=(0, "0.27"), Area_Code=(0, "415.0"))
    frame = telecom_churn.load(path)
    assert (frame.loc[0, "Day Mins"], frame.loc[0, "Intl Charge"]) == (2.5, 0.27)
    # as an int64 a one-hot Area Code reads '415' in training and serving alike, never '415.0'
    assert frame["Area Code"].dtype == np.int64 and frame.loc[0, "Area Code"] == 415


def test_the_largest_32_bit_number_still_loads_with_a_finite_total_spend(tmp_path):
    path = _churn_txt(tmp_path / "churn.txt", Day_Charge=(0, "3.4e38"))
    frame = telecom_churn.load(path)
    assert frame.loc[0, "Total Spend"] == pytest.approx(3.4e38)  # the rounding to cents did not overflow


def test_line_numbers_count_blank_lines_and_lines_inside_quoted_fields(tmp_path):
    path = _churn_txt(tmp_path / "churn.txt", State=(1, "K\nS"), Day_Calls=(5, "-1"))
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines[:4], "", "  ", *lines[4:]]) + "\n\n")
    with pytest.raises(DataError, match=r"column Day Calls is negative in line 10 \(e.g. '-1'"):
        telecom_churn.load(path)
    assert path.read_text().splitlines()[9].split(",")[8] == "-1"  # line 10 as an editor counts it


def test_a_quoted_empty_value_alone_on_its_line_is_a_row_as_pandas_reads_it(tmp_path):
    # pandas reads `""` as a row, the line count took it for a blank line: the counts differed, the lines fell back
    # to row numbers, and the message named line 4, a good customer's
    path = _churn_txt(tmp_path / "churn.txt", rows=4)
    header, first, second, *rest = path.read_text().splitlines()
    path.write_text("\n".join([header, first, " \t ", second, '""', *rest]) + "\n")
    with pytest.raises(DataError) as refused:
        telecom_churn.load(path)
    assert f"{path}: column Account Length is not a number in line 5 (e.g. ''; {HEADER_NOTE})" in str(refused.value)


def test_a_value_past_the_csv_readers_limit_is_one_line_naming_its_line(tmp_path):
    # pandas reads it; the line count failed with an unexplained csv.Error "field larger than field limit (131072)"
    path = _churn_txt(tmp_path / "churn.txt", rows=4, Phone=(2, "5" * 140_000))
    with pytest.raises(DataError) as refused:
        telecom_churn.load(path)
    assert str(refused.value) == (
        f"{path}: line 4: a value runs past 131,072 characters, the most Python's csv reader takes: close a quote left "
        "open there, or shorten the value"
    )


def test_an_empty_file_is_one_line_naming_it(tmp_path):
    path = tmp_path / "churn.txt"
    path.write_text("")
    with pytest.raises(DataError) as refused:
        telecom_churn.load(path)
    assert str(refused.value) == f"{path}: the file is empty (no header, no rows); check dataset.path"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"Day_Charge": (10, "inf")},
            "column Day Charge is infinite or too large in line 12 (e.g. 'inf'; line 1 is the header); give a number "
            "of at most 3.4e+38 (the classifier reads 32-bit numbers)",
        ),
        (None, "the file is empty (no header, no rows); check dataset.path"),
        (
            {"CustServ_Calls": (7, "1.5")},
            "column CustServ Calls is not a whole number in line 9 (e.g. '1.5'; line 1 is the header); calls, "
            "messages, account lengths and area codes are whole numbers (only minutes and charges have decimals): "
            "correct it",
        ),
    ],
    ids=["infinite charge", "empty file", "fractional calls"],
)
def test_a_trial_on_a_bad_file_fails_in_prepare_with_one_line(tmp_project, values, message):
    path = tmp_project / "churn.txt"
    if values is None:
        path.write_text("")
    else:
        _churn_txt(path, rows=40, **values)
    done = run_cli(tmp_project, f"task={TASK}", f"dataset.path={path}", "model.num_round=2", check=False)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    [line] = done.stderr.strip().splitlines()
    [failed] = trials_of(tmp_project, experiment=TASK)
    assert line == (f"mlexp: error: stage 'prepare' failed: {path}: {message} (trial {failed.run_id} marked FAILED)")
    assert failed.status == "FAILED" and failed.component_names == {"Pre-processing"}


def test_a_file_with_old_mac_line_endings_reads_as_with_newlines(tmp_path):
    # Excel for Mac's "CSV (Macintosh)" ends lines with a bare CR: csv.Error "new-line character seen in unquoted
    # field" from the line count, an unexplained error
    plain = _churn_txt(tmp_path / "churn.txt")
    mac = tmp_path / "churn_mac.txt"
    mac.write_bytes(plain.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r"))
    read = telecom_churn.load(mac)
    pd.testing.assert_frame_equal(read, telecom_churn.load(plain))
    assert len(read) == 12
