"""Charts of the recommendation task (PNG, matplotlib Agg)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

AT_K = ("precision", "recall", "normalized_discounted_cumulative_gain")


def metrics_at_k(rows: list[dict], path: Path, title: str) -> Path:
    """Precision, recall and NDCG at each k."""
    figure, axis = plt.subplots(figsize=(6, 4))
    ks = [row["k"] for row in rows]
    for name in AT_K:
        axis.plot(
            ks,
            [row[name] for row in rows],
            marker="o",
            label=name.replace("normalized_discounted_cumulative_gain", "NDCG"),
        )
    axis.set_xlabel("k")
    axis.set_ylabel("metric at k")
    axis.set_title(title)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
