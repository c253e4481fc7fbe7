"""Fixtures: a throw-away copy of the project, the real CLI, a reader of its MLflow store, a real `mlflow server`
on loopback and a headless chromium."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from forked_cli import STORE_COMMANDS, ForkedCli, read_on_start

REPO = Path(__file__).resolve().parents[1]
# tiny sizes: a trial of the abalone task takes a few seconds
TINY = ("dataset.n_rows=300", "model.epochs=2")
# a text_classification trial in seconds
TEXT_TINY = (
    "dataset.n_rows=500",
    "dataset.n_holdout=300",
    "model.max_word_features=20000",
    "model.max_char_features=20000",
)


@pytest.fixture
def tmp_project(tmp_path: Path) -> Path:
    """A project folder with the repository's conf/: trials, data and stores land in it."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copytree(REPO / "conf", project / "conf")
    return project


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty SQLite store made once per test process, as the command makes one (MLflow's schema, WAL mode)."""
    from mlexp.tracking.store import TrackingStore

    folder = tmp_path_factory.mktemp("empty-store")
    TrackingStore.resolve(None, folder).client()  # MLflow's schema migration: seconds, paid once here
    return folder / "mlflow.db"


def composed_with_hydra(project: Path, *overrides: str) -> Any:
    """The project's config as the command composes it for `overrides`, Hydra's node included (launcher, sweeper)."""
    from hydra import compose, initialize_config_dir

    from mlexp.config import make_composable

    make_composable()
    with initialize_config_dir(config_dir=str(project / "conf"), version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=True)


def seed_store(project: Path, empty_store: Path, name: str = "mlflow.db") -> Path:
    """Give `project` a copy of the empty store: the same tables and rows the command's first trial would create."""
    from mlexp.tracking.store import use_wal

    database = project / name
    source, copy = sqlite3.connect(empty_store), sqlite3.connect(database)
    with contextlib.closing(source), contextlib.closing(copy):
        source.backup(copy)  # a consistent copy, whatever is still in the template's write-ahead log
        # the Default experiment points into the folder the store was made in, as MLflow's own set-up does
        copy.execute(
            "UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0", (str(project / "mlruns" / "0"),)
        )
        copy.commit()
    use_wal(database)
    return database


@pytest.fixture
def tmp_project_with_store(tmp_project: Path, empty_store: Path) -> Path:
    """tmp_project whose MLflow store already exists, for tests about anything but the store's first set-up."""
    seed_store(tmp_project, empty_store)
    return tmp_project


def stop_process_group(process: subprocess.Popen, seconds: float = 15) -> None:
    """Stop a server started with start_new_session=True and its workers: SIGTERM, then SIGKILL if it lingers."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=seconds)


def cli_env(project: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLEXP_"))}
    env["MLEXP_ROOT"] = str(project)
    env["MLEXP_WRITER_IDLE_S"] = "120"  # the tests' shared tracking writer does not outlive the suite by long
    return env


def private_writer_env(project: Path) -> dict[str, str]:
    """cli_env with a tracking writer of the test's own: started by the test's first command, as its child."""
    return cli_env(project) | {"MLEXP_WRITER_SCOPE": str(project)}


_forked_cli: ForkedCli | None = None
_forked_store_cli: ForkedCli | None = None  # the server of STORE_COMMANDS, which import MLflow
# the environment once the test modules are imported (sklearn's import sets KMP_DUPLICATE_LIB_OK), before any test
# changed it: what the CLI server starts with and forks commands for (set by pytest_collection_modifyitems)
SUITE_ENV: dict[str, str] = {}


def run_cli(
    project: Path,
    *args: str,
    check: bool = True,
    env: dict[str, str] | None = None,
    fresh: bool = False,
    timeout: float = 600,
) -> subprocess.CompletedProcess:
    """Run the real `mlexp` entry point in `project`; returns the finished process. It is forked from a server
    that has its libraries imported (forked_cli.py) unless `fresh` asks for a new interpreter, as a test of
    anything the interpreter's start-up decides needs (hash seed, the state of every library)."""
    global _forked_cli, _forked_store_cli
    env = env or cli_env(project)
    fresh = fresh or bool(os.environ.get("MLEXP_TESTS_FRESH_CLI"))  # e.g. to time the suite without the server
    server = None
    if not fresh and args and args[0] in STORE_COMMANDS:
        _forked_store_cli = _forked_store_cli or ForkedCli(SUITE_ENV, with_mlflow=True)
        server = _forked_store_cli if _forked_store_cli.can_run(args, env) else None
    if not fresh and server is None:
        _forked_cli = _forked_cli or ForkedCli(SUITE_ENV)
        server = _forked_cli if _forked_cli.can_run(args, env) else None
    if server is not None:
        done = server.run(args, project, env, timeout=timeout)
    else:
        command = [sys.executable, "-m", "mlexp.cli", *args]
        done = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"mlexp {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


def scoring_client(loaded: Any) -> Any:
    """A test client of the app `mlflow models serve` runs for `loaded` (in this process). Its init marks the whole
    process as a serving one, which the suite's later commands would inherit: the mark is set back."""
    from mlflow.pyfunc import scoring_server
    from starlette.testclient import TestClient

    flag = "_MLFLOW_IS_IN_SERVING_ENVIRONMENT"
    before = os.environ.get(flag)
    app = scoring_server.init(loaded)
    if before is None:
        os.environ.pop(flag, None)
    else:
        os.environ[flag] = before
    return TestClient(app)


def one_line_error(project: Path, *args: str, timeout: float = 600) -> str:
    """The whole stderr of a refused command line: one `mlexp: error:` line, exit 2, nothing recorded."""
    done = run_cli(project, *args, check=False, timeout=timeout)
    assert done.returncode == 2, done.stdout + done.stderr
    assert not (project / "mlflow.db").exists()  # no trial (or sweep record) was opened
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlexp: error: "), done.stderr
    return lines[0].removeprefix("mlexp: error: ")


def start_cli(project: Path, *args: str, python_flags: tuple[str, ...] = (), **popen: Any) -> subprocess.Popen:
    """Start the real `mlexp` entry point in `project` without waiting: for tests that act on a running trial
    or sweep. Its own process group, so a test can stop it and every worker with stop_process_group."""
    options: dict[str, Any] = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    return subprocess.Popen(
        [sys.executable, *python_flags, "-m", "mlexp.cli", *args],
        cwd=project,
        env=popen.pop("env", None) or cli_env(project),
        start_new_session=True,
        **(options | popen),
    )


@dataclass
class TrialView:
    run_id: str
    name: str
    status: str
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]
    components: dict[str, str] = field(default_factory=dict)  # display name -> run id

    @property
    def component_names(self) -> set[str]:
        return set(self.components)


