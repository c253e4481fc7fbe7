"""What a trial's user sees when its store is not the default, cannot be reached, is mistyped, or when the
SageMaker Experiments mirror cannot start: the real cause in one line, a hint that reads the right store, and a way
out of journals no store will ever take; and deleting an experiment on a server. Real CLI runs, one real `mlflow
server` on loopback for the file (seconds of CPU to start), AWS credentials resolved offline (no request leaves the
machine)."""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from mlflow.tracking import MlflowClient

from conftest import REPO, TINY, _free_port, cli_env, run_cli, running_mlflow_server, trials_of
from mlexp.cleanup import delete_experiment
from mlexp.tracking import TrackingStore
from mlexp.tracking.journal import Journal, journals_root
from mlexp.tracking.journal_apply import discard

TASK = "task=tabular_regression"


def _journals(project: Path) -> list[Path]:
    folder = journals_root(project)
    return sorted(p for p in folder.glob("*/") if not p.name.startswith(".")) if folder.exists() else []


def _compare_hint(stdout: str) -> list[str]:
    """The `compare trials:` line's command, as the user would paste it (without `mlexp`)."""
    [line] = [line for line in stdout.splitlines() if line.startswith("  compare trials:  ")]
    command = shlex.split(line.removeprefix("  compare trials:  "))
    assert command[:2] == ["mlexp", "compare"], line
    return command[1:]


def _quick_env(project: Path) -> dict[str, str]:
    """cli_env without AWS credentials anywhere in the chain nor an instance-metadata lookup (nothing leaves the
    machine), and without HTTP retries (a server that is down fails a request at once). The file's commands that need
    either take both: with the same settings they share one tracking writer (each start imports MLflow: seconds of
    CPU)."""
    env = {k: v for k, v in cli_env(project).items() if not k.startswith("AWS_")}
    return env | {
        "AWS_CONFIG_FILE": os.devnull,  # empty: no profile
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_DEFAULT_REGION": "us-east-1",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    }


# --- the SageMaker Experiments mirror without AWS access -----------------------------------------------------------


def test_a_mirror_without_aws_credentials_says_so_in_one_line_through_the_tracking_writer(tmp_project_with_store):
    # the default writer (a journal and the writer process), not MLEXP_TRACKING_WRITER=inline: the set-up is refused
    # before the trial opens (tests/test_sagemaker_mirror.py), so neither the store nor a journal gets anything
    env = _quick_env(tmp_project_with_store)
    done = run_cli(tmp_project_with_store, TASK, *TINY, "tracking.sagemaker_mirror=true", env=env, check=False)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        "mlexp: error: tracking.sagemaker_mirror=true: no AWS credentials found; run `aws configure` (or `aws sso "
        "login`), or set AWS_PROFILE=<profile> (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), or run where an IAM "
        "role provides them, or use tracking.sagemaker_mirror=false"
    ]
    store = MlflowClient(f"sqlite:///{tmp_project_with_store / 'mlflow.db'}")
    assert store.get_experiment_by_name("tabular_regression") is None  # no trial opened
    assert _journals(tmp_project_with_store) == []


# --- the compare hint names the store the trials went to (a server's: at the end) --------------------------------


def test_the_compare_hint_of_the_default_store_names_no_store(tmp_project_with_store):
    done = run_cli(tmp_project_with_store, TASK, *TINY)
    assert _compare_hint(done.stdout) == ["compare", TASK]


def test_a_default_store_compare_cannot_use_does_not_fail_the_trial_that_used_another(tmp_project):
    # $MLFLOW_TRACKING_URI without a scheme, overridden by tracking.uri: the trial ran and recorded; its hint failed it
    other = tmp_project / "other.db"
    env = cli_env(tmp_project) | {"MLFLOW_TRACKING_URI": "localhost:5000"}
    done = run_cli(tmp_project, TASK, *TINY, f"tracking.uri=sqlite:///{other}", env=env)
    assert _compare_hint(done.stdout) == ["compare", TASK, f"tracking.uri=sqlite:///{other}"]


def test_compare_takes_tracking_server_as_a_trial_does(tmp_project):
    done = run_cli(tmp_project, "compare", TASK, "tracking=server", check=False)
    assert (done.returncode, done.stderr.strip()) == (
        2,
        "mlexp compare: error: tracking=server needs the team's MLflow server: export "
        "MLEXP_TRACKING_SERVER=http://<host>:<port> or add tracking.uri=http://<host>:<port>",
    )
    done = run_cli(tmp_project, "compare", TASK, "tracking=servr", check=False)
    assert (done.returncode, done.stderr.strip()) == (
        2,
        "mlexp compare: error: tracking='servr' is not a tracking option; choose mlflow or server",
    )


