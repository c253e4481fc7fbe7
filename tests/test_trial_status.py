"""Status you can trust: KILLED on Ctrl-C, FAILED never hidden, a stage joins only its own pipeline run's trial."""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import math
import os
import re
import shutil
import signal
import subprocess
import time
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from mlflow.entities import RunStatus
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf, open_dict

from conftest import (
    REPO,
    TINY,
    cli_env,
    composed_with_hydra,
    run_cli,
    seed_store,
    start_cli,
    stop_process_group,
    store_client,
    trials_of,
)
from mlexp.compare import TrialRow, best_first
from mlexp.config import make_composable
from mlexp.errors import ConfigError
from mlexp.sweeps.checks import check_shared_interpolations, check_sweep_values
from mlexp.sweeps.search_space import check_search_space
from mlexp.tracking import tags
from mlexp.tracking.journal import journals_root
from mlexp.tracking.trial_state import read_trial_state

# the tests about anything but a store's first set-up start with the project's store in place
STORE_EXISTS = pytest.mark.usefixtures("tmp_project_with_store")


def _stage(project, stage, pipeline_run, *extra, check=True):
    """One stage as DVC runs it: its own process, the pipeline run's id in the environment."""
    env = {**cli_env(project), "MLEXP_PIPELINE_RUN": pipeline_run}
    folders = [f"paths.{name}={project / name / 'tabular_regression'}" for name in ("data", "models", "reports")]
    return run_cli(project, "task=tabular_regression", f"stage={stage}", *folders, *TINY, *extra, env=env, check=check)


