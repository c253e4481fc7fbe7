"""Charts of the recommendation task (PNG, matplotlib Agg)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from mlexp.charts import save_figure  # noqa: E402

AT_K = ("precision", "recall", "normalized_discounted_cumulative_gain")
SHORT = {"normalized_discounted_cumulative_gain": "NDCG"}


def metrics_at_k(
    rows: list[dict], path: Path, period: str, trial: str, cold_items_recall: tuple[int, float] | None = None
) -> Path:
    """Precision, recall and NDCG at each k (x ticks at the ks), titled with what they are, on which `period` and
    at which ks, then `trial` (what was evaluated); cold users' dashed when the rows hold them (`cold_users_<metric>`),
    the popularity count's NDCG dotted grey (`popularity_<metric>`); cold items' recall as one point at its k."""
    figure, axis = plt.subplots(figsize=(6.5, 4.2))
    ks = [row["k"] for row in rows]
    for i, name in enumerate(AT_K):
        label = SHORT.get(name, name)
        axis.plot(ks, [row[name] for row in rows], marker="o", color=f"C{i}", label=label)
        cold = f"cold_users_{name}"
        if all(cold in row for row in rows):
            axis.plot(
                ks,
                [row[cold] for row in rows],
                "--",
                marker="o",
                mfc="none",
                color=f"C{i}",
                label=f"{label}, cold users",
            )
    baseline = "popularity_normalized_discounted_cumulative_gain"
    if all(baseline in row for row in rows):  # the bar a recipe must clear (not drawn for the popularity recipe)
        axis.plot(ks, [row[baseline] for row in rows], ":", color="grey", label="NDCG, popularity count")
    ticks = sorted(set(ks))
    if cold_items_recall is not None:
        k, recall = cold_items_recall
        axis.plot([k], [recall], "D", color="C1", mfc="none", markersize=8, label=f"recall@{k}, cold items")
        ticks = sorted({*ticks, k})
    axis.set_xticks(ticks)
    axis.set_xlabel("k (items recommended per user)")
    axis.set_ylabel("metric at k (0 to 1)")
    at = ", ".join(str(k) for k in sorted(set(ks)))
    axis.set_title(f"Precision, recall and NDCG at k = {at} on the {period}\n{trial}", fontsize=10)
    axis.legend(fontsize=8)
    return save_figure(figure, path)


def training_curve(rows: list[dict[str, float]], best_epoch: int, metric: str, label: str, path: Path) -> Path:
    """Training loss and the validation metric (`rows[i][metric]`, called `label`) by epoch; the epoch the model
    keeps marked."""
    figure, loss_axis = plt.subplots(figsize=(6.5, 4.2))
    epochs = [row["epoch"] for row in rows]
    loss_axis.plot(epochs, [row["train_loss"] for row in rows], marker="o", color="C0", label="training loss")
    loss_axis.set_xlabel("epoch (one pass over the training interactions)")
    # metadata_hybrid's loss: softmax cross-entropy (natural log) weighted by the interaction's weight, averaged over
    # the epoch's interactions
    loss_axis.set_ylabel("training loss (nats per interaction)", color="C0")
    metric_axis = loss_axis.twinx()
    metric_axis.plot(epochs, [row[metric] for row in rows], marker="s", color="C1", label=f"validation {label}")
    metric_axis.set_ylabel(f"validation {label} (0 to 1)", color="C1")
    loss_axis.axvline(best_epoch, color="grey", linestyle="--", linewidth=1, label=f"best epoch ({best_epoch})")
    loss_axis.set_xticks(epochs)
    handles = loss_axis.get_legend_handles_labels()
    more = metric_axis.get_legend_handles_labels()
    loss_axis.legend(
        handles[0] + more[0], handles[1] + more[1], fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3
    )
    loss_axis.set_title(f"Training loss (training interactions) and {label} (validation period) by epoch", fontsize=10)
    return save_figure(figure, path)
