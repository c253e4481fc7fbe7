"""The charts a sweep and `mlexp compare` write, from a table as `analytics()` gives it: which exist, what they say."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from mlflow.entities import Metric, Param

from conftest import TEXT_TINY, run_cli, store_client, trials_of
from mlexp import charts, compare, plot
from mlexp.experiment_analytics.columns import column
from mlexp.paths import experiment_folder

OBJECTIVE = "val_normalized_discounted_cumulative_gain_at_10"  # 48 characters: wider than a chart's side


def _table(rows: list[dict], params: list[str], objective: str = OBJECTIVE, direction: str = "maximize"):
    """Finished trials, best first as `analytics()` orders them, each with a 3-step train_loss curve."""
    records = [
        {
            "TrialName": f"sweep-1205-trial-{i}",
            "RunId": f"run{i}",
            "Status": "FINISHED",
            "ObjectiveValue": row.pop("score"),
            **row,
        }
        for i, row in enumerate(rows)
    ]
    table = pd.DataFrame.from_records(records)
    table[column(objective, "Last")] = table["ObjectiveValue"]
    table[column("train_loss", "Count")] = pd.array([3] * len(table), dtype="Int64")
    table[column(objective, "Count")] = pd.array([1] * len(table), dtype="Int64")
    table.attrs.update(objective=objective, direction=direction, params=params, metrics=["train_loss", objective])
    return table


def _history(table: pd.DataFrame, values=lambda i, step: 1.0 / (step + i + 1)) -> pd.DataFrame:
    records = [
        (name, run_id, "train_loss", step, values(i, step), 0)
        for i, (name, run_id) in enumerate(zip(table["TrialName"], table["RunId"]))
        for step in (1, 2, 3)
    ]
    return pd.DataFrame.from_records(records, columns=["trial", "run_id", "metric", "step", "value", "timestamp"])


def _recommendation_sweep() -> pd.DataFrame:
    """Three feature sets x two seeds: the group's sub-keys follow its choice; the default choice's list is None."""
    fields = {
        "interactions_only": (None, "[]"),
        "signal_users": ("['FAVOURITE_PLAYER', 'AGE_GROUP']", "[]"),
        "noise_items": ("[]", "['THUMBNAIL_COLOR']"),
    }
    rows = [
        {"features.name": name, "features.users": users, "features.items": items, "seed": seed, "score": score}
        for (name, (users, items)), scores in zip(fields.items(), [(0.13, 0.07), (0.15, 0.08), (0.12, 0.06)])
        for seed, score in zip((2, 1), scores)
    ]
    rows.sort(key=lambda row: -row["score"])
    table = _table(rows, ["features.items", "features.name", "features.users", "seed"])
    table["seed"] = table["seed"].astype("Int64")
    return table


def test_a_seed_is_a_repeat_in_the_table_with_no_chart_of_its_own(tmp_path):
    # recommendation_metadata's three seeds drew seed_vs_<metric>.png, ticks 1.2, 1.4, as if a hyperparameter
    table = _recommendation_sweep()
    written = {path.name for path in compare.write_charts(table, _history(table), tmp_path)}
    assert f"seed_vs_{OBJECTIVE}.png" not in written
    assert f"features_name_vs_{OBJECTIVE}.png" in written
    assert "seed" in compare.format_table(table, []).splitlines()[0].split()
    assert plot.is_repeat("seed") and plot.is_repeat("model.seed") and not plot.is_repeat("model.seeds_per_user")


def test_a_config_groups_sub_keys_follow_its_choice_and_get_no_chart(tmp_path):
    # features.users and features.items were drawn again beside features.name, "None" beside "[]"
    table = _recommendation_sweep()
    written = sorted(path.name for path in compare.write_charts(table, _history(table), tmp_path))
    assert written == ["features_name_vs_" + OBJECTIVE + ".png", "train_loss_by_step.png"]
    # the table still lists them
    assert {"features.users", "features.items"} <= set(compare.format_table(table, []).splitlines()[0].split())


def test_params_that_vary_on_their_own_are_all_drawn():
    # a grid: neither param fixes the other; a random sweep: one row per sampled value fixes nothing
    grid = _table(
        [{"model.l1_size": s, "model.l1_activation": a, "score": s / 100} for s in (16, 64) for a in ("relu", "tanh")],
        ["model.l1_activation", "model.l1_size"],
    )
    assert plot.compared_params(grid, grid.attrs["params"]) == ["model.l1_activation", "model.l1_size"]
    sampled = _table(
        [{"model.lr": lr, "model.l2": l2, "score": lr} for lr, l2 in [(0.1, 0.3), (0.2, 0.1), (0.3, 0.2)]],
        ["model.l2", "model.lr"],
    )
    assert plot.compared_params(sampled, sampled.attrs["params"]) == ["model.l2", "model.lr"]
    # a random sweep's layer sizes, one a trial: the activation is no follower of them
    drawn = _table(
        [
            {"model.l1_size": s, "model.l1_activation": a, "score": 0.1}
            for s, a in [(16, "relu"), (32, "tanh"), (64, "relu")]
        ],
        ["model.l1_activation", "model.l1_size"],
    )
    assert plot.compared_params(drawn, drawn.attrs["params"]) == ["model.l1_activation", "model.l1_size"]
    # nor two choices of a random sweep, one of them tried once a value
    drawn = _table(
        [
            {"model.optimizer": o, "model.act": a, "score": 0.1}
            for o, a in [("adam", "relu"), ("sgd", "tanh"), ("rms", "relu")]
        ],
        ["model.act", "model.optimizer"],
    )
    assert plot.compared_params(drawn, drawn.attrs["params"]) == ["model.act", "model.optimizer"]
    # two that fix each other: the one that reads shorter stays
    paired = _table(
        [{"g.name": n, "g.fields": f"[{n}_a, {n}_b]", "score": s} for n, s in [("x", 1), ("x", 2), ("y", 3)]],
        ["g.fields", "g.name"],
    )
    assert plot.compared_params(paired, paired.attrs["params"]) == ["g.name"]


def _fits(figure, *texts) -> bool:
    """Every text drawn whole inside the saved figure."""
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    renderer = canvas.get_renderer()
    shown = figure.bbox
    boxes = [text.get_window_extent(renderer) for text in texts]
    return all(shown.x0 <= b.x0 and b.x1 <= shown.x1 and shown.y0 <= b.y0 and b.y1 <= shown.y1 for b in boxes)


@pytest.mark.parametrize("param", ["features.interactions", "model.a_rather_long_parameter_name_of_a_nested_group"])
def test_long_titles_and_labels_are_wrapped_inside_the_figure(param, tmp_path):
    # features_interactions_vs_<48-character metric>.png: the title was cut at the right edge
    figure = plot.param_vs_metric(["[]", "['CLICK']"], [0.1, 0.2], param, OBJECTIVE, "maximize")
    charts.save_figure(figure, tmp_path / "chart.png")  # as compare saves it
    [ax] = figure.axes
    assert _fits(figure, ax.title, ax.yaxis.label, ax.xaxis.label)
    assert ax.get_title().replace("\n", "") == f"{param} vs {OBJECTIVE}"
    assert all(len(line) <= 60 for line in ax.get_title().splitlines())
    curve = plot.metric_by_step({"a": [(1, 1.0), (2, 0.5)]}, OBJECTIVE)
    charts.save_figure(curve, tmp_path / "curve.png")
    [ax] = curve.axes
    assert _fits(curve, ax.title, ax.yaxis.label)
    assert ax.get_ylabel().replace("\n", "") == OBJECTIVE
    # broken between the name's words, not inside one
    assert all(line.endswith("_") for line in ax.get_ylabel().splitlines()[:-1])


@pytest.mark.parametrize(("direction", "said", "best"), [("minimize", "lower", 0.1), ("maximize", "higher", 0.3)])
def test_a_param_against_the_objective_says_which_way_is_better_and_stars_the_best_trial(direction, said, best):
    table = _table(
        [{"model.l1_size": s, "score": v} for s, v in [(16, 0.2), (32, 0.1), (64, 0.3)]],
        ["model.l1_size"],
        objective="test_msle",
        direction=direction,
    )
    [ax] = plot.scatter(table, "model.l1_size", "test_msle").axes
    assert ax.get_ylabel() == f"test_msle\n({said} is better)"
    starred = [c for c in ax.collections if c.get_label() == "best trial"]
    assert len(starred) == 1 and starred[0].get_offsets().tolist()[0][1] == best
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["best trial"]
    # another metric than the objective: which way is better is not known
    [ax] = plot.scatter(table, "model.l1_size", "train_loss - Count").axes
    assert ax.get_ylabel() == "train_loss - Count" and ax.get_legend() is None


def test_curves_are_labelled_by_their_params_best_first_on_a_log_scale_when_epoch_one_dwarfs_the_rest():
    # train_loss_by_step.png of abalone_architectures: legend `…-trial-1`, epoch 1's 1.75 flattened 0.03 vs 0.04
    table = _table(
        [
            {"model.l1_size": s, "model.l1_activation": a, "score": v}
            for s, a, v in [(64, "tanh", 0.1), (16, "relu", 0.2)]
        ],
        ["model.l1_activation", "model.l1_size"],
        objective="test_msle",
        direction="minimize",
    )
    history = _history(table, lambda i, step: [1.75, 0.05, 0.03 + 0.01 * i][step - 1])
    [ax] = plot.curves(history.iloc[::-1], "train_loss", trials=table).axes  # the table's order, not the history's
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["l1_activation=tanh, l1_size=64", "l1_activation=relu, l1_size=16"]
    assert ax.get_yscale() == "log"
    assert ax.get_xlabel() == "step"
    [ax] = plot.curves(_history(table, lambda i, step: 2.0 - step / 10 - i / 10), "train_loss", trials=table).axes
    assert ax.get_yscale() == "linear"  # 1.9 to 1.6: a linear scale shows the gap
    # negative values cannot go on a log scale
    [ax] = plot.metric_by_step({"a": [(1, -5.0), (2, 100.0)]}, "delta").axes
    assert ax.get_yscale() == "linear"


def test_each_trials_chosen_step_is_circled_and_repeats_tell_lines_apart():
    # two seeds of one feature set: the seed is in the label; best_epoch (the epochs kept) is circled
    table = _recommendation_sweep()
    table[column("best_epoch", "Last")] = [2.0, 3.0, 2.0, math.nan, 1.0, 3.0]
    [ax] = plot.curves(_history(table), "train_loss", trials=table).axes
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[:2] == ["features.name=signal_users, seed=2", "features.name=interactions_only, seed=2"]
    assert len(set(legend)) == 7 and legend[-1] == "best_epoch (circled)"
    circles = [line for line in ax.get_lines() if line.get_fillstyle() == "none"]
    assert sorted(line.get_xdata()[0] for line in circles) == [1, 2, 2, 3, 3]


def test_the_saved_curves_are_labelled_by_params_and_the_saved_scatter_stars_the_best(tmp_path, monkeypatch):
    # what a sweep's end and `mlexp compare` save: the figures before they become PNG
    saved = {}

    def keep(figure, path):
        saved[path.name] = figure
        return path

    monkeypatch.setattr(charts, "save_figure", keep)
    table = _recommendation_sweep()
    compare.write_charts(table, _history(table), tmp_path)
    [ax] = saved["train_loss_by_step.png"].axes
    assert [t.get_text() for t in ax.get_legend().get_texts()][0] == "features.name=signal_users, seed=2"
    [ax] = saved[f"features_name_vs_{OBJECTIVE}.png"].axes
    assert ax.get_ylabel().endswith("(higher is better)")


def test_two_alike_single_runs_of_one_second_still_get_a_line_each():
    # single runs are named to the second (runner): same params, same name; keyed by label, one line hid the other
    table = _table([{"model.l1_size": 16, "score": 0.2}, {"model.l1_size": 16, "score": 0.2}], ["model.l1_size"])
    table["TrialName"] = "tabular_regression-20261205-181500"
    [ax] = plot.curves(_history(table), "train_loss", trials=table).axes
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert len(ax.get_lines()) == 2 and len(set(legend)) == 2
    assert all(text.startswith("tabular_regression-20261205-181500") for text in legend)


def test_a_comparison_removes_the_charts_of_an_earlier_one_it_does_not_draw(tmp_path):
    # `compare task=` again after the trials that varied dataset.n_rows were deleted: their chart stayed
    (tmp_path / f"dataset_n_rows_vs_{OBJECTIVE}.png").write_bytes(b"an earlier comparison's")
    (tmp_path / "notes.png").write_bytes(b"the user's")
    table = _recommendation_sweep()
    written = compare.write_charts(table, _history(table), tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([*(path.name for path in written), "notes.png"])


def _stored_trial(client, experiment_id: str, name: str, params: dict, msle: float, sweep=None) -> None:
    """A finished tabular_regression trial as the runner stores it: a 3-step training curve and its objective."""
    run_tags = {"mlexp.kind": "trial", "mlexp.task": "tabular_regression", "mlexp.objective": "test_msle"}
    run_tags["mlexp.direction"] = "minimize"
    if sweep:
        run_tags |= {"mlexp.sweep_id": sweep.info.run_id, "mlexp.sweep_name": sweep.info.run_name}
    run_id = client.create_run(experiment_id, run_name=name, tags=run_tags).info.run_id
    curve = [Metric("train_loss", msle * (4 - step), 0, step) for step in range(3)]
    client.log_batch(
        run_id, metrics=[*curve, Metric("test_msle", msle, 0, 0)], params=[Param(k, str(v)) for k, v in params.items()]
    )
    client.set_terminated(run_id)


def test_a_sweeps_comparison_has_a_folder_of_its_own_beside_its_experiments(tmp_project_with_store):
    # `compare task=` then `compare sweep=` shared outputs/compare/<experiment>: the sweep's removed the task's
    # dataset_n_rows chart and overwrote its model_l1_size one with the sweep's two trials
    client = store_client(tmp_project_with_store)
    experiment_id = client.create_experiment("tabular_regression")
    name = "lr / 2-1207-081500"  # sweep.name is free text
    sweep = client.create_run(
        client.create_experiment("tabular_regression-sweeps"),
        run_name=name,
        tags={"mlexp.kind": "sweep", "mlexp.sweep_name": name},
    )
    client.set_tag(sweep.info.run_id, "mlexp.sweep_id", sweep.info.run_id)
    client.set_terminated(sweep.info.run_id)
    _stored_trial(client, experiment_id, "single", {"model.l1_size": 32, "dataset.n_rows": 200}, 0.3)
    for number, size in enumerate((8, 16)):
        _stored_trial(
            client,
            experiment_id,
            f"{name}-trial-{number}",
            {"model.l1_size": size, "dataset.n_rows": 300},
            0.1 * (number + 1),
            sweep,
        )

    run_cli(tmp_project_with_store, "compare", "task=tabular_regression")
    folder = tmp_project_with_store / "outputs" / "compare" / "tabular_regression"
    task_charts = {path.name: path.read_bytes() for path in folder.glob("*.png")}
    assert "dataset_n_rows_vs_test_msle.png" in task_charts
    sweep_folder = folder / experiment_folder(name)  # `lr _ 2-1207-081500-<hash>`: its "/" made one folder
    drawn = ["train_loss_by_step.png", "model_l1_size_vs_test_msle.png"]
    for stale in ("", "model_l2_size_vs_test_msle.png"):  # the same comparison again removes its own stale charts
        if stale:
            (sweep_folder / stale).write_bytes(b"an earlier run's")
        done = run_cli(tmp_project_with_store, "compare", f"sweep={name}")
        [charts_line] = [line for line in done.stdout.splitlines() if line.startswith("charts: ")]
        assert charts_line.removeprefix("charts: ").split(", ") == [str(sweep_folder / chart) for chart in drawn]
        assert sorted(path.name for path in sweep_folder.iterdir()) == sorted(drawn)
    assert {path.name: path.read_bytes() for path in folder.glob("*.png")} == task_charts


def _classifier_sweep(n_rows: tuple[int, ...] = (500,)) -> pd.DataFrame:
    """`model=tfidf_linear,tfidf_naive_bayes` (x `dataset.n_rows`): the choice is a column of its own, each family's
    sub-keys blank in the other's rows, as `analytics()` gives them."""
    families = {
        "tfidf_linear": {"model.C": 0.5, "model.smoothing": None, "model.char_ngrams": "[2, 4]"},
        "tfidf_naive_bayes": {"model.C": None, "model.smoothing": 0.3, "model.char_ngrams": "[0, 0]"},
    }
    rows = [
        {"model": model, **keys, "dataset.n_rows": size, "score": score + size / 10000}
        for model, keys, score in zip(families, families.values(), (0.8, 0.6))
        for size in n_rows
    ]
    rows.sort(key=lambda row: -row["score"])
    params = ["dataset.n_rows", "model.C", "model.char_ngrams", "model.smoothing"]
    table = _table(rows, params if len(n_rows) > 1 else params[1:], objective="holdout_macro_f1")
    table.attrs["choices"] = ["model"]
    return table


