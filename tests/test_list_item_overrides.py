"""An override of one item of a list (`model.figure_size.0=4`), as Hydra applies it."""

from __future__ import annotations

from conftest import one_line_error, run_cli, store_client, trials_of
from test_ui_link_columns import shown_columns

TASK = "anomaly_detection"


def test_a_list_item_override_runs_and_the_view_shows_the_list_param_the_trial_logged(tmp_project_with_store):
    # refused as "model.figure_size is a value, not a section; check the key's spelling", though Hydra applies it;
    # and the view of every trial then named params.model.figure_size.0, a param no trial logs (lists are logged whole)
    project = tmp_project_with_store
    run_cli(project, f"task={TASK}", "dataset.n_rows=400", "model.figure_size=[4,4]", "model.figure_size.1=3")
    (trial,) = trials_of(project, experiment=TASK)
    assert trial.params["model.figure_size"] == "[4.0, 3.0]"
    client = store_client(project)
    columns = shown_columns(client, client.get_experiment_by_name(TASK).experiment_id)
    assert [c for c in columns if c.startswith("params.")] == ["params.`dataset.n_rows`", "params.`model.figure_size`"]


def test_an_item_the_list_does_not_have_is_one_line_with_the_indexes_it_has(tmp_project):
    assert one_line_error(tmp_project, f"task={TASK}", "model.figure_size.2=4") == (
        "model.figure_size.2: model.figure_size is a list of 2 items; name one by its index (0 to 1: "
        "model.figure_size.0), or give the whole list: model.figure_size=[...]"
    )
