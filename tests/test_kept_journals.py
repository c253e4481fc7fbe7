"""Journals kept for a tracking server that does not answer: the replay a later command makes on its own gives up in
seconds (not MLflow's minutes of retries), keeps them untouched and says so in one line; they reach the server once
it answers. And a server's refusal says whether the account may not read or not write. Real loopback servers: a
port nothing listens on, one that answers 403 or 503 to everything, one that never answers, a real `mlflow server`."""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import os
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from conftest import TINY, _free_port, private_writer_env, run_cli, running_mlflow_server
from loopback_server import answering
from mlexp.tracking.journal import Journal, journals_root
from mlexp.tracking.journal_apply import replay_orphans, settle
from mlexp.tracking.store import QUICK_CHECK, bound_store_retries, retries_bounded_here
from one_trial_journal import journal_of_one_trial

TASK = "task=tabular_regression"
SLACK_S = 60  # the replay gives up in ~10 s at most; MLflow's own retries took minutes per journal


def _kept_journal(project: Path, url: str) -> Journal:
    """The journal of a trial whose server did not answer: a finished run the server never got."""
    return journal_of_one_trial(project, url, experiment="kept")


def _settle_in_a_process(root: str, queue: multiprocessing.Queue) -> None:
    said = io.StringIO()
    started = time.monotonic()
    with contextlib.redirect_stderr(said):
        replayed = settle(Path(root), group="a-later-sweep", wait_s=0)
    queue.put((time.monotonic() - started, [entry.error for entry in replayed], said.getvalue()))


def _settle_within(root: Path, seconds: float) -> tuple[float, list[str], str]:
    """settle() as a sweep's process runs it, or a failure once it has taken `seconds`."""
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    process = context.Process(target=_settle_in_a_process, args=(str(root), queue))
    process.start()
    try:
        return queue.get(timeout=seconds)
    except Exception:
        pytest.fail(f"the replay of kept journals was still waiting for the server after {seconds} s")
    finally:
        process.kill()
        process.join()


@pytest.fixture
def mlflow_defaults(monkeypatch):
    """A sweep's process as the user starts it: MLflow's own HTTP retries (7, 120 s each), none of mlexp's bounds."""
    for name in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)


def _what_mlflow_reads() -> tuple[int, int]:
    from mlflow.environment_variables import MLFLOW_HTTP_REQUEST_MAX_RETRIES, MLFLOW_HTTP_REQUEST_TIMEOUT

    return MLFLOW_HTTP_REQUEST_MAX_RETRIES.get(), MLFLOW_HTTP_REQUEST_TIMEOUT.get()


def test_the_quick_check_tightens_mlexps_own_bound_for_a_while_but_never_a_value_the_user_set(monkeypatch):
    retries, timeout = QUICK_CHECK
    for name in (retries, timeout):
        monkeypatch.setenv(name, "")  # recorded, so that monkeypatch leaves the variables as they were before the test
        monkeypatch.delenv(name)
    bound_store_retries()  # as the tracking writer and `mlexp sync` do for their whole process
    with retries_bounded_here(QUICK_CHECK):
        assert _what_mlflow_reads() == (1, 5)
    assert _what_mlflow_reads() == (2, 10)
    monkeypatch.setenv(retries, "0")
    with retries_bounded_here(QUICK_CHECK):
        assert _what_mlflow_reads() == (0, 5)
    assert _what_mlflow_reads() == (0, 10)


def test_bounds_that_overlap_leave_mlflows_settings_and_the_environment_as_they_were(monkeypatch):
    # a thread's bound ending inside another's took the other's away, and the other's end left its bound for good
    retries, timeout = QUICK_CHECK
    for name in (retries, timeout):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    first, second = retries_bounded_here(), retries_bounded_here(QUICK_CHECK)
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)  # the first lookup ends while the second goes on
    assert _what_mlflow_reads() == (1, 5)
    second.__exit__(None, None, None)
    assert _what_mlflow_reads() == (7, 120)  # MLflow's own
    assert retries not in os.environ and timeout not in os.environ