def _tiny_trial_config(project, monkeypatch):
    """An abalone trial's config for runner.run in this process, in the project's own store and folders."""
    monkeypatch.setenv("MLEXP_ROOT", str(project))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # the test's own store, never a developer's server
    make_composable()
    with initialize_config_dir(config_dir=str(project / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["task=tabular_regression", *TINY])
    for name in ("data", "models", "reports"):
        cfg.paths[name] = str(project / "out" / name)
    return cfg


@STORE_EXISTS
def test_an_error_while_recording_provenance_goes_on_as_it_is_with_the_trial_failed(tmp_project, monkeypatch):
    from mlexp import runner

    def broken(*arguments):
        raise RuntimeError("no provenance")

    monkeypatch.setattr(runner, "_record_provenance", broken)
    with pytest.raises(RuntimeError, match="no provenance"):
        runner.run(_tiny_trial_config(tmp_project, monkeypatch), runner.JobContext(choices={}, overrides=[]))
    [trial] = trials_of(tmp_project)  # closed, not left RUNNING with its journal open (a sweep would wait on it)
    assert trial.status == "FAILED" and not trial.components


@STORE_EXISTS
@pytest.mark.parametrize(
    ("launcher", "presses", "training"),
    [
        (("model.l1_size=4,8,16",), 1, 1),
        # Ctrl-C held or pressed again: the later presses interrupted the closing, which left the sweep's record and
        # its trials RUNNING (2 runs of 2) behind a KeyboardInterrupt traceback; pressed once both workers train
        (("sweep=grid", "sweep.max_parallel_jobs=2", "model.l1_size=4,8,16"), 3, 2),
    ],
    ids=["one-at-a-time", "joblib-parallel-pressed-3-times"],
)
def test_ctrl_c_stops_a_sweep_with_exit_130_and_marks_it_killed(tmp_project, launcher, presses, training):
    # long trials; Ctrl-C reaches the whole process group, as from a terminal
    process, _ = _start_long_training(tmp_project, "-m", *launcher, training=training)
    with contextlib.suppress(ProcessLookupError):  # the process group is gone when the sweep already ended
        for _ in range(presses):
            os.killpg(process.pid, signal.SIGINT)
            time.sleep(0.05)
    try:
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:  # a sweep that ignored Ctrl-C must not keep training for 100000 epochs
            stop_process_group(process)
    assert process.returncode == 130, stderr
    trials = trials_of(tmp_project)
    # the sweep stopped: no trial after the interrupted ones, and none left RUNNING
    assert len(trials) == training and {t.status for t in trials} == {"KILLED"}
    client = store_client(tmp_project)
    assert {client.get_run(run_id).info.status for t in trials for run_id in t.components.values()} <= {
        "FINISHED",
        "KILLED",
    }
    sweeps = client.search_runs([client.get_experiment_by_name("tabular_regression-sweeps").experiment_id])
    assert [s.info.status for s in sweeps] == ["KILLED"]
    assert "Traceback" not in stderr
    # the command's last line names the sweep it closed and the killed trials no other line named: parallel workers
    # stop before they can say which trial they ran; a sequential sweep's trial said it (it was named twice)
    sweep = f"sweep {sweeps[0].info.run_name} (id {sweeps[0].info.run_id})"
    lines = stderr.strip().splitlines()
    if presses == 1:
        [trial] = trials
        assert lines[-2:] == [
            f"[{trial.name}] interrupted: trial {trial.run_id} marked KILLED",
            f"mlexp: interrupted (Ctrl-C); {sweep} marked KILLED",
        ]
    else:
        names = sorted(t.name for t in trials)
        killed = f"its trial{'s' if len(names) > 1 else ''} {', '.join(names)}"
        assert lines[-1] == f"mlexp: interrupted (Ctrl-C); {sweep} and {killed} marked KILLED"


def _start_long_training(project, *args: str, training: int = 1) -> tuple[subprocess.Popen, bool]:
    """`mlexp` training abalone for 100000 epochs, returned once `training` trials train (each has logged an epoch,
    past its libraries' loading: observed, not timed), or the command ended by itself, or 300 s passed; and whether
    they train."""
    process = start_cli(
        project,
        *args,
        *("task=tabular_regression", "dataset.n_rows=300", "model.epochs=100000"),
        # the first epoch's loss reaches the journal a tenth of a second after it, not 5 s (the default) of full-speed
        # training later; values still wait on the flusher thread between sends, as they do when Ctrl-C comes
        "tracking.metric_flush_s=0.1",
        # as from a terminal: a suite started in the background (`make test &`) passes on SIGINT ignored
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None and _trials_training(project) < training:
        time.sleep(0.2)
    return process, _trials_training(project) >= training


def _trials_training(project) -> int:
    """Trials whose training logged an epoch, read from their journals: the trial's own record, not the store's. The
    shared tracking writer stores it later when the two training jobs and the other tests keep the cores busy (it
    waited 60-140 s behind them), and this test is about Ctrl-C, not about the store keeping up."""
    training = 0
    for ops in journals_root(project).glob("*/ops.jsonl"):
        try:
            lines = ops.read_text().splitlines()
        except OSError:  # a journal being renamed as it is made, or deleted as it is stored
            continue
        for line in lines:
            with contextlib.suppress(json.JSONDecodeError):  # a line being written
                record = json.loads(line)
                if record.get("op") == "log_batch" and any(m[0] == "train_loss" for m in record.get("metrics", ())):
                    training += 1
                    break
    return training


@STORE_EXISTS
def test_stages_of_one_pipeline_run_share_a_trial_and_another_run_opens_its_own(tmp_project):
    for stage in ("prepare", "train", "evaluate"):
        _stage(tmp_project, stage, "repro-1")
    [trial] = trials_of(tmp_project)
    assert trial.status == "FINISHED"
    assert trial.component_names == {"Pre-processing", "Training", "Evaluation"}
    # the last stage's metrics.json holds what the stages before it logged (it learns them with the trial's state)
    headline = json.loads((tmp_project / "reports" / "tabular_regression" / "metrics.json").read_text())
    assert headline["final_train_loss"] == pytest.approx(trial.metrics["final_train_loss"])
    assert headline["test_msle"] == pytest.approx(trial.metrics["test_msle"])
    # later, a forced repro of evaluate alone, its metrics.json broken meanwhile: it must not join the first trial,
    # and it writes the file anew
    metrics = tmp_project / "reports" / "tabular_regression" / "metrics.json"
    metrics.write_text("{bad\n")
    done = _stage(tmp_project, "evaluate", "repro-2")
    assert "did not run in this pipeline run; it opens a new trial" in done.stdout
    assert "test_msle" in json.loads(metrics.read_text())
    trials = {t.run_id: t for t in trials_of(tmp_project)}
    assert len(trials) == 2
    assert trials[trial.run_id].component_names == {"Pre-processing", "Training", "Evaluation"}
    [new] = [t for t in trials.values() if t.run_id != trial.run_id]
    assert new.component_names == {"Evaluation"} and new.status == "FINISHED"


def test_a_trial_whose_experiment_name_now_means_another_experiment_is_not_continued(tmp_path, empty_store):
    """A marker finds its trial by experiment name: renamed or deleted since, the name no longer leads to it."""
    seed_store(tmp_path, empty_store)
    client = store_client(tmp_path)
    experiment = client.create_experiment("tabular_regression")
    trial = client.create_run(experiment).info.run_id
    client.set_terminated(trial)
    child = client.create_run(experiment, tags={tags.MLFLOW_PARENT_RUN_ID: trial, tags.STAGE: "prepare"})
    client.log_metric(trial, "rows", 3.0)
    state = read_trial_state(client, trial, "tabular_regression")
    assert state is not None and state.in_experiment and state.status == "FINISHED"
    assert state.components == {"prepare": "RUNNING"} and state.metrics == {"rows": 3.0}
    client.rename_experiment(experiment, "tabular_regression-2025")
    client.create_experiment("tabular_regression")
    assert not read_trial_state(client, trial, "tabular_regression").in_experiment
    client.delete_experiment(experiment)
    assert not read_trial_state(client, trial, "tabular_regression-2025").in_experiment
    assert read_trial_state(client, child.info.run_id + "0", "tabular_regression") is None


@pytest.fixture(scope="module")
def prepared_project(tmp_path_factory, empty_store):
    """A project where stage prepare ran under pipeline run repro-1, shared by the two tests that continue it.

    Neither changes what the other finds: one continues the trial in the project's store, the other runs its
    stage against another store.
    """
    project = tmp_path_factory.mktemp("prepared") / "project"
    shutil.copytree(REPO / "conf", project / "conf")
    seed_store(project, empty_store)
    _stage(project, "prepare", "repro-1")
    return project


def test_a_trial_with_a_failed_component_is_never_continued_or_closed_finished(prepared_project):
    tmp_project = prepared_project
    failed = _stage(tmp_project, "train", "repro-1", "model.learning_rate=1e30", check=False)
    assert failed.returncode == 1
    [trial] = trials_of(tmp_project)
    assert trial.status == "FAILED"
    # the stage retried under the same pipeline run: a new trial, the old one stays FAILED
    done = _stage(tmp_project, "train", "repro-1")
    assert f"trial {trial.name} ended FAILED; opening a new trial" in done.stdout
    statuses = {t.run_id: t.status for t in trials_of(tmp_project)}
    assert statuses[trial.run_id] == "FAILED" and len(statuses) == 2


def test_a_marker_from_another_tracking_store_starts_a_new_trial_without_a_traceback(prepared_project, tmp_path):
    tmp_project = prepared_project
    other = f"sqlite:///{tmp_path / 'other.db'}"
    done = _stage(tmp_project, "train", "repro-1", f"tracking.uri={other}")
    assert "Traceback" not in done.stderr
    assert "opens a new trial" in done.stdout
    [trial] = trials_of(tmp_project, client=MlflowClient(tracking_uri=other))
    assert trial.component_names == {"Training"}


def _row(name: str, status: str, value: float) -> TrialRow:
    return TrialRow(run_id=name, name=name, status=status, params={}, metrics={"m": value})


@pytest.mark.parametrize(("direction", "order"), [("minimize", ["b", "a", "c"]), ("maximize", ["c", "a", "b"])])
def test_best_first_follows_the_direction_and_puts_failed_and_unscored_trials_last(direction, order):
    rows = [
        _row("failed", "FAILED", 0.0),
        _row("a", "FINISHED", 2.0),
        _row("nan", "FINISHED", math.nan),
        _row("b", "FINISHED", 1.0),
        _row("killed", "KILLED", 5.0),
        _row("c", "FINISHED", 3.0),
    ]
    ranked = [row.name for row in best_first(rows, "m", direction)]
    assert ranked[:3] == order
    assert set(ranked[3:]) == {"failed", "nan", "killed"}


def test_sweep_combinations_that_cannot_work_are_refused_before_any_trial(tmp_project):
    cases = {
        ("task=tabular_regression", "sweep=tpe"): "has no search space",
        ("task=tabular_regression", "sweep=grid", "sweep.max_jobs=3", "model.l1_size=4,8"): (
            "sweep.max_jobs caps random and Bayesian searches"
        ),
        ("task=object_detection", "deploy=local", "model.lr=0.1,0.2"): "deploy=local serves one model until stopped",
    }
    for args, message in cases.items():
        done = run_cli(tmp_project, "-m", *args, check=False)
        assert done.returncode == 2, done.stderr
        assert message in done.stderr
    assert not (tmp_project / "mlflow.db").exists() or not trials_of(tmp_project, "tabular_regression")


@STORE_EXISTS
def test_a_sweep_point_that_fails_before_its_trial_opens_fails_the_sweep(tmp_project):
    done = run_cli(
        tmp_project, "-m", "task=tabular_regression", "params_file=missing.yaml,also-missing.yaml", check=False
    )
    assert done.returncode == 1
    assert "2 job(s) of sweep" in done.stderr and "missing.yaml does not exist" in done.stderr
    client = store_client(tmp_project)
    [sweep] = client.search_runs([client.get_experiment_by_name("tabular_regression-sweeps").experiment_id])
    assert sweep.info.status == RunStatus.to_string(RunStatus.FAILED)


@STORE_EXISTS
def test_a_sweep_value_its_key_cannot_take_is_one_line_before_the_sweep_opens_a_record(tmp_project):
    cases = {
        "model.l1_size=4,not-a-number": "the value not-a-number does not fit model.l1_size (Value 'not-a-number' of "
        "type 'str' could not be converted to Integer)",
        "model.l1_activation=relu,swish": "the value swish does not fit model.l1_activation (Invalid value 'swish', "
        "expected one of [relu, tanh, sigmoid, softrelu, softsign])",
    }
    lines = {
        override: f"{override}: {reason}; give {override.split('=')[0].lstrip('+')} values it accepts"
        for override, reason in cases.items()
    }
    lines["++model.l1_size=4,abc"] = (
        "++model.l1_size=4,abc: the value abc does not fit model.l1_size (Value 'abc' of type 'str' could not be "
        "converted to Integer); give model.l1_size values it accepts"
    )
    lines["+model.l1_size=4,8"] = (
        "+model.l1_size=4,8: model.l1_size is in the config already, so + cannot add it; sweep it without the +: "
        "model.l1_size=4,8"
    )
    lines["model.l1_size=interval(4,8)"] = (  # Hydra's grid would stop with a traceback
        "model.l1_size=interval(4,8): a grid runs listed values, and an interval lists none; give values "
        "(model.l1_size=a,b or model.l1_size=range(start,stop,step)), or search the interval with sweep=random or "
        "sweep=tpe"
    )
    lines["sweep=tpe model.learning_rate=interval(0.1,0.01)"] = (  # Optuna's sweeper would stop with a traceback
        "model.learning_rate=interval(0.1,0.01): The `low` value must be smaller than or equal to the `high` value "
        "(low=0.1, high=0.01); give a search the sweeper can run"
    )
    for overrides, line in lines.items():
        done = run_cli(tmp_project, "-m", "task=tabular_regression", *TINY, *overrides.split(" "), check=False)
        assert done.returncode == 2, done.stderr
        assert done.stderr.strip().splitlines() == [f"mlexp: error: {line}"]
    assert store_client(tmp_project).get_experiment_by_name("tabular_regression-sweeps") is None
    # the README's: a sweep file written for another task
    done = run_cli(tmp_project, "-m", "task=anomaly_detection", "sweep=abalone_architectures", check=False)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "mlexp: error: hydra.sweeper.params of sweep=abalone_architectures: model.l1_size is not a key of model; "
        "valid keys: dst_fall_back_max_minutes, enabled, figure_size, flagged_rows_max, histogram_bins_per_decade, "
        "iqr_k, max_duration_hours, max_speed_mph, min_duration_seconds, robust_z_max, rules, top_n, "
        "zero_distance_max_minutes; sweep=abalone_architectures searches keys task anomaly_detection does not have: "
        "choose a sweep made for task anomaly_detection, or give the search on the command line"
    ]
    assert store_client(tmp_project).get_experiment_by_name("anomaly_detection-sweeps") is None


@functools.cache
def _composed(overrides: tuple[str, ...]) -> Any:
    return composed_with_hydra(REPO, "task=tabular_regression", *overrides)


def _sweep_config(*overrides: str) -> Any:
    """The command's config for `overrides`, Hydra's node included: composed once per test process (each compose
    costs a fifth of a second), a copy of its own for each test, which changes it."""
    return copy.deepcopy(_composed(overrides))


def test_a_plus_sweep_of_a_null_key_is_left_to_run():
    config = _sweep_config()
    config.hydra.overrides.task = ["+dataset.n_rows=200,300"]  # null by default: Hydra adds each value
    check_sweep_values(config)


def test_sweep_values_only_each_job_can_judge_are_left_to_the_jobs():
    config = _sweep_config()
    # a ${...} naming another swept key (only a job's config has it), a + override (Hydra's to judge)
    config.hydra.overrides.task = ["+base=8,16", "model.l1_size=${base},4", "+model.l2=a,b"]
    check_sweep_values(config)
    config.hydra.overrides.task = ["+base=8,16", "model.l1_size=${base},x"]
    with pytest.raises(ConfigError, match="the value x does not fit model.l1_size"):
        check_sweep_values(config)


def test_a_sweep_files_own_values_are_checked_unless_the_command_gives_the_key():
    config = _sweep_config("sweep=abalone_architectures")
    config.hydra.overrides.task = ["task=tabular_regression", "sweep=abalone_architectures"]
    check_sweep_values(config)  # the shipped search space fits
    config.hydra.sweeper.params["model.l1_size"] = "16,abc"
    expected = "hydra.sweeper.params of sweep=abalone_architectures: model.l1_size=16,abc: the value abc does not fit"
    with pytest.raises(ConfigError, match=expected):
        check_sweep_values(config)
    config.hydra.overrides.task.append("model.l1_size=4,8")  # the command's values replace the file's
    check_sweep_values(config)
    config.hydra.overrides.task[-1] = "++model.l1_size=32"  # another key to the sweeper: each job gets both
    with pytest.raises(ConfigError, match=expected):
        check_sweep_values(config)
    config.hydra.overrides.task[-1] = "model.l1_size=4,8"
    config.hydra.overrides.task.append("model.l1_activation=glob(re*)")  # a glob: only Hydra can list it
    check_sweep_values(config)


def test_a_sweep_file_written_for_another_task_is_refused_naming_the_key_it_lacks():
    config = _sweep_config("sweep=abalone_architectures")
    config.hydra.overrides.task = ["task=tabular_regression", "sweep=abalone_architectures"]
    params = config.hydra.sweeper.params
    with open_dict(params):
        params["+model.extra"] = "1,2"  # `+` adds a key: any task may
        check_sweep_values(config)
        params["model.l1_sise"] = "1,2"
    with pytest.raises(ConfigError) as refused:
        check_sweep_values(config)
    assert str(refused.value).startswith(
        "hydra.sweeper.params of sweep=abalone_architectures: model.l1_sise is not a key of model; did you mean "
        "model.l1_size? valid keys: "
    )
    assert str(refused.value).endswith(
        "; sweep=abalone_architectures searches keys task tabular_regression does not have: choose a sweep made for "
        "task tabular_regression, or give the search on the command line"
    )
    # the abalone sweep with the taxi task: the README's example
    config = _sweep_config("task=anomaly_detection", "sweep=abalone_architectures")
    config.hydra.overrides.task = ["task=anomaly_detection", "sweep=abalone_architectures"]
    with pytest.raises(ConfigError, match="^hydra.sweeper.params of sweep=abalone_architectures: model.l1_size is not"):
        check_sweep_values(config)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.l1_size=range(1,5,0)"], "model.l1_size=range(1,5,0): range() arg 3 must not be zero; give a search"),
        (["model.l1_size=range(5,1)"], "model.l1_size=range(5,1) lists no values, so the grid would run no trial"),
        (["sweep=tpe", "model.l1_size=range(1,5,0)"], "The `step` value must be non-zero positive value"),
        (["sweep=tpe", "model.learning_rate=tag(log,interval(0,0.1))"], "must be larger than 0 for a log"),
        (["sweep=tpe", "model.l1_activation=glob(re*)"], "Optuna's sweeper searches choice(...), range(...) and"),
        (["sweep=random", "sweep.max_jobs=0", "model.l1_size=4,8"], "sweep.max_jobs=0: a search runs sweep.max_jobs"),
        (["sweep=random", "hydra.sweeper.n_trials=0", "model.l1_size=4,8"], "hydra.sweeper.n_trials=0: Optuna's"),
    ],
)
def test_a_search_its_sweeper_cannot_run_is_refused_before_the_record_opens(overrides, message):
    sweep = [o for o in overrides if o.startswith("sweep=")]
    config = _sweep_config(*sweep, *(o for o in overrides if o.startswith(("sweep.", "hydra."))))
    config.hydra.overrides.task = ["task=tabular_regression", *overrides]
    with pytest.raises(ConfigError, match=re.escape(message)):
        check_search_space(config)
    # the same search made runnable passes
    config.hydra.overrides.task = ["task=tabular_regression", *sweep, "model.l1_size=range(1,5)"]
    if "n_trials" in config.hydra.sweeper:  # Optuna's
        config.hydra.sweeper.n_trials = 2
    check_search_space(config)