def store_client(project: Path) -> MlflowClient:
    return MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")


def trials_of(project: Path, experiment: str = "tabular_regression", client: MlflowClient | None = None):
    client = client or store_client(project)
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no experiment {experiment!r}"
    runs = client.search_runs([found.experiment_id], max_results=1000)
    trials = {
        r.info.run_id: TrialView(
            r.info.run_id, r.info.run_name, r.info.status, r.data.params, r.data.metrics, r.data.tags
        )
        for r in runs
        if r.data.tags.get("mlexp.kind") == "trial"
    }
    for r in runs:
        parent = r.data.tags.get("mlflow.parentRunId")
        if r.data.tags.get("mlexp.kind") == "component" and parent in trials:
            trials[parent].components[r.info.run_name] = r.info.run_id
    return list(trials.values())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_health(url: str, server: subprocess.Popen[bytes], log: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"mlflow server exited {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"mlflow server did not answer /health within {seconds:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory, empty_store: Path):
    """URL of a real `mlflow server` on 127.0.0.1 (SQLite store and artifacts in a temp folder), shared by a file."""
    with running_mlflow_server(tmp_path_factory.mktemp("mlflow-server"), template=empty_store) as url:
        yield url


@contextlib.contextmanager
def running_mlflow_server(folder: Path, port: int | None = None, template: Path | None = None) -> Iterator[str]:
    """A real `mlflow server` on 127.0.0.1:`port` (a free one if None), its SQLite store and artifacts in `folder`;
    the store a copy of `template` (an empty store, see seed_store) when given."""
    database = f"sqlite:///{folder / 'server.db'}"
    if template is not None:
        seed_store(folder, template, "server.db")
    else:
        MlflowClient(database).search_experiments()  # create the schema here, not in the server's start-up
    log = folder / "server.log"
    port = port or _free_port()
    # no background job runner, no telemetry: nothing but the tracking API and the UI
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
    with log.open("wb") as out:
        server = subprocess.Popen(
            [os.path.join(os.path.dirname(sys.executable), "mlflow"), "server", "--host", "127.0.0.1"]
            + ["--port", str(port), "--workers", "1", "--backend-store-uri", database]
            + ["--artifacts-destination", str(folder / "artifacts")],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # the server starts workers: stop them as one process group
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for_health(url, server, log, seconds=120)
        yield url
    finally:
        stop_process_group(server)


# Debian's chromium (apt-get install chromium): Playwright's own browser download is not reachable here;
# MLEXP_CHROMIUM names another build
CHROMIUM = os.environ.get("MLEXP_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
BROWSER_SKIPPED = "browser tests skipped: no chromium"


@pytest.fixture(scope="session")
def browser():
    """Headless chromium driven by Playwright; in CI (CI=true) a missing chromium fails the test instead of skipping."""
    if not os.access(CHROMIUM, os.X_OK):
        message = f"{BROWSER_SKIPPED} at {CHROMIUM}; install it with: apt-get install -y chromium"
        if os.environ.get("CI") == "true":
            pytest.fail(message.replace("skipped", "cannot run"))
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # every address but loopback goes to a closed proxy port: tests never reach the network
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--proxy-server=http://127.0.0.1:9"]
        )
        try:
            yield chromium
        finally:
            chromium.close()


# A tracking writer started by a command of a test's own environment (copied from this one) leaves 2 minutes after
# its last command, as cli_env's do, not 10: writers are shared by the suite's workers, so none is stopped by hand.
os.environ.setdefault("MLEXP_WRITER_IDLE_S", "120")


@pytest.fixture(autouse=True)
def _environment_left_as_found() -> Iterator[None]:
    """Fail a test that leaves its worker's environment changed where a command reads it on start (monkeypatch.setenv
    undoes itself): every later command of the worker would differ from the CLI server's start and run in a fresh
    interpreter (forked_cli.py), which has cost the suite minutes unseen. What commands read as they run (MLFLOW_,
    MLEXP_, ...: a command run in-process sets some for MLflow) and what importing a library sets are allowed."""
    before = read_on_start(os.environ)
    yield
    after = read_on_start(os.environ)
    changed = sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))
    if changed:
        for name in changed:
            if name in before:
                os.environ[name] = before[name]
            else:
                del os.environ[name]
        pytest.fail(f"the test left the environment changed ({', '.join(changed)}); use monkeypatch.setenv")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say loudly at the end of the run when the browser tests were skipped."""
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if BROWSER_SKIPPED in str(r.longrepr)]
    if skipped:
        terminalreporter.write_sep(
            "!", f"BROWSER TESTS SKIPPED ({len(skipped)}): chromium is missing; apt-get install -y chromium", red=True
        )


# Every test file of 15 s or more, longest first, by its mean time in three whole runs on 2 workers
# (`pytest --durations=0`, 2026-12-07). With `--dist loadfile --no-loadscope-reorder` xdist hands whole files to its
# workers in collection order: the longest start first and the short ones fill the gaps at the end (a long file handed
# out late ran alone). Document extraction's trial file stays sixth, not among the first: with it first, the DVC repro
# test and the parallel Ctrl-C test took 220 s and 172 s (4ae1e36, cause not found).
LONGEST_FILES = (
    "test_params_and_dvc.py",
    "test_config_validation.py",
    "test_sweep_worker_crash.py",
    "test_trial_status.py",
    "test_team_server.py",
    "test_document_extraction_trial.py",
    "test_text_classification.py",
    "test_console.py",
    "test_churn_incentives_reused_stages.py",
    "test_object_detection_trial.py",
    "test_sagemaker_task_models.py",
    "test_compose_once.py",
    "test_store_problems.py",
    "test_task_constraints.py",
    "test_sweeps.py",
    "test_object_detection_benchmark.py",
    "test_sagemaker_trained_model.py",
    "test_object_detection_families.py",
    "test_startup.py",
    "test_task_plugins.py",
    "test_kept_journals.py",
    "test_writer_service.py",
    "test_dvc_stages.py",
    "test_cli_checks_before_trial.py",
    "test_deploy.py",
    "test_sweep_table.py",
    "test_mxnet_operators.py",
    "test_forked_cli.py",
    "test_text_classification_labels.py",
    "test_journal.py",
    "test_sagemaker_mirror.py",
    "test_recommendation_recipes.py",
    "test_cleanup.py",
    "test_sagemaker_endpoint.py",
    "test_mlflow_ui.py",
    "test_python_api.py",
    "test_sagemaker_config_checks.py",
    "test_object_detection_data.py",
    "test_object_detection_transfer.py",
    "test_notebook.py",
    "test_registered_models.py",
    "test_churn_incentives_sweep.py",
    "test_recommendation_trial.py",
    "test_tracking_servers.py",
    "test_cleanup_default.py",
    "test_analytics.py",
    "test_trial_run.py",
    "test_bounds_anomaly_and_detection.py",
    "test_cli_output.py",
    "test_anomaly_detection_cli.py",
    "test_sagemaker_training.py",
    "test_tracking.py",
    "test_text_classification_service.py",
    "test_text_classification_config.py",
    "test_recommendation_registry.py",
    "test_object_detection_tiling.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest files first, then the others by their number of tests (xdist's own order), each file's tests
    in their written order."""
    SUITE_ENV.update(os.environ)
    rank = {name: position for position, name in enumerate(LONGEST_FILES)}
    counts: dict[Path, int] = {}
    for item in items:
        counts[item.path] = counts.get(item.path, 0) + 1
    items.sort(key=lambda item: (rank.get(item.path.name, len(rank)), -counts[item.path]))