def _saved_figures(monkeypatch) -> dict:
    """The figures write_charts saves, by file name, each still saved as PNG."""
    saved = {}
    save = charts.save_figure

    def keep(figure, path):
        saved[path.name] = figure
        return save(figure, path)

    monkeypatch.setattr(charts, "save_figure", keep)
    return saved


@pytest.mark.parametrize("n_rows", [(500,), (300, 500)])
def test_a_swept_config_group_gets_a_chart_of_the_objective_by_its_options(n_rows, tmp_path, monkeypatch):
    # `mlexp -m task=text_classification model=tfidf_linear,tfidf_naive_bayes` drew model_C, model_smoothing, ...
    # (one family's value against a blank) and no chart of the classifiers themselves
    saved = _saved_figures(monkeypatch)
    table = _classifier_sweep(n_rows)
    written = sorted(path.name for path in compare.write_charts(table, _history(table), tmp_path))
    others = ["dataset_n_rows_vs_holdout_macro_f1.png"] if len(n_rows) > 1 else []
    assert written == sorted(["model_vs_holdout_macro_f1.png", *others, "train_loss_by_step.png"])
    assert (tmp_path / "model_vs_holdout_macro_f1.png").stat().st_size > 0
    [ax] = saved["model_vs_holdout_macro_f1.png"].axes
    assert [tick.get_text() for tick in ax.get_xticklabels()] == ["tfidf_linear", "tfidf_naive_bayes"]
    [points, starred] = ax.collections
    by_option = sorted((int(x), y) for x, y in points.get_offsets().tolist())
    assert by_option == sorted(zip([0 if m == "tfidf_linear" else 1 for m in table["model"]], table["ObjectiveValue"]))
    assert starred.get_label() == "best trial" and starred.get_offsets().tolist() == [[0, max(table["ObjectiveValue"])]]
    assert ax.get_xlabel() == "model" and ax.get_ylabel() == "holdout_macro_f1\n(higher is better)"
    # the curves are told apart by the classifier, not by its sub-keys
    [ax] = saved["train_loss_by_step.png"].axes
    assert [t.get_text() for t in ax.get_legend().get_texts()][0].startswith("model=tfidf_linear")


