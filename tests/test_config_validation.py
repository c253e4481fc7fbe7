"""A wrong override fails before any work, naming the key, the bad value and the valid choices."""

from __future__ import annotations

import itertools
import shlex
import time
from pathlib import Path

import pytest
from hydra._internal.utils import get_args_parser
from omegaconf import OmegaConf

from conftest import REPO, TINY, one_line_error, run_cli, seed_store
from mlexp.cli_arguments import spelled_out
from mlexp.config import make_composable
from mlexp.config.bounds import above, check_bounds
from mlexp.config.overrides import check_override_keys
from mlexp.config.validate import check_given
from mlexp.errors import ConfigError, MlexpError, did_you_mean


def _fails(project: Path, *args: str) -> str:
    started = time.monotonic()
    done = run_cli(project, *args, check=False)
    assert done.returncode != 0, done.stdout
    # no trial was opened: validation runs before anything is tracked
    assert not (project / "mlflow.db").exists()
    assert time.monotonic() - started < 30
    return done.stderr


def test_unknown_key_names_the_key(tmp_project):
    message = _fails(tmp_project, "task=tabular_regression", "model.l1_sise=64")
    assert "model.l1_sise is not a key of model; did you mean model.l1_size?" in message
    assert "valid keys: batch_size, epochs, l1_activation, l1_size" in message


def test_a_misspelt_top_level_key_lists_only_the_keys_of_its_task(tmp_project):
    # the list named other tasks' groups (engine, features, optimizer...), which this task refuses
    message = _fails(tmp_project, "task=tabular_regression", "modl.epochs=3")
    assert message.strip().endswith(
        "modl.epochs is not a key of the config; did you mean model? valid keys: compute, dataset, deploy, model, "
        "params_file, paths, preprocessing, seed, stage, sweep, task, tracking"
    )
    assert "valid keys: compute, dataset, deploy, model, optimizer," in _fails(
        tmp_project, "task=churn_incentives", "optimzer.budget=3"
    )


def test_a_key_given_without_its_section_is_offered_with_it(tmp_project):
    # `l1_size=64` got the top-level keys and no hint: the section left out, not the spelling, was the slip
    assert "l1_size is not a key of the config; did you mean model.l1_size? valid keys: compute," in _fails(
        tmp_project, "task=tabular_regression", "l1_size=64"
    )
    assert "model.budget is not a key of model; did you mean model.incentives.budget? valid keys:" in _fails(
        tmp_project, "task=churn_incentives", "model.budget=3"
    )
    # not task.name, which names the task and is refused as a task of its own
    assert "name is not a key of the config; did you mean sweep.name? valid keys:" in _fails(
        tmp_project, "task=tabular_regression", "name=x"
    )
    # the task's settings stay offered
    assert "objective.metric is not a key of the config; did you mean task.objective? valid keys:" in _fails(
        tmp_project, "task=tabular_regression", "objective.metric=test_mae"
    )


def test_unknown_key_in_a_sweep_is_refused_before_any_trial(tmp_project):
    message = _fails(tmp_project, "-m", "task=tabular_regression", "model.l1_sise=8,16")
    assert "did you mean model.l1_size?" in message


def test_wrong_type_names_key_and_value(tmp_project):
    message = one_line_error(tmp_project, "task=tabular_regression", "model.l1_size=big")
    assert message == (
        "model.l1_size=big: the value big does not fit model.l1_size (Value 'big' of type 'str' could not be "
        "converted to Integer); give model.l1_size a value it accepts"
    )


def test_unknown_enum_value_lists_valid_values(tmp_project):
    message = one_line_error(tmp_project, "task=tabular_regression", "model.l1_activation=swish")  # README's
    assert message.startswith("model.l1_activation=swish: the value swish does not fit model.l1_activation (Invalid")
    message = one_line_error(tmp_project, "task=churn_incentives", "optimizer.solver=cplex")
    assert message == (
        "optimizer.solver=cplex: the value cplex does not fit optimizer.solver (Invalid value 'cplex', expected one "
        "of [exact, gekko, scipy]); give optimizer.solver a value it accepts"
    )


def test_an_override_hydra_cannot_apply_is_one_line_with_hydras_fix(tmp_project):
    message = one_line_error(tmp_project, "task=tabular_regression", "+model.epochs=3")
    assert message == (
        "+model.epochs=3: Could not append to config. An item is already at 'model.epochs'; Either remove + prefix: "
        "'model.epochs=3'; Or add a second + to add or override 'model.epochs': '++model.epochs=3'"
    )


def test_several_values_without_m_say_to_add_m_and_the_forms_the_key_takes(tmp_project):
    add_m = "gives several values, and a run takes one: to sweep them add -m"
    forms = "; for one value that is a list or text, write"
    # an integer takes neither a list nor text; a name text only; a group neither
    expected = {
        "model.l1_size=8,16": f"model.l1_size=8,16 {add_m}",
        "tracking.experiment_name=a,b": f"""tracking.experiment_name=a,b {add_m}{forms} \
'tracking.experiment_name="a,b"'""",
        "model=mlp_regressor,mlp_regressor": f"model=mlp_regressor,mlp_regressor {add_m}",
    }
    for override, message in expected.items():
        assert one_line_error(tmp_project, "task=tabular_regression", override) == message
    # a new key of a free-form section of text (anomaly's rules): text, with its +
    message = one_line_error(tmp_project, "task=anomaly_detection", "+model.rules.note=a,b")
    assert message == f"""+model.rules.note=a,b {add_m}{forms} '+model.rules.note="a,b"'"""
    # a value with quotes of its own: no form is offered, and no traceback
    message = one_line_error(tmp_project, "task=tabular_regression", 'dataset.path="my file.csv",b.csv')
    assert message == 'dataset.path="my file.csv",b.csv ' + add_m


