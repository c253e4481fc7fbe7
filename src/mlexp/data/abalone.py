"""The UCI abalone data set (4,177 rows): Sex (M/F/I), seven measurements, Rings.

The UCI file `abalone.data` is a header-less CSV in the order of COLUMNS; a file may instead start with a header
naming the columns in any order (the copy in the scikit-lego wheel has a snake_case one). A zip is read as a folder
is: every .data/.csv member. The loader checks every value and names the file, its line and the column.
"""

from __future__ import annotations

import math
import sys
import zipfile
import zlib
from pathlib import Path

import pandas as pd

from mlexp.data.packaged import packaged_file
from mlexp.data.sources import expand
from mlexp.data.text_files import decode_utf8
from mlexp.errors import DataError, lines_named

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
MEASUREMENTS = COLUMNS[1:-1]
SEX_CODES = ("M", "F", "I")
PACKAGED = ("scikit-lego", "abalone.zip")
# what a folder (or a zip) given as dataset.path is searched for; the wheel's CSV member is itself named .zip
SUFFIXES = (".data", ".csv", ".zip")
# the largest measurement whose standard scaling stays finite in float64 over up to 2**32 rows: neither the sum
# of the values nor that of their squared deviations from the mean (at most (2 * LARGEST) ** 2 each) overflows
LARGEST = math.sqrt(sys.float_info.max / 2**32) / 2
# rings count growth rings; float32, which the network trains in, holds every whole count up to 2**24 exactly
MOST_RINGS = 2**24
ARCHIVE_ERRORS = (zipfile.BadZipFile, EOFError, zlib.error, NotImplementedError, RuntimeError)
# UCI's abalone.data gives each measurement to at most 4 decimals; the scikit-lego copy went through floats and
# says 0.10099999999999999 where UCI says 0.101
PUBLISHED_DECIMALS = 4


def packaged_copy() -> Path:
    """The abalone CSV shipped in the scikit-lego wheel."""
    return packaged_file(*PACKAGED, what="UCI abalone")


def load(path: str | Path | None = None, n_rows: int | None = None, seed: int = 0) -> pd.DataFrame:
    """Read and check abalone rows from a file, zip, folder or glob (default: the packaged copy, as UCI publishes it).

    `n_rows` takes a seeded sample, for tiny test runs.
    """
    sources = expand(path, SUFFIXES) if path is not None else [packaged_copy()]
    try:
        packaged: Path | None = packaged_copy().resolve()
    except DataError:  # the wheel is missing: the user's own files are read all the same
        packaged = None
    frames = [
        _as_published(_parse(where, text), source.resolve() == packaged)
        for source in sources
        for where, text in _texts(source)
    ]
    return _sample(pd.concat(frames, ignore_index=True), n_rows, seed)


def _as_published(frame: pd.DataFrame, packaged: bool) -> pd.DataFrame:
    """The packaged copy's rows (`packaged`, however it is named) with UCI's numbers, as `mlexp data abalone` writes
    them."""
    if packaged:
        frame[MEASUREMENTS] = frame[MEASUREMENTS].round(PUBLISHED_DECIMALS)
    return frame


def _sample(frame: pd.DataFrame, n_rows: int | None, seed: int) -> pd.DataFrame:
    if n_rows is not None and n_rows < len(frame):
        return frame.sample(n=n_rows, random_state=seed).reset_index(drop=True)
    return frame


def _texts(path: Path) -> list[tuple[str, str]]:
    """(where a message names it, text) of a file, or of each data file in a zip (`abalone.zip:abalone.data`)."""
    if path.suffix != ".zip":
        return [(str(path), decode_utf8(path, path.read_bytes()))]
    try:
        with zipfile.ZipFile(path) as archive:
            names = [name for name in archive.namelist() if _is_data_member(name)]
            if not names:
                held = f"it holds {', '.join(archive.namelist()[:5])}" if archive.namelist() else "it is empty"
                raise DataError(f"{path}: a zip without {'/'.join(SUFFIXES)} files ({held}); zip the data files")
            return [(f"{path}:{name}", decode_utf8(Path(f"{path}:{name}"), archive.read(name))) for name in names]
    except ARCHIVE_ERRORS as error:
        raise DataError(
            f"{path}: not a readable zip archive ({error}); re-create it, e.g. `zip abalone.zip abalone.data`, "
            "or give the data file itself"
        ) from None


def _is_data_member(name: str) -> bool:
    # macOS's Finder adds __MACOSX/._<name> resource forks next to each file it zips
    return not name.endswith("/") and not name.startswith("__MACOSX/") and Path(name).suffix in SUFFIXES


