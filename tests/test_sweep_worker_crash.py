"""A parallel sweep whose worker process is killed mid-trial, or whose job raises, loses no other trial."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from joblib.externals.loky.process_executor import _ExecutorManagerThread
from mlflow.entities import ViewType
from omegaconf import OmegaConf

from conftest import REPO, cli_env, run_cli, start_cli, store_client, trials_of
from mlexp.cli_arguments import spelled_out
from mlexp.sweeps import SWEEP_JOBS_ENV
from mlexp.sweeps.joblib_launcher import CANCELLED_NOTE, NOT_RUN_NOTE, STARTED_DIR, _break_line, _rerun
from mlexp.sweeps.workers import parallel_jobs
from mlexp.tracking.journal import journals_root

pytestmark = pytest.mark.slow

LR = "model.learning_rate=tag(log, interval(0.001, 0.1))"  # a search space; the jobs fail before it matters

# one job per option of the test's own config group, in this order (Hydra's grid keeps it): job 0 trains until
# killed, job 1 is cut when the pool breaks (loky kills every worker), job 2 is still queued then
JOBS = {
    "victim": "model:\n  epochs: 100000\n",
    "cut": "model:\n  epochs: 60\n",
    "queued": "model:\n  epochs: 2\n",
    # reading a socket as params.yaml: OSError (ENXIO), an ordinary exception outside the trial (a folder is refused
    # in one line since, as mlexp's own error)
    "raises": "params_file: params.sock\n",
}


def _add_job_configs(project: Path) -> None:
    group = project / "conf" / "crashcase"
    group.mkdir()
    for name, body in JOBS.items():
        (group / f"{name}.yaml").write_text("# @package _global_\n" + body)
    with contextlib.chdir(project), socket.socket(socket.AF_UNIX) as server:
        server.bind("params.sock")  # relative: a socket's path is short; the file stays after the socket closes


def _trial_pids_in_training(project: Path) -> set[int]:
    """The processes whose trial journal shows its Training component open."""
    pids = set()
    for folder in journals_root(project).glob("*/"):
        try:
            header = json.loads((folder / "header.json").read_text())
            lines = (folder / "ops.jsonl").read_text().splitlines()[:-1]
        except (OSError, ValueError):
            continue  # being made or removed
        if any(json.loads(line).get("run_name") == "Training" for line in lines):
            pids.add(int(header["pid"]))
    return pids


def _worker_of(project: Path, job: int) -> int | None:
    """The worker process that runs `job`: the marker the job writes as it starts."""
    for marker in project.glob(f"outputs/multirun/tabular_regression/*/{STARTED_DIR}/{job}.pid"):
        try:
            return int(marker.read_text())
        except (OSError, ValueError):
            return None  # being written, or the launch ended and removed it
    return None


def _sweep(project: Path, *overrides: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return start_cli(project, "-m", "task=tabular_regression", "dataset.n_rows=300", *overrides, env=env)


def _search_ending_with_exit_1(project: Path, *overrides: str) -> tuple[str, str]:
    """The stdout and stderr of an Optuna search run to its end (forked: it is not signalled); it must exit 1."""
    done = run_cli(project, "-m", "task=tabular_regression", "dataset.n_rows=300", *overrides, check=False)
    assert done.returncode == 1, done.stdout + done.stderr
    return done.stdout, done.stderr


@pytest.mark.usefixtures("tmp_project_with_store")  # the store's first set-up is other tests' concern
def test_a_worker_killed_mid_trial_costs_its_own_trial_only(tmp_project):
    _add_job_configs(tmp_project)
    sweep = _sweep(tmp_project, "sweep=grid", "sweep.max_parallel_jobs=2", "+crashcase=victim,cut,queued")
    try:
        deadline = time.monotonic() + 120
        victim = None
        while time.monotonic() < deadline and sweep.poll() is None:
            victim, cut = _worker_of(tmp_project, 0), _worker_of(tmp_project, 1)
            if victim and cut and {victim, cut} <= _trial_pids_in_training(tmp_project):
                break
            time.sleep(0.1)
        assert victim is not None and sweep.poll() is None, "the victim and the cut job never trained together"
        os.kill(victim, signal.SIGKILL)
        out, err = sweep.communicate(timeout=600)
    finally:
        if sweep.poll() is None:
            os.killpg(sweep.pid, signal.SIGKILL)

    assert sweep.returncode == 1, out + err
    name = re.search(r"sweep (\S+) \(id", out).group(1)
    trials = {t.name.rsplit("-", 1)[1]: t for t in trials_of(tmp_project)}
    assert sorted(trials) == ["0", "1", "2"]  # one trial per job: the cut attempt of job 1 is not listed
    assert trials["0"].status == "KILLED" and trials["0"].params["model.epochs"] == "100000"
    assert trials["1"].status == "FINISHED" and trials["1"].params["model.epochs"] == "60"
    assert trials["2"].status == "FINISHED" and "test_msle" in trials["2"].metrics
    # one line names the dead trial and how to run it again; the sweep's end is reached and fails
    assert f"job 0: trial {name}-trial-0 was killed: its worker process {victim} died (killed by SIGKILL" in err
    assert "run it again with: mlexp task=tabular_regression" in err and "+crashcase=victim" in err
    assert "running the sweep's 2 other unfinished job(s) again on new workers" in err
    assert f"1 job(s) of sweep {name} failed" in err and "2/3 jobs finished" in out
    # the job's outcome (what mlexp.sweep's SweepFailed.failed_jobs carries) names the killed trial's run
    [outcome] = [json.loads(path.read_text()) for path in tmp_project.glob(".mlexp/sweeps/*/0.json")]
    assert outcome["status"] == "KILLED" and outcome["run_id"] == trials["0"].run_id

    client = store_client(tmp_project)
    sweeps = client.get_experiment_by_name("tabular_regression-sweeps").experiment_id
    [record] = client.search_runs([sweeps], f"attributes.run_name = '{name}'")
    assert record.info.status == "FAILED"
    assert record.data.tags["mlexp.best_trial_name"] in (f"{name}-trial-1", f"{name}-trial-2")
    # the cut attempt of job 1 is kept out of sight (MLflow can restore it), saying why
    experiment = client.get_experiment_by_name("tabular_regression").experiment_id
    deleted = client.search_runs([experiment], f"attributes.run_name = '{name}-trial-1'", ViewType.DELETED_ONLY)
    assert [r.data.tags["mlexp.error"] for r in deleted] == [CANCELLED_NOTE]
    assert not list(journals_root(tmp_project).glob("*/ops.jsonl")), "a trial's journal was left unstored"
    assert not list(tmp_project.glob(f"outputs/multirun/*/*/{STARTED_DIR}")), "the launch left its pid markers"


@pytest.mark.usefixtures("tmp_project_with_store")  # the store's first set-up is other tests' concern
def test_an_optuna_sweep_goes_on_past_a_job_that_raises(tmp_project):
    # Optuna's sweeper stopped at a failed job (and crashed telling Optuna a NaN objective)
    _add_job_configs(tmp_project)
    out, err = _search_ending_with_exit_1(
        tmp_project, "sweep=random", "sweep.max_jobs=3", "sweep.max_parallel_jobs=1", "+crashcase=choice(raises,queued)"
    )
    outcomes = re.findall(r"^  job (\d+): (\w+)", err, re.MULTILINE)
    assert outcomes and all(error == "OSError" for _, error in outcomes), err
    assert int(outcomes[0][0]) < 2, "no job ran after the failed one (the sampler's seed picks the jobs)"
    finished = [t for t in trials_of(tmp_project) if t.status == "FINISHED"]
    assert len(finished) + len(outcomes) == 3, "every job ran, those after the failed one too"
    assert f"{len(finished)}/3 jobs finished" in out and "best trial:" in out


def test_the_hook_that_tells_the_dead_worker_is_installed_in_loky():
    # a private loky API: a joblib upgrade that drops or renames it must fail here, not silently
    assert hasattr(_ExecutorManagerThread.kill_workers, "__wrapped__")


@pytest.mark.parametrize("pythonpath", [False, True], ids=["installed", "PYTHONPATH=src"])
def test_sweeps_run_mlexps_launcher_and_sweeper_whatever_order_hydra_scans_plugins(tmp_project, pythonpath):
    # with src/ on PYTHONPATH (SageMaker's code channel) Hydra imported the stock plugins' configs after ours
    env = cli_env(tmp_project) | ({"PYTHONPATH": str(REPO / "src")} if pythonpath else {})
    for sweep in ("grid", "tpe"):
        shown = run_cli(tmp_project, "task=tabular_regression", f"sweep={sweep}", "--cfg", "hydra", env=env).stdout
        hydra = yaml.safe_load(shown)["hydra"]
        assert hydra["launcher"]["_target_"] == "hydra_plugins.mlexp_joblib_launcher.launcher.ResilientJoblibLauncher"
        hydra["launcher"]["n_jobs"] = 2
        assert parallel_jobs(OmegaConf.create({"hydra": hydra})) == 2  # workers.py takes it for a joblib launcher
    assert hydra["sweeper"]["_target_"].endswith("optuna_sweeper.SummarisingOptunaSweeper")
    assert hydra["sweeper"]["max_failure_rate"] == 1.0


def test_an_optuna_search_whose_every_trial_fails_ends_with_the_sweep_summary(tmp_project_with_store):
    tmp_project = tmp_project_with_store
    _add_job_configs(tmp_project)
    out, err = _search_ending_with_exit_1(
        tmp_project, "sweep=random", "sweep.max_jobs=2", "sweep.max_parallel_jobs=1", "+crashcase=raises", LR
    )
    assert "No trials are completed yet" not in err and "the search ended with no trial completed" in err
    assert "0/2 jobs finished" in out and "no trial of sweep" in out  # every one of max_jobs ran
    assert "2 job(s) of sweep" in err


def test_max_failure_rate_0_stops_an_optuna_search_with_the_sweep_summary(tmp_project_with_store):
    tmp_project = tmp_project_with_store
    _add_job_configs(tmp_project)
    out, err = _search_ending_with_exit_1(
        tmp_project,
        "sweep=random",
        "sweep.max_jobs=3",
        "sweep.max_parallel_jobs=1",
        "+crashcase=raises",
        LR,
        "hydra.sweeper.max_failure_rate=0",
    )
    assert "JobFailed" not in err and "the search stopped" in err
    assert "0/1 jobs finished" in out and "1 job(s) of sweep" in err  # stopped after its first failed batch


def test_a_parallel_search_tells_optuna_each_result_of_its_own_trial(tmp_project_with_store):
    tmp_project = tmp_project_with_store
    # results come back as jobs end: job 1 (2 epochs) before job 0 (600 epochs), which the sampler's seed 10 picks;
    # 60 epochs of 240 rows once ended first (job 1 waits for job 0's pre-processing, which it reuses), and 300 once
    # in a CI with three other test runs beside it (job 1's worker started late)
    done = run_cli(
        tmp_project,
        "-m",
        "task=tabular_regression",
        "dataset.n_rows=300",
        "sweep=random",
        "sweep.max_jobs=2",
        "sweep.max_parallel_jobs=2",
        "seed=10",
        "model.epochs=choice(600, 2)",
    )
    trials = {t.name.rsplit("-", 1)[1]: t for t in trials_of(tmp_project)}
    assert trials["0"].params["model.epochs"] == "600" and trials["1"].params["model.epochs"] == "2"
    client = store_client(tmp_project)
    assert client.get_run(trials["1"].run_id).info.end_time < client.get_run(trials["0"].run_id).info.end_time
    best_name = re.search(r"best trial: (\S+) ", done.stdout).group(1)
    [best] = [t for t in trials.values() if t.name == best_name]
    [study] = tmp_project.glob("outputs/multirun/tabular_regression/*/optimization_results.yaml")
    results = yaml.safe_load(study.read_text())
    assert results["best_value"] == pytest.approx(best.metrics["test_msle"])
    assert results["best_params"] == {"model.epochs": int(best.params["model.epochs"])}


DEATH_ENV = "MLEXP_TESTS_WORKER_DEATH"
# loaded first in every Python process of a sweep below (the folder is put on PYTHONPATH); the death the test names
# in DEATH_ENV, read as each process starts: one folder serves both tests, whose commands then share one tracking
# writer (PYTHONPATH is part of a writer's key)
WORKER_DEATHS = f"""
import os, signal, sys, time