@pytest.mark.usefixtures("tmp_project_with_store")
def test_sweep_values_sweep_without_m_when_the_config_asks_for_a_sweep(tmp_project):
    done = run_cli(tmp_project, "task=tabular_regression", "hydra.mode=MULTIRUN", "model.l1_size=8,16", *TINY)
    assert "2/2 jobs finished" in done.stdout


def test_unknown_group_option_lists_the_options(tmp_project):
    message = _fails(tmp_project, "task=tabular_regression", "model=transformer")
    assert "transformer" in message and "mlp_regressor" in message


def test_unknown_task_lists_the_tasks(tmp_project):
    message = _fails(tmp_project, "task=no_such_task")
    assert "no_such_task" in message and "tabular_regression" in message


def test_option_of_another_task_is_refused_with_the_task_options(tmp_project):
    # a model option that exists in conf/ but does not belong to this task
    other = tmp_project / "conf" / "model" / "other_regressor.yaml"
    other.write_text((tmp_project / "conf" / "model" / "mlp_regressor.yaml").read_text())
    message = _fails(tmp_project, "task=tabular_regression", "model=other_regressor")
    assert "model='other_regressor' is not a model option of task 'tabular_regression'" in message
    assert "mlp_regressor" in message
    assert "Traceback" not in message


def test_unknown_stage_lists_the_stages(tmp_project):
    message = _fails(tmp_project, "task=tabular_regression", "stage=fit")
    assert "stage='fit'" in message and "prepare, train, evaluate" in message
    message = one_line_error(tmp_project, "task=tabular_regression", "stage=trian")
    assert message == (
        "stage='trian' is not a stage of task 'tabular_regression'; did you mean train? "
        "choose one of: prepare, train, evaluate, deploy"
    )


def test_an_option_message_takes_the_article_of_its_group(tmp_project):
    message = one_line_error(tmp_project, "task=anomaly_detection", "engine=local")
    assert message.startswith("engine='local' is not an engine option of task 'anomaly_detection'; ")


def test_env_copy_of_a_variable_that_is_not_set_is_one_line_for_a_run_a_sweep_and_cfg(tmp_project):
    # Hydra copies it with os.environ[name] in every composition: its KeyError was a traceback
    unset = "MLEXP_TEST_NEVER_SET"
    for command in (["task=tabular_regression"], ["-m", "model.l1_size=4,8"], ["--cfg", "job"]):
        message = one_line_error(tmp_project, *command, f"hydra.job.env_copy=[HOME,{unset}]")
        assert message == (
            f"hydra.job.env_copy=[HOME,{unset}]: {unset} is not set in this environment, and Hydra copies each "
            f"variable env_copy lists from it; export {unset}=<value> first, or give the job a value with "
            f"hydra.job.env_set.{unset}=<value>"
        )


def test_cfg_job_prints_the_composed_config(tmp_project):
    done = run_cli(tmp_project, "--cfg", "job", "task=tabular_regression", "model.l1_size=7")
    assert "l1_size: 7" in done.stdout
    assert "metric: test_msle" in done.stdout


def test_help_lists_tasks_and_groups(tmp_project):
    out = run_cli(tmp_project, "--help").stdout
    task_line = next(line for line in out.splitlines() if line.strip().startswith("task:"))
    assert "tabular_regression" in task_line
    assert "Abalone age regression" in out  # each task with its description
    for group in ("dataset", "preprocessing", "model", "sweep", "compute", "deploy", "tracking"):
        assert f"{group}:" in out
    assert "schema/" not in out


def test_mistyped_task_is_one_line_with_the_closest_task(tmp_project):
    message = one_line_error(tmp_project, "task=tabular_regresion")
    assert message.startswith("task='tabular_regresion' is not a task; did you mean tabular_regression? choose one")
    assert (
        "anomaly_detection, churn_incentives, document_extraction, object_detection, recommendation, "
        "tabular_regression, text_classification" in message
    )


def test_mistyped_group_option_is_one_line_with_the_tasks_options(tmp_project):
    message = one_line_error(tmp_project, "task=tabular_regression", "model=mlp")
    assert message == (
        "model='mlp' is not a model option of task 'tabular_regression'; did you mean mlp_regressor? "
        "choose one of: mlp_regressor"
    )


def test_a_tasks_own_group_is_refused_for_another_task(tmp_project):
    message = one_line_error(tmp_project, "task=tabular_regression", "engine=duckdb")
    assert message == (
        "task 'tabular_regression' has no engine group (engine belongs to tasks anomaly_detection, "
        "document_extraction); remove engine=duckdb"
    )


def test_a_setting_of_another_tasks_group_names_the_group_owner(tmp_project):
    message = one_line_error(tmp_project, "task=tabular_regression", "optimizer.budget=3")
    assert message == (
        "optimizer.budget: task 'tabular_regression' has no optimizer group (optimizer belongs to task "
        "churn_incentives); remove optimizer.budget"
    )


def test_a_tasks_own_group_is_in_its_config_only(tmp_project):
    athena = run_cli(tmp_project, "--cfg", "job", "task=anomaly_detection", "engine=athena").stdout
    assert "engine:\n  name: athena\n" in athena
    gekko = run_cli(tmp_project, "--cfg", "job", "task=churn_incentives", "optimizer.solver=gekko").stdout
    assert "optimizer:\n  solver: gekko\n" in gekko


def test_an_unknown_compute_target_is_refused_before_any_trial(tmp_project):
    message = _fails(tmp_project, "task=tabular_regression", "compute.target=azure")
    assert "compute.target='azure' is not a compute target" in message
    assert "compute=local" in message and "compute=sagemaker" in message


def test_a_misspelt_compute_key_is_refused_with_the_valid_ones(tmp_project):
    message = one_line_error(tmp_project, "task=tabular_regression", "compute.instance_typo=ml.m5.xlarge")
    assert message.startswith("compute.instance_typo is not a key of compute; ")
    assert "did you mean compute.instance_type?" in message


