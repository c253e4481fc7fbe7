"""The trial's components: Pre-processing (pages and ground truth), Extraction, Evaluation.

prepare   generate documents with exact ground truth at each degradation level, or rasterise the
          user's images/PDFs (user_documents: bad files are reported and skipped), into pages/ + manifest.json
extract   run the engine over every page: extracted/<document>.json and a CSV per table
evaluate  compare with the ground truth per document type and degradation; charts
"""

from __future__ import annotations

import csv
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf
from PIL import Image
from tqdm import tqdm

from mlexp.config.constraints import check_constraints
from mlexp.console import skipped
from mlexp.data import documents
from mlexp.data.document_scan import degrade
from mlexp.errors import DataError
from mlexp.tasks.document_extraction import charts, config_rules, engines, metrics, user_documents
from mlexp.tasks.document_extraction.structure import Document, Page, page_from_json
from mlexp.tracking import Tracker


def _folder(root: str, *names: str) -> Path:
    path = Path(root, *names)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _manifest_path(cfg: DictConfig) -> Path:
    return Path(cfg.paths.data) / "pages" / "manifest.json"


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def prepare(cfg: DictConfig, tracker: Tracker) -> None:
    """Pages as PNG and their ground truth (generated, or the user's optional JSON), listed in manifest.json."""
    pages_dir = _folder(cfg.paths.data, "pages")
    truth_dir = _folder(cfg.paths.data, "ground_truth")
    if cfg.dataset.path is None:
        entries, rejected = _generate(cfg, pages_dir, truth_dir), list[dict[str, str]]()
    else:
        entries, rejected = user_documents.write_pages(cfg, pages_dir, truth_dir)
    _write_json(_manifest_path(cfg), {"documents": entries, "rejected": rejected})
    tracker.log_metrics(
        {"documents": len(entries), "pages": sum(len(e["pages"]) for e in entries), "documents_rejected": len(rejected)}
    )
    tracker.log_artifact(_manifest_path(cfg), name="pages", media_type="application/json")


def _generate(cfg: DictConfig, pages_dir: Path, truth_dir: Path) -> list[dict[str, Any]]:
    entries = []
    # the runner refuses these before a trial opens; the stage holds to the same rules when called without it
    check_constraints(cfg, (config_rules.GENERATED_TYPES, config_rules.GENERATED_LEVELS))
    levels = OmegaConf.to_container(cfg.dataset.degradations, resolve=True)
    assert isinstance(levels, dict)
    jobs = [(t, i, lv) for t in cfg.dataset.types for i in range(cfg.dataset.n_per_type) for lv in levels]
    for kind, index, level in tqdm(jobs, desc="generating pages", disable=None):
        page, truth = generated_page(kind, cfg.seed, index, cfg.dataset.n_rows, levels, level)
        name = f"{kind}_{index:03d}_{level}"
        page.image.save(pages_dir / f"{name}.png")
        _write_json(truth_dir / f"{name}.json", {"pages": [truth]})
        entries.append(
            {
                "name": name,
                "source": f"generated:{kind}/{index}",
                "document_type": kind,
                "degradation": level,
                "pages": [f"{name}.png"],
                "ground_truth": f"{name}.json",
            }
        )
    return entries


FONT_PACKAGES = {"dejavu": "fonts-dejavu-core", "noto": "fonts-noto-core", "wqy": "fonts-wqy-microhei"}
FONT_FIX = "install the fonts with: sudo apt-get install " + " ".join(FONT_PACKAGES.values())


def check_fonts() -> None:
    """One line naming the first missing font file and its Debian package (the generator draws with them)."""
    for path in [*(p for pair in documents.FAMILIES.values() for p in pair), documents.CJK_FONT]:
        if not Path(path).is_file():
            package = next((v for k, v in FONT_PACKAGES.items() if k in str(path).lower()), "its font package")
            raise DataError(f"font {path} is missing (Debian package {package}); {FONT_FIX}")


def generated_page(
    kind: str, seed: int, index: int, n_rows: int, levels: dict[Any, Any], level: str
) -> tuple[documents.Page, dict[str, Any]]:
    """Generated document `index` of `kind` scanned at `level` (one of `levels`), and its ground-truth page JSON."""
    check_fonts()
    try:
        page = documents.generate(kind, seed, index, n_rows)
    except OSError as error:  # a font file present but unreadable: FreeType's "cannot open resource"
        raise DataError(f"drawing a generated {kind} failed ({error}); {FONT_FIX}") from None
    rng = np.random.default_rng([seed, documents.DOCUMENT_TYPES.index(kind), index, list(levels).index(level)])
    page = degrade(page, levels[level] or {}, rng)
    width, height = page.image.size
    truth = {
        "number": 1,
        "width": width,
        "height": height,
        "lines": page.lines,
        "tables": page.tables,
        "key_values": page.key_values,
        "selection_elements": page.selection_elements,
    }
    return page, truth


def _manifest(cfg: DictConfig) -> dict[str, Any]:
    path = _manifest_path(cfg)
    if not path.exists():
        raise DataError(f"{path} is missing: run the prepare stage first (mlexp task={cfg.task.name} stage=prepare)")
    manifest: dict[str, Any] = json.loads(path.read_text())
    return manifest


