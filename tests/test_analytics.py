"""Experiment analytics on a store with known trials: statistics computed by hand, filters, order, charts."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

from conftest import REPO, cli_env
from mlexp import plot
from mlexp.experiment_analytics import analytics, metric_history
from mlexp.experiment_analytics.store import AnalyticsError
from mlexp.experiment_analytics.trials import ExperimentAnalytics

EXPERIMENT = "tabular_regression"
COMMON = {"dataset.n_rows": "300", "task.name": EXPERIMENT}  # the same in every trial: not compared


def _run(client, experiment_id, name, start, status, run_tags, params=(), metrics=(), parent=None):
    """A finished run with `metrics` as {name: [value per step]}, started at `start` ms."""
    if parent:
        run_tags = {**run_tags, "mlflow.parentRunId": parent}
    run = client.create_run(experiment_id, start_time=start, tags=run_tags, run_name=name)
    run_id = run.info.run_id
    logged = [Metric(k, v, start + step, step) for k, values in dict(metrics).items() for step, v in enumerate(values)]
    client.log_batch(run_id, metrics=logged, params=[Param(k, v) for k, v in dict(params).items()])
    client.set_terminated(run_id, status, end_time=start + 50)
    return run_id


def _trial(client, experiment_id, name, start, status, params, metrics, sweep=None, **run_tags):
    trial_tags = {
        "mlexp.kind": "trial",
        "mlexp.task": EXPERIMENT,
        "mlexp.objective": "test_msle",
        "mlexp.direction": "minimize",
        **run_tags,
    }
    if sweep:
        trial_tags.update({"mlexp.sweep_id": sweep, "mlexp.sweep_name": "grid-1"})
    return _run(client, experiment_id, name, start, status, trial_tags, {**COMMON, **params}, metrics)


def _component(client, experiment_id, name, stage, trial, start, status="FINISHED", params=(), metrics=()):
    component_tags = {"mlexp.kind": "component", "mlexp.stage": stage}
    return _run(client, experiment_id, name, start, status, component_tags, params, metrics, parent=trial)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Four trials (three in sweep grid-1, one failed) with components, and a maximised experiment."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('analytics') / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment(EXPERIMENT)
    sweeps = client.create_experiment(EXPERIMENT + "-sweeps")
    sweep = client.create_run(sweeps, run_name="grid-1", tags={"mlexp.kind": "sweep", "mlexp.sweep_name": "grid-1"})
    sweep_id = sweep.info.run_id
    client.set_tag(sweep_id, "mlexp.sweep_id", sweep_id)
    ids = {}
    ids["t0"] = _trial(
        client,
        exp,
        "trial-0",
        100_000,
        "FINISHED",
        {"model.l1_size": "16", "model.l1_activation": "relu"},
        {"train_loss": [4, 3, 1], "test_msle": [0.2]},
        sweep_id,
    )
    prepare = _component(
        client, exp, "Pre-processing", "prepare", ids["t0"], 101_000, params={"split": "0.8"}, metrics={"rows": [240]}
    )
    client.set_tag(ids["t0"], "mlexp.shared_component.prepare", prepare)
    ids["t1"] = _trial(
        client,
        exp,
        "trial-1",
        200_000,
        "FINISHED",
        {"model.l1_size": "4", "model.l1_activation": "tanh"},
        {"train_loss": [5, 5], "test_msle": [0.1]},
        sweep_id,
        **{"mlexp.shared_component.prepare": prepare},  # reuses trial-0's Pre-processing
    )
    ids["t2"] = _trial(
        client,
        exp,
        "trial-2",
        300_000,
        "FAILED",
        {"model.l1_size": "8", "model.l1_activation": "relu"},
        {"train_loss": [6]},
        sweep_id,
    )
    ids["plain"] = _trial(
        client,
        exp,
        "plain",
        400_000,
        "FINISHED",
        {"model.l1_size": "32", "model.l1_activation": "relu"},
        {"train_loss": [2, 1], "test_msle": [0.05]},
    )
    training = {"model.epochs": "3"}
    components = {
        "train0": _component(
            client, exp, "Training", "train", ids["t0"], 102_000, params={**training, "model.l1_size": "16"}
        ),
        "eval0": _component(client, exp, "Evaluation", "evaluate", ids["t0"], 103_000, metrics={"test_msle": [0.2]}),
        "train1": _component(
            client, exp, "Training", "train", ids["t1"], 201_000, params={**training, "model.l1_size": "4"}
        ),
        "eval1": _component(client, exp, "Evaluation", "evaluate", ids["t1"], 202_000, metrics={"test_msle": [0.1]}),
        "train2": _component(
            client, exp, "Training", "train", ids["t2"], 301_000, "FAILED", {**training, "model.l1_size": "8"}
        ),
        "prepare": prepare,
    }
    # a maximised objective: the failed trial's better value and an unscored trial still come last
    churn = client.create_experiment("churn")
    maximize = {"mlexp.objective": "auc", "mlexp.direction": "maximize"}
    for name, start, status, metrics in [
        ("low", 1, "FINISHED", {"auc": [0.7]}),
        ("high", 2, "FINISHED", {"auc": [0.9]}),
        ("broken", 3, "FAILED", {"auc": [0.95]}),
        ("unscored", 4, "FINISHED", {}),
        ("mid", 5, "FINISHED", {"auc": [0.8]}),
    ]:
        _trial(client, churn, name, start, status, {}, metrics, **maximize)
    return uri, sweep_id, ids, components


def _times(*starts):
    return pd.to_datetime(list(starts), unit="ms", utc=True)


def test_one_row_per_trial_with_each_metrics_statistics_computed_by_hand(store):
    uri, _, ids, _ = store
    frame = analytics(EXPERIMENT, tracking_uri=uri)
    nan = math.nan
    # train_loss 4, 3, 1: mean 8/3; squared deviations 16/9 + 1/9 + 25/9 = 14/3; sample variance 14/3 / 2 = 7/3
    expected = pd.DataFrame(
        {
            "TrialName": ["plain", "trial-1", "trial-0", "trial-2"],
            "RunId": [ids["plain"], ids["t1"], ids["t0"], ids["t2"]],
            "Status": ["FINISHED", "FINISHED", "FINISHED", "FAILED"],
            "StartTime": _times(400_000, 200_000, 100_000, 300_000),
            "EndTime": _times(400_050, 200_050, 100_050, 300_050),
            "Objective": ["test_msle"] * 4,
            "ObjectiveValue": [0.05, 0.1, 0.2, nan],
            "model.l1_activation": ["relu", "tanh", "relu", "relu"],
            "model.l1_size": pd.array([32, 4, 16, 8], dtype="Int64"),
            "test_msle - Min": [0.05, 0.1, 0.2, nan],
            "test_msle - Max": [0.05, 0.1, 0.2, nan],
            "test_msle - Avg": [0.05, 0.1, 0.2, nan],
            "test_msle - StdDev": [nan, nan, nan, nan],  # one value: no sample spread
            "test_msle - Last": [0.05, 0.1, 0.2, nan],
            "test_msle - Count": pd.array([1, 1, 1, None], dtype="Int64"),
            "train_loss - Min": [1.0, 5.0, 1.0, 6.0],
            "train_loss - Max": [2.0, 5.0, 4.0, 6.0],
            "train_loss - Avg": [1.5, 5.0, 8 / 3, 6.0],
            "train_loss - StdDev": [math.sqrt(0.5), 0.0, math.sqrt(7 / 3), nan],
            "train_loss - Last": [1.0, 5.0, 1.0, 6.0],
            "train_loss - Count": pd.array([2, 2, 3, 1], dtype="Int64"),
        }
    )
    pd.testing.assert_frame_equal(frame, expected)
    assert frame.attrs["objective"] == "test_msle" and frame.attrs["direction"] == "minimize"
    assert frame.attrs["params"] == ["model.l1_activation", "model.l1_size"]


def test_all_params_on_request(store):
    uri, *_ = store
    frame = analytics(EXPERIMENT, tracking_uri=uri, all_params=True)
    assert frame.attrs["params"] == ["dataset.n_rows", "model.l1_activation", "model.l1_size", "task.name"]
    assert frame["dataset.n_rows"].tolist() == [300] * 4


def test_sweep_by_name_or_id_and_search_narrow_the_trials(store):
    uri, sweep_id, ids, _ = store
    by_name = analytics(sweep="grid-1", tracking_uri=uri)
    by_id = analytics(sweep=sweep_id, tracking_uri=uri)
    assert by_name["TrialName"].tolist() == by_id["TrialName"].tolist() == ["trial-1", "trial-0", "trial-2"]
    assert by_name.attrs["sweep_id"] == sweep_id
    relu = "params.`model.l1_activation` = 'relu'"
    assert analytics(EXPERIMENT, search=relu, tracking_uri=uri)["TrialName"].tolist() == [
        "plain",
        "trial-0",
        "trial-2",
    ]
    both = analytics(EXPERIMENT, sweep="grid-1", search=relu, tracking_uri=uri)
    assert both["TrialName"].tolist() == ["trial-0", "trial-2"]
    # only model.l1_size still differs between those two
    assert both.attrs["params"] == ["model.l1_size"]


def test_a_sweep_is_found_without_loading_the_comparison_charts(store, tmp_path):
    # the sweep was looked up through mlexp.compare, which loads matplotlib and the charts a notebook did not ask for
    uri, _, _, _ = store
    script = (
        "import sys; from mlexp.experiment_analytics import analytics; "
        f"trials = analytics(sweep='grid-1', tracking_uri={uri!r}); "
        "print(len(trials), sorted({'matplotlib', 'mlexp.compare', 'mlexp.plot'} & set(sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=cli_env(tmp_path), capture_output=True, text=True, timeout=300
    )
    assert done.stdout.strip() == "3 []", done.stderr[-3000:]


def test_a_task_reads_the_experiment_its_trials_go_to(store, monkeypatch):
    uri, *_ = store
    monkeypatch.setenv("MLEXP_ROOT", str(REPO))
    assert len(analytics(task=EXPERIMENT, tracking_uri=uri)) == 4


def test_order_follows_the_objective_direction_with_failed_and_unscored_last(store):
    uri, *_ = store
    churn = analytics("churn", tracking_uri=uri)
    # finished and scored best first; then the failed and the unscored trial in search order (newest first)
    assert churn["TrialName"].tolist() == ["high", "mid", "low", "unscored", "broken"]
    ascending = analytics("churn", sort_by="auc", ascending=True, tracking_uri=uri)
    assert ascending["TrialName"].tolist() == ["low", "mid", "high", "unscored", "broken"]
    by_loss = analytics(EXPERIMENT, sort_by="train_loss - Max", tracking_uri=uri)
    assert by_loss["TrialName"].tolist() == ["plain", "trial-0", "trial-1", "trial-2"]


def test_one_row_per_trial_component_with_its_type_and_trials(store):
    uri, _, ids, parts = store
    frame = analytics(sweep="grid-1", components=True, tracking_uri=uri)
    # trials best first (trial-1, trial-0, failed trial-2); the shared Pre-processing with its first trial
    assert frame["RunId"].tolist() == [parts[k] for k in ("prepare", "train1", "eval1", "train0", "eval0", "train2")]
    assert frame["DisplayName"].tolist() == [
        "Pre-processing",
        "Training",
        "Evaluation",
        "Training",
        "Evaluation",
        "Training",
    ]
    assert frame["ComponentType"].tolist() == ["prepare", "train", "evaluate", "train", "evaluate", "train"]
    assert frame["TrialName"].tolist() == ["trial-0", "trial-1", "trial-1", "trial-0", "trial-0", "trial-2"]
    assert frame["Trials"].tolist()[0] == ["trial-1", "trial-0"]
    assert frame["Status"].tolist()[-1] == "FAILED"
    # model.epochs is the same in every Training; a stage's own parameters are compared within that stage
    assert frame.attrs["params"] == ["model.l1_size"]
    assert frame["model.l1_size"].tolist() == [pd.NA, 4, pd.NA, 16, pd.NA, 8]
    assert frame["rows - Last"].tolist()[0] == 240
    assert frame["test_msle - Count"].tolist() == [pd.NA, pd.NA, 1, pd.NA, 1, pd.NA]


def test_metric_history_is_long_form_and_each_history_is_read_once(store):
    uri, _, ids, _ = store
    trials = ExperimentAnalytics(sweep="grid-1", tracking_uri=uri)
    reads = []
    fetch = trials.client.get_metric_history
    trials.client.get_metric_history = lambda run_id, key: reads.append((run_id, key)) or fetch(run_id, key)
    trials.dataframe()
    history = trials.metric_history(["train_loss"])
    trials.components()
    assert sorted(reads) == sorted(set(reads))  # each (run, metric) once, not once per statistic or call
    assert len([r for r in reads if r[0] in (ids["t0"], ids["t1"], ids["t2"])]) == 5  # 3 train_loss + 2 test_msle
    assert list(history.columns) == ["trial", "run_id", "metric", "step", "value", "timestamp"]
    assert list(history.itertuples(index=False, name=None))[0][:5] == ("trial-1", ids["t1"], "train_loss", 0, 5.0)
    assert [(t, s, v) for t, s, v in zip(history["trial"], history["step"], history["value"])] == [
        ("trial-1", 0, 5.0),
        ("trial-1", 1, 5.0),
        ("trial-0", 0, 4.0),
        ("trial-0", 1, 3.0),
        ("trial-0", 2, 1.0),
        ("trial-2", 0, 6.0),
    ]
    assert history["timestamp"].iloc[2] == pd.Timestamp(100_000, unit="ms", tz="UTC")
    everything = metric_history(EXPERIMENT, tracking_uri=uri)
    assert set(everything["metric"]) == {"train_loss", "test_msle"}


def test_mistakes_fail_in_one_line_naming_the_fix(store, tmp_path):
    uri, *_ = store
    cases = {
        "no trials in experiment 'nothing-here'": lambda: analytics("nothing-here", tracking_uri=uri),
        "no sweep named or with id 'nope'": lambda: analytics(sweep="nope", tracking_uri=uri),
        # typed values MLflow's filter held badly: a `'` and a trailing backslash
        'no sweep named or with id "it\'s"': lambda: analytics(sweep="it's", tracking_uri=uri),
        r"no sweep named or with id 'grid\\\\'": lambda: analytics(sweep="grid\\", tracking_uri=uri),
        "is not an MLflow search filter": lambda: analytics(EXPERIMENT, search="oops", tracking_uri=uri),
        "'test_mse' is not a column": lambda: analytics(EXPERIMENT, sort_by="test_mse", tracking_uri=uri),
        "ran in experiment 'tabular_regression', not 'churn'": lambda: analytics(
            "churn", sweep="grid-1", tracking_uri=uri
        ),
        # task= beside an experiment or a sweep was ignored: the table showed the other task's trials
        "experiment 'tabular_regression' holds no trials of task 'churn_incentives': its trials ran "
        "tabular_regression; drop task=": lambda: analytics(EXPERIMENT, task="churn_incentives", tracking_uri=uri),
        "sweep 'grid-1' holds no trials of task 'churn_incentives'": lambda: analytics(
            sweep="grid-1", task="churn_incentives", tracking_uri=uri
        ),
        # a task typed with a `'` or a trailing backslash was blamed on search= (MLflow's parse error)
        "experiment 'tabular_regression' holds no trials of task \"it's\"": lambda: analytics(
            EXPERIMENT, task="it's", tracking_uri=uri
        ),
        r"experiment 'tabular_regression' holds no trials of task 'grid\\\\'": lambda: analytics(
            EXPERIMENT, task="grid\\", tracking_uri=uri
        ),
    }
    for message, call in cases.items():
        with pytest.raises(AnalyticsError, match=message) as raised:
            call()
        assert "\n" not in str(raised.value)
    # a sweep named by its sweep file, without the time its run name adds; a misspelt experiment
    with pytest.raises(AnalyticsError, match=r"; did you mean grid-1\? the store holds: grid-1"):
        analytics(sweep="grid", tracking_uri=uri)
    with pytest.raises(AnalyticsError, match=r"did you mean tabular_regression\? the store holds: "):
        analytics("tabular_regresion", tracking_uri=uri)
    missing = tmp_path / "elsewhere" / "mlflow.db"
    with pytest.raises(AnalyticsError, match="no tracking store at"):
        analytics(EXPERIMENT, tracking_uri=f"sqlite:///{missing}")
    assert not (tmp_path / "elsewhere").exists()  # reading created no store, nor its folder


def test_curves_draw_one_line_per_trial_from_the_history_or_the_trials(store):
    uri, *_ = store
    history = metric_history(sweep="grid-1", metrics=["train_loss"], tracking_uri=uri)
    trials = analytics(sweep="grid-1", tracking_uri=uri)
    points = {"trial-1": ([0, 1], [5, 5]), "trial-0": ([0, 1, 2], [4, 3, 1]), "trial-2": ([0], [6])}
    # the trials know their params: their lines are labelled with them
    params = {"trial-1": "l1_activation=tanh, l1_size=4", "trial-0": "l1_activation=relu, l1_size=16"}
    params["trial-2"] = "l1_activation=relu, l1_size=8"
    by_params = {params[name]: line for name, line in points.items()}
    for figure, expected in [
        (plot.curves(history, "train_loss"), points),
        (plot.curves(trials, "train_loss"), by_params),
    ]:
        assert isinstance(figure, Figure)
        [ax] = figure.axes
        lines = {line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in ax.get_lines()}
        assert lines == expected
        assert ax.get_ylabel() == "train_loss"
    assert plot.curves(history, "train_loss")._repr_png_().startswith(b"\x89PNG")


def test_scatter_draws_a_parameter_against_a_metric(store):
    uri, *_ = store
    frame = analytics(EXPERIMENT, tracking_uri=uri)
    [ax] = plot.scatter(frame, "model.l1_size", "test_msle").axes
    # trial-2 failed without a test_msle: no point
    assert ax.collections[0].get_offsets().tolist() == [[32, 0.05], [4, 0.1], [16, 0.2]]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("model.l1_size", "test_msle\n(lower is better)")
    [ax] = plot.scatter(frame, "model.l1_activation", "test_msle").axes
    assert np.array(ax.collections[0].get_offsets()).tolist() == [[0, 0.05], [1, 0.1], [0, 0.2]]
    assert [tick.get_text() for tick in ax.get_xticklabels()] == ["relu", "tanh"]


@pytest.mark.parametrize("count", [3, 12])
def test_a_list_valued_parameter_gets_labels_that_fit_under_their_points(count):
    # `mlexp compare task=anomaly_detection` drew model.enabled's lists as one line each, over one another
    values = [f"[unparsable_timestamp, non_positive_duration, too_long, rule_{i}]" for i in range(count)]
    figure = plot.param_vs_metric(values, list(range(count)), "model.enabled", "percent_flagged")
    [ax] = figure.axes
    labels = [tick.get_text() for tick in ax.get_xticklabels()]
    width = plot.TICK_WIDTH if count <= 8 else plot.CROWDED_TICK_WIDTH
    assert len(labels) == count and all(0 < len(label.splitlines()) <= plot.TICK_LINES for label in labels)
    assert all(len(line) <= width for label in labels for line in label.splitlines())
    assert figure.get_figwidth() >= min(16, 1.8 * count)
    assert plot.tick_label("x" * 200).endswith("…") and len(plot.tick_label("x" * 200).splitlines()) == 4


def test_the_comparison_table_leaves_out_headline_metrics_no_trial_logged():
    # the active-learning sweep runs one stage: 8 of the task's headline columns were empty in every row
    from mlexp.compare import format_table
    from mlexp.experiment_analytics.columns import column

    table = pd.DataFrame(
        {
            "TrialName": ["a", "b"],
            "Status": ["FINISHED", "FAILED"],
            column("al_best_label_fraction", "Last"): [0.4, math.nan],
            column("al_random_labels", "Last"): [120.0, math.nan],
            column("holdout_macro_f1", "Last"): [math.nan, math.nan],
        }
    )
    table.attrs.update(objective="al_best_label_fraction", params=[])
    header = format_table(table, ["holdout_macro_f1", "al_random_labels", "ece"]).splitlines()[0].split()
    assert header == ["#", "trial", "status", "al_best_label_fraction", "al_random_labels"]
    empty = table.iloc[1:].copy()
    empty.attrs.update(table.attrs)  # no trial scored: the objective's column stays, empty
    assert format_table(empty, ["al_random_labels"]).splitlines()[0].split()[-1] == "al_best_label_fraction"


def test_the_comparison_table_shows_sampled_floats_in_6_significant_digits():
    # a sweep's table showed model.learning_rate as sampled: 0.0462258900102083
    from mlexp.compare import format_table
    from mlexp.experiment_analytics.columns import column

    table = pd.DataFrame(
        {
            "TrialName": ["a", "b", "c"],
            "Status": ["FINISHED"] * 3,
            "model.learning_rate": ["0.0462258900102083", "1e-3", None],
            "model.units": ["123456789", "64", "32"],
            "model.layers": ["[64, 32]", "[8]", "[8]"],
            column("test_msle", "Last"): [0.0123456789, 1.5, math.nan],
        }
    )
    table.attrs.update(objective="test_msle", params=["model.learning_rate", "model.units", "model.layers"])
    rows = [line.split("  ") for line in format_table(table, []).splitlines()[2:]]
    cells = [[cell.strip() for cell in row if cell.strip()] for row in rows]
    assert cells == [
        ["1", "a", "FINISHED", "0.0462259", "123456789", "[64, 32]", "0.0123457"],
        ["2", "b", "FINISHED", "1e-3", "64", "[8]", "1.5"],
        ["3", "c", "FINISHED", "32", "[8]"],
    ]


def test_the_comparison_table_shows_values_that_differ_in_enough_digits_to_tell_them_apart():
    # two trials at 0.03179261 and 0.03179264 read 0.0317926 each: a tie on screen that the ranking did not see
    from mlexp.compare import format_table
    from mlexp.experiment_analytics.columns import column

    table = pd.DataFrame(
        {
            "TrialName": ["a", "b", "c"],
            "Status": ["FINISHED"] * 3,
            "model.lr": ["0.00123456701", "0.00123456789", "0.1"],
            column("test_msle", "Last"): [0.03179261, 0.03179264, 0.5],
            column("test_mae", "Last"): [0.1 + 0.2, 0.3, 2.0],  # apart only in 17 digits: each as Python writes it
        }
    )
    table.attrs.update(objective="test_msle", params=["model.lr"])
    rows = [
        [c.strip() for c in line.split("  ") if c.strip()]
        for line in format_table(table, ["test_mae"]).splitlines()[2:]
    ]
    assert [row[3:] for row in rows] == [
        ["0.001234567", "0.03179261", "0.30000000000000004"],
        ["0.001234568", "0.03179264", "0.3"],
        ["0.1", "0.5", "2"],
    ]


@pytest.mark.parametrize("count", [3, 25, 130])
def test_every_trial_of_a_crowded_chart_is_in_the_saved_legend_beside_the_plot_and_drawn_unlike_the_others(
    count, tmp_path
):
    # `mlexp compare` of 25 trials: the legend covered the lines, showed 22 of them, and colours repeated
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from mlexp import charts

    series = {
        f"random-1205-143753-trial-{i}": [(step, (i + 1) / (step + 1)) for step in range(4)] for i in range(count)
    }
    figure = plot.metric_by_step(series, "train_loss")
    charts.save_figure(figure, tmp_path / "train_loss_by_step.png")  # as compare saves it: the saved area is the figure
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    renderer = canvas.get_renderer()
    [ax] = figure.axes
    lines = ax.get_lines()
    assert len({(line.get_color(), line.get_linestyle(), line.get_marker()) for line in lines}) == count
    if count <= 40:  # colour and line style alone tell the trials apart
        assert len({(line.get_color(), line.get_linestyle()) for line in lines}) == count
    legend = ax.get_legend()
    texts = legend.get_texts()
    assert [text.get_text() for text in texts] == list(series)
    shown = figure.bbox
    for text in texts:
        box = text.get_window_extent(renderer)
        assert shown.x0 <= box.x0 and box.x1 <= shown.x1 and shown.y0 <= box.y0 and box.y1 <= shown.y1, text
    assert not legend.get_window_extent(renderer).overlaps(ax.get_window_extent(renderer))


def test_trials_tied_on_the_objective_follow_a_text_parameter_by_its_numbers_then_its_words():
    # a column holding "none" stays text: "10" < "5" < "none" put depth 10 before depth 5
    from mlexp.experiment_analytics.trials import ExperimentAnalytics

    trials = object.__new__(ExperimentAnalytics)
    trials.objective, trials.direction = "val_auc", "maximize"
    frame = pd.DataFrame(
        {
            "TrialName": ["deep", "unbounded", "shallow", "failed"],
            "Status": ["FINISHED", "FINISHED", "FINISHED", "FAILED"],
            "ObjectiveValue": [0.9, 0.9, 0.9, math.nan],
            "model.max_depth": ["10", "none", "5", "2"],
        }
    )
    frame.attrs.update(params=["model.max_depth"], choices=[])
    for depths in (frame["model.max_depth"], frame["model.max_depth"].astype("string")):  # pandas 3 reads text so
        frame["model.max_depth"] = depths
        ranked = trials._sorted(frame, "ObjectiveValue", None)
        assert list(ranked["TrialName"]) == ["shallow", "deep", "unbounded", "failed"]


def test_an_experiment_whose_trials_ran_with_other_objectives_is_ranked_by_the_most_common_and_says_so(
    tmp_project_with_store,
):
    # the newest trial's sweep.objective ranked the whole experiment: two test_msle trials sat unscored at the end
    from conftest import run_cli

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_project_with_store / 'mlflow.db'}")
    exp = client.create_experiment(EXPERIMENT)
    _trial(client, exp, "worse", 1_000, "FINISHED", {"model.l1_size": "8"}, {"test_msle": [0.3], "test_mae": [2.0]})
    _trial(client, exp, "better", 2_000, "FINISHED", {"model.l1_size": "16"}, {"test_msle": [0.1]})
    newest = {"mlexp.objective": "test_rmse", "mlexp.direction": "minimize"}
    _trial(client, exp, "by-rmse", 3_000, "FINISHED", {"model.l1_size": "32"}, {"test_rmse": [1.0]}, **newest)

    trials = ExperimentAnalytics(EXPERIMENT, tracking_uri=client.tracking_uri)
    assert (trials.objective, trials.direction) == ("test_msle", "minimize")
    assert list(trials.dataframe()["TrialName"]) == ["better", "worse", "by-rmse"]
    done = run_cli(tmp_project_with_store, "compare", f"experiment={EXPERIMENT}")
    assert "3 trials, best first by test_msle (minimize)" in done.stdout
    assert "its trials ran with 2 objectives: test_msle (2), test_rmse (1); ranked by the most common" in done.stdout
    # the other objective is a column beside the ranking one (not a headline metric of the task)
    header, _, *rows = done.stdout.split("\n\n")[1].splitlines()
    assert header.split()[-3:] == ["test_msle", "test_rmse", "test_mae"]
    assert rows[-1].split()[1:] == ["by-rmse", "FINISHED", "32", "1"]


def test_compare_of_a_sweep_that_recorded_no_trial_or_of_an_empty_name_says_so(tmp_project_with_store):
    # was "no trials in experiment 'tabular_regression' ...; run `mlexp task=...` first" of an experiment of 100 trials
    from conftest import run_cli

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_project_with_store / 'mlflow.db'}")
    exp = client.create_experiment(EXPERIMENT)
    _trial(client, exp, "earlier", 1_000, "FINISHED", {"model.l1_size": "8"}, {"test_msle": [0.3]})
    sweeps = client.create_experiment(EXPERIMENT + "-sweeps")
    record = client.create_run(sweeps, run_name="grid-9", tags={"mlexp.kind": "sweep", "mlexp.sweep_name": "grid-9"})
    client.set_tag(record.info.run_id, "mlexp.sweep_id", record.info.run_id)
    client.set_terminated(record.info.run_id, "FAILED")
    done = run_cli(tmp_project_with_store, "compare", "sweep=grid-9", check=False)
    assert done.returncode != 0
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .endswith(
            "sweep grid-9 recorded no trials: it stopped before its first one (its record in experiment "
            "tabular_regression-sweeps says why: status and tags)"
        )
    )
    # was "name an experiment, a task or a sweep: analytics(experiment=...), task=... or sweep=..."
    done = run_cli(tmp_project_with_store, "compare", "sweep=", check=False)
    assert done.returncode == 2 and "sweep= names nothing; give it a value" in done.stderr


def test_compare_of_a_sweep_named_by_its_id_keeps_the_saved_views_name(tmp_project_with_store):
    # the view the sweep saved as "mlexp sweep grid-7" was renamed "mlexp sweep <its run id>"
    import json

    from conftest import run_cli
    from mlexp.tracking.ui_link import SAVED_VIEW_TAG

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_project_with_store / 'mlflow.db'}")
    exp = client.create_experiment(EXPERIMENT)
    sweeps = client.create_experiment(EXPERIMENT + "-sweeps")
    record = client.create_run(sweeps, run_name="grid-7", tags={"mlexp.kind": "sweep", "mlexp.sweep_name": "grid-7"})
    sweep_id = record.info.run_id
    client.set_tag(sweep_id, "mlexp.sweep_id", sweep_id)
    client.set_terminated(sweep_id)
    _trial(client, exp, "grid-7-trial-0", 1_000, "FINISHED", {"model.l1_size": "8"}, {"test_msle": [0.3]}, sweep_id)
    run_cli(tmp_project_with_store, "compare", f"sweep={sweep_id}")
    view = client.get_experiment(exp).tags[SAVED_VIEW_TAG + f"mlexp-sweep-{sweep_id}"]
    assert json.loads(view)["name"] == "mlexp sweep grid-7"


def test_task_keeps_its_own_trials_of_an_experiment_tasks_share(tmp_project_with_store):
    # tracking.experiment_name=shared for two tasks: task= showed every task's trials, or refused by the newest one's
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_project_with_store / 'mlflow.db'}")
    exp = client.create_experiment("shared")
    _trial(client, exp, "abalone", 1_000, "FINISHED", {"model.l1_size": "8"}, {"test_msle": [0.3]})
    churn = {"mlexp.task": "churn_incentives", "mlexp.objective": "val_auc", "mlexp.direction": "maximize"}
    _trial(client, exp, "churn", 2_000, "FINISHED", {"model.l1_size": "8"}, {"val_auc": [0.8]}, **churn)
    # task names a filter holds only quoted (tracking.tags.quoted), or not at all
    odd = {"it's": "quoted", 'it\'s "odd"': "unquotable"}
    for task, name in odd.items():
        _trial(
            client, exp, name, 3_000, "FINISHED", {"model.l1_size": "8"}, {"test_msle": [0.3]}, **{"mlexp.task": task}
        )
    uri = client.tracking_uri
    assert list(analytics("shared", task="churn_incentives", tracking_uri=uri)["TrialName"]) == ["churn"]
    assert list(analytics("shared", task=EXPERIMENT, tracking_uri=uri)["TrialName"]) == ["abalone"]
    for task, name in odd.items():
        assert list(analytics("shared", task=task, tracking_uri=uri)["TrialName"]) == [name]
    assert sorted(analytics("shared", tracking_uri=uri)["TrialName"]) == ["abalone", "churn", "quoted", "unquotable"]


def test_a_run_that_only_serves_a_model_is_no_trial_of_the_comparison(tmp_project_with_store, tmp_path):
    # `stage=deploy deploy=local deploy.source=...` was listed as a FINISHED trial with default params, no metrics,
    # and its task's objective counted as a second one the experiment's trials ran with
    from conftest import run_cli, trials_of
    from object_detection_tiny import serve_only_overrides

    run_cli(tmp_project_with_store, "task=object_detection", *serve_only_overrides(tmp_path / "detector"))
    assert len(trials_of(tmp_project_with_store, "served")) == 1  # it is in the store
    # an experiment of serving runs alone holds no trial, with task= too (it said "its trials ran object_detection")
    for scope in (["experiment=served"], ["task=object_detection", "experiment=served"]):
        done = run_cli(tmp_project_with_store, "compare", *scope, check=False)
        assert done.returncode == 2 and "mlexp compare: error: no trials in experiment 'served' of " in done.stderr
    assert analytics("served", tracking_uri=f"sqlite:///{tmp_project_with_store / 'mlflow.db'}").empty