def test_did_you_mean_comes_from_the_failing_part_of_a_deep_key():
    make_composable()
    with pytest.raises(ConfigError) as raised:
        check_override_keys(REPO / "conf", ["task=churn_incentives", "model.incentives.convincing.hgh=1"])
    message = str(raised.value)
    assert message.startswith("model.incentives.convincing.hgh is not a key of model.incentives.convincing; ")
    assert "did you mean model.incentives.convincing.high?" in message


def test_a_tracking_server_url_on_the_command_line_replaces_the_environment_one(tmp_project):
    # the override-key check must not resolve tracking=server's $MLEXP_TRACKING_SERVER, which the override replaces
    done = run_cli(
        tmp_project, "task=tabular_regression", "tracking=server", "tracking.uri=http://127.0.0.1:5000", "--cfg", "job"
    )
    assert "uri: http://127.0.0.1:5000" in done.stdout


def test_an_override_hydras_grammar_cannot_parse_is_one_line_naming_it(tmp_project):
    for args, reason in {
        ("task=tabular_regression", "model.l1_size=[1"): "model.l1_size=[1: no viable alternative at input '[1'",
        ("-m", "task=tabular_regression", "model.l1_size=choice()"): "model.l1_size=choice(): ValueError while "
        "evaluating 'choice()': empty choice is not legal",
    }.items():
        message = one_line_error(tmp_project, *args)
        assert message == f"{reason}; the override grammar: https://hydra.cc/docs/1.3/advanced/override_grammar/basic/"


def test_a_value_the_grammar_reads_only_quoted_gets_the_quoted_override_that_works(tmp_project):
    # it was only "LexerNoViableAltException: ...; ^; the override grammar: <url>": the docs had the fix, not the line
    message = one_line_error(tmp_project, "task=anomaly_detection", "+model.rules.fast=trip_distance > 50")
    hint = "to give the value as text, quote it: "
    assert hint + "'+model.rules.fast=\"trip_distance > 50\"';" in message
    quoted = shlex.split(message.split(hint)[1].split(";")[0])  # as the shell hands it to mlexp
    done = run_cli(tmp_project, "task=anomaly_detection", *quoted, "--cfg", "job")
    assert "fast: trip_distance > 50" in done.stdout
    # a value that is quoted already, or a grammar error of another kind, gets no such hint
    assert hint not in one_line_error(tmp_project, "task=tabular_regression", "model.l1_size=[1")
    # spaces around = : quoting them (the old hint, 'model.l1_size =" 8"') failed again
    message = one_line_error(tmp_project, "task=tabular_regression", "model.l1_size = 8")
    assert "; remove the spaces around =: model.l1_size=8;" in message and hint not in message
    # as typed, unquoted: the shell hands mlexp words; Hydra said "model.l1_size: missing EQUAL at '<EOF>'"
    for words in (["model.l1_size", "=", "8"], ["model.l1_size", "=8"], ["model.l1_size=", "8"]):
        assert one_line_error(tmp_project, "task=tabular_regression", *words) == (
            "spaces around = split an override into words; write it without them: model.l1_size=8"
        )
    # `model.l1_size=8, 16` unquoted: the shell hands mlexp `model.l1_size=8,` and `16`
    message = one_line_error(tmp_project, "task=tabular_regression", "model.l1_size=8,", "16")
    assert "a space after a comma split this override in two: write the values without spaces (a,b);" in message


def test_a_misspelt_command_two_modes_or_an_unresolvable_printed_config_are_one_line(tmp_project):
    message = one_line_error(tmp_project, "comapre", "task=tabular_regression")
    assert message.startswith("'comapre' is neither a command nor an override (key=value); did you mean compare? ")
    message = one_line_error(tmp_project, "churn_incentives")
    assert message == "'churn_incentives' is a task, not a command; run it with: mlexp task=churn_incentives"
    assert one_line_error(tmp_project, "help").startswith("the help is a flag: mlexp --help")
    # an empty value: "the value  does not fit", two spaces around nothing
    message = one_line_error(tmp_project, "task=tabular_regression", "model.l1_size=")
    assert message.startswith("model.l1_size=: an empty value does not fit model.l1_size")
    message = one_line_error(tmp_project, "--cfg", "job", "task=tabular_regression", "-m")
    assert message.startswith("-m runs a sweep; --cfg, --info and --run are other modes, and Hydra takes one")
    message = one_line_error(tmp_project, "--cfg", "job", "--resolve", "task=tabular_regression", "model.l1_size=${x}")
    assert message == "model.l1_size: Interpolation key 'x' not found; fix the ${...} it uses"
    message = one_line_error(tmp_project, "--cfg", "job", "task=tabular_regression", "model.epochs=abc")
    assert message.startswith("model.epochs=abc: the value abc does not fit model.epochs")
    message = one_line_error(tmp_project, "--info", "config", "task=tabular_regression", "model.l1_size=8,16")
    assert message.startswith("model.l1_size=8,16 gives several values, and a run takes one")