def _parse(where: str, text: str) -> pd.DataFrame:
    """Check the rows of one file; `where` names it. Blank lines are skipped; lines are numbered as in the file."""
    numbered = [(number, line) for number, line in enumerate(text.splitlines(), start=1) if line.strip()]
    columns = COLUMNS
    if numbered and _is_header(numbered[0][1]):
        columns = _header(where, *numbered[0])
        numbered = numbered[1:]
    if not numbered:
        raise DataError(f"{where}: no rows")
    lines = [number for number, _ in numbered]
    rows = [line.split(",") for _, line in numbered]
    _check_widths(where, lines, rows)
    frame = pd.DataFrame(rows, columns=columns)[COLUMNS]
    frame["sex"] = frame["sex"].str.strip()
    unknown = frame.index[~frame["sex"].isin(SEX_CODES)].tolist()
    if unknown:
        codes = "/".join(SEX_CODES)
        them = "the code" if len(unknown) == 1 else "the codes"
        raise DataError(
            f"{where}: column sex has codes other than {codes} in {_lines(lines, unknown)}; correct {them} ({codes}: "
            "male, female, infant) or remove the row" + ("" if len(unknown) == 1 else "s")
        )
    for column in NUMERIC:
        frame[column] = _numbers(where, lines, column, frame[column])
    return frame


def _column_name(field: str) -> str:
    """A header field as a name of COLUMNS: UCI's `Whole weight` is `whole_weight`."""
    return field.strip().strip('"').lower().replace(" ", "_")


def _is_header(line: str) -> bool:
    return any(_column_name(field) in COLUMNS for field in line.split(","))


def _header(where: str, number: int, line: str) -> list[str]:
    """The header's names in its order; refused unless it names each abalone column once."""
    fields = line.split(",")
    names = [_column_name(field) for field in fields]
    wrong = [
        *(f"unknown column {field.strip()!r}" for field, name in zip(fields, names) if name not in COLUMNS),
        *(f"no column {column!r}" for column in COLUMNS if column not in names),
        *(f"column {column!r} {names.count(column)} times" for column in COLUMNS if names.count(column) > 1),
    ]
    if wrong:
        raise DataError(
            f"{where}: line {number} (the header) has {', '.join(wrong)}; a header names the {len(COLUMNS)} "
            f"abalone columns ({', '.join(COLUMNS)}) once each, in any order"
        )
    return names


def _check_widths(where: str, lines: list[int], rows: list[list[str]]) -> None:
    bad = [i for i, row in enumerate(rows) if len(row) != len(COLUMNS)]
    if not bad:
        return
    widths = sorted({len(rows[i]) for i in bad})
    one = len(bad) == 1
    trailing = all(len(rows[i]) > len(COLUMNS) and not "".join(rows[i][len(COLUMNS) :]).strip() for i in bad)
    raise DataError(
        f"{where}: {_lines(lines, bad)} {'does' if one else 'do'} not have the {len(COLUMNS)} abalone columns "
        f"({', '.join(COLUMNS)}): {'it has' if one else 'they have'} "
        + (str(widths[0]) if len(widths) == 1 else f"{widths[0]} to {widths[-1]}")
        + ("; remove the trailing commas" if trailing else "")
    )


def _numbers(where: str, lines: list[int], column: str, text: pd.Series) -> pd.Series:
    """A column's values as numbers; refused with the lines of values that are none, or impossible."""
    values = pd.to_numeric(text, errors="coerce")
    too_large = ~(values.abs() <= LARGEST)
    if values.isna().any():
        bad, wrong = values.isna(), "is not numeric"
    elif column == "rings":
        bad = (values < 1) | (values > MOST_RINGS) | (values % 1 != 0)
        wrong = f"is not a count of growth rings (a whole number from 1 to {MOST_RINGS})"
    elif too_large.any():
        bad, wrong = too_large, f"is infinite or too large to scale (beyond ±{LARGEST:.0e})"
    else:  # 0 is one: two of UCI's rows have height 0
        bad, wrong = values < 0, "is negative (lengths and weights are 0 or more)"
    if bad.any():
        rows = values.index[bad].tolist()
        them = "the value or remove the row" if len(rows) == 1 else "the values or remove the rows"
        raise DataError(f"{where}: column {column} {wrong} in {_lines(lines, rows)}; correct {them}")
    return values.astype("int64") if column == "rings" else values


def write_uci(frame: pd.DataFrame, path: Path) -> None:
    """Write rows in the UCI abalone.data format (no header), each number as UCI writes it: `0.101`, `0`, `1`."""
    lines = (
        ",".join([sex, *map(_uci_number, measurements), str(rings)])
        for sex, *measurements, rings in frame[COLUMNS].itertuples(index=False)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes("".join(f"{line}\n" for line in lines).encode())


def _uci_number(value: float) -> str:
    """The shortest text that reads back as `value`, a whole one without `.0` (UCI's `0` for a height of 0)."""
    return repr(float(value)).removesuffix(".0")


def _lines(lines: list[int], rows: list[int]) -> str:
    """`line 3`, `lines 3, 7 and 12 more`: the file's line numbers (header and blank lines counted) of `rows`."""
    return lines_named([lines[r] for r in rows[:5]], len(rows))


def export_packaged(out: Path) -> int:
    """Write the packaged copy as UCI's abalone.data, byte for byte; returns the row count."""
    frame = load()
    write_uci(frame, out)
    return len(frame)
