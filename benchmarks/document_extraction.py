"""document_extraction against the issue's targets, with Tesseract as the baseline on the same pages.

Generates n documents of each type at two levels (clean 200 dpi; 100 dpi with scan noise), runs
engine=local_ocr (RapidOCR + layout code) and Tesseract 5 (same layout code) on every page, and
prints each metric per engine and level with the local/Tesseract ratio, then pages/s (init excluded).

    .venv/bin/python benchmarks/document_extraction.py --per-type 3 --rows 10
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from collections import Counter

import numpy as np
from omegaconf import OmegaConf

from mlexp.data import documents
from mlexp.tasks.document_extraction import engines, metrics
from mlexp.tasks.document_extraction.config import DocumentLayout, LocalOcrEngine
from mlexp.tasks.document_extraction.stages import generated_page
from mlexp.tasks.document_extraction.structure import page_from_json

LEVELS = {"clean": {}, "dpi100_noise": {"dpi": 100, "noise_sigma": 12.0}}
TARGETS = {
    "symbol_recall_rupee": 0.95,
    "symbol_recall_pound": 0.95,
    "symbol_recall_dollar": 0.95,
    "symbol_recall_yen": 0.95,
    "symbol_recall_degree": 0.95,
    "column_count_accuracy": 0.95,
    "check_box_state_accuracy": 0.95,
}
SHOWN = [
    "cer",
    "wer",
    *[f"symbol_recall_{n}" for n in metrics.SYMBOL_NAMES],
    # a false sign (a currency sign read where the page has none) lowers these
    *[f"symbol_precision_{n}" for n in metrics.SYMBOL_NAMES],
    "column_count_accuracy",
    "row_count_accuracy",
    "table_cell_accuracy",
    "key_value_f1",
    "check_box_recall",
    "check_box_state_accuracy",
    "extraction_score",
]


def pages(per_type: int, rows: int, seed: int):
    for level in LEVELS:
        for kind in documents.DOCUMENT_TYPES:
            for index in range(per_type):
                page, truth = generated_page(kind, seed, index, rows, LEVELS, level)
                yield level, kind, np.asarray(page.image), page_from_json(truth)


def _ratio(a: float, b: float | None) -> str:
    """a/b, or "n/a" when it has no meaning (no baseline figure, or 0/0)."""
    if b is None or (a == 0 and b == 0):
        return "    n/a"
    return f"{a / b:7.2f}" if b else "    inf"


class _Remembered:
    """An OCR reader that reads each page once: the table variants differ after OCR, not in it."""

    def __init__(self, reader) -> None:
        self.reader, self.lines = reader, {}

    def read(self, image):
        key = hash(image.tobytes())
        if key not in self.lines:
            self.lines[key] = self.reader.read(image)
        return copy.deepcopy(self.lines[key])


def table_variants(per_type: int, rows: int, seed: int, post_default, engine_default) -> None:
    """Claim 2 before/after: column-count accuracy of account statements by table structure and column dropping."""
    statements = [
        (level, image, truth)
        for level in LEVELS
        for index in range(per_type)
        for image, truth in [_statement(seed, index, rows, level)]
    ]
    print("\nclaim 2, account_statement tables (column_count / row_count / cell accuracy, all levels):")
    reader = None
    # gutters on the ink (the default), gaps between OCR word boxes (word_boxes: the columns before the ink
    # gutters), and SLANet-plus; each with and without dropping sparse/empty columns
    variants = [("whitespace", "ink", True), ("whitespace", "ink", False), ("whitespace", "word_boxes", True)]
    variants += [("slanet_plus", "ink", True), ("slanet_plus", "ink", False)]
    for structure, gutters, drop in variants:
        engine = OmegaConf.merge(engine_default, {"table_structure": structure})
        post = OmegaConf.merge(post_default, {"drop_sparse_columns": drop})
        if gutters == "word_boxes":
            post = OmegaConf.merge(post, {"gutter_word_spaces": 0.0})
        extractor = engines.make(engine, post)
        reader = reader or _Remembered(extractor.reader)
        extractor.reader = reader
        total: Counter[str] = Counter()
        for _, image, truth in statements:
            total.update(metrics.compare(truth, extractor.extract(image, 1, "account_statement")))
        v = metrics.ratios(dict(total))
        print(
            f"  engine.table_structure={structure:11s} gutters={gutters:10s} "
            f"model.drop_sparse_columns={str(drop).lower():5s}  "
            f"{v.get('column_count_accuracy', 0):.3f} / {v.get('row_count_accuracy', 0):.3f} / "
            f"{v.get('table_cell_accuracy', 0):.3f}"
        )


def _statement(seed: int, index: int, rows: int, level: str):
    page, truth = generated_page("account_statement", seed, index, rows, LEVELS, level)
    return np.asarray(page.image), page_from_json(truth)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-type", type=int, default=3)
    parser.add_argument("--rows", type=int, default=10)
    # 42 (the trial's default seed) was the development seed; the benchmark's pages are drawn from another
    parser.add_argument("--seed", type=int, default=2026)
    # engine.currency_threshold (default: the config's); 0 is plain greedy decoding, the figures before the rule
    parser.add_argument("--currency-threshold", type=float, default=None)
    parser.add_argument("--no-table-variants", action="store_true", help="skip claim 2's before/after table")
    args = parser.parse_args()
    post = OmegaConf.structured(DocumentLayout)
    engine = OmegaConf.structured(LocalOcrEngine)
    if args.currency_threshold is not None:
        engine.currency_threshold = args.currency_threshold
    started = time.perf_counter()
    local = engines.make(engine, post)
    init = {"local_ocr": time.perf_counter() - started}
    started = time.perf_counter()
    baseline = engines.tesseract_baseline(post, engine.min_width)
    init["tesseract"] = time.perf_counter() - started
    print(f"load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"engine.currency_threshold={engine.currency_threshold}")
    counts: dict[tuple[str, str], Counter[str]] = {}
    statements: dict[tuple[str, str], Counter[str]] = {}
    seconds: Counter[str] = Counter()
    n_pages = 0
    for level, kind, image, truth in pages(args.per_type, args.rows, args.seed):
        n_pages += 1
        for extractor in (local, baseline):
            tick = time.perf_counter()
            found = extractor.extract(image, 1, f"{kind} {level}")
            seconds[extractor.name] += time.perf_counter() - tick
            compared = metrics.compare(truth, found)
            counts.setdefault((extractor.name, level), Counter()).update(compared)
            if kind == "account_statement":  # the target's population: page-wide whitespace tables
                statements.setdefault((extractor.name, level), Counter()).update(compared)
        spent = f"local_ocr {seconds['local_ocr']:.0f} s, tesseract {seconds['tesseract']:.0f} s"
        print(f"page {n_pages}: {kind} {level} ({spent})", file=sys.stderr, flush=True)
    print(f"{n_pages // len(LEVELS)} documents × {len(LEVELS)} levels, seed {args.seed}")
    for level in LEVELS:
        values = {name: metrics.ratios(dict(counts[(name, level)])) for name in ("local_ocr", "tesseract")}
        for name in values:
            values[name] |= metrics.extraction_score(values[name])
        print(f"\n{level:14s} {'local_ocr':>10s} {'tesseract':>10s} {'ratio':>7s}  target")
        for metric in SHOWN:
            a, b = values["local_ocr"].get(metric), values["tesseract"].get(metric)
            if a is None:
                continue
            ratio = _ratio(a, b)
            target = TARGETS.get(metric)
            mark = "" if target is None else f"≥ {target} {'met' if a >= target else 'MISSED'}"
            if metric == "cer":
                mark = f"≤ 0.02 {'met' if a <= 0.02 else 'MISSED'}" if level == "clean" else ""
            print(f"{metric:28s} {a:10.4f} {b if b is not None else float('nan'):10.4f} {ratio}  {mark}")
        pagewide = {name: metrics.ratios(dict(statements[(name, level)])) for name in ("local_ocr", "tesseract")}
        a, b = (pagewide[name].get("column_count_accuracy", 0.0) for name in ("local_ocr", "tesseract"))
        mark = "met" if a >= 0.95 else "MISSED"
        print(f"{'column_count (statements)':28s} {a:10.4f} {b:10.4f} {_ratio(a, b)}  ≥ 0.95 {mark}")
    per_level = n_pages
    print(
        f"\nthroughput on this machine (init excluded): local_ocr {per_level / seconds['local_ocr']:.3f} pages/s "
        f"(init {init['local_ocr']:.2f} s), tesseract {per_level / seconds['tesseract']:.3f} pages/s "
        f"(init {init['tesseract']:.2f} s); ratio {seconds['tesseract'] / seconds['local_ocr']:.2f}"
    )
    if not args.no_table_variants:
        table_variants(args.per_type, args.rows, args.seed, post, engine)
    print(f"load average at end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