def test_a_check_that_breaks_ends_the_sweep_in_one_line_rather_than_running_it_unrecorded(monkeypatch):
    from mlexp.sweeps import recorder

    def broken(config):
        raise KeyError("surprise")

    monkeypatch.setattr(recorder, "check_sweep", broken)
    with pytest.raises(SystemExit) as ended:
        recorder.SweepRecorder().on_multirun_start(_sweep_config())
    assert ended.value.code == 2  # Hydra only warns about a callback's error, and would run the sweep with no record


def _judged(config, values: dict[str, Any], swept: list[str]) -> None:
    trial = config.copy()
    for key, value in values.items():
        OmegaConf.update(trial, key, value, force_add=True)
    trial.hydra.overrides.task = swept
    check_shared_interpolations(trial)


def test_an_interpolation_no_job_can_resolve_is_refused(monkeypatch):
    monkeypatch.delenv("NOPE_VAR", raising=False)
    config = _sweep_config()
    refused = {
        "model.l2_size: Interpolation key 'nope' not found; fix the ${...} it uses": {"model.l2_size": "${nope}"},
        "Environment variable 'NOPE_VAR' not found": {"tracking.experiment_name": "${oc.env:NOPE_VAR}"},
        # found past an error each job reports itself (a wrong type, in a key looked at first)
        "model.l2_activation: Interpolation key 'nope' not found": {
            "model.l2_size": "${task.name}",
            "model.l2_activation": "${nope}",
        },
    }
    for message, values in refused.items():
        with pytest.raises(ConfigError, match=re.escape(message)):
            _judged(config, values, ["model.l1_size=4,8"])
    # in what the sweep's thread share reads: named in the same line, not an error of the check's own
    with pytest.raises(ConfigError, match=re.escape("compute.num_threads: Interpolation key 'nope' not found")):
        _judged(config, {"compute.num_threads": "${nope}"}, ["model.l1_size=4,8"])


