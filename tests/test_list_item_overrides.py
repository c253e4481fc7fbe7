"""An override of one item of a list (`model.figure_size.0=4`), as Hydra applies it."""

from __future__ import annotations

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException

from conftest import REPO, composed_with_hydra, one_line_error, run_cli, store_client, trials_of
from test_ui_link_columns import shown_columns

TASK = "anomaly_detection"
FIGURE_OF_2 = (
    "model.figure_size is a list of 2 items; name one by its index (0 to 1: model.figure_size.0), or give the whole "
    "list: model.figure_size=[...]"
)
FIGURE_OF_2_ADDED = (
    "model.figure_size is a list of 2 items, and Hydra adds no item to a list; set one by its index, without + (0 to "
    "1: model.figure_size.0=<value>), or give the whole list: model.figure_size=[...]"
)
NO_CURVES = "task.curves is an empty list, with no item to set; give the whole list: task.curves=[...]"


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
        "model.figure_size.1: model.figure_size is a list of 1 item; name it by its index (model.figure_size.0), "
        "or give the whole list: model.figure_size=[...]"
    )


@pytest.mark.parametrize(
    ("override", "line"),
    [
        (
            "~model.figure_size.1",
            "~model.figure_size.1: Hydra sets a list's item by its index (model.figure_size.1=<value>) but cannot "
            "delete an item of a list; give the whole list instead: model.figure_size=[...]",
        ),
        ("+model.figure_size.2=5", f"+model.figure_size.2: {FIGURE_OF_2_ADDED}"),
    ],
)
def test_deleting_or_adding_a_list_item_is_one_line_with_the_whole_list_as_the_fix(tmp_project, override, line):
    # ~ ended in "TypeError: list indices must be integers" and a traceback, + in Hydra's bare "Error merging override"
    assert one_line_error(tmp_project, f"task={TASK}", override) == line


def test_an_item_the_list_has_may_be_set_with_a_force_add(tmp_project):
    # ++ sets an existing item (Hydra applies it): the refusal of + and ~ on a list's items leaves it be
    shown = run_cli(tmp_project, f"task={TASK}", "++model.figure_size.1=3", "--cfg", "job").stdout
    assert "figure_size:\n  - 12.0\n  - 3.0\n" in shown


@pytest.mark.parametrize(
    ("task", "given", "line"),
    [
        # conf/'s model.figure_size of anomaly_detection is [12, 12]; text_classification's task.curves is []
        (TASK, ["model.figure_size.1=4"], None),
        (TASK, ["++model.figure_size.1=4"], None),
        (TASK, ["model.figure_size.2=4"], f"model.figure_size.2: {FIGURE_OF_2}"),
        (TASK, ["++model.figure_size.2=4"], f"++model.figure_size.2: {FIGURE_OF_2}"),
        (TASK, ["+model.figure_size.2=4"], f"+model.figure_size.2: {FIGURE_OF_2_ADDED}"),
        # Hydra's "An item is already at": + adds, even where the list has the item
        (TASK, ["+model.figure_size.1=4"], f"+model.figure_size.1: {FIGURE_OF_2_ADDED}"),
        (TASK, ["model.figure_size.x=4"], f"model.figure_size.x: {FIGURE_OF_2}"),
        (TASK, ["++model.figure_size.x=4"], f"++model.figure_size.x: {FIGURE_OF_2}"),
        (TASK, ["+model.figure_size.x=4"], f"+model.figure_size.x: {FIGURE_OF_2_ADDED}"),
        (
            TASK,
            ["~model.figure_size.x"],
            "~model.figure_size.x: Hydra cannot delete an item of a list; give the whole list instead: "
            "model.figure_size=[...]",
        ),
        (
            TASK,
            ["model.figure_size=[4]", "++model.figure_size.1=3"],
            "++model.figure_size.1: model.figure_size is a list of 1 item; name it by its index (model.figure_size.0), "
            "or give the whole list: model.figure_size=[...]",
        ),
        ("text_classification", ["task.curves.0=a"], f"task.curves.0: {NO_CURVES}"),
        ("text_classification", ["++task.curves.0=a"], f"++task.curves.0: {NO_CURVES}"),
        ("text_classification", ["+task.curves.0=a"], f"+task.curves.0: {NO_CURVES}"),
        ("text_classification", ["++task.curves.x=a"], f"++task.curves.x: {NO_CURVES}"),
        (
            "text_classification",
            ["~task.curves.0"],
            "~task.curves.0: Hydra cannot delete an item of a list; give the whole list instead: task.curves=[...]",
        ),
    ],
)
def test_an_index_override_is_refused_as_written_naming_only_indexes_the_list_has(task, given, line):
    # ++ was echoed as +, and the hint named the very index the list lacks ("Hydra sets a list's item by its index
    # (model.figure_size.2=<value>)"), task.curves.0 of an empty list; a + or ++ with no number ended in a traceback
    from mlexp.config.known_keys import check_in_order
    from mlexp.errors import ConfigError

    cfg = composed_with_hydra(REPO, f"task={task}")
    try:
        check_in_order(cfg, OverridesParser.create().parse_overrides(given))
        refusal = None
    except ConfigError as error:
        refusal = str(error)
    assert refusal == line
    try:  # Hydra is the reference: it applies what the check lets through and refuses what it refuses
        composed_with_hydra(REPO, f"task={task}", *given)
        applied = True
    except (HydraException, ValueError, TypeError):  # its own errors, or a bare ValueError or TypeError
        applied = False
    assert applied == (line is None)


@pytest.mark.parametrize(
    ("given", "line"),
    [
        (f"task={TASK} ++model.figure_size.2=4", f"++model.figure_size.2: {FIGURE_OF_2}"),
        ("task=text_classification ++task.curves.0=a", f"++task.curves.0: {NO_CURVES}"),
    ],
)
def test_the_command_echoes_a_force_added_index_as_typed(tmp_project, given, line):
    assert one_line_error(tmp_project, *given.split()) == line


def test_the_python_api_checks_the_index_against_the_list_it_is_given(tmp_project):
    from mlexp.api import run, sweep
    from mlexp.errors import ConfigError

    given = ["model.figure_size=[4]", "model.figure_size.1=3"]
    for call in (run, sweep):
        with pytest.raises(ConfigError, match=r"^model.figure_size.1: model.figure_size is a list of 1 item; "):
            call(TASK, overrides=given, root=tmp_project)
