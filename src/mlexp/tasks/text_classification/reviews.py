"""Human review decisions (the service's JSONL export, the post's A2I `output.json`) as training rows."""

from __future__ import annotations

import glob
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from mlexp.console import warn
from mlexp.data.text_files import decode_utf8
from mlexp.errors import DataError, first_few, lines_named
from mlexp.paths import resolve
from mlexp.tasks.text_classification.config_rules import REVIEWS, respelt
from mlexp.tasks.text_classification.corpora import READS, normalize

SUFFIXES = (".jsonl",)


@dataclass(frozen=True)
class Reviews:
    """The usable decisions (label, text; the latest per text) and what was left out."""

    rows: pd.DataFrame
    files: list[Path]
    skipped: int  # decisions without a final label (the reviewer skipped the item)
    unknown_label: int  # final labels that are not classes of the task


def review_files(location: str | None) -> list[Path]:
    """The files `dataset.reviews` names (a file, the *.jsonl of a folder, or a glob); none when it is null or a
    folder without any. Only the default folder may be missing (nothing reviewed yet): a path the user gave that
    names no file is an error, not a training set without the reviews they meant to merge."""
    if not location:
        return []
    target = resolve(location)
    if glob.has_magic(location):
        files = sorted(Path(p) for p in glob.glob(str(target), recursive=True) if Path(p).is_file())
        if not files:
            raise DataError(f"dataset.reviews={location} matches no file; {FIX}")
        return files
    if target.is_dir():
        return _folder_files(location, target)
    if target.exists():
        return [target]
    if target == resolve(REVIEWS):
        return []
    where = "" if str(target) == location else f" ({target})"  # a relative path starts at the project root
    raise DataError(f"dataset.reviews={location}: no such file or folder{where}; {FIX}")


# what to do about a dataset.reviews that names no file
FIX = (
    "give the review decisions' JSONL (`mlexp review export` writes one) as a file, a folder of *.jsonl or a glob, "
    "or dataset.reviews=null to train without reviews"
)
# the files a folder of exports may hold beside them that are not decisions
NOT_DECISIONS = ("README", ".")
# what an A2I output.json is to this reader
A2I_OUTPUT = (
    "A2I's output.json (one per human loop) is not read: the decisions the review page or Label Studio stored are "
    "exported as JSONL by `mlexp review export`"
)


def _folder_files(location: str, folder: Path) -> list[Path]:
    """The *.jsonl of a folder; none when it holds no file (nothing exported yet) or only its README. A folder of
    other files (A2I's output.json) is an error: its decisions would be silently missing from training."""
    files = sorted(p for p in folder.iterdir() if p.is_file())
    found = [p for p in files if p.suffix in SUFFIXES]
    others = [p.name for p in files if not p.name.startswith(NOT_DECISIONS)]
    if found or not others:
        return found
    where = "" if str(folder) == location else f" ({folder})"
    shown = first_few(others)
    a2i = f"{A2I_OUTPUT}; " if "output.json" in others else ""
    raise DataError(f"dataset.reviews={location}: the folder{where} holds no *.jsonl file, only {shown}; {a2i}{FIX}")


@dataclass
class _LeftOut:
    """Decisions read but left out, by kind: the warnings the user sees say how many, which and where."""

    unknown: Counter[str] = field(default_factory=Counter)  # final label -> decisions
    first_unknown: str = ""  # `file line n` of the first
    empty: list[str] = field(default_factory=list)  # `file line n` of each text with no letter or digit


def read(location: str | None, labels: list[str], max_chars: int) -> Reviews:
    """Every decision in the files; on the same text the latest by its `time` wins (file then line order breaks
    ties, and decides among decisions without a time, which count as older than any timed one; so does a time that
    is not a date, with a warning). A final label outside `labels` and a text that normalises to nothing are left
    out with a warning; a line that is not a decision (no text, a text that is not a string) is an error naming it."""
    files = review_files(location)
    records: list[tuple[str, str, str, str, str, int]] = []
    skipped = 0
    left_out = _LeftOut()
    for file in files:
        for number, line in enumerate(decode_utf8(file, file.read_bytes(), excel=False).splitlines(), start=1):
            if not line.strip():
                continue
            decision = _decision(file, number, line)
            label = decision.get("final_label")
            if label in (None, ""):
                skipped += 1
                continue
            if label not in labels:
                left_out.first_unknown = left_out.first_unknown or f"{file} line {number}"
                left_out.unknown[label] += 1
                continue
            text = normalize(decision["text"], max_chars)
            if not text:
                left_out.empty.append(f"{file} line {number}")
                continue
            when = str(decision.get("time") or "")
            records.append((label, text, str(decision.get("source", "")), when, str(file), number))
    _warn(left_out, labels)
    rows = pd.DataFrame(records, columns=["label", "text", "source", "time", "file", "line"])
    # files of several exports (the service's JSONL, Label Studio's, A2I's) interleave in time, not in file order
    when = pd.to_datetime(rows.time, utc=True, errors="coerce", format="ISO8601")
    # kept, not dropped: it is still the reviewer's decision, and the only one on most texts
    _warn_undated(rows.loc[when.isna() & (rows.time != "")])
    order = when.sort_values(kind="stable", na_position="first").index
    rows = rows.loc[order].drop_duplicates("text", keep="last").sort_index()
    kept = rows.drop(columns=["time", "file", "line"]).reset_index(drop=True)
    return Reviews(kept, files, skipped, sum(left_out.unknown.values()))


