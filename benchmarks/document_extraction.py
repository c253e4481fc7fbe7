"""document_extraction against the issue's targets, with Tesseract as the baseline on the same pages.

Generates n documents of each type at two levels (clean 200 dpi; 100 dpi with scan noise), runs
engine=local_ocr (RapidOCR + layout code) and Tesseract 5 (same layout code) on every page, and
prints each metric per engine and level with the local/Tesseract ratio, then pages/s (init excluded).
With several seeds the tables are pooled over them, and each seed's CER, row-count, cell, check-box state
and column-count accuracy (all tables, and statements alone) and symbol recall/precision are printed too;
then local_ocr's symbol recall per font family of the generator (pooled over the seeds) and every
missed ₹ with its place in its line (before an amount, as the line's last word, elsewhere).

    .venv/bin/python benchmarks/document_extraction.py --per-type 3 --rows 10
    .venv/bin/python benchmarks/document_extraction.py --seed 7001 7002 --levels clean --no-table-variants
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
from mlexp.tasks.document_extraction import engines, metrics, text_distance
from mlexp.tasks.document_extraction.config import DocumentLayout, LocalOcrEngine
from mlexp.tasks.document_extraction.stages import generated_page
from mlexp.tasks.document_extraction.structure import Page, page_from_json

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
# per seed (several seeds): the last is column-count accuracy on the account statements alone
PER_SEED = [
    "cer",
    "row_count_accuracy",
    "table_cell_accuracy",
    "check_box_state_accuracy",
    "column_count_accuracy",
    "column_count_statements",
]
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


def pages(per_type: int, rows: int, seeds: list[int], levels: list[str]):
    """(seed, level, kind, font family, image, truth) of every generated page."""
    for seed in seeds:
        for level in levels:
            for kind in documents.DOCUMENT_TYPES:
                for index in range(per_type):
                    page, truth = generated_page(kind, seed, index, rows, LEVELS, level)
                    yield seed, level, kind, page.family, np.asarray(page.image), page_from_json(truth)


def _place(text: str, at: int) -> str:
    """Where the sign at `at` stands in its line: before an amount, as the line's last word, or elsewhere."""
    rest = text[at + 1 :]
    if rest.lstrip()[:1].isdigit():
        return "before amount" + (" (space)" if rest[:1] == " " else "")
    return "line end" if not rest.strip() else "elsewhere"


def missed_signs(truth: Page, found: Page, sign: str) -> list[tuple[str, str, str]]:
    """(place, true line, text read there) for each `sign` of a true line that the line's reading lost.

    The text read there is the found lines whose boxes overlap the true line by half its height, left to
    right; a sign is kept when the minimal alignment of the two keeps it (as metrics.compare does per page).
    """
    missed = []
    for line in truth.lines:
        if sign not in line.text:
            continue
        x0, y0, x1, y1 = line.box
        near = [
            f
            for f in found.lines
            if min(y1, f.box[3]) - max(y0, f.box[1]) >= 0.5 * (y1 - y0) and min(x1, f.box[2]) > max(x0, f.box[0])
        ]
        read = " ".join(f.text for f in sorted(near, key=lambda f: f.box[0]))
        kept = {i for i, _ in text_distance.matched_pairs(line.text, read)}
        for at, char in enumerate(line.text):
            if char == sign and at not in kept:
                missed.append((_place(line.text, at), line.text, read))
    return missed


def symbol_line(counts: Counter[str]) -> str:
    """Recall (hit/true) and precision (hit/found) of each symbol present in `counts`."""
    parts = []
    for symbol in documents.SYMBOLS:
        hit, true, found = (counts[f"symbol_{k}_{symbol}"] for k in ("hit", "true", "found"))
        if true or found:
            recall = f"{hit / true:.3f} ({hit}/{true})" if true else "n/a"
            precision = f"{hit / found:.3f} ({hit}/{found})" if found else "n/a"
            parts.append(f"{symbol} R {recall} P {precision}")
    return "; ".join(parts)


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


