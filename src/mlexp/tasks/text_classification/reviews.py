"""Human review decisions (the service's JSONL export, the post's A2I `output.json`) as training rows."""

from __future__ import annotations

import glob
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mlexp.errors import DataError
from mlexp.paths import resolve
from mlexp.tasks.text_classification.config_rules import REVIEWS
from mlexp.tasks.text_classification.corpora import normalize

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
        return sorted(p for p in target.iterdir() if p.is_file() and p.suffix in SUFFIXES)
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


def read(location: str | None, labels: list[str], max_chars: int) -> Reviews:
    """Every decision in the files; on the same text the latest by its `time` wins (file then line order breaks
    ties, and decides among decisions without a time, which count as older than any timed one)."""
    files = review_files(location)
    records: list[tuple[str, str, str, str]] = []
    skipped = unknown = 0
    for file in files:
        for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                decision = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(f"{file}:{number}: not a JSON line ({error.msg}); fix or remove the line") from error
            if not isinstance(decision, dict) or "text" not in decision or "final_label" not in decision:
                raise DataError(f"{file}:{number}: a review decision needs the fields text and final_label")
            label = decision.get("final_label")
            if label in (None, ""):
                skipped += 1
                continue
            if label not in labels:
                unknown += 1
                continue
            text = normalize(str(decision["text"]), max_chars)
            if text:
                records.append((str(label), text, str(decision.get("source", "")), str(decision.get("time") or "")))
    rows = pd.DataFrame(records, columns=["label", "text", "source", "time"])
    # files of several exports (the service's JSONL, Label Studio's, A2I's) interleave in time, not in file order
    when = pd.to_datetime(rows.time, utc=True, errors="coerce", format="ISO8601")
    order = when.sort_values(kind="stable", na_position="first").index
    rows = rows.loc[order].drop_duplicates("text", keep="last").sort_index()
    return Reviews(rows.drop(columns="time").reset_index(drop=True), files, skipped, unknown)


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