def test_an_interpolation_a_job_may_resolve_is_left_to_the_jobs(monkeypatch):
    for name in ("NOPE_VAR", "OMP_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    config = _sweep_config()
    for swept in (
        ["model.l2_size=4,8"],  # each job replaces it
        ["+nope=4,8"],  # each job adds the key it names
        ["model.l1_size=4,${nope}"],  # a ${...} value: only a job's config holds what it names
        ["model.l1_size=4,8", "model=mlp_regressor,mlp_regressor"],  # a swept group choice may bring the key
    ):
        _judged(config, {"model.l2_size": "${nope}"}, swept)
    # through a swept key: each job's value resolves it
    _judged(
        config,
        {"deploy.model_name": "${nope}", "compute.base_job_name": "${deploy.model_name}"},
        ["deploy.model_name=a,b"],
    )
    # variables a job gets and the sweep's process has not: hydra.job.env_set, the thread share
    _judged(
        config,
        {"hydra.job.env_set": {"NOPE_VAR": "set"}, "tracking.experiment_name": "${oc.env:NOPE_VAR}"},
        ["model.l1_size=4,8"],
    )
    _judged(
        config,
        {"compute.num_threads": "1", "tracking.experiment_name": "${oc.env:OMP_NUM_THREADS}"},
        ["model.l1_size=4,8"],
    )
    _judged(config, {"tracking.experiment_name": "${oc.env:MLEXP_SWEEP_ID}"}, ["model.l1_size=4,8"])
    assert "NOPE_VAR" not in os.environ and "MLEXP_SWEEP_ID" not in os.environ  # this process's are left alone
    # a wrong type, and a refusal of mlexp's own resolvers: each job says it in its own line
    _judged(config, {"model.l2_size": "${task.name}"}, ["model.l1_size=4,8"])
    monkeypatch.delenv("MLEXP_TRACKING_SERVER", raising=False)
    _judged(config, {"tracking.experiment_name": "${mlexp_tracking_server:}"}, ["model.l1_size=4,8"])
    # a swept task: each job's own task config holds what the ${...} names (churn's model has max_depth)
    _judged(config, {"compute.base_job_name": "${model.max_depth}"}, ["task=churn_incentives,churn_incentives"])
    # an env_set that cannot resolve, a glob: the jobs (and Hydra) judge
    _judged(config, {"hydra.job.env_set": {"X": "${nope}"}, "model.l2_size": "${nope}"}, ["model.l1_size=4,8"])
    _judged(config, {"model.l2_size": "${nope}"}, ["model.l1_activation=glob(re*)"])


@STORE_EXISTS
def test_a_sweep_whose_shared_config_names_no_key_is_one_line_before_its_record_opens(tmp_project):
    done = run_cli(
        tmp_project, "-m", "task=tabular_regression", *TINY, "model.l1_size=4,8", "model.l2_size=${nope}", check=False
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "mlexp: error: model.l2_size: Interpolation key 'nope' not found; fix the ${...} it uses"
    ]
    assert store_client(tmp_project).get_experiment_by_name("tabular_regression-sweeps") is None


@STORE_EXISTS
def test_a_sweep_hydra_stops_after_its_record_opened_exits_non_zero_with_the_record_failed(tmp_project):
    # a sweep of deletions from a free-form section: no check judges it, Hydra refuses it once the record is open
    done = run_cli(tmp_project, "-m", "task=anomaly_detection", "~model.rules.too_long=a,b", check=False)
    assert done.returncode == 1
    assert "Could not delete from config. The value of 'model.rules.too_long' is" in done.stderr
    client = store_client(tmp_project)
    [sweep] = client.search_runs([client.get_experiment_by_name("anomaly_detection-sweeps").experiment_id])
    assert sweep.info.status == "FAILED"  # not left RUNNING


@STORE_EXISTS
def test_an_interpolation_that_names_no_key_is_refused_before_a_trial_opens(tmp_project):
    done = run_cli(tmp_project, "task=tabular_regression", *TINY, "model.l1_size=${nope}", check=False)
    assert done.returncode == 2  # a config refused before its trial opened
    assert done.stderr.strip().splitlines() == [
        "mlexp: error: model.l1_size: Interpolation key 'nope' not found; fix the ${...} it uses"
    ]
    assert store_client(tmp_project).get_experiment_by_name("tabular_regression") is None  # no trial opened
    done = run_cli(tmp_project, "-m", "task=tabular_regression", *TINY, "model.l1_size=4,${nope}", check=False)
    assert done.returncode == 1  # the sweep's other job ran; this one failed in one line, before its trial opened
    assert "job 1: model.l1_size: Interpolation key 'nope' not found; fix the ${...} it uses" in done.stderr
    assert "Traceback" not in done.stderr
    assert [trial.status for trial in trials_of(tmp_project)] == ["FINISHED"]


@STORE_EXISTS
def test_an_error_while_recording_the_sweep_is_one_line_exit_1_and_a_failed_record(tmp_project):
    # the charts folder cannot be created: a file stands where its parent folder should be
    (tmp_project / "outputs").mkdir()
    (tmp_project / "outputs" / "sweeps").write_text("not a folder")
    done = run_cli(tmp_project, "-m", "task=tabular_regression", *TINY, "model.l1_size=4", check=False)
    assert done.returncode == 1
    assert "mlexp: error: the sweep's results could not be recorded" in done.stderr
    client = store_client(tmp_project)
    [sweep] = client.search_runs([client.get_experiment_by_name("tabular_regression-sweeps").experiment_id])
    assert sweep.info.status == "FAILED"


@STORE_EXISTS
def test_a_split_that_leaves_no_test_rows_fails_the_trial_naming_the_split(tmp_project):
    # a file of 3 rows: what the data holds is the stage's to judge (dataset.n_rows=3 is refused before the trial)
    rows = "M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15,15\n" * 3
    (tmp_project / "three.data").write_text(rows)
    args = ("dataset.path=three.data", "dataset.n_rows=null", "preprocessing.train_test_split=0.9")
    done = run_cli(tmp_project, "task=tabular_regression", *args, check=False)
    assert done.returncode == 1
    assert "preprocessing.train_test_split=0.9 of 3 rows leaves the test set empty; give more rows" in done.stderr
    assert [trial.status for trial in trials_of(tmp_project)] == ["FAILED"]


@STORE_EXISTS
def test_ctrl_c_stops_a_single_trial_with_exit_130_and_marks_it_killed(tmp_project):
    # the real command and a real SIGINT to its process group, as a terminal sends it (not an exception raised here):
    # the KeyboardInterrupt reaches the trial inside its Training stage, which it leaves KILLED with the trial
    process, training = _start_long_training(tmp_project)
    with contextlib.suppress(ProcessLookupError):  # a trial that already ended: its exit is reported below
        os.killpg(process.pid, signal.SIGINT)
    try:
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:  # a trial that ignored Ctrl-C must not keep training for 100000 epochs
            stop_process_group(process)
    assert training, f"the trial logged no epoch before Ctrl-C (exit {process.returncode}): {stderr[-2000:]}"
    assert process.returncode == 130, stderr
    [trial] = trials_of(tmp_project)
    client = store_client(tmp_project)
    assert trial.status == "KILLED"
    assert client.get_run(trial.components["Training"]).info.status == "KILLED"
    assert client.get_run(trial.components["Pre-processing"]).info.status == "FINISHED"
    assert "Evaluation" not in trial.component_names
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-2:] == [
        f"interrupted: trial {trial.run_id} marked KILLED",
        "mlexp: interrupted (Ctrl-C)",
    ]