@pytest.mark.usefixtures("tmp_project_with_store")
def test_m_among_the_overrides_runs_the_sweep(tmp_project):
    done = run_cli(tmp_project, "task=tabular_regression", "-m", "model.l1_size=8,16", *TINY)
    assert "2/2 jobs finished" in done.stdout


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["task=tabular_regression", "model.epochs=-1"], "model.epochs=-1 is out of range: it must be at least 1"),
        # the tracking settings of every task: a negative interval sent every value one by one, 0 values were taken as 1
        (
            ["task=churn_incentives", "tracking.metric_flush_s=-1"],
            "tracking.metric_flush_s=-1 is out of range: it must be at least 0",
        ),
        (
            ["task=tabular_regression", "tracking.metric_buffer=5000"],
            "tracking.metric_buffer=5000 is out of range: it must be between 1 and 1000",
        ),
        (
            ["task=tabular_regression", "model.batch_size=0"],
            "model.batch_size=0 is out of range: it must be at least 1",
        ),
        (
            ["task=tabular_regression", "preprocessing.train_test_split=1.5"],
            "preprocessing.train_test_split=1.5 is out of range: it must be above 0 and below 1",
        ),
        (
            ["task=churn_incentives", "model.decision_threshold=1.5"],
            "model.decision_threshold=1.5 is out of range: it must be between 0 and 1",
        ),
        # the last three: "stage 'incentives' failed: ...", after training
        (
            ["task=churn_incentives", "model.incentives.n_cutoffs=0"],
            "model.incentives.n_cutoffs=0 is out of range: it must be at least 1",
        ),
        (
            ["task=churn_incentives", "model.incentives.budget_fraction=-0.1"],
            "model.incentives.budget_fraction=-0.1 is out of range: it must be at least 0",
        ),
        (
            ["task=churn_incentives", "model.incentives.convincing.inside=0"],
            "model.incentives.convincing.inside=0 is out of range: it must be above 0",
        ),
        # a ValueError in train, and an IndexError for a list of one
        (
            ["task=text_classification", "model.word_ngrams=[1,4]"],
            "model.word_ngrams.1=4 is out of range: it must be between 0 and 3",
        ),
        (
            ["task=text_classification", "model.word_ngrams=[1]"],
            "model.word_ngrams=[1] has 1 item; it takes 2, each between 0 and 3",
        ),
        (
            ["task=tabular_regression", "model.learning_rate=nan"],
            "model.learning_rate=nan is not a finite number: it must be above 0",
        ),
        # "stage 'prepare' failed: ValueError: Seed must be between 0 and 2**32 - 1 (trial ... marked FAILED)"
        (["task=churn_incentives", "seed=-1"], "seed=-1 is out of range: it must be between 0 and 2147483647"),
        # an open-ended range, past what a library takes: "stage 'train' failed: OverflowError: Python int too large
        # to convert to C ssize_t" (MXNet), or XGBoost training for ever on a wrapped C int
        (
            ["task=tabular_regression", f"model.epochs={10**23}"],
            f"model.epochs={10**23} is out of range: it must be at least 1 and at most {2**63 - 1}",
        ),
        (
            ["task=churn_incentives", f"model.num_round={2**63}"],
            f"model.num_round={2**63} is out of range: it must be at least 1 and at most {2**63 - 1}",
        ),
    ],
)
def test_a_setting_out_of_its_range_is_one_line_before_a_trial_opens(tmp_project, args, line):
    done = run_cli(tmp_project, *args, check=False)
    assert done.returncode == 2  # a usage error, as Hydra's: the command's config was refused
    assert done.stderr.strip().splitlines() == [f"mlexp: error: {line}"]
    assert not (tmp_project / "mlflow.db").exists()  # nothing recorded


def test_a_swept_value_out_of_its_range_is_one_line_before_the_sweep_opens(tmp_project, empty_store):
    message = one_line_error(tmp_project, "-m", "task=tabular_regression", "model.epochs=0,5")
    assert message == "model.epochs=0,5: model.epochs=0 is out of range: it must be at least 1"
    # joblib's "ValueError: n_jobs == 0 in Parallel has no meaning" traceback, and a FAILED sweep record
    message = one_line_error(tmp_project, "-m", "task=tabular_regression", "seed=1,2", "sweep.max_parallel_jobs=0")
    assert message == "sweep.max_parallel_jobs=0 is out of range: it must be at least 1"
    # a value every job shares: each job would fail on it
    message = one_line_error(tmp_project, "-m", "task=tabular_regression", "model.epochs=-1", "model.l1_size=8,16")
    assert message == "model.epochs=-1 is out of range: it must be at least 1"
    # an interval that reaches out of the range
    message = one_line_error(
        tmp_project, "-m", "task=tabular_regression", "sweep=tpe", "model.learning_rate=interval(0,0.1)"
    )
    assert message == "model.learning_rate=interval(0,0.1): model.learning_rate=0 is out of range: it must be above 0"
    # a whole-number key searched by a plain interval: each job failed with "Error merging override
    # model.l1_size=24.596027487383836" after the sweep's record opened
    message = one_line_error(
        tmp_project, "-m", "task=tabular_regression", "sweep=random", "model.l1_size=interval(1,64)"
    )
    assert message == (
        "model.l1_size=interval(1,64): model.l1_size takes whole numbers, and interval(...) samples fractions; write "
        "'model.l1_size=int(interval(1,64))'"
    )
    # a log search stays one: the tag is kept around the whole-number interval
    message = one_line_error(
        tmp_project, "-m", "task=tabular_regression", "sweep=random", "model.l1_size=tag(log, interval(8,128))"
    )
    assert message.endswith("write 'model.l1_size=tag(log, int(interval(8,128)))'")
    # Hydra's interval leaves its end out: (0.5, 1) samples splits below 1, which fit (the job runs in the command's
    # process: one at a time)
    seed_store(tmp_project, empty_store)
    config_ok = run_cli(
        tmp_project,
        "-m",
        "task=tabular_regression",
        "sweep=tpe",
        "preprocessing.train_test_split=interval(0.5,1)",
        "sweep.max_jobs=1",
        "sweep.max_parallel_jobs=1",
        *TINY,
    )
    assert "1/1 jobs finished" in config_ok.stdout