def test_a_bound_applies_to_its_own_threads_calls_and_never_breaks_another_threads_reading_of_the_environment(
    monkeypatch,
):
    # a service's champion probe set the variables for its lookup and removed them after, while a request thread's
    # `requests` listed the environment for proxies: that request failed with KeyError('MLFLOW_HTTP_REQUEST_...');
    # and the bound applied to every thread's calls meanwhile (another's model download), and to processes started then
    import threading

    from mlflow.environment_variables import MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR

    from mlexp.serving.pyfunc_model import quiet_mlflow

    for name in (*QUICK_CHECK, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    environment = dict(os.environ)
    bars = MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR

    def read_in_another_thread() -> tuple[int, int, bool]:
        read: list[tuple[int, int, bool]] = []
        reader = threading.Thread(target=lambda: read.append((*_what_mlflow_reads(), bars.get())))
        reader.start()
        reader.join()
        return read[0]

    with retries_bounded_here(QUICK_CHECK), quiet_mlflow():
        assert (*_what_mlflow_reads(), bars.get()) == (1, 5, False)
        # the bound is this thread's; quiet is every thread's (MLflow downloads a model's files in threads of its own)
        assert read_in_another_thread() == (7, 120, False)
    assert read_in_another_thread() == (7, 120, True)  # MLflow's own

    failures: list[str] = []
    stop, reading = threading.Event(), threading.Event()

    def read_the_environment() -> None:
        while not stop.is_set():
            try:
                dict(os.environ.items())  # as urllib's getproxies_environment does
            except KeyError as error:
                failures.append(repr(error))
            reading.set()

    reader = threading.Thread(target=read_the_environment)
    reader.start()
    reading.wait(10)
    try:
        for _ in range(3000):
            with retries_bounded_here(QUICK_CHECK), quiet_mlflow():
                assert dict(os.environ) == environment
    finally:
        stop.set()
        reader.join()
    assert failures == []


@pytest.mark.parametrize(
    ("status", "writing", "down"),
    [(500, True, False), (429, True, False), (429, False, False), (500, False, True)]
    + [(status, writing, True) for status in (502, 503, 504) for writing in (True, False)],
)
def test_only_a_gateways_status_to_every_try_of_a_write_says_the_server_cannot_be_reached(status, writing, down):
    # a 500 to one journal's writes said "cannot reach the tracking server", and its other journals were kept untried;
    # a 500 to every read (nothing served) still says it, as before
    from mlflow.exceptions import MlflowException
    from requests.exceptions import RetryError

    from mlexp.tracking.store import store_failure, unreachable

    try:
        try:
            raise RetryError(f"Max retries exceeded (Caused by ResponseError('too many {status} error responses'))")
        except RetryError as cause:
            raise MlflowException(f"API request to http://127.0.0.1:1/api failed: {cause}") from cause
    except MlflowException as error:
        line = store_failure(error, "http://127.0.0.1:1", writing=writing)
        assert unreachable(line) is down
        assert "\n" not in line and "Max retries" not in line  # one line, not MLflow's page of retries


def test_a_store_a_check_found_down_moments_ago_keeps_its_journals_without_saying_so_again(tmp_path):
    # a server that had come back still got "1 trial journal kept: cannot reach ..." from the next trial's replay
    from mlexp.tracking.journal_apply import StoreWriters, unreached

    url = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    journal = _kept_journal(tmp_path, url)
    writers = StoreWriters()
    first = replay_orphans(tmp_path, writers, check_first=True)
    assert len(unreached(first)) == 1  # said by the command whose replay asked
    again = replay_orphans(tmp_path, writers, check_first=True)  # within RECHECK_S: not asked again
    assert [entry.folder for entry in again] == [journal.folder] and unreached(again) == []
    assert journal.state().applied == 0


@pytest.mark.usefixtures("mlflow_defaults")
@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (503, "it answered HTTP 503 to every try"),
        (429, "it answered HTTP 429 to every try"),
        (None, "no answer within 1 s"),
    ],
    ids=str,
)
def test_a_sweeps_replay_gives_up_on_a_server_that_is_unavailable_or_hangs_within_seconds(
    tmp_path, monkeypatch, status, reason
):
    monkeypatch.setitem(QUICK_CHECK, "MLFLOW_HTTP_REQUEST_TIMEOUT", "1")  # its 5 s, shortened for the suite's time
    with answering(status) as url:
        journals = [_kept_journal(tmp_path, url) for _ in range(3)]
        took, errors, said = _settle_within(tmp_path, SLACK_S)  # was minutes per journal (forever for one that hangs)
    line = f"cannot reach the tracking server {url} ({reason})"
    assert errors == [line] * 3 and took < SLACK_S
    # the line a sweep prints (the CLI quiets MLflow's own warnings, not this test's process)
    ours = [said_line for said_line in said.splitlines() if said_line.startswith("mlexp")]
    assert ours == [f"mlexp: 3 trial journals kept: {line}; `mlexp sync` sends them once the server answers"]
    assert all(journal.state().applied == 0 and (journal.folder / "header.json").exists() for journal in journals)


