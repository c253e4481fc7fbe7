"""A schema name misspelt in an option's defaults list: one line naming the file, the name and the close ones."""

from __future__ import annotations

import pytest

from conftest import one_line_error, run_cli


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("/schema/model/mlp_regresor", "/schema/model/mlp_regressor"),  # the option's name
        ("/schema/modle/mlp_regressor", "/schema/model/mlp_regressor"),  # the group's
    ],
)
def test_a_misspelt_schema_in_a_defaults_list_is_named_with_the_close_names(tmp_project, typed, meant):
    # it said to store schema/model/mlp_regresor in the task's config.py and import that module: the code that stores
    # the right name was imported all along
    option = tmp_project / "conf" / "model" / "mlp_regressor.yaml"
    option.write_text(option.read_text().replace("/schema/model/mlp_regressor@", f"{typed}@"))
    expected = (
        f"conf/model/mlp_regressor.yaml names the schema {typed} in its defaults list, and no code stores a schema of "
        f"that name; did you mean {meant}? correct the name in "
        "conf/model/mlp_regressor.yaml"
    )
    assert one_line_error(tmp_project, "task=tabular_regression") == expected
    done = run_cli(tmp_project, "params", check=False)
    assert (done.returncode, done.stderr.strip()) == (2, f"mlexp params: error: {expected}")


def test_a_schema_of_a_group_no_task_chooses_is_worded_without_a_task_placeholder(tmp_project):
    # with no task= on the command line the line said declare_group("<task>", ...)
    from hydra.errors import MissingConfigException

    from mlexp.config.missing_schema import missing_schema

    conf = tmp_project / "conf"
    (conf / "counter").mkdir()
    (conf / "counter" / "plain.yaml").write_text("defaults:\n  - /schema/counter/plain@_here_\n  - _self_\n")
    error = MissingConfigException("In 'counter/plain': Could not load 'schema/counter/plain'.", "schema/counter/plain")
    assert str(missing_schema(error, conf, None)) == (
        "conf/counter/plain.yaml asks for the schema schema/counter/plain, which no loaded code stores: in the "
        "config.py of the task that chooses counter=plain, store it with mlexp.config.declare_group(that task's name, "
        '"counter", {"plain": <its dataclass>}), and import that module in the task\'s __init__.py'
    )


def test_a_schema_name_near_no_stored_one_is_offered_the_files_own_schema(tmp_project):
    # it said to store a schema zzqx in the task's config.py and import that module: the file's own was stored already
    option = tmp_project / "conf" / "model" / "mlp_regressor.yaml"
    option.write_text(option.read_text().replace("/schema/model/mlp_regressor@", "/schema/model/zzqx@"))
    assert one_line_error(tmp_project, "task=tabular_regression") == (
        "conf/model/mlp_regressor.yaml names /schema/model/zzqx in its defaults list, which is not a stored schema; "
        "the schema of the file's own name is /schema/model/mlp_regressor: correct the name in "
        "conf/model/mlp_regressor.yaml"
    )