def _warn_undated(undated: pd.DataFrame) -> None:
    """Name the decisions whose `time` is not a date (`"yesterday"`): each is taken as older than any dated
    decision on its text, which a reviewer who wrote it later did not mean."""
    if undated.empty:
        return
    by_file = undated.groupby("file", sort=False).line.apply(list)
    where = first_few([f"{file} ({lines_named(lines)})" for file, lines in by_file.items()], shown=3)
    example = json.dumps(str(undated.time.iloc[0]), ensure_ascii=False)
    count = len(undated)
    warn(
        f"dataset.reviews: {count} decision{'s' if count > 1 else ''} with a time that is not a date ({example}): "
        f"{where}; each counts as older than any dated decision on its text, as one without a time does; give the "
        "time in ISO 8601 (2026-12-02T09:01:18.735Z), as `mlexp review export` writes it"
    )


def _decision(file: Path, number: int, line: str) -> dict[str, Any]:
    """One line's decision: an object with a string text and a string (or null: skipped) final_label."""
    where = f"{file}: line {number}"
    try:
        decision = json.loads(line)
    except json.JSONDecodeError as error:
        raise DataError(f"{where}: not a JSON line ({error.msg}); fix or remove the line") from error
    if isinstance(decision, dict) and "humanAnswers" in decision:
        raise DataError(f"{where}: an A2I output.json record, not a review decision line; {A2I_OUTPUT}")
    if not isinstance(decision, dict):
        kind = (
            "an array"
            if isinstance(decision, list)
            else "a string"
            if isinstance(decision, str)
            else "a number or null"
        )
        raise DataError(
            f"{where}: {kind}, not a decision: JSON Lines hold one object a line, each with text and final_label"
        )
    if "text" not in decision or "final_label" not in decision:
        raise DataError(f"{where}: a review decision needs the fields text and final_label")
    for key, may_be_null in (("text", False), ("final_label", True)):
        value = decision[key]
        if not isinstance(value, str) and not (may_be_null and value is None):
            kind = "a string" if not may_be_null else "a string (or null: the reviewer skipped the item)"
            raise DataError(
                f"{where}: {key} is {json.dumps(value)}, not {kind}; fix or remove the line (`mlexp review export` "
                "writes them right)"
            )
    return decision


# the left-out labels a warning names
SHOWN_LABELS = 5


def _warn(left_out: _LeftOut, labels: list[str]) -> None:
    """The warnings about decisions left out: unknown labels (each asked about when a listed class is spelt like
    it) and texts with nothing the model reads."""
    if left_out.unknown:
        named = []
        for label, count in left_out.unknown.most_common(SHOWN_LABELS):
            listed = respelt([label], labels)
            named.append(f"{label} ({count}{f'; did you mean {listed[0]}?' if listed else ''})")
        more = len(left_out.unknown) - SHOWN_LABELS
        warn(
            f"dataset.reviews: left out {sum(left_out.unknown.values())} decisions whose final_label is not a class "
            f"of dataset.labels ({', '.join(labels)}): {', '.join(named)}{f' and {more} more' if more > 0 else ''}; "
            f"the first at {left_out.first_unknown}; correct the label in the file, or list the class in "
            "dataset.labels"
        )
    if left_out.empty:
        warn(
            f"dataset.reviews: left out {len(left_out.empty)} decisions whose text has no letter or digit once "
            f"normalised (the model reads {READS}); the first at {left_out.empty[0]}"
        )


@dataclass(frozen=True)
class Merged:
    """The training set and what the review decisions changed in it."""

    rows: pd.DataFrame
    reviews_used: int  # reviewed texts in the training set (holdout texts left out)
    reviews_in_holdout: int  # reviewed texts left out because the holdout holds them
    corrections: int  # reviewed texts of the pool whose label the reviewer changed


def merge(pool: pd.DataFrame, reviewed: pd.DataFrame, holdout_texts: set[str]) -> Merged:
    """The training set: the pool with every reviewed text labelled as the reviewer said.

    A reviewed text already in the pool takes the reviewer's label (a correction); a text of the
    holdout is left out, so the holdout stays unseen.
    """
    in_holdout = reviewed.text.isin(holdout_texts)
    usable = reviewed.loc[~in_holdout]
    corrected = pool.merge(usable[["text", "label"]], on="text", how="inner", suffixes=("", "_reviewed"))
    corrections = int((corrected.label != corrected.label_reviewed).sum())
    kept = pool.loc[~pool.text.isin(set(usable.text))]
    merged = pd.concat([kept[["label", "text"]], usable[["label", "text"]]], ignore_index=True)
    return Merged(merged, len(usable), int(in_holdout.sum()), corrections)
