"""The post's question — which metadata to include — answered as a table and a chart of deltas against a baseline.

Each variant (a `features` option, or CreateSolution settings) ran once per seed; its delta is its
objective minus the interactions-only baseline's *of the same seed*, so the spread over seeds says
whether a delta stands out from run-to-run noise.

    mlexp -m task=recommendation sweep=recommendation_metadata
    python -m mlexp.tasks.recommendation.metadata_selection sweep=<sweep name printed by the sweep>
    python -m mlexp.tasks.recommendation.metadata_selection experiment=recommendation   # every trial

Options: baseline=<variant> (default interactions_only), metric=<name>, out=<folder>, and recipe=<name> /
source=<dataset source> to pick one recipe and dataset when the trials mix them (a delta compares like with like).
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from mlexp.errors import MlexpError  # noqa: E402

BASELINE = "interactions_only"
OBJECTIVE = "val_normalized_discounted_cumulative_gain_at_10"
SOLUTION_KEYS = ("event_type", "event_value_threshold", "history_days", "recency_half_life_days")


class SelectionError(MlexpError):
    """The trials cannot be compared as asked (no baseline, or a mix of recipes or datasets)."""


def variant_label(params: dict[str, object]) -> str:
    """A trial's variant: its features option, plus any CreateSolution setting it changes."""
    parts = [str(params.get("features.name", "custom"))]
    for key in SOLUTION_KEYS:
        value = params.get(f"solution.{key}")
        if value not in (None, "None", "null", ""):
            parts.append(f"{key}={value}")
    return " ".join(parts)


def delta_table(runs: pd.DataFrame, metric: str = OBJECTIVE, baseline: str = BASELINE) -> pd.DataFrame:
    """One row per variant: mean and std of `metric` over seeds, and the paired delta against `baseline`."""
    if baseline not in set(runs["variant"]):
        raise SelectionError(
            f"no {baseline!r} trials to compare against; pass baseline=<one of: "
            f"{', '.join(sorted(set(runs['variant'])))}> or run the baseline's trials too"
        )
    base = runs[runs["variant"] == baseline].groupby("seed")[metric].mean()
    rows = []
    for variant, group in runs.groupby("variant"):
        deltas = group.set_index("seed")[metric].groupby(level=0).mean() - base
        deltas = deltas.dropna()
        rows.append(
            {
                "variant": variant,
                "seeds": len(group),
                metric: group[metric].mean(),
                f"{metric}_std": group[metric].std(ddof=1) if len(group) > 1 else np.nan,
                "delta": deltas.mean(),
                "delta_std": deltas.std(ddof=1) if len(deltas) > 1 else np.nan,
                "delta_pct": 100 * deltas.mean() / base.mean() if base.mean() else np.nan,
            }
        )
    return pd.DataFrame(rows).sort_values("delta", ascending=False).reset_index(drop=True)


def delta_chart(table: pd.DataFrame, path: Path, metric: str = OBJECTIVE, baseline: str = BASELINE) -> Path:
    """Horizontal bars of each variant's delta with ± one standard deviation over seeds."""
    shown = table[table["variant"] != baseline].iloc[::-1]
    figure, axis = plt.subplots(figsize=(7, 0.45 * len(shown) + 1.5))
    colours = ["tab:green" if d > 0 else "tab:red" for d in shown["delta"]]
    axis.barh(shown["variant"], shown["delta"], xerr=shown["delta_std"].fillna(0), color=colours, capsize=3)
    axis.axvline(0, color="black", linewidth=0.8)
    axis.set_xlabel(f"Δ {metric} vs {baseline} (mean ± std over seeds)")
    axis.set_title("Metadata selection: which fields help")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def from_analytics(
    frame: pd.DataFrame, metric: str = OBJECTIVE, recipe: str | None = None, source: str | None = None
) -> pd.DataFrame:
    """Trials of `mlexp.analytics(..., all_params=True)` as (variant, seed, metric) rows; finished trials only.

    Deltas compare like with like: trials of several recipes or datasets are refused unless `recipe` / `source`
    picks one of each."""
    done = frame[(frame["Status"] == "FINISHED") & frame["features.name"].notna()]
    for column, wanted in (("model.recipe", recipe), ("dataset.source", source)):
        if column not in done:
            continue
        if wanted is not None:
            done = done[done[column].astype(str) == wanted]
        mixed = sorted(done[column].dropna().astype(str).unique())
        if len(mixed) > 1:
            option = "recipe" if column == "model.recipe" else "source"
            raise SelectionError(
                f"the trials mix {column} values ({', '.join(mixed)}): a delta compares one {column} only; "
                f"pass {option}=<one of them>"
            )
    column = metric if metric in done else f"{metric} - Last"
    rows = [
        {"variant": variant_label(row), "seed": int(row["seed"]), metric: float(row[column])}
        for row in done.to_dict("records")
    ]
    return pd.DataFrame(rows, columns=["variant", "seed", metric])


def write_report(runs: pd.DataFrame, folder: Path, metric: str = OBJECTIVE, baseline: str = BASELINE) -> pd.DataFrame:
    """metadata_selection.csv, .md and .png in `folder`; returns the table."""
    folder.mkdir(parents=True, exist_ok=True)
    table = delta_table(runs, metric, baseline)
    table.to_csv(folder / "metadata_selection.csv", index=False)
    (folder / "metadata_selection.md").write_text(table.to_markdown(index=False, floatfmt=".4f") + "\n")
    delta_chart(table, folder / "metadata_selection.png", metric, baseline)
    return table


def main(argv: list[str]) -> int:
    """`python -m mlexp.tasks.recommendation.metadata_selection sweep=<name> [baseline=<variant>] [metric=<name>]`."""
    if any(arg in ("-h", "--help") for arg in argv):
        print(__doc__)
        return 0
    options = dict(arg.split("=", 1) for arg in argv if "=" in arg)
    if len(options) != len(argv) or not {"sweep", "experiment"} & set(options):
        print(__doc__, file=sys.stderr)
        return 2
    import mlexp

    if "sweep" in options:
        frame, where = mlexp.analytics(sweep=options["sweep"], all_params=True), options["sweep"]
    else:
        frame, where = mlexp.analytics(experiment=options["experiment"], all_params=True), options["experiment"]
    metric = options.get("metric", OBJECTIVE)
    try:
        runs = from_analytics(frame, metric, options.get("recipe"), options.get("source")) if len(frame) else None
        if runs is None or runs.empty:
            print(f"no finished trial in {where}: run the sweep first (see --help of this module)", file=sys.stderr)
            return 1
        folder = Path(options.get("out", f"outputs/sweeps/recommendation/{where}"))
        table = write_report(runs, folder, metric, options.get("baseline", BASELINE))
    except SelectionError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(table.to_string(index=False))
    print(f"wrote {folder}/metadata_selection.{{csv,md,png}}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
