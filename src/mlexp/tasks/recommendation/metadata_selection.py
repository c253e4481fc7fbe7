"""The post's question — which metadata to include — answered as a table and a chart of deltas against a baseline.

Each variant (a `features` option, or CreateSolution settings) ran once per seed; its delta is its
objective minus the interactions-only baseline's *of the same seed*, so the spread over seeds says
whether a delta stands out from run-to-run noise.

    mlexp -m task=recommendation sweep=recommendation_metadata
    python -m mlexp.tasks.recommendation.metadata_selection sweep=<sweep name printed by the sweep>
    python -m mlexp.tasks.recommendation.metadata_selection experiment=recommendation   # every trial

The table's headline is the held-out test period's NDCG@10 delta; the validation delta stands beside it (early
stopping chose the metadata model's epochs on validation, so that figure is the best of the epochs tried).

Options: baseline=<variant> (default interactions_only; CreateSolution settings alone, as in
"baseline=event_type=watch event_value_threshold=0.0", name the variant of those settings when the trials ran one
features option), metric=<name> (one metric instead of test + validation), out=<folder>, and recipe=<name> /
source=<dataset source> to pick one recipe and dataset when the trials mix them (a delta compares like with like).
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from mlexp.errors import MlexpError, did_you_mean  # noqa: E402

BASELINE = "interactions_only"
# the headline: the held-out test period, which no choice saw. The validation figure is shown beside it; early
# stopping picked each metadata-model trial's epochs on it (the best of the epochs tried), so it reads high.
TEST_METRIC = "normalized_discounted_cumulative_gain_at_10"
OBJECTIVE = "val_normalized_discounted_cumulative_gain_at_10"
METRICS = (TEST_METRIC, OBJECTIVE)
SOLUTION_KEYS = ("event_type", "event_value_threshold", "history_days", "recency_half_life_days")


class SelectionError(MlexpError):
    """The trials cannot be compared as asked (no baseline, or a mix of recipes or datasets)."""


def short(metric: str) -> str:
    """The column prefix of a metric in the table: test, val, or the metric's own name."""
    return {TEST_METRIC: "test", OBJECTIVE: "val"}.get(metric, metric)


def variant_label(params: dict[str, object]) -> str:
    """A trial's variant: its features option, plus any CreateSolution setting it changes."""
    parts = [str(params.get("features.name", "custom"))]
    for key in SOLUTION_KEYS:
        value = params.get(f"solution.{key}")
        if value not in (None, "None", "null", ""):
            parts.append(f"{key}={value}")
    return " ".join(parts)


def resolve_baseline(variants: set[str], baseline: str) -> str:
    """The variant `baseline` names: itself, or, when it gives CreateSolution settings alone (`event_type=watch
    ...`), the one variant of those settings whatever its features option (a filters sweep runs one)."""
    if baseline in variants or "=" not in baseline.split(" ")[0]:
        return baseline
    matches = sorted(variant for variant in variants if variant.partition(" ")[2] == baseline)
    if len(matches) > 1:
        raise SelectionError(
            f"baseline={baseline} names {len(matches)} variants, one per features option ({', '.join(matches)}); "
            "name one in full: baseline=<features option> <settings>"
        )
    return matches[0] if matches else baseline


def delta_table(runs: pd.DataFrame, metrics: tuple[str, ...] = METRICS, baseline: str = BASELINE) -> pd.DataFrame:
    """One row per variant and, per metric: its mean over seeds and the delta against `baseline` *of the same
    seed* (mean, std over seeds, % of the baseline). Sorted by the first metric's delta (the headline)."""
    if baseline not in set(runs["variant"]):
        raise SelectionError(
            f"no {baseline!r} trials to compare against; pass baseline=<one of: "
            f"{', '.join(sorted(set(runs['variant'])))}> or run the baseline's trials too"
        )
    rows = []
    for variant, group in runs.groupby("variant"):
        row: dict[str, object] = {"variant": variant, "seeds": group["seed"].nunique()}
        for metric in metrics:
            base = runs[runs["variant"] == baseline].groupby("seed")[metric].mean()
            deltas = (group.groupby("seed")[metric].mean() - base).dropna()
            name = short(metric)
            row[name] = group[metric].mean()
            row[f"{name}_delta"] = deltas.mean()
            row[f"{name}_delta_std"] = deltas.std(ddof=1) if len(deltas) > 1 else np.nan
            row[f"{name}_delta_pct"] = 100 * deltas.mean() / base.mean() if base.mean() else np.nan
        rows.append(row)
    headline = f"{short(metrics[0])}_delta"
    return pd.DataFrame(rows).sort_values(headline, ascending=False).reset_index(drop=True)