# --- a server that cannot be reached, an address that is not a URL, journals no store will take ------------------


def test_a_server_that_is_down_is_one_line_and_its_journal_can_be_discarded(tmp_project):
    url = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    # no retries, to be quick: each command here gave up after mlexp's bounded ones (test_journal.py waits them out)
    env = _quick_env(tmp_project) | {"MLEXP_TRACKING_SERVER": url}
    done = run_cli(tmp_project, TASK, *TINY, "tracking=server", env=env, check=False)
    [journal] = _journals(tmp_project)
    assert done.returncode == 1
    # was ~700 characters of urllib3's retries ("HTTPConnectionPool(host=... Max retries exceeded ...")
    assert done.stderr.splitlines() == [
        f"mlexp: error: cannot reach the tracking server {url} (Connection refused): check that it runs and that the "
        "address is right (tracking.uri, $MLEXP_TRACKING_SERVER or $MLFLOW_TRACKING_URI); the records are "
        f"kept in {journal}: `mlexp sync` stores them once the server answers"
    ]

    synced = run_cli(tmp_project, "sync", env=env, check=False)
    assert synced.returncode == 1
    assert synced.stdout.splitlines() == [
        f"1 trial journal kept: cannot reach the tracking server {url} (Connection refused)",
        f"  {journal}",
        f"  `mlexp sync` stores it once the store takes it; to drop it for good: mlexp sync --discard {url}",
        "0 trial journals stored, 1 kept",
    ]

    asked = run_cli(tmp_project, "sync", "--discard", url, env=env, check=False)  # no terminal to say yes on
    assert asked.returncode == 1 and asked.stderr.strip().endswith(
        "nothing discarded: no terminal to confirm on; add --force"
    )
    assert f"  {journal} (for {url})" in asked.stdout and _journals(tmp_project) == [journal]
    unknown = run_cli(tmp_project, "sync", "--discard", "http://127.0.0.1:1", "--force", env=env, check=False)
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == (
        "mlexp sync: error: no kept trial journal is for 'http://127.0.0.1:1'; kept journals wait for: "
        f"{url} (`mlexp sync` lists them)"
    )

    dropped = run_cli(tmp_project, "sync", "--discard", url, "--force", env=env)
    assert dropped.stdout.splitlines() == [f"{journal.name}: discarded", "1 trial journal discarded"]
    assert _journals(tmp_project) == []
    assert run_cli(tmp_project, "sync", env=env).stdout.splitlines() == [
        f"nothing to sync: no trial journals in {journals_root(tmp_project)} (every trial's records are in its store)"
    ]


