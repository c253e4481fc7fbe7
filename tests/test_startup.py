"""Start-up out of the critical path: a trial's process never imports MLflow; sweep workers get their share of cores."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mlflow.utils.mlflow_tags as mlflow_tags
import mlflow.utils.validation as validation
from mlflow.tracking import MlflowClient

from conftest import TINY, cli_env, composed_with_hydra, store_client, trials_of
from mlexp.sweeps import workers
from mlexp.tracking import store_writer, tags
from mlexp.trial_continuation import PIPELINE_RUN_ENV
from wrapped_cli import wrapped_cli


def _imported(stderr: str) -> set[str]:
    """Modules named in `-X importtime` output (this process only: the writer process does not inherit -X), and
    the packages they belong to: a package loaded by importlib.import_module has no line of its own."""
    names = {line.rsplit("|", 1)[1].strip() for line in stderr.splitlines() if line.startswith("import time:")}
    return names | {name.split(".")[0] for name in names}


def _said(stderr: str) -> str:
    """What a command printed to stderr besides `-X importtime`: why it loaded what it should not have."""
    return "\n".join(line for line in stderr.splitlines() if not line.startswith("import time:"))[-3000:]


def _python(project, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """This Python with `args` in `project`, as the CLI runs there; it must succeed."""
    done = subprocess.run(
        [sys.executable, *args], cwd=project, env=env or cli_env(project), capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_a_trial_process_leaves_mlflow_to_the_writer_and_the_store_still_gets_everything(tmp_project):
    done = _python(tmp_project, "-X", "importtime", "-m", "mlexp.cli", "task=tabular_regression", *TINY)
    imported = _imported(done.stderr)
    assert "mxnet.base" in imported  # the task's own libraries load here
    assert not {"mlflow", "sqlalchemy", "alembic", "mlexp.compare", "mlexp.sweeps.workers"} & imported
    [trial] = trials_of(tmp_project)
    assert trial.status == "FINISHED" and "test_msle" in trial.metrics
    assert {"Pre-processing", "Training", "Evaluation"} <= trial.component_names
    # (a single run checks its override keys in its one composition: tests/test_compose_once.py)
    assert not list((tmp_project / ".mlexp" / "journal").glob("*/ops.jsonl"))


def test_pipeline_stages_load_only_what_they_use_and_join_one_trial(tmp_project_with_store):
    """dvc repro runs each stage as its own process: abalone's prepare (pandas only) skips MXNet's seconds, and
    the stage after it learns of the trial it continues from the writer, without importing MLflow."""
    project = tmp_project_with_store
    env = cli_env(project) | {PIPELINE_RUN_ENV: "pipeline-1"}
    folders = [f"paths.{name}={project / name / 'tabular_regression'}" for name in ("data", "models", "reports")]
    stage = ["-X", "importtime", "-m", "mlexp.cli", "task=tabular_regression", *folders, *TINY]
    prepare = _python(project, *stage, "stage=prepare", env=env)
    assert "mxnet" not in _imported(prepare.stderr)
    train = _python(project, *stage, "stage=train", env=env)
    assert "opens a new trial" not in train.stdout
    assert not {"mlflow", "sqlalchemy"} & _imported(train.stderr)
    [trial] = trials_of(project)
    assert trial.component_names == {"Pre-processing", "Training"} and trial.status == "FINISHED"


def test_mxnet_loads_without_its_optional_imports_and_its_scipy_features_work_once_scipy_loads(tmp_project):
    script = (
        "import sys\n"
        "finders = sys.meta_path[:]\n"
        "from mlexp.mxnet_import import SKIPPED_BY_MXNET\n"
        "from mlexp.seeding import seed_everything\n"
        "seed_everything(0, mxnet=True)\n"
        "import mxnet as mx\n"
        "total = mx.nd.array([1.0, 2.0]).sum().asscalar()\n"  # MXNet asks whether it is a SciPy matrix
        "print('mxnet' in sys.modules, *(n in sys.modules for n in (*SKIPPED_BY_MXNET, 'pkg_resources')), total)\n"
        "print(sys.meta_path == finders)\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "print(LogisticRegression().fit([[0.0], [1.0]], [0, 1]).predict([[1.0]])[0])\n"
        "import scipy.sparse\n"
        "matrix = mx.nd.array(scipy.sparse.csr_matrix([[0.0, 2.0], [3.0, 0.0]]))\n"
        "print(type(matrix).__name__, matrix.asscipy().nnz, mx.nd.sparse.array(matrix.asscipy()).stype)\n"
        "print(mx.contrib.quantization.stats.norm.cdf(0.0))\n"
    )
    assert _python(tmp_project, "-c", script).stdout.split() == [
        *["True", "False", "False", "False", "False", "3.0"],
        *["True", "1", "CSRNDArray", "2", "csr", "0.5"],
    ]


def test_mlflow_names_and_limits_spelled_out_match_the_installed_mlflow():
    assert (tags.MLFLOW_PARENT_RUN_ID, tags.MLFLOW_RUN_NAME) == (
        mlflow_tags.MLFLOW_PARENT_RUN_ID,
        mlflow_tags.MLFLOW_RUN_NAME,
    )
    assert store_writer.MAX_METRICS_PER_BATCH == validation.MAX_METRICS_PER_BATCH
    assert store_writer.MAX_PARAMS_TAGS_PER_BATCH == validation.MAX_PARAMS_TAGS_PER_BATCH
    assert store_writer.MAX_PARAM_VAL_LENGTH == validation.MAX_PARAM_VAL_LENGTH
    assert store_writer.MAX_TAG_VAL_LENGTH == validation.MAX_TAG_VAL_LENGTH
    assert f"^{tags.RUN_ID_PATTERN}$" == validation._RUN_ID_REGEX.pattern


def _sweep_config(tmp_project, *overrides: str):
    return composed_with_hydra(tmp_project, "task=tabular_regression", *overrides)


def test_parallel_workers_share_the_cores_before_they_import_numpy(tmp_project, monkeypatch):
    monkeypatch.setattr(workers, "cores", lambda: 8)
    environ = {k: v for k, v in workers.os.environ.items() if k not in workers.THREAD_VARIABLES}
    monkeypatch.setattr(workers.os, "environ", environ)  # this test's own environment, restored after it
    workers.set_thread_variables(_sweep_config(tmp_project, "sweep=grid", "sweep.max_parallel_jobs=4"))
    assert {name: workers.os.environ[name] for name in workers.THREAD_VARIABLES} == dict.fromkeys(
        workers.THREAD_VARIABLES, "2"
    )
    for name in workers.THREAD_VARIABLES:
        environ.pop(name)
    environ["OMP_NUM_THREADS"] = "3"  # the user's own setting stays, unless compute.num_threads names one
    workers.set_thread_variables(_sweep_config(tmp_project, "sweep=grid", "sweep.max_parallel_jobs=2"))
    assert workers.os.environ["OMP_NUM_THREADS"] == "3" and workers.os.environ["MKL_NUM_THREADS"] == "4"
    workers.set_thread_variables(_sweep_config(tmp_project, "sweep=grid", "compute.num_threads=1"))
    assert workers.os.environ["OMP_NUM_THREADS"] == "1"


# a sweep job as a worker process starts it (Hydra's job runner stubbed: only the worker's exit is looked at)
WORKER_EXIT = """
import atexit, gc, sys
atexit.register(lambda: print("frozen at exit:", gc.get_freeze_count() > 0))  # handlers run last first
from mlexp.sweeps import joblib_launcher
joblib_launcher.execute_job = lambda *arguments: "job done"
for number in (0, 1):  # two jobs in one worker
    print(joblib_launcher.run_job_on_worker(sys.argv[1], number, [], None, None, None, {}))