def delta_chart(
    table: pd.DataFrame, path: Path, metrics: tuple[str, ...] = METRICS, baseline: str = BASELINE, title: str = ""
) -> Path:
    """Horizontal bars of each variant's deltas (± one std over seeds): the first metric solid, the others
    lighter and hatched beside it; green above the baseline, red below."""
    from matplotlib.patches import Patch

    shown = table[table["variant"] != baseline].iloc[::-1].reset_index(drop=True)
    solid = "held-out test period" if metrics[0] == TEST_METRIC else metrics[0]
    # wrapped to the bars' width (about 5.5 in: the variant labels take the rest), not cut at the figure's edge: a
    # filters sweep's baseline names every setting, a metric= may be long
    heading = title or f"Which fields and filters help (solid: {solid})"
    title_lines = [textwrap.fill(line, width=60) for line in (heading, f"baseline: {baseline}")]
    title_inches = 0.2 * sum(line.count("\n") + 1 for line in title_lines)
    key_inches = 0.2 * len(metrics) + 0.15  # the key: a line per metric, under the x label
    label_inches = 0.065 * max((len(str(v)) for v in shown["variant"]), default=10)  # room for long variant labels
    # at least the y label's length: one variant's bars are shorter than it
    bars_inches = max(0.6 * len(shown) * max(1, len(metrics) - 0.5), 3.0)
    figure, axis = plt.subplots(figsize=(7 + label_inches, bars_inches + 1.8 + title_inches + key_inches))
    height = 0.8 / len(metrics)
    positions = np.arange(len(shown))
    keys = []
    for n, metric in enumerate(metrics):
        name = short(metric)
        delta = shown[f"{name}_delta"]
        colours = ["tab:green" if d > 0 else "tab:red" for d in delta]
        alpha, hatch = (1.0, None) if n == 0 else (0.35, "//")
        axis.barh(positions + (len(metrics) - 1 - 2 * n) * height / 2, delta, height=height,
                  xerr=shown[f"{name}_delta_std"].fillna(0), color=colours, alpha=alpha, hatch=hatch,
                  capsize=3)  # fmt: skip
        # the key says which bar is which metric; colour says better or worse, so the key's patches are grey
        label = metric if name == metric else f"{name}: {metric}"
        keys.append(Patch(facecolor="grey", edgecolor="black", alpha=alpha, hatch=hatch, label=label))
    axis.set_yticks(positions, shown["variant"])
    axis.axvline(0, color="black", linewidth=0.8)
    headline = "NDCG@10" if metrics[0] == TEST_METRIC else metrics[0]
    axis.set_xlabel(f"Δ {headline} vs the baseline\n(absolute, mean ± std over seeds, paired by seed)")
    axis.set_ylabel("variant\n(features option, CreateSolution settings)")
    axis.set_title("\n".join(title_lines))
    # the figure's key, at its foot: the layout keeps that strip free, whatever the number of variants (an axes
    # key below the x label is placed in axes fractions, which left a tall chart a third blank)
    figure.legend(handles=keys, loc="lower center", ncol=1, fontsize=8, frameon=False)
    figure.tight_layout(rect=(0, key_inches / figure.get_figheight(), 1, 1))
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def from_analytics(
    frame: pd.DataFrame, metrics: tuple[str, ...] = METRICS, recipe: str | None = None, source: str | None = None
) -> pd.DataFrame:
    """Trials of `mlexp.analytics(..., all_params=True)` as (variant, seed, *metrics) rows; finished trials only.

    Deltas compare like with like: trials of several recipes or datasets are refused unless `recipe` / `source`
    picks one of each."""
    if "features.name" not in frame:
        raise SelectionError(
            "the trials have no features.name parameter: they are not trials of task=recommendation; "
            "name a sweep or experiment of recommendation trials"
        )
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
    columns = {}
    for metric in metrics:
        column = metric if metric in done else f"{metric} - Last"
        if column not in done:
            last = (name.removesuffix(" - Last") for name in frame.columns if name.endswith(" - Last"))
            logged = sorted(frame.attrs.get("metrics") or last)
            raise SelectionError(
                f"no trial logged {metric!r}; {did_you_mean(metric, logged)}pass metric=<a logged metric>: "
                f"{', '.join(logged) or '(none)'}"
            )
        columns[metric] = column
    rows = [
        {"variant": variant_label(row), "seed": int(row["seed"]), **{m: float(row[c]) for m, c in columns.items()}}
        for row in done.to_dict("records")
    ]
    return pd.DataFrame(rows, columns=["variant", "seed", *metrics])