def test_a_fixed_value_its_key_cannot_take_beside_swept_ones_is_one_line(tmp_project):
    # Hydra composes the sweep's config before any sweep check runs: its failure is explained as a run's is
    message = one_line_error(tmp_project, "-m", "task=tabular_regression", "model.epochs=abc", "model.l1_size=8,16")
    assert message == (
        "model.epochs=abc: the value abc does not fit model.epochs (Value 'abc' of type 'str' could not be converted "
        "to Integer); give model.epochs a value it accepts"
    )
    # beside a swept group choice too (Hydra composes the sweep's config with the group's default)
    swept_task = ("-m", "task=tabular_regression,churn_incentives", "model.epochs=abc")
    assert one_line_error(tmp_project, *swept_task).startswith("model.epochs=abc: the value abc does not fit")
    # what the checks do not explain is Hydra's own report
    done = run_cli(tmp_project, "-m", "task=tabular_regression", "hydra/launcher=nope", check=False)
    assert done.returncode == 1 and "Could not find 'hydra/launcher/nope'" in done.stderr


def test_flags_are_read_as_argparse_reads_them_abbreviated_attached_or_together():
    assert spelled_out(["--multi", "-cjob", "x=1"]) == ["--multirun", "--cfg=job", "x=1"]
    assert spelled_out(["-mcjob", "--res", "--hel"]) == ["--multirun", "--cfg=job", "--resolve", "--help"]
    # a flag among the overrides: put first with its value (argparse took no override after `--cfg job`)
    assert spelled_out(["task=x", "--cfg", "job", "a=1"]) == ["--cfg=job", "task=x", "a=1"]
    # --info takes a value only when one of its choices follows; else its own default, not the first override
    assert spelled_out(["--info", "task=x"]) == ["--info=all", "task=x"]
    assert spelled_out(["task=x", "-i", "defaults"]) == ["--info=defaults", "task=x"]
    for argv, message in {
        ("--r",): "ambiguous option: --r could match --resolve, --run",
        ("--foo",): "--foo is not a flag of mlexp (--cfg, ",
        ("--multirun=x",): "--multirun=x: --multirun takes no value",
        ("task=x", "--cfg", "jobb"): "--cfg=jobb: --cfg takes one of job, hydra, all",
        ("task=x", "--cfg"): "--cfg needs a value (job, hydra, all)",
    }.items():
        with pytest.raises(MlexpError) as raised:
            spelled_out(list(argv))
        assert str(raised.value).startswith(message), argv


def _hydra_reading(argv: list[str]) -> tuple[dict[str, object], list[str]]:
    """The flags Hydra's own parser sets from `argv` ({argparse dest: value}) and the overrides it leaves."""
    parser = get_args_parser()
    parsed = vars(parser.parse_args(argv))
    overrides = parsed.pop("overrides")
    return {dest: value for dest, value in parsed.items() if value != parser.get_default(dest)}, overrides


def _spelled_reading(spelled: list[str]) -> tuple[dict[str, object], list[str]]:
    """What spelled_out promises, read without argparse: each flag in full with its value, before every override."""
    actions = get_args_parser()._option_string_actions
    flags = list(itertools.takewhile(lambda arg: arg.startswith("--"), spelled))
    read: dict[str, object] = {}
    for flag in flags:
        name, equals, value = flag.partition("=")
        read[actions[name].dest] = value if equals else True
    return read, spelled[len(flags) :]


@pytest.mark.parametrize(
    "argv",
    [
        # a flag after --info is a flag, not an override: was ["--info=all", "-cd", "extra", "task=x"]
        ["--info", "-cd", "extra", "task=x"],
        ["task=x", "--info", "--config-dir", "extra"],
        ["--info", "--config-name", "x", "a=1"],
        ["--info", "--config-n=x", "a=1"],
        ["--info", "-m", "a=1,2"],
        ["--info", "--multi", "a=1"],
        ["--info", "-cjob", "a=1"],
        ["--info", "--resolve"],
        ["-i", "-h"],
        ["--info", "defaults", "-cd", "extra"],
        ["-cd", "extra", "--info"],
        ["--package", "-1", "a=1"],  # argparse reads a negative number as a value
    ],
)
def test_flags_after_info_are_read_as_hydras_parser_reads_them(argv):
    assert _spelled_reading(spelled_out(list(argv))) == _hydra_reading(argv)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        # was ["--config-dir=-m", "a=1"]: no sweep, and Hydra looked for its configs in a folder named -m
        (["-cd", "-m", "a=1"], "--config-dir needs a value"),
        (["--config-name", "--info"], "--config-name needs a value"),
        (["--cfg", "--"], "--cfg needs a value (job, hydra, all)"),
    ],
)
def test_a_flag_where_a_value_should_be_is_refused_as_hydras_parser_refuses_it(argv, message):
    with pytest.raises(SystemExit):  # argparse: "expected one argument"
        get_args_parser().parse_args(argv)
    with pytest.raises(MlexpError) as raised:
        spelled_out(list(argv))
    assert str(raised.value).startswith(message)


def test_flags_after_a_double_dash_are_overrides_as_for_hydras_parser():
    assert spelled_out(["--info", "--", "a=1"]) == ["--info=all", "--", "a=1"]
    assert spelled_out(["-m", "--", "a=1,2"]) == ["--multirun", "--", "a=1,2"]


def test_info_then_a_config_dir_prints_the_config_composed_with_the_folder(tmp_project):
    # was "'../extra' is neither a command nor an override": -cd after --info was read as an override
    extra = tmp_project.parent / "extra"
    (extra / "model").mkdir(parents=True)
    my_net = (REPO / "conf" / "model" / "mlp_regressor.yaml").read_text().replace("l1_size: 32", "l1_size: 12")
    (extra / "model" / "my_net.yaml").write_text(my_net)
    allow_my_net = "task.choices.model=[mlp_regressor,my_net]"
    done = run_cli(tmp_project, "--info", "-cd", "../extra", "task=tabular_regression", allow_my_net, "model=my_net")
    assert f"file://{extra}" in done.stdout  # Hydra's search path
    assert "l1_size: 12" in done.stdout


