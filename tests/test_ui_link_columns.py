"""The saved view "mlexp trials" keeps its columns: each trial adds the params it set, a comparison the varying ones."""

from __future__ import annotations

import base64
import json
import zlib
from concurrent.futures import ThreadPoolExecutor

from conftest import TINY, run_cli, store_client, trials_of
from mlexp.tracking import ui_link

VIEW = ui_link.SAVED_VIEW_TAG + "mlexp-trials"


def shown_columns(client, experiment_id: str, key: str = VIEW) -> list[str]:
    """The view's columns as the UI reads them: the experiment tag's state, inflated when it was deflated."""
    text = json.loads(client.get_experiment(experiment_id).tags[key])["state"]
    if text.startswith("deflate;"):
        text = zlib.decompress(base64.b64decode(text.removeprefix("deflate;"))).decode()
    state = json.loads(text)
    assert state["columnOrder"][2:] == state["selectedColumns"]
    assert set(state["selectedColumns"]) <= set(state["columnWidths"])
    return state["selectedColumns"]


def test_the_view_of_every_trial_gathers_the_params_of_each_trial_and_comparison(tmp_project_with_store):
    # 13 trials of different model.l1_size and learning_rate: the view after each trial had no param column, and the
    # one `mlexp compare task=` saved with the varying params was overwritten by the next trial without them
    project = tmp_project_with_store
    run_cli(project, "task=tabular_regression", "model.l1_size=4", *TINY)
    run_cli(project, "task=tabular_regression", "model.learning_rate=0.05", *TINY)
    run_cli(project, "compare", "task=tabular_regression")
    run_cli(project, "task=tabular_regression", "model=mlp_regressor", "model.epochs=1", "seed=5", "dataset.n_rows=300")
    client = store_client(project)
    experiment_id = client.get_experiment_by_name("tabular_regression").experiment_id
    assert shown_columns(client, experiment_id) == [
        "metrics.`test_msle`",
        "metrics.`test_mae`",
        "metrics.`final_train_loss`",
        "params.`model.l1_size`",
        "params.`dataset.n_rows`",
        "params.`model.epochs`",
        "params.`model.learning_rate`",
        "params.`seed`",
        "tags.`mlexp.sweep_name`",
        "tags.`mlexp.choice.model`",  # a config group's choice: a tag of the trial, not a param
    ]
    # each column names params as the trials logged them
    logged = {f"params.`{name}`" for trial in trials_of(project) for name in trial.params}
    assert {c for c in shown_columns(client, experiment_id) if c.startswith("params.")} <= logged


def test_a_view_saved_again_keeps_its_columns_also_when_stored_deflated(tmp_project_with_store):
    client = store_client(tmp_project_with_store)
    experiment_id = client.create_experiment("views")
    uri = client.tracking_uri
    many = [f"model.layer_{i}_size" for i in range(400)]  # past MLflow's 20,000 characters: stored deflated
    ui_link.publish_comparison(uri, experiment_id, objective="loss", direction="minimize", param_columns=many)
    assert json.loads(client.get_experiment(experiment_id).tags[VIEW])["state"].startswith("deflate;")
    ui_link.publish_comparison(
        uri,
        experiment_id,
        objective="auc",
        direction="maximize",
        param_columns=["seed", many[0]],
        choice_columns=["model"],
    )
    assert shown_columns(client, experiment_id) == [
        "metrics.`auc`",  # the metrics are the new view's own
        *(f"params.`{p}`" for p in many),
        "params.`seed`",
        "tags.`mlexp.sweep_name`",
        "tags.`mlexp.choice.model`",
    ]
    # a tag that holds no view as mlexp saves it is replaced whole
    client.set_experiment_tag(experiment_id, VIEW, "not a view")
    ui_link.publish_comparison(uri, experiment_id, objective="auc", direction="maximize")
    assert shown_columns(client, experiment_id) == ["metrics.`auc`", "tags.`mlexp.sweep_name`"]


def test_a_dvc_stage_run_adds_no_column_of_its_fixed_command_line(tmp_project_with_store):
    # under `dvc exp run -S model.l1_size=64` the last stage's command line is dvc.yaml's: it added dataset.path, a
    # column that never varies, and never the value -S changed (in params.yaml)
    project = tmp_project_with_store
    run_cli(project, "params")
    run_cli(project, "task=tabular_regression", "params_file=params.yaml", *TINY)
    client = store_client(project)
    experiment_id = client.get_experiment_by_name("tabular_regression").experiment_id
    assert not [c for c in shown_columns(client, experiment_id) if c.startswith("params.")]


def test_views_saved_at_once_keep_every_column(tmp_project_with_store):
    # trials and comparisons of other processes save the same view: read, merge and set raced, 6 of 8 columns kept
    client = store_client(tmp_project_with_store)
    experiment_id = client.create_experiment("at-once")
    saves = [
        ui_link.view_tag(ui_link.RunsView("", param_columns=[f"p{i}"]), view_id="mlexp-trials", name="mlexp trials")
        for i in range(8)
    ]
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda save: ui_link.set_view_tag(store_client(tmp_project_with_store), experiment_id, *save), saves
            )
        )
    assert sorted(shown_columns(client, experiment_id)) == sorted(f"params.`p{i}`" for i in range(8))
