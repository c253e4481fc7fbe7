"""mlexp.run and mlexp.sweep called in this process, as from a notebook: the command line's trials, folders and errors,
and nothing left behind between calls (working directory, environment, logging, joblib workers)."""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path

import psutil
import pytest
from hydra.core.global_hydra import GlobalHydra
from joblib import Parallel, delayed

import conftest
from conftest import REPO, TINY, run_cli, seed_store, store_client, trials_of
from mlexp.api import run, sweep
from mlexp.errors import ConfigError
from mlexp.runner import TrialFailed
from mlexp.sweep_failed import SweepFailed
from mlexp.trial_handle import Trial

TASK = "tabular_regression"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, empty_store: Path) -> Path:
    """One project for the module: later trials reuse the first one's Pre-processing, as in a notebook session."""
    folder = tmp_path_factory.mktemp("api") / "project"
    folder.mkdir()
    shutil.copytree(REPO / "conf", folder / "conf")
    seed_store(folder, empty_store)  # the store's first set-up is other tests' concern
    return folder


@pytest.fixture(autouse=True)
def untouched_process(monkeypatch: pytest.MonkeyPatch):
    """Each test starts without mlexp's variables and checks the process is as it found it after the calls."""
    for key in [k for k in os.environ if k.startswith(("MLEXP_", "MLFLOW_"))]:
        monkeypatch.delenv(key)
    cwd, handlers, argv, warnoptions = (
        os.getcwd(),
        list(logging.getLogger().handlers),
        list(sys.argv),
        list(sys.warnoptions),
    )
    yield
    assert os.getcwd() == cwd
    assert sys.warnoptions == warnoptions
    assert [k for k in os.environ if k.startswith("MLEXP_")] == []
    assert logging.getLogger().handlers == handlers
    assert sys.argv == argv
    # Hydra's singleton left uninitialized: the kernel's next compose (or mlexp.analytics(task=...)) must work
    assert not GlobalHydra.instance().is_initialized()


def test_two_runs_in_one_process_are_the_command_lines_trials(project: Path) -> None:
    first = run(TASK, TINY, root=project)
    second = run(TASK, [*TINY, "model.l1_size=8"], root=project)

    assert (first.status, second.status) == ("FINISHED", "FINISHED")
    assert second.params["model.l1_size"] == "8" and first.params["model.l1_size"] != "8"
    folders = {trial.paths.reports.parent for trial in (first, second)}
    assert len(folders) == 2 and all(f.parent == project / "outputs" / TASK for f in folders)
    for folder in folders:  # Hydra's record of the run, as the command leaves it
        assert {"config.yaml", "hydra.yaml", "overrides.yaml"} <= {p.name for p in (folder / ".hydra").iterdir()}
        assert (folder / "reports" / "metrics.json").is_file()
    assert first.tags["mlexp.command"] == f"mlexp task={TASK} {' '.join(TINY)}"  # not the kernel's sys.argv
    assert first.ui_link and first.ui_link.startswith(f"http://127.0.0.1:5000/#/experiments/{first.experiment_id}/")

    run_cli(project, f"task={TASK}", *TINY)
    by_cli = [t for t in trials_of(project) if t.run_id not in (first.run_id, second.run_id)]
    assert len(by_cli) == 1
    assert first.metrics == by_cli[0].metrics  # same seed and overrides: the same numbers
    assert first.tags["mlexp.command"] == by_cli[0].tags["mlexp.command"]

    store_client(project).set_tag(first.run_id, "note", "seen")
    assert first.refresh().tags["note"] == "seen"

    # a third call after the others gives the first call's numbers: nothing leaked between calls (its overrides
    # pasted from a command line, task= included, which the argument gives: not a key given twice)
    again = run(TASK, [f"task={TASK}", *TINY], root=project)
    assert again.metrics == first.metrics
    # and the kernel can read the results next (composing with Hydra again), from any working directory
    import mlexp

    table = mlexp.analytics(task=TASK, root=project)
    assert {first.run_id, second.run_id, again.run_id} <= set(table["RunId"])


