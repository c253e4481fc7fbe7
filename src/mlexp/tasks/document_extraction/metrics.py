"""Each of the post's claims as a number, comparing an extracted page with its ground truth.

- text: character and word error rate over the page's text in reading order (rows top to bottom,
  left to right), so how an engine splits lines does not count as an error;
- symbols (claim 1): per symbol, precision and recall of ₹ £ $ ¥ 元 ° over the aligned text — a ₹ read
  as R is a miss, an R read as ₹ a false hit;
- tables (claim 2): column-count and row-count accuracy, and cell accuracy (cells whose text matches,
  ignoring spaces, at the same row and column);
- forms (claim 3): key-value F1 on (key, value) text pairs; check-box detection recall (a found box
  whose centre is inside a true one) and state accuracy over every true box (a missed box counts wrong).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from mlexp.data.documents import SYMBOLS
from mlexp.tasks.document_extraction import text_distance
from mlexp.tasks.document_extraction.normalise import normalise
from mlexp.tasks.document_extraction.structure import Box, Page


def reading_order(items: list[tuple[str, Box]]) -> str:
    """Texts joined in reading order: grouped into rows by vertical overlap, each row left to right."""
    rows: list[list[tuple[str, Box]]] = []
    for text, box in sorted(items, key=lambda t: (t[1][1] + t[1][3]) / 2):
        if rows:
            last = rows[-1][-1][1]
            overlap = min(last[3], box[3]) - max(last[1], box[1])
            if overlap >= 0.5 * min(last[3] - last[1], box[3] - box[1]):
                rows[-1].append((text, box))
                continue
        rows.append([(text, box)])
    return "\n".join(" ".join(t for t, _ in sorted(row, key=lambda t: t[1][0])) for row in rows)


def page_text(page: Page) -> str:
    return reading_order([(line.text, line.box) for line in page.lines if line.text.strip()])


def _squash(text: str) -> str:
    return "".join(text.split())


def compare(truth: Page, found: Page) -> dict[str, Any]:
    """Counts (not yet ratios) for one page, to be summed over a group of pages by `ratios`."""
    true_text, found_text = normalise(page_text(truth), "none"), normalise(page_text(found), "none")
    counts: Counter[str] = Counter()
    counts["chars"] = len(true_text)
    counts["char_errors"] = text_distance.distance(true_text, found_text)
    true_words, found_words = true_text.split(), found_text.split()
    counts["words"] = len(true_words)
    counts["word_errors"] = text_distance.distance(true_words, found_words)
    kept = text_distance.matched_pairs(true_text, found_text)
    for symbol in SYMBOLS:
        counts[f"symbol_true_{symbol}"] = true_text.count(symbol)
        counts[f"symbol_found_{symbol}"] = found_text.count(symbol)
        counts[f"symbol_hit_{symbol}"] = sum(1 for i, _ in kept if true_text[i] == symbol)
    _compare_tables(truth, found, counts)
    _compare_forms(truth, found, counts)
    return dict(counts)


def _compare_tables(truth: Page, found: Page, counts: Counter[str]) -> None:
    for table in truth.tables:
        counts["tables"] += 1
        counts["cells"] += len(table.cells)
        match = max(found.tables, key=lambda t: _overlap(t.box, table.box), default=None)
        if match is None or _overlap(match.box, table.box) <= 0:
            continue
        counts["tables_found"] += 1
        counts["columns_right"] += int(match.columns == table.columns)
        counts["rows_right"] += int(match.rows == table.rows)
        grid = match.grid()
        for cell in table.cells:
            if cell.row < match.rows and cell.column < match.columns:
                counts["cells_right"] += int(_squash(grid[cell.row][cell.column]) == _squash(cell.text))


def _overlap(a: Box, b: Box) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def _compare_forms(truth: Page, found: Page, counts: Counter[str]) -> None:
    def pairs(page: Page) -> Counter[tuple[str, str]]:
        return Counter((_squash(p.key).lower(), _squash(p.value)) for p in page.key_values)

    true_pairs, found_pairs = pairs(truth), pairs(found)
    counts["key_values_true"] += sum(true_pairs.values())
    counts["key_values_found"] += sum(found_pairs.values())
    counts["key_values_right"] += sum((true_pairs & found_pairs).values())
    unused = list(found.selection_elements)
    for box in truth.selection_elements:
        counts["check_boxes"] += 1
        hit = next(
            (
                f
                for f in unused
                if box.box[0] <= (f.box[0] + f.box[2]) / 2 <= box.box[2]
                and box.box[1] <= (f.box[1] + f.box[3]) / 2 <= box.box[3]
            ),
            None,
        )
        if hit is not None:
            unused.remove(hit)
            counts["check_boxes_found"] += 1
            counts["check_box_states_right"] += int(hit.state == box.state)
    counts["check_boxes_spurious"] += len(unused)


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def ratios(counts: dict[str, float]) -> dict[str, float]:
    """The metrics of summed counts; a metric without any ground truth to measure it is left out."""
    c = Counter(counts)
    found = {
        "cer": _ratio(c["char_errors"], c["chars"]),
        "wer": _ratio(c["word_errors"], c["words"]),
        "table_cell_accuracy": _ratio(c["cells_right"], c["cells"]),
        "column_count_accuracy": _ratio(c["columns_right"], c["tables"]),
        "row_count_accuracy": _ratio(c["rows_right"], c["tables"]),
        "check_box_recall": _ratio(c["check_boxes_found"], c["check_boxes"]),
        "check_box_state_accuracy": _ratio(c["check_box_states_right"], c["check_boxes"]),
    }
    precision = _ratio(c["key_values_right"], c["key_values_found"])
    recall = _ratio(c["key_values_right"], c["key_values_true"])
    if c["key_values_true"]:
        found["key_value_f1"] = 2 * c["key_values_right"] / (c["key_values_true"] + c["key_values_found"])
        found["key_value_precision"], found["key_value_recall"] = precision or 0.0, recall
    for symbol, name in zip(SYMBOLS, SYMBOL_NAMES):
        found[f"symbol_recall_{name}"] = _ratio(c[f"symbol_hit_{symbol}"], c[f"symbol_true_{symbol}"])
        found[f"symbol_precision_{name}"] = _ratio(c[f"symbol_hit_{symbol}"], c[f"symbol_found_{symbol}"])
    return {k: float(v) for k, v in found.items() if v is not None}


# metric names must be ASCII for every MLflow store: ₹ £ $ ¥ 元 ° by name
SYMBOL_NAMES = ("rupee", "pound", "dollar", "yen", "yuan", "degree")

# the objective: the mean of one number per claim, plus the text itself; documented in docs/tasks
SCORE_PARTS = (
    "text_accuracy",
    "symbol_recall_mean",
    "column_count_accuracy",
    "check_box_state_accuracy",
    "key_value_f1",
)


def extraction_score(metrics: dict[str, float]) -> dict[str, float]:
    """text_accuracy = 1 − min(CER, 1), the mean symbol recall, and their mean with the table and form figures."""
    extra: dict[str, float] = {}
    if "cer" in metrics:
        extra["text_accuracy"] = 1.0 - min(metrics["cer"], 1.0)
    recalls = [metrics[f"symbol_recall_{n}"] for n in SYMBOL_NAMES if f"symbol_recall_{n}" in metrics]
    if recalls:
        extra["symbol_recall_mean"] = sum(recalls) / len(recalls)
    parts = [v for k in SCORE_PARTS if (v := {**metrics, **extra}.get(k)) is not None]
    if parts:
        extra["extraction_score"] = sum(parts) / len(parts)
    return extra
