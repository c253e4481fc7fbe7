"""An override of one item of a list (`model.figure_size.0=4`), as Hydra applies it."""

from __future__ import annotations

import pytest

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


def test_an_index_into_the_list_the_command_gives_is_checked_against_that_list(tmp_project):
    # refused as "model.figure_size is a list of 2 items" (conf/'s list), though the command gave 3 items
    given = ("model.figure_size=[4,4,4]", "model.figure_size.2=3")
    shown = run_cli(tmp_project, f"task={TASK}", *given, "--cfg", "job").stdout
    assert "figure_size:\n  - 4.0\n  - 4.0\n  - 3.0\n" in shown
    assert "Override any key" in run_cli(tmp_project, f"task={TASK}", *given, "--help").stdout
    # the keys that passed are remembered: a shorter list under the same keys is checked again, not let through
    shorter = one_line_error(tmp_project, "-m", f"task={TASK}", "model.figure_size=[4]", "model.figure_size.2=3")
    assert shorter.startswith("model.figure_size.2: model.figure_size is a list of 1 item; ")


def test_a_sweep_sets_an_item_of_the_list_the_command_gives(tmp_project_with_store):
    # -m composed with the group choices only and refused the index as conf/'s list has no item 2
    project = tmp_project_with_store
    run_cli(project, "-m", f"task={TASK}", "dataset.n_rows=400", "model.figure_size=[4,4,4]", "model.figure_size.2=3")
    (trial,) = trials_of(project, experiment=TASK)
    assert trial.params["model.figure_size"] == "[4.0, 4.0, 3.0]"


@pytest.mark.parametrize("mode", [(), ("-m",), ("--cfg", "job")])
def test_an_index_past_the_list_the_command_gives_is_the_index_line(tmp_project, mode):
    # a single run said "the value 3 does not fit model.figure_size.1 (list index out of range); give
    # model.figure_size.1 a value it accepts" (no value fits), -m and --cfg let it pass conf/'s list of 2 items
    assert one_line_error(tmp_project, *mode, f"task={TASK}", "model.figure_size=[4]", "model.figure_size.1=3") == (
        "model.figure_size.1: model.figure_size is a list of 1 item; name one by its index (0 to 0: "
        "model.figure_size.0), or give the whole list: model.figure_size=[...]"
    )


@pytest.mark.parametrize(
    ("override", "action"),
    [("~model.figure_size.1", "delete an item of"), ("+model.figure_size.2=5", "add an item to")],
)
def test_deleting_or_adding_a_list_item_is_one_line_with_the_whole_list_as_the_fix(tmp_project, override, action):
    # ~ ended in "TypeError: list indices must be integers" and a traceback, + in Hydra's bare "Error merging override"
    key = override.partition("=")[0]
    index_form = key.lstrip("~+")
    assert one_line_error(tmp_project, f"task={TASK}", override) == (
        f"{key}: Hydra sets a list's item by its index ({index_form}=<value>) but cannot {action} a list; give the "
        "whole list instead: model.figure_size=[...]"
    )


def test_an_item_the_list_has_may_be_set_with_a_force_add(tmp_project):
    # ++ sets an existing item (Hydra applies it): the refusal of + and ~ on a list's items leaves it be
    shown = run_cli(tmp_project, f"task={TASK}", "++model.figure_size.1=3", "--cfg", "job").stdout
    assert "figure_size:\n  - 12.0\n  - 3.0\n" in shown


def test_the_python_api_checks_the_index_against_the_list_it_is_given(tmp_project):
    from mlexp.api import run, sweep
    from mlexp.errors import ConfigError

    given = ["model.figure_size=[4]", "model.figure_size.1=3"]
    for call in (run, sweep):
        with pytest.raises(ConfigError, match=r"^model.figure_size.1: model.figure_size is a list of 1 item; "):
            call(TASK, overrides=given, root=tmp_project)
