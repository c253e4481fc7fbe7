"""Group options of one's own in a folder outside the project, added to Hydra's config search path with `--config-dir`
(or `hydra.searchpath`): the checks before Hydra read them as they read conf/'s, and the task's `task.choices` still
decide which options it runs."""

from __future__ import annotations

from pathlib import Path

from conftest import REPO, TINY, one_line_error, run_cli, trials_of

# a variant of tabular_regression's model, on that model's schema as conf/'s own options are
MY_NET = (REPO / "conf" / "model" / "mlp_regressor.yaml").read_text().replace("l1_size: 32", "l1_size: 12")
ALLOW_MY_NET = "task.choices.model=[mlp_regressor,my_net]"


def _extra_folder(project: Path) -> Path:
    extra = project.parent / "extra"
    (extra / "model").mkdir(parents=True)
    (extra / "model" / "my_net.yaml").write_text(MY_NET)
    return extra


def test_a_model_option_in_a_config_dir_runs_a_trial_and_a_misspelt_one_is_one_line(tmp_project):
    # the checks read conf/ alone: "model='my_net' is not a model option of task 'tabular_regression'", though
    # Hydra composes it from the folder
    _extra_folder(tmp_project)
    command = ("-cd", "../extra", "task=tabular_regression", ALLOW_MY_NET)
    assert one_line_error(tmp_project, *command, "model=my_nte", *TINY) == (
        "model='my_nte' is not a model option of task 'tabular_regression' (searched conf/, ../extra); did you mean "
        "my_net? choose one of: mlp_regressor, my_net"
    )
    run_cli(tmp_project, *command, "model=my_net", *TINY)
    [trial] = trials_of(tmp_project)
    assert (trial.params["model.l1_size"], trial.params["model.l2_size"]) == ("12", "16")
    assert trial.tags["mlexp.choice.model"] == "my_net"


def test_a_task_runs_an_option_of_ones_own_once_its_choices_name_it(tmp_project):
    _extra_folder(tmp_project)
    assert one_line_error(tmp_project, "-cd", "../extra", "task=tabular_regression", "model=my_net") == (
        "model='my_net' is not a model option of task 'tabular_regression'; choose one of: mlp_regressor; my_net has "
        f"mlp_regressor's schema: to run it with this task, add it to the task's choices: {ALLOW_MY_NET}"
    )
    # another task's option is no variant of this task's: nothing to add (as before, with or without the folder)
    assert one_line_error(tmp_project, "-cd", "../extra", "task=tabular_regression", "model=ssd") == (
        "model='ssd' is not a model option of task 'tabular_regression'; choose one of: mlp_regressor"
    )


def test_hydra_searchpath_and_help_read_the_folder_too(tmp_project):
    extra = _extra_folder(tmp_project)
    message = one_line_error(tmp_project, f"hydra.searchpath=[file://{extra}]", ALLOW_MY_NET, "model=my_nte")
    assert message.startswith(
        f"model='my_nte' is not a model option of task 'tabular_regression' (searched conf/, {extra})"
    )
    [models] = [
        line
        for line in run_cli(tmp_project, "--help", "-cd", "../extra").stdout.splitlines()
        if line.startswith("  model: ")
    ]
    assert "mlp_regressor, my_net, " in models
    assert one_line_error(tmp_project, "-cd", "../extar", "task=tabular_regression") == (
        f"--config-dir=../extar: {tmp_project.parent / 'extar'} is not a folder; give the folder that holds your own "
        "config groups (<folder>/<group>/<option>.yaml)"
    )


def test_a_tuning_job_with_a_config_dir_is_refused_before_anything_is_sent(tmp_project):
    # the training jobs compose from the code archive's conf/: Hydra's "Could not find 'model/my_net'" came after the
    # checks had passed
    _extra_folder(tmp_project)
    command = ("-m", "-cd", "../extra", "task=tabular_regression", ALLOW_MY_NET, "model=my_net", "compute=sagemaker")
    assert one_line_error(tmp_project, *command, "compute.role_arn=arn:aws:iam::1:role/r", "compute.dry_run=true") == (
        "compute=sagemaker: the tuning job's training jobs compose their configs from the project's conf/ in the code "
        "archive, without the options of ../extra: copy the ones the sweep uses into conf/ to tune them on SageMaker, "
        "or run the sweep here"
    )


def test_only_the_folders_the_command_adds_are_missing_from_a_copy_of_conf(tmp_project):
    # a search path conf/config.yaml names is the project's own (a SageMaker sweep of such a project was refused)
    from mlexp.config.search_path import command_folders, forget_command_folders, use_command_folders

    extra, mine = _extra_folder(tmp_project), tmp_project.parent / "mine"
    mine.mkdir()
    config = tmp_project / "conf" / "config.yaml"
    config.write_text(config.read_text().replace("hydra:\n", f"hydra:\n  searchpath: [file://{extra}]\n", 1))
    try:
        use_command_folders(None, [])
        assert command_folders(tmp_project / "conf") == []
        use_command_folders(str(mine), [])
        assert [folder.path for folder in command_folders(tmp_project / "conf")] == [mine]
    finally:
        forget_command_folders()


def test_a_sweep_of_an_option_of_ones_own_is_refused_with_the_single_runs_hint(tmp_project):
    # the sweep's refusal named the task's options alone, not the override that lets the task run the option
    _extra_folder(tmp_project)
    swept = ("-m", "task=tabular_regression", "model=mlp_regressor,my_net")
    refusal = (
        "model=mlp_regressor,my_net: model='my_net' is not a model option of task 'tabular_regression'; choose among: "
        "mlp_regressor; my_net has mlp_regressor's schema: to run it with this task, add it to the task's choices: "
        f"{ALLOW_MY_NET}"
    )
    assert one_line_error(tmp_project, "-cd", "../extra", *swept) == refusal
    # an option in conf/ itself, checked before a tuning job: that check composes after Hydra has stopped
    (tmp_project / "conf" / "model" / "my_net.yaml").write_text(MY_NET)
    tuning = ("compute=sagemaker", "compute.role_arn=arn:aws:iam::123456789012:role/r", "compute.dry_run=true")
    assert one_line_error(tmp_project, *swept, *tuning) == refusal


def test_a_search_path_folder_that_is_not_there_is_named_as_missing(tmp_project):
    # Hydra skips a hydra.searchpath entry that is not there with only a warning (a --config-dir that is not there
    # is refused, as Hydra refuses it): the misspelt folder, not the option, is the likelier mistake
    _extra_folder(tmp_project)
    command = ("-cd", "../extra", "hydra.searchpath=[file://../extar]", "task=tabular_regression", "model=my_nte")
    assert one_line_error(tmp_project, *command) == (
        "model='my_nte' is not a model option of task 'tabular_regression' (searched conf/, ../extra, ../extar (no "
        "such folder)); choose one of: mlp_regressor"
    )