"""


def test_a_sweep_worker_exits_without_collecting_what_its_trials_left(tmp_project):
    # the command waits for its workers to exit: a worker tearing down MXNet and pandas kept it 0.4 s longer
    (tmp_project / "worker_exit.py").write_text(WORKER_EXIT)
    (tmp_project / "started").mkdir()
    lines = _python(tmp_project, "worker_exit.py", str(tmp_project / "started")).stdout.splitlines()
    assert lines[:2] == ["(0, 'job done')", "(1, 'job done')"]
    assert lines[2:] == ["frozen at exit: True"]


def test_an_in_process_command_closes_its_connection_to_the_tracking_writer_with_it(tmp_project):
    # what mlexp.api.run wraps its trial in; the connection a trial uses is the one opened here
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from mlexp.cli_in_process import command_line\n"
        "from mlexp.tracking.journal_writer import running_writer, start_early\n"
        "with command_line(sys.argv[1], ['task=tabular_regression']):\n"
        "    start_early(Path(sys.argv[1]))\n"
        "    print('connected:', running_writer() is not None)\n"
        "print('connected after:', running_writer() is not None)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_project)],
        cwd=tmp_project,
        env=cli_env(tmp_project),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "connected: True" in done.stdout and "connected after: False" in done.stdout


# runs `mlexp -m ...` in this process, noting at each trial's start whether this process had loaded MLflow yet
LOADED_AT_TRIAL_START = wrapped_cli("mlexp.runner", "run", "'mlflow' in sys.modules")


def test_a_sweep_opens_and_closes_its_record_through_the_writer_so_its_process_never_loads_mlflow(tmp_project):
    noted = tmp_project / "mlflow_loaded_at_trial_start.txt"
    sweep = ["-m", "task=tabular_regression", *TINY, "model.l1_size=8,16"]
    done = _python(tmp_project, "-X", "importtime", "-c", LOADED_AT_TRIAL_START, str(noted), *sweep)
    # both trials ran in the sweep's own process (basic launcher), and neither waited for MLflow's import there
    assert noted.read_text().split() == ["False", "False"], _said(done.stderr)
    # nor did the sweep's end: the writer ranked the trials, drew the charts and closed the record
    loaded = {"mlflow", "sqlalchemy", "mlexp.compare", "mlexp.experiment_analytics"} & _imported(done.stderr)
    assert not loaded, _said(done.stderr)
    _assert_summarised(tmp_project, done.stdout)
    client = store_client(tmp_project)
    found = client.get_experiment_by_name("tabular_regression" + tags.SWEEPS_SUFFIX)
    assert found is not None
    [record] = client.search_runs([found.experiment_id], f"tags.`{tags.KIND}` = 'sweep'")
    sweep_id = record.info.run_id
    assert record.info.status == "FINISHED" and record.data.tags[tags.SWEEP_ID] == sweep_id
    assert tags.ERROR not in record.data.tags
    # the writer resolved the trials' experiment by name (and created it before any job ran)
    trials_experiment = client.get_experiment_by_name("tabular_regression")
    assert trials_experiment is not None
    assert record.data.tags[tags.TRIALS_EXPERIMENT_ID] == trials_experiment.experiment_id
    assert "model.l1_size=8,16" in Path(client.download_artifacts(sweep_id, "sweep.yaml", str(tmp_project))).read_text()
    trials = trials_of(tmp_project)
    assert len(trials) == 2 and all(t.tags[tags.SWEEP_ID] == sweep_id and t.status == "FINISHED" for t in trials)


def test_a_sweep_without_a_writer_summarises_itself_the_same_way(tmp_project):
    env = cli_env(tmp_project) | {"MLEXP_TRACKING_WRITER": "inline"}
    sweep = ["-m", "task=tabular_regression", *TINY, "model.l1_size=8,16"]
    done = _python(tmp_project, "-m", "mlexp.cli", *sweep, env=env)
    _assert_summarised(tmp_project, done.stdout)


def _assert_summarised(project: Path, stdout: str) -> None:
    """The sweep's end as the user sees it and as the store keeps it: table, best trial marked, charts, FINISHED."""
    client = store_client(project)
    found = client.get_experiment_by_name("tabular_regression" + tags.SWEEPS_SUFFIX)
    assert found is not None
    [record] = client.search_runs([found.experiment_id], f"tags.`{tags.KIND}` = 'sweep'")
    trials = trials_of(project)
    best = min(trials, key=lambda t: t.metrics["test_msle"])
    assert record.info.status == "FINISHED"
    assert record.data.tags["mlexp.best_trial"] == best.run_id and best.tags[tags.BEST_IN_SWEEP] == "true"
    assert record.data.metrics["best_test_msle"] == best.metrics["test_msle"]
    artifacts = {a.path for a in client.list_artifacts(record.info.run_id, "comparison")}
    assert {"comparison/trials.txt", "comparison/model_l1_size_vs_test_msle.png"} <= artifacts
    rows = [line for line in stdout.splitlines() if line.startswith(("1  ", "2  "))]
    assert [row.split()[1] for row in rows] == [best.name, next(t.name for t in trials if t is not best)]
    assert f"best trial: {best.name} ({best.run_id})" in stdout


