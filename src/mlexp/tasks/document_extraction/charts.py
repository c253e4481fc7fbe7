"""Charts: per-symbol precision and recall, accuracy against degradation level, and annotated pages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

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
TREND = (
    "text_accuracy",
    "symbol_recall_mean",
    "column_count_accuracy",
    "table_cell_accuracy",
    "key_value_f1",
    "check_box_state_accuracy",
)


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def symbol_accuracy(metrics: dict[str, float], path: Path, title: str) -> Path:
    names = [n for n in SYMBOL_NAMES if f"symbol_recall_{n}" in metrics]
    fig, ax = plt.subplots(figsize=(7, 4))
    x = np.arange(len(names))
    ax.bar(x - 0.2, [metrics[f"symbol_recall_{n}"] for n in names], 0.4, label="recall")
    ax.bar(x + 0.2, [metrics.get(f"symbol_precision_{n}", 0.0) for n in names], 0.4, label="precision")
    ax.axhline(0.95, color="grey", linestyle="--", linewidth=1, label="target 0.95")
    ax.set(xticks=x, xticklabels=[LABELS[n] for n in names], ylim=(0, 1.05), title=title)
    ax.legend(loc="lower right")
    return _save(fig, path)


def accuracy_by_degradation(rows: list[dict[str, Any]], path: Path) -> Path:
    """One line per metric across the degradation levels (in the config's order)."""
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    levels = [r["group"] for r in rows]
    for metric in TREND:
        values = [r.get(metric) for r in rows]
        if any(v is not None for v in values):
            ax.plot(levels, [np.nan if v is None else v for v in values], marker="o", label=metric)
    ax.set(ylabel="accuracy", ylim=(0, 1.05), xlabel="degradation", title="Accuracy against degradation")
    ax.legend(fontsize=8, loc="lower left")
    return _save(fig, path)


def annotated_page(image_path: Path, page: Page, path: Path) -> Path:
    """The page with what was read drawn on it: lines blue, table cells green, key-values orange, check boxes red."""
    image = Image.open(image_path).convert("RGB")
    draw = ImageDraw.Draw(image)
    for line in page.lines:
        draw.rectangle(line.box, outline=(40, 90, 220), width=2)
    for table in page.tables:
        for cell in table.cells:
            draw.rectangle(cell.box, outline=(20, 160, 60), width=2)
    for pair in page.key_values:
        draw.rectangle(pair.key_box, outline=(240, 140, 0), width=3)
        if pair.value_box:
            draw.rectangle(pair.value_box, outline=(240, 140, 0), width=3)
    for element in page.selection_elements:
        colour = (220, 30, 30) if element.state == "SELECTED" else (150, 0, 150)
        draw.rectangle(
            [element.box[0] - 4, element.box[1] - 4, element.box[2] + 4, element.box[3] + 4], outline=colour, width=3
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path