def test_a_server_that_is_down_is_one_line_from_the_trials_own_process_too(tmp_project):
    url = f"http://127.0.0.1:{_free_port()}"
    # MLEXP_TRACKING_WRITER=inline: MLflow's error reached Hydra's report, a traceback; no retries here, to be quick
    env = cli_env(tmp_project) | {"MLEXP_TRACKING_WRITER": "inline", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
    done = run_cli(tmp_project, TASK, *TINY, f"tracking.uri={url}", env=env, check=False)
    assert (done.returncode, done.stderr.splitlines()) == (
        1,
        [
            f"mlexp: error: cannot reach the tracking server {url} (Connection refused): check that it runs and that "
            "the address is right (tracking.uri, $MLEXP_TRACKING_SERVER or $MLFLOW_TRACKING_URI)"
        ],
    )


def test_a_journal_whose_trial_still_runs_is_never_discarded(tmp_path):
    running = Journal.create(tmp_path, "http://127.0.0.1:9", None)  # its owner's lock held, as by a running trial
    assert discard(tmp_path, [running.folder]) == ([], [running.folder])
    assert (running.folder / "header.json").exists()
    running.release()
    assert discard(tmp_path, [running.folder]) == ([running.folder], [])
    assert not running.folder.exists()


@pytest.mark.parametrize(
    ("given", "env_key", "named"),
    [
        (("tracking=server",), "MLEXP_TRACKING_SERVER", "MLEXP_TRACKING_SERVER"),
        (("tracking.uri=localhost:5055",), None, "tracking.uri"),
        ((), "MLFLOW_TRACKING_URI", "$MLFLOW_TRACKING_URI"),
    ],
)
def test_a_server_address_without_its_scheme_is_refused_before_the_trial(tmp_project, given, env_key, named):
    address = "localhost:5055" if not env_key else "127.0.0.1:5055"
    env = cli_env(tmp_project) | ({env_key: address} if env_key else {})
    done = run_cli(tmp_project, TASK, *TINY, *given, env=env, check=False)
    # was MLflow's "filesystem tracking backend ... maintenance mode" after the trial opened, and a journal for a
    # folder named 127.0.0.1:5055 in the current directory
    assert (done.returncode, done.stderr.splitlines()) == (
        2,
        [
            f"mlexp: error: {named}={address} is not a URL: give http://host:port "
            f"(http://{address} if the server speaks HTTP)"
        ],
    )
    assert _journals(tmp_project) == [] and not (tmp_project / "outputs").exists()


@pytest.mark.parametrize(
    ("command", "uri", "hint"),
    [
        (["compare", "task=tabular_regression"], "postgresql://u@127.0.0.1:1/x", "No module named 'psycopg'"),
        (["delete", "task=tabular_regression", "--force"], "mysql://u@127.0.0.1:1/x", "No module named 'MySQLdb'"),
    ],
)
def test_a_database_store_whose_driver_is_missing_is_one_line_from_the_reading_commands(
    tmp_project, command, uri, hint
):
    # a ModuleNotFoundError traceback from SQLAlchemy's dialect (a trial already said it in one line)
    done = run_cli(tmp_project, *command, f"tracking.uri={uri}", check=False)
    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"mlexp {command[0]}: error: the tracking store's database driver is not installed ({hint})")
    if "psycopg'" in hint:
        assert line.endswith("(postgresql+psycopg2://... uses psycopg2, installed with mlexp)")


def test_a_trial_on_a_database_store_whose_driver_is_missing_names_the_package_to_install(tmp_project):
    # "refused the trial's records (ModuleNotFoundError: No module named 'psycopg'); ...: fix the store, then run
    # `mlexp sync`": nothing is wrong with the store
    done = run_cli(
        tmp_project, "task=tabular_regression", *TINY, "tracking.uri=postgresql://u@127.0.0.1:1/x", check=False
    )
    assert done.returncode == 1
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith(
        "mlexp: error: the tracking store's database driver is not installed (No module named 'psycopg'); install it "
        "(pip install 'psycopg[binary]'), or name one that is in tracking.uri (postgresql+psycopg2://... uses psycopg2"
    ), line
    [journal] = _journals(tmp_project)
    assert line.endswith(
        f"the trial's records are kept in {journal}: `mlexp sync` stores them once it is installed (they name this "
        "store; `mlexp sync --discard postgresql://u@127.0.0.1:1/x` drops them)"
    )
    # and `mlexp sync` says the same of them, not "the store refused it (ModuleNotFoundError ...)"
    synced = run_cli(tmp_project, "sync", check=False)
    assert synced.stdout.startswith(
        "1 trial journal kept for postgresql://u@127.0.0.1:1/x: the tracking store's database driver is not installed "
        "(No module named 'psycopg'); install it"
    ), synced.stdout
    assert "ModuleNotFoundError" not in synced.stdout + synced.stderr


# --- the file's server: one that came back, the compare hint of trials on it, deleting an experiment there -------
# last in the file: kept_while_down's trial reaches the (no AWS, no retries) writer the tests above started