def extract(cfg: DictConfig, tracker: Tracker) -> None:
    """Every page through the engine: one JSON per document and one CSV per table; pages/s with init excluded."""
    manifest = _manifest(cfg)
    out = _folder(cfg.paths.data, "extracted")
    tables_dir = _folder(cfg.paths.data, "extracted", "tables")
    started = time.perf_counter()
    extractor = engines.make(cfg.engine, cfg.model)
    init_seconds = time.perf_counter() - started
    pages_dir = _manifest_path(cfg).parent
    failed, seconds, count = [], 0.0, 0
    for entry in tqdm(manifest["documents"], desc=f"extracting ({cfg.engine.name})", disable=None):
        document = Document(entry["name"], entry["source"], extractor.name)
        try:
            for number, file in enumerate(entry["pages"], start=1):
                image = np.asarray(Image.open(pages_dir / file).convert("RGB"))
                tick = time.perf_counter()
                document.pages.append(extractor.extract(image, number, f"{entry['source']} page {number}"))
                seconds += time.perf_counter() - tick
                count += 1
        except DataError as error:
            skipped(f"{error}")
            failed.append({"file": entry["source"], "error": str(error)})
            continue
        _write_json(out / f"{entry['name']}.json", document.to_json())
        _write_tables(document, tables_dir)
    _write_json(out / "failed.json", failed)
    if count == 0 and failed:
        # nothing extracted is a failed trial, not a finished one with no metrics
        raise DataError(f"no page could be extracted ({len(failed)} documents failed); first: {failed[0]['error']}")
    tracker.log_metrics(
        {
            "init_seconds": init_seconds,
            "pages_extracted": count,
            "documents_failed": len(failed),
            "pages_per_second": count / seconds if seconds else 0.0,
        }
    )
    tracker.log_parameters({"engine": extractor.name})


def _write_tables(document: Document, folder: Path) -> None:
    for page in document.pages:
        for index, table in enumerate(page.tables, start=1):
            with (folder / f"{document.name}_p{page.number}_t{index}.csv").open("w", newline="", encoding="utf-8") as f:
                csv.writer(f).writerows(table.grid())


def evaluate(cfg: DictConfig, tracker: Tracker) -> None:
    """Metrics overall, per document type and per degradation level (logged as <metric>/<group>); charts."""
    manifest = _manifest(cfg)
    data, reports = Path(cfg.paths.data), _folder(cfg.paths.reports)
    groups: dict[str, Counter[str]] = {}
    order: list[str] = []
    extracted = [e for e in manifest["documents"] if (data / "extracted" / f"{e['name']}.json").exists()]
    annotated = pages_to_annotate(extracted, cfg.model.annotated_pages)
    for entry in manifest["documents"]:
        found_path = data / "extracted" / f"{entry['name']}.json"
        # a document the engine failed on found nothing: with ground truth it counts as misses, not as absent
        found = json.loads(found_path.read_text(encoding="utf-8")) if found_path.exists() else {"pages": []}
        found_pages = [page_from_json(p) for p in found["pages"]]
        if entry["name"] in annotated and found_pages:
            chart = charts.annotated_page(
                data / "pages" / entry["pages"][0], found_pages[0], reports / "plots" / f"annotated_{entry['name']}.png"
            )
            tracker.log_artifact(chart, name="plots", media_type="image/png")
        if not entry["ground_truth"]:
            continue
        truth = json.loads((data / "ground_truth" / entry["ground_truth"]).read_text(encoding="utf-8"))
        counts = document_counts([page_from_json(p) for p in truth["pages"]], found_pages)
        for group in ("all", entry["document_type"], entry["degradation"]):
            groups.setdefault(group, Counter()).update(counts)
        if entry["degradation"] not in order:
            order.append(entry["degradation"])
    if "all" not in groups:
        tracker.log_metric("documents_with_ground_truth", 0)
        # nothing to score, but the stage's declared outputs exist (DVC fails a stage that leaves one out)
        _write_report([], reports / "evaluation.csv", columns=["group", "extraction_score"])
        (reports / "plots").mkdir(exist_ok=True)
        return
    rows = []
    for group, counts in groups.items():
        values = metrics.ratios(dict(counts))
        values |= metrics.extraction_score(values)
        rows.append({"group": group, **values})
        tracker.log_metrics(values if group == "all" else {f"{k}/{group}": v for k, v in values.items()})
    _write_report(rows, reports / "evaluation.csv")
    overall = {k: v for k, v in next(r for r in rows if r["group"] == "all").items() if isinstance(v, float)}
    plots = reports / "plots"
    tracker.log_artifact(
        charts.symbol_accuracy(overall, plots / "symbol_accuracy.png", "Currency and degree symbols", groups["all"]),
        name="plots",
        media_type="image/png",
    )
    tracker.log_artifact(
        charts.accuracy_by_degradation(
            [r for lv in order for r in rows if r["group"] == lv], plots / "accuracy_by_degradation.png"
        ),
        name="plots",
        media_type="image/png",
    )
    tracker.log_artifact(reports / "evaluation.csv", name="reports", media_type="text/csv")


def pages_to_annotate(documents: list[dict[str, Any]], count: int) -> set[str]:
    """The names of the `count` documents whose first page is annotated: one per document type first (the
    manifest lists the annual reports first, which filled every slot), then the rest in manifest order."""
    firsts = list({d["document_type"]: d for d in reversed(documents)}.values())[::-1]
    rest = [d for d in documents if d not in firsts]
    return {d["name"] for d in (firsts + rest)[:count]}


def document_counts(truth_pages: list[Page], found_pages: list[Page]) -> Counter[str]:
    """The metric counts of one document; a page the engine did not return (a failed document) counts as
    an empty page, so everything on it is a miss."""
    found_pages = found_pages + [Page(p.number, p.width, p.height) for p in truth_pages[len(found_pages) :]]
    counts: Counter[str] = Counter()
    for truth_page, found_page in zip(truth_pages, found_pages):
        counts.update(metrics.compare(truth_page, found_page))
    return counts


def _write_report(rows: list[dict[str, Any]], path: Path, columns: list[str] | None = None) -> None:
    columns = columns or list(dict.fromkeys(k for r in rows for k in r))
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