def table_variants(per_type: int, rows: int, seeds: list[int], levels: list[str], post_default, engine_default) -> None:
    """Claim 2 before/after: column-count accuracy of account statements by table structure and column dropping."""
    statements = [
        (level, image, truth)
        for seed in seeds
        for level in levels
        for index in range(per_type)
        for image, truth in [_statement(seed, index, rows, level)]
    ]
    print(f"\nclaim 2, account_statement tables (column_count / row_count / cell accuracy, {', '.join(levels)}):")
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
    # 42 (the trial's default seed) was the development seed; the benchmark's pages are drawn from another.
    # Several seeds: the tables are pooled over them and each seed's symbol figures printed as well
    parser.add_argument("--seed", type=int, nargs="+", default=[2026])
    parser.add_argument("--levels", nargs="+", choices=list(LEVELS), default=list(LEVELS))
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
    per_seed: dict[tuple[str, str, int], Counter[str]] = {}
    per_font: dict[tuple[str, str], Counter[str]] = {}  # local_ocr's counts by (level, font family)
    misses: list[tuple[int, str, str, str, tuple[str, str, str]]] = []  # local_ocr's missed ₹
    seconds: Counter[str] = Counter()
    wrong: list[str] = []  # statements whose column count is wrong
    n_pages = 0
    for seed, level, kind, family, image, truth in pages(args.per_type, args.rows, args.seed, args.levels):
        n_pages += 1
        for extractor in (local, baseline):
            tick = time.perf_counter()
            found = extractor.extract(image, 1, f"{kind} {level}")
            seconds[extractor.name] += time.perf_counter() - tick
            compared = metrics.compare(truth, found)
            counts.setdefault((extractor.name, level), Counter()).update(compared)
            per_seed.setdefault((extractor.name, level, seed), Counter()).update(compared)
            if kind == "account_statement":  # the target's population: page-wide whitespace tables
                statements.setdefault((extractor.name, level), Counter()).update(compared)
                statements.setdefault((extractor.name, level, seed), Counter()).update(compared)
                if compared.get("columns_right", 0) < compared.get("tables", 0):
                    header = [c.text for c in truth.tables[0].cells if c.row == 0]
                    read = [t.grid()[0] for t in found.tables]
                    wrong.append(f"{extractor.name} seed {seed} {level} {family}: true header {header}, read {read}")
            if extractor is local:
                per_font.setdefault((level, family), Counter()).update(compared)
                misses += [(seed, level, kind, family, m) for m in missed_signs(truth, found, "₹")]
        spent = f"local_ocr {seconds['local_ocr']:.0f} s, tesseract {seconds['tesseract']:.0f} s"
        print(f"page {n_pages}: seed {seed} {kind} {level} {family} ({spent})", file=sys.stderr, flush=True)
    seeds = " ".join(map(str, args.seed))
    print(f"{n_pages // len(args.levels)} documents × {len(args.levels)} levels, seed {seeds}")
    for level in args.levels:
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
    if len(args.seed) > 1:
        for level in args.levels:
            print(f"\nper seed, {level}: {', '.join(PER_SEED)}")
            for name in ("local_ocr", "tesseract"):
                for seed in args.seed:
                    v = metrics.ratios(dict(per_seed[(name, level, seed)]))
                    pagewide = metrics.ratios(dict(statements.get((name, level, seed), Counter())))
                    cells = [v.get(m) for m in PER_SEED[:-1]] + [pagewide.get("column_count_accuracy")]
                    shown = " ".join("   n/a" if x is None else f"{x:6.3f}" for x in cells)
                    print(f"  {name:9s} seed {seed}: {shown}")
    print("\nstatements with a wrong column count (the header rows of the tables read):")
    print("\n".join(f"  {line}" for line in wrong) or "  none")
    for level in args.levels:
        print(f"\nsymbols per seed, {level} (R recall hit/true, P precision hit/found):")
        for name in ("local_ocr", "tesseract"):
            for seed in args.seed:
                print(f"  {name:9s} seed {seed}: {symbol_line(per_seed[(name, level, seed)])}")
            if len(args.seed) > 1:
                print(f"  {name:9s} pooled:    {symbol_line(counts[(name, level)])}")
        print(f"\nlocal_ocr symbol recall by font family, {level}, seeds {seeds} pooled (hit/true):")
        signs = [s for s in documents.SYMBOLS if s != "元"]  # 元 is drawn in WenQuanYi Micro Hei whatever the family
        print(f"  {'font':17s} " + " ".join(f"{s:>12s}" for s in signs))
        for family in documents.FAMILIES:
            c = per_font.get((level, family), Counter())
            cells = []
            for s in signs:
                hit, true = c[f"symbol_hit_{s}"], c[f"symbol_true_{s}"]
                cells.append(f"{hit:>3d}/{true:<3d} {hit / true:.2f}" if true else f"{'—':>12s}")
            print(f"  {family:17s} " + " ".join(cells))
        print(f"\nlocal_ocr's missed ₹, {level} (place, true line → read there):")
        for seed, at_level, kind, family, (place, text, read) in misses:
            if at_level == level:
                print(f"  seed {seed} {kind:16s} {family:17s} {place:22s} {text!r} → {read!r}")
    per_level = n_pages
    print(
        f"\nthroughput on this machine (init excluded): local_ocr {per_level / seconds['local_ocr']:.3f} pages/s "
        f"(init {init['local_ocr']:.2f} s), tesseract {per_level / seconds['tesseract']:.3f} pages/s "
        f"(init {init['tesseract']:.2f} s); ratio {seconds['tesseract'] / seconds['local_ocr']:.2f}"
    )
    if not args.no_table_variants:
        table_variants(args.per_type, args.rows, args.seed, args.levels, post, engine)
    print(f"load average at end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