def write_report(
    runs: pd.DataFrame, folder: Path, metrics: tuple[str, ...] = METRICS, baseline: str = BASELINE
) -> pd.DataFrame:
    """metadata_selection.csv, .md and .png in `folder`; returns the table."""
    folder.mkdir(parents=True, exist_ok=True)
    baseline = resolve_baseline(set(runs["variant"]), baseline)
    table = delta_table(runs, metrics, baseline)
    table.to_csv(folder / "metadata_selection.csv", index=False)
    (folder / "metadata_selection.md").write_text(table.to_markdown(index=False, floatfmt=".4f") + "\n")
    delta_chart(table, folder / "metadata_selection.png", metrics, baseline)
    return table


# the options of the command line, each `name=value` (what its value is); sweep or experiment picks the trials
OPTIONS = {
    "sweep": "the sweep's name or id",
    "experiment": "an MLflow experiment",
    "baseline": "a variant",
    "metric": "a logged metric",
    "recipe": "a model.recipe",
    "source": "a dataset.source",
    "out": "a folder",
}
USAGE = (
    "python -m mlexp.tasks.recommendation.metadata_selection sweep=<name> | experiment=<name> [baseline=<variant>] "
    "[metric=<name>] [recipe=<name>] [source=<name>] [out=<folder>]"
)


class UsageError(MlexpError):
    """The command line is not one this module takes: an unknown option, a value missing, no trials named."""


def parse_options(argv: list[str]) -> dict[str, str]:
    """The `name=value` options of the command line; a UsageError names the first one that is not."""
    options: dict[str, str] = {}
    for arg in argv:
        name, equals, value = arg.partition("=")
        if name not in OPTIONS:
            what = f"{name}=" if equals else repr(arg)
            raise UsageError(
                f"{what} is not an option; {did_you_mean(name, list(OPTIONS))}the options are "
                f"{', '.join(f'{o}=' for o in OPTIONS)} (--help says more)"
            )
        if not equals or not value.strip():
            raise UsageError(f"{name}= needs a value: {name}=<{OPTIONS[name]}>")
        if name in options and options[name] != value:
            raise UsageError(f"{name}= is given twice ({options[name]}, {value}); give it once")
        options[name] = value
    if not {"sweep", "experiment"} & set(options):
        raise UsageError(f"name the trials: sweep=<name> or experiment=<name>; usage: {USAGE}")
    return options


def main(argv: list[str]) -> int:
    """`python -m mlexp.tasks.recommendation.metadata_selection sweep=<name> [baseline=<variant>] [metric=<name>]`.

    Errors are one line on stderr: exit 2 for a command line it does not take, 1 for trials it cannot compare
    (a sweep or experiment the store does not hold, no baseline, a mix of recipes)."""
    if any(arg in ("-h", "--help") for arg in argv):
        print(__doc__)
        return 0
    try:
        options = parse_options(argv)
    except UsageError as error:
        print(f"mlexp: error: {error}", file=sys.stderr)
        return 2
    import mlexp

    where = options.get("sweep") or options["experiment"]
    metrics = (options["metric"],) if "metric" in options else METRICS
    try:
        frame = mlexp.analytics(experiment=options.get("experiment"), sweep=options.get("sweep"), all_params=True)
        runs = from_analytics(frame, metrics, options.get("recipe"), options.get("source")) if len(frame) else None
        if runs is None or runs.empty:
            print(f"mlexp: error: no finished trial in {where}: run the sweep first (see --help)", file=sys.stderr)
            return 1
        folder = Path(options.get("out", f"outputs/sweeps/recommendation/{where}"))
        table = write_report(runs, folder, metrics, options.get("baseline", BASELINE))
    except MlexpError as error:  # the store's (no such sweep or experiment) and the comparison's (no baseline)
        print(f"mlexp: error: {error}".splitlines()[0], file=sys.stderr)
        return 1
    print(table.to_string(index=False))
    print(f"wrote {folder}/metadata_selection.{{csv,md,png}}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