def test_a_flag_typed_short_or_abbreviated_gets_the_same_checks(tmp_project):
    # these were Hydra's "Only one of --run, --multirun, --cfg ..." traceback, or argparse's usage block
    for args in (
        ("task=tabular_regression", "-m", "-cjob"),
        ("task=tabular_regression", "--multi", "model.l1_size=8,16", "--cfg", "job"),
        ("task=tabular_regression", "-cjob", "model.l1_size=8,16", "-m"),
    ):
        message = one_line_error(tmp_project, *args)
        assert message.startswith("-m runs a sweep; --cfg, --info and --run are other modes"), args
    message = one_line_error(tmp_project, "--foo", "task=tabular_regression")
    assert message.startswith("--foo is not a flag of mlexp (")
    done = run_cli(tmp_project, "-cjob", "task=tabular_regression", "model.epochs=3")
    assert "epochs: 3" in done.stdout
    done = run_cli(tmp_project, "task=tabular_regression", "--cfg", "job", "model.epochs=3")  # argparse's usage block
    assert "epochs: 3" in done.stdout


def test_a_refused_run_leaves_no_run_folder_and_keeps_the_others(tmp_project):
    one_line_error(tmp_project, "task=tabular_regression", "model.epochs=0")
    assert not (tmp_project / "outputs").exists()  # Hydra made outputs/<task>/<time>/.hydra for it
    earlier = tmp_project / "outputs" / "tabular_regression" / "2026-01-01_00-00-00-000000"
    earlier.mkdir(parents=True)
    one_line_error(tmp_project, "task=tabular_regression", "model.epochs=0")
    assert [p.name for p in earlier.parent.iterdir()] == [earlier.name]


def test_a_list_shorter_than_its_declared_items_is_one_line_before_the_trial(tmp_project):
    # was OmegaConf's ConfigIndexError in the detect stage, the trial FAILED
    message = one_line_error(tmp_project, "task=anomaly_detection", "model.figure_size=[12]")
    assert message == "model.figure_size=[12.0] has 1 item; it takes 2, each above 0"
    bounds = {"model.figure_size.0": above(0), "model.figure_size.1": above(0)}
    with pytest.raises(ConfigError, match=r"^model.figure_size=\[\] has no items; it takes 2, each above 0$"):
        check_bounds(OmegaConf.create({"model": {"figure_size": []}}), bounds)
    check_bounds(OmegaConf.create({"model": {"figure_size": [1, 2, 3]}}), bounds)
    check_bounds(OmegaConf.create({"model": {"figure_size": None}}), bounds)  # null: an optional key left out


def test_a_fixed_value_of_a_key_only_some_swept_tasks_have_is_one_line(tmp_project):
    # Hydra applies a sweep's fixed values to the default task first: its report was a block advising `+`
    message = one_line_error(tmp_project, "-m", "task=tabular_regression,churn_incentives", "model.max_depth=4")
    assert message == (
        "model.max_depth=4: model.max_depth is a key of task=churn_incentives, not of task=tabular_regression, and a "
        "sweep gives its fixed values to every job; run one sweep per task, e.g. mlexp -m task=churn_incentives "
        "model.max_depth=4"
    )
    message = one_line_error(tmp_project, "-m", "task=churn_incentives,anomaly_detection", "model.max_dept=4")
    assert message.startswith("model.max_dept is not a key of model; did you mean model.max_depth?")
    # a swept model of one task: the example keeps task= (without it, pasted, it ran a tabular sweep that failed)
    swept = ("-m", "task=text_classification", "model=tfidf_linear,tfidf_naive_bayes", "model.smoothing=0.5")
    assert one_line_error(tmp_project, *swept).endswith(
        "run one sweep per model, e.g. mlexp -m task=text_classification model=tfidf_naive_bayes model.smoothing=0.5"
    )


def test_a_deploy_port_or_alias_that_cannot_work_is_refused_before_training(tmp_project):
    # were OverflowError from bind() and MLflow's "alias name cannot be empty", after the whole trial trained
    message = one_line_error(tmp_project, "task=text_classification", "deploy=local", "deploy.port=99999")
    assert message == "deploy.port=99999 is not a TCP port; give it 1-65535, or 0 for any free one"
    message = one_line_error(tmp_project, "task=tabular_regression", "deploy=registry", "deploy.alias=")
    assert message == "deploy.alias='': Registered model alias name cannot be empty. Give it a name such as champion"
    message = one_line_error(tmp_project, "task=tabular_regression", "deploy=registry", "deploy.alias=latest")
    assert message.startswith("deploy.alias='latest': 'latest' alias name (case insensitive) is reserved.")


def test_a_sweep_of_tasks_or_of_another_tasks_option_is_one_line_before_its_record_opens(tmp_project):
    # both opened the sweep's record: the task sweep left its second task's trial out of it, and ssd failed its job
    message = one_line_error(tmp_project, "-m", "task=tabular_regression,churn_incentives", "seed=1")
    assert message == (
        "task=tabular_regression,churn_incentives: a sweep runs one task (its record, table and best trial are that "
        "task's); run one sweep per task"
    )
    message = one_line_error(tmp_project, "-m", "task=tabular_regression", "model=mlp_regressor,ssd")
    assert message == (
        "model=mlp_regressor,ssd: model='ssd' is not a model option of task 'tabular_regression'; choose among: "
        "mlp_regressor"
    )
    # a glob matches every task's models: the sweep opened, then "Key 'epochs' not in 'DocumentLayout'"
    message = one_line_error(tmp_project, "-m", "task=tabular_regression", "model=glob(*)", "model.epochs=1")
    assert message == (
        "model=glob(*): the glob matches every task's model options, and document_layout, faster_rcnn, "
        "personalize_recipe and 6 more are not options of task 'tabular_regression'; list its own instead: "
        "model=mlp_regressor"
    )
    assert not (tmp_project / "mlflow.db").exists()