def test_a_wrong_override_raises_the_command_lines_error(project: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        run(TASK, ["model.l1_sise=64"], root=project)

    assert "did you mean model.l1_size?" in str(raised.value)
    printed = run_cli(project, f"task={TASK}", "model.l1_sise=64", check=False).stderr.strip()
    assert printed == f"mlexp: error: {raised.value}"
    with pytest.raises(ConfigError, match=r"model.l1_activation=swish: Invalid value 'swish', expected one of"):
        run(TASK, ["model.l1_activation=swish"], root=project)
    with pytest.raises(ConfigError) as contradicted:
        run(TASK, ["task=churn_incentives"], root=project)
    assert str(contradicted.value) == (
        "task=churn_incentives in overrides contradicts mlexp.run's argument task='tabular_regression'; the argument "
        "gives task: drop 'task=churn_incentives' from overrides, or pass task='churn_incentives'"
    )
    with pytest.raises(ConfigError, match=r"^sweep=tpe in overrides contradicts mlexp.sweep's argument sweep='grid'"):
        sweep(TASK, sweep="grid", overrides=["sweep=tpe"], root=project)


def _malformed_copies(project: Path) -> None:
    """Abalone files that are there, but wrong: what only the prepare stage reading them finds (a missing file is
    refused before the trial opens)."""
    (project / "bad.data").write_text("M,0.455,0.365\n")
    (project / "empty.data").write_text("")


def test_a_failing_stage_raises_trial_failed_and_the_trial_is_failed(project: Path) -> None:
    _malformed_copies(project)
    with pytest.raises(TrialFailed) as raised:
        run(TASK, ["dataset.path=bad.data"], root=project)

    message = str(raised.value)
    assert message.startswith(f"stage 'prepare' failed: {project / 'bad.data'}: line 1 does not have the 9 abalone")
    assert message.endswith(f"(trial {raised.value.run_id} marked FAILED)")
    assert Trial.load(f"sqlite:///{project / 'mlflow.db'}", raised.value.run_id).status == "FAILED"


def test_sweeps_with_both_launchers_in_one_process(project: Path) -> None:
    grid = sweep(TASK, overrides=[*TINY, "model.l1_size=4,8"], root=project)
    # a notebook that used joblib before: its idle workers started without the sweep's id in their environment
    Parallel(n_jobs=2, backend="loky", max_nbytes=None, mmap_mode="r")(delayed(os.getpid)() for _ in range(2))
    parallel = sweep(
        TASK, sweep="grid", overrides=[*TINY, "model.l1_size=4,8", "sweep.max_parallel_jobs=2"], root=project
    )

    for trials in (grid, parallel):
        assert len(trials) == 2 and {t.status for t in trials} == {"FINISHED"}
        assert sorted(t.params["model.l1_size"] for t in trials) == ["4", "8"]
        assert len({t.sweep_id for t in trials}) == 1 and trials[0].sweep_id is not None
        assert trials[0].objective_value <= trials[1].objective_value  # best first: test_msle is minimized
        assert trials[0].tags.get("mlexp.best_in_sweep") == "true"
    assert grid[0].sweep_id != parallel[0].sweep_id
    assert parallel[0].tags["mlexp.command"].startswith(f"mlexp -m task={TASK} sweep=grid")
    # the tracking writer (started by this process's first trial) serves every command, the suite's CLI servers
    # fork the tests' commands (their children, forked commands, count): neither is a joblib worker
    # (nor is the headless chromium an earlier browser test of this worker left running, with Playwright's driver)
    helpers = ("resource_tracker", "mlexp.tracking.writer_process")
    servers = {cli.server.pid for cli in (conftest._forked_cli, conftest._forked_store_cli) if cli}
    children = psutil.Process().children(recursive=True)
    drivers = [p for p in children if "playwright" in " ".join(p.cmdline())]
    browsers = {p.pid for driver in drivers for p in [driver, *driver.children(recursive=True)]}
    workers = [
        p for p in children if p.pid not in servers | browsers and not any(h in " ".join(p.cmdline()) for h in helpers)
    ]
    assert workers == []  # no idle joblib worker keeps this sweep's environment (and MXNet) for the next one


def test_a_sagemaker_sweep_from_python_points_to_the_tuning_job_command(tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(REPO / "conf", project / "conf")
    with pytest.raises(ConfigError) as raised:
        sweep(TASK, overrides=["compute=sagemaker", "model.learning_rate=0.01,0.1"], root=project)
    assert "mlexp -m task=tabular_regression compute=sagemaker model.learning_rate=0.01,0.1" in str(raised.value)
    assert not (project / "mlflow.db").exists()  # refused before any store, sweep record or trial


def test_a_sweep_with_failed_jobs_raises_sweep_failed(project: Path) -> None:
    _malformed_copies(project)
    with pytest.raises(SweepFailed) as raised:
        sweep(TASK, overrides=["dataset.path=bad.data,empty.data"], root=project)

    failed = raised.value
    assert [job.number for job in failed.failed_jobs] == [0, 1]
    assert str(failed).startswith("2 job(s) of sweep grid-") and "job 0: stage 'prepare' failed" in str(failed)
    assert {t.status for t in failed.trials} == {"FAILED"} and {t.sweep_id for t in failed.trials} == {failed.sweep_id}
    assert {job.run_id for job in failed.failed_jobs} == {t.run_id for t in failed.trials}