@pytest.fixture(scope="module")
def kept_while_down(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """The address of the file's `server` and a project whose trial ran before that server started: its records are
    kept in a journal. Made once, so that one server (seconds of CPU to start) serves the file's tests."""
    url = f"http://127.0.0.1:{_free_port()}"  # nothing listens there yet
    project = tmp_path_factory.mktemp("kept-while-down") / "project"
    shutil.copytree(REPO / "conf", project / "conf")
    # no retries, to be quick; an experiment of its own: the server's tabular_regression is another test's
    env = _quick_env(project) | {"MLEXP_TRACKING_SERVER": url}
    run_cli(project, TASK, *TINY, "tracking=server", "tracking.experiment_name=came_back", env=env, check=False)
    return url, project


@pytest.fixture(scope="module")
def server(kept_while_down: tuple[str, Path], tmp_path_factory: pytest.TempPathFactory, empty_store: Path):
    """URL of a real `mlflow server` (conftest's), started where kept_while_down's trial found nothing listening."""
    url, _ = kept_while_down
    folder = tmp_path_factory.mktemp("mlflow-server")
    with running_mlflow_server(folder, urlsplit(url).port, template=empty_store):
        yield url


def test_discarding_stores_first_what_the_store_takes_now(kept_while_down, server):
    # the server came back: `--discard` would have thrown away records it could store
    url, project = kept_while_down
    [journal] = _journals(project)
    env = cli_env(project) | {"MLEXP_TRACKING_SERVER": url}
    done = run_cli(project, "sync", "--discard", url, "--force", env=env)
    assert done.stdout.splitlines() == [
        f"{journal.name}: stored (its store took it; not discarded)",
        "0 trial journals discarded: the store took what was kept",
    ]
    assert _journals(project) == []
    # its records reached the server (the trial itself ended FAILED: its store could not be reached)
    [trial] = trials_of(project, "came_back", client=MlflowClient(url))
    assert trial.status == "FAILED" and trial.params["model.epochs"] == "2"


def test_the_compare_hint_of_a_trial_on_a_server_reads_that_server(tmp_project, server):
    env = cli_env(tmp_project) | {"MLEXP_TRACKING_SERVER": server}
    done = run_cli(tmp_project, TASK, *TINY, "tracking=server", env=env)
    hint = _compare_hint(done.stdout)
    assert hint == ["compare", TASK, "tracking=server"]  # was `mlexp compare task=...`: the local store
    compared = run_cli(tmp_project, *hint, env=env)
    names = {trial.name for trial in trials_of(tmp_project, client=MlflowClient(server))}
    assert names and all(name in compared.stdout for name in names)
    assert not (tmp_project / "mlflow.db").exists()  # nothing read, nor created, in the project's store

    # a server named per command (no $MLEXP_TRACKING_SERVER): the hint carries its URL
    env = cli_env(tmp_project)
    done = run_cli(tmp_project, TASK, *TINY, f"tracking.uri={server}", "tracking.experiment_name=hinted", env=env)
    hint = _compare_hint(done.stdout)
    assert hint == ["compare", "experiment=hinted", f"tracking.uri={server}"]
    compared = run_cli(tmp_project, *hint, env=env)
    assert compared.stdout.startswith("experiment hinted: 1 trial, best first by test_msle")


def test_the_compare_hint_of_a_sweep_on_a_server_reads_that_server(tmp_project, server):
    env = cli_env(tmp_project) | {"MLEXP_TRACKING_SERVER": server}
    sweep = ("-m", TASK, "sweep=grid", "sweep.max_parallel_jobs=1", "model.l1_size=4,8", "tracking=server")
    done = run_cli(tmp_project, *sweep, *TINY, "tracking.experiment_name=swept", env=env)
    hint = _compare_hint(done.stdout)
    assert hint[0] == "compare" and hint[1].startswith("sweep=") and hint[2:] == ["tracking=server"]
    compared = run_cli(tmp_project, *hint, env=env)  # was: no sweep named ... in sqlite:///<project>/mlflow.db
    assert compared.stdout.startswith(f"sweep {hint[1].removeprefix('sweep=')} in experiment swept: 2 trials")


def test_on_a_server_deleting_an_experiment_frees_its_name_and_deletes_its_artifacts(tmp_project, server):
    # tests/test_cleanup.py deletes from the project's own store; here a server's, through its API
    store = TrackingStore.resolve(server, tmp_project)
    client = store.client()
    experiment_id = store.experiment_id("remote")
    # a trial with one Training component holding a file, as mlexp records them (no training needed here)
    trial = client.create_run(experiment_id, run_name="remote-0", tags={"mlexp.kind": "trial"})
    component = client.create_run(
        experiment_id, run_name="Training", tags={"mlexp.kind": "component", "mlflow.parentRunId": trial.info.run_id}
    ).info.run_id
    client.log_text(component, "weights", "model/weights.txt")
    for run in (component, trial.info.run_id):
        client.set_terminated(run)
    assert [f.path for f in client.list_artifacts(component)] == ["model"]

    report = delete_experiment("remote", force=True, tracking_uri=server, root=tmp_project)

    # no permanent delete over a server's API: renamed out of the way, marked deleted, its files deleted
    assert not report.permanent and report.trials and report.kept_artifacts == []
    retired = client.get_experiment(experiment_id)
    assert (retired.name, retired.lifecycle_stage) == (report.renamed_to, "deleted")
    assert client.list_artifacts(component) == []
    assert store.experiment_id("remote") != experiment_id
