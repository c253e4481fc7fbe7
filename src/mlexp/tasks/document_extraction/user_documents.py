"""The user's own documents (`dataset.path`, a file or a folder): each page written to pages/ as PNG, with its
optional ground truth checked and copied. A bad file, or ground truth that does not read as the schema or fit its
document, is reported in one line and its document left out; a single document is refused instead."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from PIL import Image
from tqdm import tqdm

from mlexp.console import skipped, warn
from mlexp.data import document_files
from mlexp.errors import DataError, first_few
from mlexp.tasks.document_extraction import ground_truth
from mlexp.tasks.document_extraction.structure import SchemaProblem, check_page_json, page_from_json


def write_pages(cfg: DictConfig, pages_dir: Path, truth_dir: Path) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Every page of the user's documents as PNG in `pages_dir`, their ground truth copied to `truth_dir`; returns
    the manifest's entries and the files rejected (file, one-line reason)."""
    entries, rejected, truth_rejected = [], [], []
    truths: list[Path] = []
    root = Path(cfg.dataset.path).expanduser()
    names: dict[str, Path] = {}
    for path in tqdm(document_files.find(root), desc="reading documents", disable=None):
        name = document_name(root, path)
        # names differing only in case are one file on a case-insensitive disk
        if name.casefold() in names:
            raise DataError(f"{path} and {names[name.casefold()]} would both be saved as {name}; rename one of them")
        names[name.casefold()] = path
        # taken even when the document is refused: its ground truth did match it
        truth = _truth_file(cfg, path)
        if truth is not None:
            truths.append(truth)
        try:
            images = list(
                document_files.pages(
                    path, cfg.preprocessing.max_pixels, cfg.preprocessing.pdf_dpi, cfg.preprocessing.empty_page_std
                )
            )
        except document_files.BadDocument as error:
            if root.is_file():
                raise
            # a batch goes on past a bad file; the file and the reason are reported
            skipped(f"{error}")
            rejected.append({"file": str(path), "error": str(error)})
            if truth is not None:  # it was given to be scored
                truth_rejected.append(str(error))
            continue
        # its ground truth is checked before a page is written: a document rejected for it leaves no page behind
        sizes = [(image.shape[1], image.shape[0]) for image in images]
        problem = None if truth is None else truth_problem(truth, path, sizes)
        if problem:
            if root.is_file():
                raise DataError(problem)
            skipped(f"{problem}")
            rejected.append({"file": str(truth), "error": problem})
            truth_rejected.append(problem)
            continue
        files = []
        for number, image in enumerate(images, start=1):
            Image.fromarray(image).save(pages_dir / f"{name}_p{number}.png")
            files.append(f"{name}_p{number}.png")
        entry = {
            "name": name,
            "source": str(path),
            "document_type": "user",
            "degradation": "as_scanned",
            "pages": files,
            "ground_truth": None,
        }
        if truth is not None:
            (truth_dir / f"{name}.json").write_bytes(truth.read_bytes())
            entry["ground_truth"] = f"{name}.json"
        entries.append(entry)
    if not entries:
        reasons = "; ".join(r["error"] for r in rejected[:3]) or f"no files in {root}"
        raise DataError(f"no readable document in dataset.path={root}: {reasons}")
    if truth_rejected and not any(entry["ground_truth"] for entry in entries):
        # ground truth was given to be scored against: a trial left with none would end without an extraction_score
        raise DataError(f"no document in dataset.path={root} is left to score: {'; '.join(truth_rejected[:3])}")
    _warn_unmatched_truth(cfg, root, used=set(truths))
    return entries, rejected


def _warn_unmatched_truth(cfg: DictConfig, root: Path, used: set[Path]) -> None:
    """Ground-truth files no document took (`scan.png.json`, or a document's name misspelt): their documents are
    scored without them, so say which, and how a document finds its own."""
    if root.is_file():  # one document: the other files of its folder are not the run's
        return
    if cfg.dataset.ground_truth:
        candidates = sorted(Path(cfg.dataset.ground_truth).expanduser().glob("*.json"))
    else:
        candidates = sorted(root.rglob("*.json"))
    unmatched = [path for path in candidates if path not in used]
    if unmatched:
        shown = first_few(unmatched, shown=3)
        warn(
            f"{len(unmatched)} JSON file{'s' if len(unmatched) > 1 else ''} matched no document as its ground truth: "
            f"{shown}; a document's ground truth is its name with .json for its extension (x.json for x.png)"
        )


def document_name(root: Path, path: Path) -> str:
    """A file's document name: its path under `root` with its extension, folders joined by "%2F" (an escaped "/",
    which no file name holds; "%" itself is escaped first), so two files never share a name."""
    if root.is_file():
        return path.name
    return "%2F".join(p.replace("%", "%25") for p in path.relative_to(root).parts)


def truth_problem(path: Path, document: Path | None = None, sizes: Sequence[tuple[int, int]] = ()) -> str | None:
    """One line naming the ground-truth file and what is wrong with it, or None when it reads as the schema (and,
    given the document and its pages' sizes, fits it: see ground_truth.misfit)."""
    where = "see 'Output schema' in docs/tasks/document_extraction.md"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return f"{path}: ground truth is not JSON ({error}); {where}"
    if not isinstance(data, dict) or not isinstance(data.get("pages"), list):
        return f"{path}: ground truth has no 'pages' list; {where}"
    for number, page in enumerate(data["pages"], start=1):
        try:
            # the schema field by field first: a wrong type is named (`field 'lines' is a string; it must be a
            # list of objects`), not reported in Python's words ("string indices must be integers")
            check_page_json(page)
            page_from_json(page)
        except SchemaProblem as problem:
            return f"{path} page {number}: ground truth {problem}; {where}"
        except KeyError as error:
            return f"{path} page {number}: ground truth misses key {error}; {where}"
        except (TypeError, AttributeError, ValueError) as error:
            return f"{path} page {number}: ground truth does not fit the schema ({error}); {where}"
    misfit = None if document is None else ground_truth.misfit(data["pages"], sizes, document.name)
    if misfit:
        page, wrong = misfit
        return f"{path}{f' page {page}' if page else ''}: ground truth {wrong}; {where}"
    return None


def _truth_file(cfg: DictConfig, path: Path) -> Path | None:
    folder = Path(cfg.dataset.ground_truth).expanduser() if cfg.dataset.ground_truth else path.parent
    candidate = folder / f"{path.stem}.json"
    return candidate if candidate.is_file() else None