@pytest.mark.usefixtures("mlflow_defaults")
def test_journals_a_replay_kept_for_a_server_that_was_down_reach_it_once_it_answers(tmp_path, empty_store):
    port = _free_port()  # nothing listens there yet
    url = f"http://127.0.0.1:{port}"
    journals = [_kept_journal(tmp_path, url) for _ in range(2)]
    took, errors, said = _settle_within(tmp_path, SLACK_S)  # was ~4 minutes per journal
    assert errors == [f"cannot reach the tracking server {url} (Connection refused)"] * 2 and took < SLACK_S
    assert "2 trial journals kept" in said and all(journal.state().applied == 0 for journal in journals)

    folder = tmp_path / "server"
    folder.mkdir()
    with running_mlflow_server(folder, port, template=empty_store):
        assert [entry.error for entry in replay_orphans(tmp_path)] == ["", ""]
        client = MlflowClient(url)
        runs = client.search_runs([client.get_experiment_by_name("kept").experiment_id])
    assert [(run.info.status, run.data.params, run.data.metrics) for run in runs] == [
        ("FINISHED", {"lr": "0.1"}, {"loss": 0.5})
    ] * 2
    assert list(journals_root(tmp_path).iterdir()) == []


def test_a_trial_in_a_project_with_journals_kept_for_a_server_that_is_down_runs_and_says_so_once(tmp_project):
    url = f"http://127.0.0.1:{_free_port()}"
    kept = _kept_journal(tmp_project, url)
    # its own writer: the replay a command's connection asks for runs there, with mlexp's bounds
    done = run_cli(tmp_project, TASK, *TINY, env=private_writer_env(tmp_project))
    assert (
        done.stderr.splitlines().count(
            f"mlexp: 1 trial journal kept: cannot reach the tracking server {url} (Connection refused); `mlexp sync` "
            "sends it once the server answers"
        )
        == 1
    ), done.stderr
    assert [p for p in journals_root(tmp_project).iterdir() if not p.name.startswith(".")] == [kept.folder]
    assert kept.state().applied == 0


@pytest.mark.parametrize(
    ("body", "fix"),
    [
        ("Permission denied", "use an account the server lets {} its experiments"),
        (
            "Invalid Host header - possible DNS rebinding attack detected",
            "on the server, add {host} to `mlflow server --allowed-hosts` (or reach the server by a name listed there)",
        ),
    ],
    ids=["account", "host check"],
)
def test_a_server_refusing_a_trials_records_says_write_and_a_reading_command_says_read(tmp_project, body, fix):
    env = private_writer_env(tmp_project)
    with answering(403, body) as url:
        host = url.removeprefix("http://")
        trial = run_cli(tmp_project, TASK, *TINY, f"tracking.uri={url}", env=env, check=False)
        compare = run_cli(tmp_project, "compare", TASK, f"tracking.uri={url}", env=env, check=False)
    [trial_line], [compare_line] = trial.stderr.splitlines(), compare.stderr.splitlines()
    # was "... lets read its experiments" for the trial's writes too
    assert trial.returncode == 1 and fix.format("write to", host=host) + "); they are kept in " in trial_line
    assert compare.returncode != 0 and compare_line.endswith(fix.format("read", host=host))


@pytest.mark.usefixtures("mlflow_defaults")
def test_compare_against_a_server_that_answers_500_to_everything_is_one_line(tmp_path):
    # a review found it MLflow's page of retries, exit 1, once a 500 no longer said the server could not be reached
    with answering(500, "Internal Server Error") as url:
        done = run_cli(tmp_path, "compare", "experiment=x", f"tracking.uri={url}", check=False)
    [line] = done.stderr.strip().splitlines()
    assert done.returncode == 2 and line.startswith(
        f"mlexp compare: error: cannot reach the tracking server {url} (it answered HTTP 500 to every try)"
    ), done.stderr