def _die_before_the_marker(event, args):
    # as a job opens its start marker to write it: no job is ever seen started, and each broken pool is one with no
    # job's worker seen dead
    if event == "open" and "{STARTED_DIR}" in str(args[0]) and "w" in str(args[1]):
        os.kill(os.getpid(), signal.SIGKILL)

def _die_saving_the_model_of_job_1(event, args):
    # as job 1 saves its trained model, with its trial open; once job 0 has recorded its outcome (bounded), so that
    # no job is cut and run again on a second pool of workers (seconds of imports) the test does not look at
    if event == "open" and str(args[0]).endswith(os.path.join(os.sep + "1", "models", "model.json")):
        job_0 = os.path.join(os.environ.get("{SWEEP_JOBS_ENV}", ""), "0.json")
        deadline = time.monotonic() + 120
        while not os.path.exists(job_0) and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGKILL)

_DEATHS = {{"before_its_marker": _die_before_the_marker, "job_1_after_training": _die_saving_the_model_of_job_1}}
if os.environ.get("{DEATH_ENV}") in _DEATHS:
    sys.addaudithook(_DEATHS[os.environ["{DEATH_ENV}"]])
"""


@pytest.fixture(scope="module")
def worker_deaths(tmp_path_factory) -> Path:
    """A folder whose sitecustomize.py kills (SIGKILL) a worker as DEATH_ENV asks."""
    folder = tmp_path_factory.mktemp("worker-deaths")
    (folder / "sitecustomize.py").write_text(WORKER_DEATHS)
    return folder


def _two_job_grid_whose_workers_die(
    death: str, project: Path, deaths: Path, epochs: str, *flags: str
) -> tuple[str, str]:
    """A parallel grid over model.epochs whose every Python process loads the hook `death` first; ends with exit 1."""
    env = cli_env(project) | {DEATH_ENV: death}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(deaths), env.get("PYTHONPATH")]))
    sweep = _sweep(project, *flags, "sweep=grid", "sweep.max_parallel_jobs=2", f"model.epochs={epochs}", env=env)
    try:
        out, err = sweep.communicate(timeout=300)  # a pool that broke for ever would not end
    finally:
        if sweep.poll() is None:
            os.killpg(sweep.pid, signal.SIGKILL)
    assert sweep.returncode == 1, out + err
    return out, err


@pytest.mark.usefixtures("tmp_project_with_store")  # the store's first set-up is other tests' concern
def test_a_pool_that_keeps_breaking_before_any_job_starts_lists_the_jobs_not_run(tmp_project, worker_deaths):
    out, err = _two_job_grid_whose_workers_die("before_its_marker", tmp_project, worker_deaths, "2,3,4")
    # README: "(3 times)"; the breaks before the last say what runs again, the last that the sweep stops
    assert err.count("mlexp: a worker process died; running the sweep's 3 unfinished job(s) again") == 2, err
    assert (
        "mlexp: a worker process died; the pool broke 3 times with no job's worker seen dead: the sweep runs no "
        "more jobs\n" in err
    ), err
    name = re.search(r"sweep (\S+) \(id", out).group(1)
    not_run = re.findall(rf"^mlexp: job (\d): {NOT_RUN_NOTE}; run it with: mlexp (.*)$", err, re.MULTILINE)
    assert [job for job, _ in not_run] == ["0", "1", "2"], err
    assert all("task=tabular_regression" in rerun for _, rerun in not_run)
    assert [rerun.split()[-1] for _, rerun in not_run] == ["model.epochs=2", "model.epochs=3", "model.epochs=4"]
    assert f"3 job(s) of sweep {name} failed" in err and "0/3 jobs finished" in out
    assert "Traceback" not in err
    # the jobs' outcomes (what mlexp.sweep's SweepFailed.failed_jobs carries) say it too, with no trial
    outcomes = [json.loads(path.read_text()) for path in sorted(tmp_project.glob(".mlexp/sweeps/*/[0-9].json"))]
    assert [(o["job"], o["status"], o["run_id"]) for o in outcomes] == [(n, "FAILED", None) for n in range(3)]
    assert all(o["error"].startswith(f"{NOT_RUN_NOTE}; run it with: mlexp ") for o in outcomes)

    client = store_client(tmp_project)
    assert trials_of(tmp_project) == [], "a job opened a trial, though no job ever started"
    sweeps = client.get_experiment_by_name("tabular_regression-sweeps").experiment_id
    [record] = client.search_runs([sweeps], f"attributes.run_name = '{name}'")
    assert record.info.status == "FAILED"
    every = [e.experiment_id for e in client.search_experiments()]
    assert not client.search_runs(every, "attributes.status = 'RUNNING'"), "a run was left RUNNING"
    assert not list(tmp_project.glob(f"outputs/multirun/*/*/{STARTED_DIR}")), "the launch left its pid markers"


def test_a_pool_given_up_on_names_the_jobs_that_had_started_as_counted_killed_not_as_seen_dead():
    assert _break_line([2], [], gave_up_after=3) == (
        "a worker process died; the pool broke 3 times with no job's worker seen dead: the sweep runs no more jobs; "
        "job(s) 2, which had started, count as killed"
    )
    assert _break_line([1], [0, 2], gave_up_after=0) == (
        "the worker process of job(s) 1 died; running the sweep's 2 other unfinished job(s) again on new workers"
    )
    # the other jobs had ended: nothing runs again, and the line does not count "0 other unfinished job(s)"
    assert _break_line([1], [], gave_up_after=0) == (
        "the worker process of job(s) 1 died; every other job of the sweep had already ended"
    )


@pytest.mark.usefixtures("tmp_project_with_store")  # the store's first set-up is other tests' concern
def test_the_command_printed_for_a_killed_job_runs_that_trial_alone(tmp_project, worker_deaths):
    # it carried the sweep's own settings (sweep=grid sweep.max_parallel_jobs=2): the trial ran, with a warning that
    # offered `mlexp -m ...` to run it, which would have run the whole sweep again. It lacked the flags that chose the
    # sweep's config: the trial ran again with conf/config.yaml (seed 42), not the user's own config
    own = tmp_project.parent / "my configs"  # beside the project: a relative path, and a space to quote
    own.mkdir()
    (own / "seed_7.yaml").write_text((tmp_project / "conf" / "config.yaml").read_text().replace("seed: 42", "seed: 7"))
    flags = ("-cd", "../my configs", "--config-name", "seed_7")  # as typed; the command spells them out
    _, err = _two_job_grid_whose_workers_die("job_1_after_training", tmp_project, worker_deaths, "2,3", *flags)
    [rerun] = re.findall(r"^mlexp: job 1: trial \S+ was killed: .*; run it again with: (.*)$", err, re.MULTILINE)
    [killed] = [t for t in trials_of(tmp_project) if t.status == "KILLED"]

    command = shlex.split(rerun)
    done = run_cli(tmp_project, *command[1:])
    assert done.stderr == "" and "trial done:" in done.stdout and " (id " not in done.stdout, done.stdout + done.stderr
    [again] = [t for t in trials_of(tmp_project) if t.run_id != killed.run_id and "-trial-" not in t.name]
    assert again.status == "FINISHED" and killed.params["model.epochs"] == "3" and killed.params["seed"] == "7"
    assert _own_values(again) == _own_values(killed) and "mlexp.sweep_id" not in again.tags
    assert command == [
        "mlexp",
        "--config-dir=../my configs",
        "--config-name=seed_7",
        "task=tabular_regression",
        "dataset.n_rows=300",
        "model.epochs=3",
    ]


def _own_values(trial) -> dict[str, str]:
    """A trial's params but the sweep's settings (sweep.*), which say how it was run, not what."""
    return {key: value for key, value in trial.params.items() if not key.startswith("sweep.")}


def test_the_rerun_command_keeps_what_the_jobs_own_run_needs_of_hydra():
    # the job's environment (README: hydra.job.env_set) and config search path shape the trial, not the sweep
    overrides = ["task=tabular_regression", "sweep=tpe", "sweep.max_jobs=4", "hydra.job.env_set.OMP_NUM_THREADS=1",
                 "hydra.searchpath=[file:///tmp/conf]", "hydra.launcher.n_jobs=2", "++hydra.sweeper.n_trials=4",
                 "hydra/launcher=mlexp_joblib", "+note=a b"]  # fmt: skip
    assert _rerun(overrides, ["-m", *overrides]) == (
        "mlexp task=tabular_regression hydra.job.env_set.OMP_NUM_THREADS=1 'hydra.searchpath=[file:///tmp/conf]' "
        "'+note=a b'"
    )


def test_the_rerun_command_carries_the_flags_that_chose_the_config_and_only_those():
    # the flags as the sweep's command line held them once mlexp.cli spelled them out (as sys.argv is in the launcher)
    overrides = ["task=tabular_regression", "model.epochs=3"]
    argv = spelled_out(["-m", "-cd", "my configs", *overrides, "-cn=seed_7", "--config-path=/abs/conf"])
    assert _rerun(overrides, argv) == (
        "mlexp '--config-dir=my configs' --config-name=seed_7 --config-path=/abs/conf task=tabular_regression "
        "model.epochs=3"
    )