def test_the_deploy_stage_without_a_target_is_one_line_before_a_trial_opens(tmp_project):
    # was "stage 'deploy' failed: deploy='none' is not available ...; use registry (trial ... marked FAILED)"
    assert one_line_error(tmp_project, "task=tabular_regression", "stage=deploy") == (
        "stage=deploy with deploy=none deploys nothing: choose deploy=registry (the model of this pipeline run's "
        "evaluated trial), or deploy=local or deploy=sagemaker (serve the registry's champion)"
    )


@pytest.mark.parametrize(
    ("args", "line"),
    [
        # a traceback from the runner's provenance (ConfigAttributeError: Key 'seed' not in 'MlexpConfig'), a FAILED
        # trial
        (["~seed"], "~seed: seed is a setting mlexp reads, so it cannot be deleted; give it a value (seed=<value>)"),
        # Hydra's "Error merging override ~model.epochs", with no reason
        (
            ["~model.epochs"],
            "~model.epochs: model.epochs is a setting mlexp reads, so it cannot be deleted; give it a value "
            "(model.epochs=<value>)",
        ),
        (
            ["~dataset.n_rows"],
            "~dataset.n_rows: dataset.n_rows is a setting mlexp reads, so it cannot be deleted; give it a value "
            "(dataset.n_rows=<value> or null)",
        ),
        (
            ["~task"],
            "~task: every run composes a task option, so it cannot be deleted; choose another with task=<option>",
        ),
        # in a sweep: Hydra's error and its HYDRA_FULL_ERROR advice, exit 1
        (
            ["-m", "~seed", "model.l1_size=8,16"],
            "~seed: seed is a setting mlexp reads, so it cannot be deleted; give it a value (seed=<value>)",
        ),
    ],
)
def test_deleting_a_setting_mlexp_reads_is_one_line_before_a_trial_opens(tmp_project, args, line):
    flags = [a for a in args if a == "-m"]
    assert one_line_error(tmp_project, *flags, "task=tabular_regression", *(a for a in args if a != "-m")) == line


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["model=null"], "model=null: every run composes a model option, so it cannot be null"),
        (
            ["-m", "model=null,mlp_regressor"],
            "model=null,mlp_regressor: every run composes a model option, so it cannot be null",
        ),  # fmt: skip
        (["model=true"], "model=true is not a model option"),
        (["-m", "model=mlp_regressor,3"], "model=3 is not a model option (in model=mlp_regressor,3)"),
    ],
)
def test_a_config_group_set_to_null_or_a_number_is_one_line_naming_its_options(tmp_project, args, line):
    # was two chained ValueError tracebacks: "Config group override must be a string or a list. Got NoneType"
    flags = [a for a in args if a == "-m"]
    said = one_line_error(tmp_project, *flags, "task=tabular_regression", *(a for a in args if a != "-m"))
    assert said == f"{line}; choose one of: mlp_regressor"


def test_a_group_the_task_does_not_have_set_to_null_names_the_tasks_that_have_it(tmp_project):
    # "every run composes an engine option": tabular_regression composes none
    assert one_line_error(tmp_project, "task=tabular_regression", "engine=null") == (
        "task 'tabular_regression' has no engine group (engine belongs to tasks anomaly_detection, "
        "document_extraction); remove engine=null"
    )


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["hydra.job.chdir=abc"],
            "hydra.job.chdir=abc: the value abc does not fit hydra.job.chdir (Value 'abc' is "
            "not a valid bool (type str)); give hydra.job.chdir a value it accepts",
        ),
        (["hydra.nope=1"], "hydra.nope=1: hydra.nope is not one of Hydra's settings; `mlexp --cfg hydra` prints them"),
        (["~hydra.run"], "~hydra.run: Hydra's settings cannot be deleted; give hydra.run a value instead"),
        (
            ["-m", "seed=1,2", "hydra.sweeper.nope=1"],
            "hydra.sweeper.nope=1: hydra.sweeper.nope is not one of Hydra's settings; `mlexp --cfg hydra` prints them",
        ),
        # a free-form section takes the key with +, as Hydra's own report said
        (
            ["hydra.job.env_set.FOO=bar"],
            "hydra.job.env_set.FOO=bar: hydra.job.env_set.FOO is not in the config yet; add it with "
            "+hydra.job.env_set.FOO=bar",
        ),
        # Hydra's runtime values are interpolations or ??? while composing: read unresolved (an exception escaped)
        (
            ["hydra.sweep.subdir=x", "hydra.runtime.output_dir=y", "hydra.job.chdir=abc"],
            "hydra.job.chdir=abc: the value abc does not fit hydra.job.chdir (Value 'abc' is not a valid bool (type "
            "str)); give hydra.job.chdir a value it accepts",
        ),
    ],
)
def test_a_wrong_hydra_setting_is_one_line(tmp_project, args, line):
    # Hydra's "Error merging override ..." block with its HYDRA_FULL_ERROR advice, exit 1
    flags = [a for a in args if a == "-m"]
    assert one_line_error(tmp_project, *flags, "task=tabular_regression", *(a for a in args if a != "-m")) == line


def test_a_list_of_a_groups_options_is_one_line_offering_the_sweep(tmp_project):
    # Hydra's "Could not load 'task/b'" block for an unknown one; two known tasks ran the last one, without a word
    assert one_line_error(tmp_project, "task=[tabular_regression,churn_incentives]") == (
        "task=[tabular_regression,churn_incentives]: a run composes one task, not a list; run one command per task"
    )
    assert one_line_error(tmp_project, "task=object_detection", "model=[ssd,yolo3]") == (
        "model=[ssd,yolo3]: model takes one option, not a list; to run each, add -m and write model=ssd,yolo3"
    )


