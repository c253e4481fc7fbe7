"""Charts: per-symbol precision and recall, accuracy against degradation level, and annotated pages."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402

from mlexp.data.documents import SYMBOLS  # noqa: E402
from mlexp.tasks.document_extraction.metrics import SYMBOL_NAMES  # noqa: E402
from mlexp.tasks.document_extraction.structure import Page  # noqa: E402

# DejaVu Sans (matplotlib's font) has ₹ £ $ ¥ ° but no 元: the yuan bar is labelled in words
LABELS = {
    "rupee": "₹ rupee",
    "pound": "£ pound",
    "dollar": "$ dollar",
    "yen": "¥ yen",
    "yuan": "yuan",
    "degree": "° degree",
}
# the series of accuracy_by_degradation, named for what each measures (not all are accuracies)
TREND = {
    "text_accuracy": "text accuracy (1 - CER)",
    "symbol_recall_mean": "symbol recall (mean)",
    "column_count_accuracy": "column count accuracy",
    "table_cell_accuracy": "table cell accuracy",
    "key_value_f1": "key-value F1",
    "check_box_state_accuracy": "check box state accuracy",
}
MARKERS = "osD^vP"
# annotated pages: what each outline colour is
KEY = {
    "line": (40, 90, 220),
    "table cell": (20, 160, 60),
    "key / value": (240, 140, 0),
    "check box selected": (220, 30, 30),
    "check box not selected": (150, 0, 150),
}
# an outline this far outside its box, so it does not sit on the glyphs
PAD = 3


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def symbol_accuracy(
    metrics: dict[str, float], path: Path, title: str, counts: Mapping[str, float] | None = None
) -> Path:
    """Recall and precision per symbol; with the summed `counts`, each bar is labelled hits/occurrences."""
    names = [n for n in SYMBOL_NAMES if f"symbol_recall_{n}" in metrics]
    fig, ax = plt.subplots(figsize=(8.5, 4))
    x = np.arange(len(names))
    recall = ax.bar(x - 0.2, [metrics[f"symbol_recall_{n}"] for n in names], 0.4, label="recall")
    precision = ax.bar(x + 0.2, [metrics.get(f"symbol_precision_{n}", 0.0) for n in names], 0.4, label="precision")
    if counts is not None:
        symbols = [SYMBOLS[SYMBOL_NAMES.index(n)] for n in names]
        hits = [int(counts.get(f"symbol_hit_{s}", 0)) for s in symbols]
        ax.bar_label(
            recall, [f"{h}/{int(counts.get(f'symbol_true_{s}', 0))}" for h, s in zip(hits, symbols)], fontsize=7
        )
        ax.bar_label(
            precision, [f"{h}/{int(counts.get(f'symbol_found_{s}', 0))}" for h, s in zip(hits, symbols)], fontsize=7
        )
    ax.axhline(0.95, color="grey", linestyle="--", linewidth=1, label="target 0.95")
    ax.set(xticks=x, xticklabels=[LABELS[n] for n in names], ylim=(0, 1.12), title=title)
    ax.set_ylabel("recall / precision (hits of occurrences)" if counts is not None else "recall / precision")
    if names:
        # outside the axes: inside it covered the last bars (yen, yuan, degree)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    else:
        _nothing_to_show(ax, "no currency or degree symbol in the ground truth")
    return _save(fig, path)


def _nothing_to_show(ax: Any, why: str) -> None:
    """Say so in the chart's middle rather than leave a blank box."""
    ax.text(0.5, 0.5, why, ha="center", va="center", transform=ax.transAxes)


def accuracy_by_degradation(rows: list[dict[str, Any]], path: Path) -> Path:
    """One marker per metric and degradation level (in the config's order), side by side, no joining line:
    the levels are categories, not a scale. The y range follows the values, so that 0.97 and 1.0 part."""
    fig, ax = plt.subplots(figsize=(8.5, 4.5))
    levels = [r["group"] for r in rows]
    series = {m: [r.get(m) for r in rows] for m in TREND if any(r.get(m) is not None for r in rows)}
    offsets = np.linspace(-0.25, 0.25, len(series)) if len(series) > 1 else np.zeros(1)
    for (metric, values), offset, marker in zip(series.items(), offsets, MARKERS):
        xs = [i + offset for i, v in enumerate(values) if v is not None]
        ax.plot(xs, [v for v in values if v is not None], marker=marker, linestyle="none", markersize=7,
                label=TREND[metric])  # fmt: skip
    shown = [v for values in series.values() for v in values if v is not None]
    low = min(shown, default=0.0)
    ax.set_ylim(max(0.0, low - max(0.02, (1 - low) * 0.15)), 1.0 + max(0.01, (1 - low) * 0.05))
    ax.set_xticks(range(len(levels)), levels)
    ax.set_xlim(-0.5, len(levels) - 0.5)
    ax.grid(axis="y", linewidth=0.5, alpha=0.5)
    ax.set(ylabel="score (1 = perfect)", xlabel="degradation", title="Scores per degradation level")
    if series:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    else:  # an empty legend is matplotlib's UserWarning on the user's terminal
        _nothing_to_show(ax, "no score: the ground truth holds no text, table, key-value or check box")
    return _save(fig, path)


def annotated_page(image_path: Path, page: Page, path: Path) -> Path:
    """The page with what was read drawn on it, outlines padded off the glyphs, and a colour key under it."""
    page_image = Image.open(image_path).convert("RGB")
    size = max(14, page_image.width // 70)  # the key reads like the page's own small print: 24 px on a 1,700 px page
    font = ImageFont.load_default(size=size)
    strip = size * 2
    image = Image.new("RGB", (page_image.width, page_image.height + strip), "white")
    image.paste(page_image)
    draw = ImageDraw.Draw(image)
    for line in page.lines:
        _outline(draw, line.box, KEY["line"], 2)
    for table in page.tables:
        for cell in table.cells:
            _outline(draw, cell.box, KEY["table cell"], 2)
    for pair in page.key_values:
        for box in (pair.key_box, pair.value_box):
            if box:
                _outline(draw, box, KEY["key / value"], 3)
    for element in page.selection_elements:
        state = "check box selected" if element.state == "SELECTED" else "check box not selected"
        _outline(draw, element.box, KEY[state], 3, pad=PAD + 1)
    x, y = size // 2, page_image.height + size // 2
    for label, colour in KEY.items():
        draw.rectangle([x, y, x + size, y + size], outline=colour, width=3)
        draw.text((x + size * 1.5, y), label, fill="black", font=font)
        x += int(size * 1.5 + draw.textlength(label, font=font) + size * 1.5)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def _outline(
    draw: ImageDraw.ImageDraw, box: Sequence[float], colour: tuple[int, int, int], width: int, pad: int = PAD
) -> None:
    draw.rectangle([box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad], outline=colour, width=width)
