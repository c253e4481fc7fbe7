"""A user's corpus files as they come: AG News CSV (`class index,title,description`) and Comprehend's multi-class
training CSV (`label,text`), read row by row with the line each row starts on (1-based, as an editor counts).

Neither format has a header, but copies of them often do (Kaggle's AG News starts `Class Index,Title,Description`):
a recognised header is skipped with a warning. A file that is not UTF-8 is refused as the other loaders refuse it
(mlexp.data.text_files), naming the line and the iconv command, never read with its bytes replaced.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mlexp.console import warn
from mlexp.data import csv_records
from mlexp.data.sources import expand
from mlexp.data.text_files import decode_utf8
from mlexp.errors import DataError

SUFFIXES = (".csv", ".txt")
# the rows looked at to tell the formats apart
SAMPLE = 50
AG_NEWS_HEADER = ("class index", "title", "description")  # Kaggle's AG News train.csv and test.csv
# a Comprehend CSV's header, label column first (the text column first is the columns swapped)
LABEL_NAMES = ("label", "labels", "class", "category")
TEXT_NAMES = ("text", "document", "sentence")

Row = tuple[int, list[str]]  # (line the row starts on, its fields)


def read_rows(path: Path) -> list[Row]:
    """The file's CSV rows with the line each starts on; blank lines are no rows."""
    return list(zip(*csv_records.records(path, decode_utf8(path, path.read_bytes())), strict=True))


def _index(field: str) -> int | None:
    """An AG News class index (digits), else None."""
    text = field.strip()
    return int(text) if text.isascii() and text.isdecimal() else None


def _ag_like(row: list[str]) -> bool:
    return len(row) == 3 and _index(row[0]) is not None


def is_ag_news(rows: list[Row]) -> bool:
    """AG News rows have three fields and a class index first (its range is read_ag_news' to check, naming the
    line: a 0 or a 5 is a wrong row of an AG News file, not a sign of another format)."""
    sample = rows[:SAMPLE]
    return bool(sample) and all(_ag_like(fields) for _, fields in sample)


def without_header(path: Path, rows: list[Row]) -> list[Row]:
    """The rows after line 1 when it is a header (AG News' Kaggle header, `label,text`, or a first row unlike the
    AG News rows below it), with a warning saying so; a `text,label` header is the columns swapped, refused."""
    if not rows:
        return rows
    line, first = rows[0]
    names = tuple(field.strip().lower() for field in first)
    if len(names) == 2 and names[0] in TEXT_NAMES and names[1] in LABEL_NAMES:
        raise DataError(
            f"{path}: line {line} is the header {','.join(first)}: the text comes before the label, and Comprehend's "
            "format is label,text without a header; swap the two columns and remove the header line"
        )
    header = names == AG_NEWS_HEADER or (len(names) == 2 and names[0] in LABEL_NAMES and names[1] in TEXT_NAMES)
    below = rows[1 : SAMPLE + 1]
    if not header and not _ag_like(first) and len(first) == 3 and below and all(_ag_like(f) for _, f in below):
        header = True  # another header above AG News rows
    if not header:
        return rows
    warn(f"{path}: line {line} looks like a header ({','.join(first)}), skipped: the file's rows start on line 2")
    return rows[1:]


def read_ag_news(path: Path, rows: list[Row], classes: list[str]) -> pd.DataFrame:
    """AG News `class index,title,description`: class index i is `classes[i - 1]`, title and description joined as
    the text."""
    records = []
    for line, row in rows:
        index = _index(row[0]) if len(row) == 3 else None
        if index is None:
            raise DataError(
                f"{path}: line {line}: not an AG News row (class index 1-{len(classes)} of dataset.ag_news_classes,"
                "title,description); set dataset.format=comprehend for label,text files"
            )
        if not 1 <= index <= len(classes):
            raise DataError(
                f"{path}: line {line}: class index {index} is outside 1-{len(classes)}: AG News' class indexes count "
                f"from 1, the i-th of dataset.ag_news_classes ({', '.join(classes)}); correct the row, or list "
                "every class of the file in dataset.ag_news_classes"
            )
        records.append((classes[index - 1], f"{row[1]} {row[2]}", line))
    return _frame(records, path)


def read_comprehend(path: Path, rows: list[Row]) -> pd.DataFrame:
    """Comprehend's multi-class training CSV `label,text`: every class it names."""
    records = []
    for line, row in rows:
        if len(row) < 2:
            raise DataError(f"{path}: line {line}: expected label,text (Comprehend's multi-class format)")
        records.append((row[0].strip(), ",".join(row[1:]), line))
    return _frame(records, path)


def _frame(records: list[tuple[str, str, int]], path: Path) -> pd.DataFrame:
    """label, text, and where each came from (file, line) for the messages about rows left out later."""
    frame = pd.DataFrame(records, columns=["label", "text", "line"])
    frame.insert(2, "file", str(path))
    return frame


def read_user_corpus(
    path: str, corpus_format: str, ag_news_classes: list[str], key: str = "dataset.path"
) -> pd.DataFrame:
    """Every file `path` (the value of `key`) names, each read as AG News or Comprehend CSV (`auto`: by its rows):
    label, text (as written), file and line. Files without a row are an error when all are (an empty file, not a
    corpus without the listed classes)."""
    frames = []
    try:
        files = expand(path, SUFFIXES)
    except DataError as error:  # its messages name dataset.path, which dataset.holdout_path is not
        raise DataError(str(error).replace("dataset.path=", f"{key}=", 1)) from error
    for file in files:
        rows = without_header(file, read_rows(file))
        ag = corpus_format == "ag_news" or (corpus_format == "auto" and is_ag_news(rows))
        frames.append(read_ag_news(file, rows, ag_news_classes) if ag else read_comprehend(file, rows))
    if not any(len(frame) for frame in frames):
        if len(files) > 1:
            named = f"{key}={path}: its {len(files)} files ({', '.join(f.name for f in files)}) have"
        else:
            named = f"{key}={path} has" if str(files[0]) == path else f"{key}={path}: {files[0]} has"
        raise DataError(
            f"{named} no rows; give {key} a CSV of labelled documents: label,text rows (Comprehend) or "
            "class index,title,description rows (AG News)"
        )
    return pd.concat(frames, ignore_index=True)