def test_a_choices_sub_keys_and_name_follow_it_and_a_named_choice_is_drawn_once():
    table = _classifier_sweep()
    table["model.name"] = ["linear_svm", "naive_bayes"]  # a `name` that is not the option's file name
    params = [*table.attrs["params"], "model.name"]
    assert plot.compared_params(table, params, ["model"]) == ["model"]
    # its sub-keys alone, with the choice not a column (`model` said by `model.name`): the name leads them
    assert plot.compared_params(table, params) == ["model.name"]
    # a choice never follows its sub-keys, even one that reads shorter
    table["model.name"] = ["a", "b"]
    assert plot.compared_params(table, params, ["model"]) == ["model"]


def test_a_feature_set_tried_once_each_is_drawn_once_by_its_name(tmp_path):
    # recommendation_metadata with seed=1: `features` is no column beside features.name, which names the same option;
    # features.users and features.items, one value a trial, were drawn beside it
    table = _recommendation_sweep()
    table = table[table["seed"] == 1].reset_index(drop=True)
    written = sorted(path.name for path in compare.write_charts(table, _history(table), tmp_path))
    assert written == ["features_name_vs_" + OBJECTIVE + ".png", "train_loss_by_step.png"]


def test_an_earlier_comparisons_choice_chart_is_removed_when_not_drawn_again(tmp_path):
    choices = _classifier_sweep()
    compare.write_charts(choices, _history(choices), tmp_path)
    assert (tmp_path / "model_vs_holdout_macro_f1.png").exists()
    params = _table([{"model.C": c, "score": c / 10} for c in (0.5, 1.0)], ["model.C"], objective="holdout_macro_f1")
    written = compare.write_charts(params, _history(params), tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(path.name for path in written)
    assert not (tmp_path / "model_vs_holdout_macro_f1.png").exists()


@pytest.mark.slow
@pytest.mark.usefixtures("tmp_project_with_store")
def test_a_sweep_over_two_classifiers_charts_the_objective_by_classifier(tmp_project):
    done = run_cli(tmp_project, "-m", "task=text_classification", "model=tfidf_linear,tfidf_naive_bayes", *TEXT_TINY)
    folder = Path(
        next(line for line in done.stdout.splitlines() if line.startswith("charts: ")).removeprefix("charts: ")
    )
    assert sorted(path.name for path in folder.glob("*.png")) == ["model_vs_holdout_macro_f1.png"]
    sweep = trials_of(tmp_project, "text_classification")[0].tags["mlexp.sweep_id"]
    artifacts = [a.path for a in store_client(tmp_project).list_artifacts(sweep, "comparison")]
    assert "comparison/model_vs_holdout_macro_f1.png" in artifacts


def test_the_best_trial_key_is_beside_the_axes_where_it_covers_no_trial(tmp_path):
    # inside the axes, loc="best" still covered trials of a crowded sweep
    rng = np.random.default_rng(3)
    values, scores = list(rng.uniform(0, 1, 40)), list(rng.uniform(0, 1, 40))
    figure = plot.param_vs_metric(values, scores, "model.l1_size", OBJECTIVE, "minimize")
    charts.save_figure(figure, tmp_path / "chart.png")
    [ax] = figure.axes
    key = ax.get_legend()
    assert _fits(figure, key)
    renderer = FigureCanvasAgg(figure).get_renderer()
    assert key.get_window_extent(renderer).x0 >= ax.get_window_extent(renderer).x1