def test_adding_a_group_the_run_composes_already_is_one_line(tmp_project):
    # Hydra's "Multiple values for model. To override a value use 'override model: ssd'" and its HYDRA_FULL_ERROR
    # advice, exit 1; `++model=` was "force-add of config groups is not supported"
    assert one_line_error(tmp_project, "task=object_detection", "+model=yolo3") == (
        "+model=yolo3: every run of this task composes a model option already; choose another with model=yolo3 (no +)"
    )
    assert one_line_error(tmp_project, "task=anomaly_detection", "+engine=athena") == (
        "+engine=athena: every run of this task composes an engine option already; choose another with engine=athena "
        "(no +)"
    )
    assert one_line_error(tmp_project, "task=tabular_regression", "++model=mlp_regressor") == (
        "++model=mlp_regressor: ++ adds keys, not a group's option; choose the option with model=<option>"
    )


def test_an_entry_of_a_free_form_section_may_still_be_deleted(tmp_project):
    # anomaly's rules are a dict of the user's: `~model.rules.too_long` drops one (then model.enabled must not name it)
    message = one_line_error(tmp_project, "task=anomaly_detection", "~model.rules.too_long")
    assert message.startswith("model.enabled=[unparsable_timestamp, non_positive_duration, too_long]: each name in")


def test_adding_a_key_to_a_section_of_fixed_settings_is_one_line_before_a_trial_opens(tmp_project):
    # churn's +model.num_rund=3 ran with the default 100 rounds (recorded as a param); abalone's +model.foo failed
    # its train stage with a TypeError; both followed the old "write +model.num_rund=..." hint
    message = one_line_error(tmp_project, "task=churn_incentives", "+model.num_rund=3")
    assert message.startswith(
        "+model.num_rund: model holds a fixed set of settings, and num_rund is not one of them (the code that reads "
        "them would ignore or refuse it); did you mean model.num_round? its settings: decision_threshold, eta,"
    )
    message = one_line_error(tmp_project, "task=tabular_regression", "+model.rules.fast=x")
    assert message.startswith("+model.rules.fast: model holds a fixed set of settings, and rules is not one of them")
    # ++ (which Hydra's own line for +model.epochs suggests) adds the same way
    message = one_line_error(tmp_project, "task=tabular_regression", "++model.foo=1")
    assert message.startswith("++model.foo: model holds a fixed set of settings, and foo is not one of them")
    # a misspelt key of such a section no longer suggests adding it with +
    message = one_line_error(tmp_project, "task=churn_incentives", "model.num_rund=3")
    assert message.startswith("model.num_rund is not a key of model; did you mean model.num_round?")
    assert "+model.num_rund" not in message


def test_an_empty_value_gets_no_did_you_mean():
    # every option starts with "": solution.event_type='' was asked "did you mean click?"
    assert did_you_mean("", ["click", "watch"]) == ""
    assert did_you_mean("wach", ["click", "watch"]) == "did you mean watch? "


def test_a_value_left_as_question_marks_is_named_with_the_fix(tmp_project):
    # before: "model.l2_size is not a key of model; did you mean model.l2_size?", and a sweep's job failed training
    # on the text '???' (TypeError, traceback in the trial's error.txt)
    line = (
        "model.l2_size is ???, OmegaConf's mark for a value still to give, and a run needs one: give it a value "
        "(model.l2_size=<value>)"
    )
    assert one_line_error(tmp_project, "task=tabular_regression", "model.l2_size=???") == line
    sweep = ("-m", "task=tabular_regression", *TINY, "stage=prepare", "model.l2_size=???,4")
    done = run_cli(tmp_project, *sweep, check=False)
    assert done.returncode == 1 and f"  job 0: {line}\n" in done.stderr, done.stderr


def test_looking_for_question_marks_resolves_nothing():
    # OmegaConf.missing_keys resolves every ${...}: a ${hydra:...} value, resolvable only in the job, would raise
    check_given(OmegaConf.create({"tracking": {"experiment_name": "${hydra:runtime.choices.model}"}}))
    with pytest.raises(ConfigError, match=r"^model.sizes.1 is \?\?\?"):
        check_given(OmegaConf.create({"model": {"sizes": [1, "???"], "name": "${hydra:job.name}"}}))


# a search without a finite end, and the finite range its refusal offers instead
ENDLESS_SEARCHES = {
    # the example started at -100: following it met "model.l1_size=-100 is out of range: it must be at least 1"
    "model.l1_size=int(interval(-inf, 8))": "model.l1_size=int(interval(1, 8))",
    # an end outside the key's range too: the example was the backwards interval(1, -5)
    "model.l1_size=int(interval(-inf, -5))": "model.l1_size=int(interval(1, 100))",
    "tracking.metric_buffer=int(interval(-inf, inf))": "tracking.metric_buffer=int(interval(1, 100))",
    # and ended at 10000000000, past the seeds NumPy takes
    "seed=int(interval(2000000000, inf))": "seed=int(interval(2000000000, 2147483647))",
}


def test_the_finite_ranges_offered_for_endless_integer_searches_are_ones_the_sweep_runs(tmp_project, empty_store):
    sweep = ("-m", "task=tabular_regression", "sweep=random", "sweep.max_jobs=1")
    for search, offered in ENDLESS_SEARCHES.items():
        message = one_line_error(tmp_project, *sweep, search)
        assert message.endswith(f", e.g. '{offered}'"), message
    # the offered ranges of different keys searched together, one sweep per range of model.l1_size: a range the sweep
    # cannot run fails its one job; the job runs in the command's process (one at a time), sampled and trained as a
    # worker's would be
    runs = (
        (
            "model.l1_size=int(interval(1, 8))",
            "tracking.metric_buffer=int(interval(1, 100))",
            "seed=int(interval(2000000000, 2147483647))",
        ),
        ("model.l1_size=int(interval(1, 100))",),
    )
    assert sorted(offered for run in runs for offered in run) == sorted(ENDLESS_SEARCHES.values())
    seed_store(tmp_project, empty_store)
    for offered in runs:
        done = run_cli(tmp_project, *sweep, "sweep.max_parallel_jobs=1", *TINY, *offered)
        assert "1/1 jobs finished" in done.stdout