def test_a_sweep_end_the_writer_cannot_do_fails_the_sweep_in_one_line_and_keeps_its_trials(tmp_project):
    (tmp_project / "outputs").mkdir()
    (tmp_project / "outputs" / "sweeps").write_text("a file where the sweep's charts folder goes\n")
    sweep = ["-m", "task=tabular_regression", *TINY, "model.l1_size=8,16"]
    done = subprocess.run(
        [sys.executable, "-m", "mlexp.cli", *sweep],
        cwd=tmp_project,
        env=cli_env(tmp_project),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 1
    [error] = [line for line in done.stderr.splitlines() if line.startswith("mlexp: error:")]
    assert "the tracking writer could not summarise the sweep" in error and "outputs/sweeps" in error
    assert "Traceback" not in done.stderr
    client = store_client(tmp_project)
    found = client.get_experiment_by_name("tabular_regression" + tags.SWEEPS_SUFFIX)
    assert found is not None
    [record] = client.search_runs([found.experiment_id], f"tags.`{tags.KIND}` = 'sweep'")
    assert record.info.status == "FAILED"
    assert [t.status for t in trials_of(tmp_project)] == ["FINISHED", "FINISHED"]


def test_a_sweep_on_a_relative_store_uri_is_summarised_in_that_store(tmp_project, monkeypatch):
    # the writer runs in a folder of its own: the sweep's end names the store by its absolute place
    env = cli_env(tmp_project) | {"MLFLOW_ALLOW_FILE_STORE": "true"}
    sweep = ["-m", "task=tabular_regression", *TINY, "model.l1_size=8,16", "tracking.uri=file:mlruns"]
    done = _python(tmp_project, "-m", "mlexp.cli", *sweep, env=env)
    assert "best trial: " in done.stdout
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient(tracking_uri=(tmp_project / "mlruns").as_uri())
    found = client.get_experiment_by_name("tabular_regression" + tags.SWEEPS_SUFFIX)
    assert found is not None
    [record] = client.search_runs([found.experiment_id], f"tags.`{tags.KIND}` = 'sweep'")
    assert record.info.status == "FINISHED" and "mlexp.best_trial" in record.data.tags
