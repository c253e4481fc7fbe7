"""Stopping `deploy=local`: requests in flight finish, unless Ctrl-C is pressed during that wait; the trial finishes."""

from __future__ import annotations

import contextlib
import ctypes
import json
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import start_cli, stop_process_group, store_client, trials_of

TASK = "recommendation"
SERVICE = (
    f"task={TASK}",
    *("dataset.n_users=300", "dataset.n_videos=300", "dataset.n_interactions=10000"),
    *("deploy=local", "deploy.source=trial", "deploy.port=0", "deploy.require_api_key=false"),
    # a graceful stop waits for a held request 10 minutes (its deadline and the grace): far past the test's timeouts
    "deploy.request_timeout_s=600",
)
EVENT = json.dumps({"userId": "user_000001", "sessionId": "s1", "eventList": [{"itemId": "v1", "eventType": "watch"}]})


def _start_service(project) -> tuple[subprocess.Popen, tuple[str, int]]:
    """The trial serving its model, and the address it listens on (its `service: http://host:port` line)."""
    # as from a terminal: a suite started in the background (`make test &`) passes on SIGINT ignored
    process = start_cli(project, *SERVICE, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert process.stdout is not None
    lines: list[str] = []
    while not any(line.startswith("service: http://") for line in lines):
        line = process.stdout.readline()
        if not line:
            stop_process_group(process)
            raise AssertionError("the service exited before it started:\n" + "".join(lines) + process.stderr.read())
        lines.append(line)
    host, port = lines[-1].split()[1].removeprefix("http://").split(":")
    return process, (host, int(port))


def _held_request(address: tuple[str, int]) -> socket.socket:
    """A `POST /events` whose handler waits for the rest of its body: `Expect: 100-continue` makes the server say
    `100 Continue` when the handler begins to read it (observed, not timed)."""
    held = socket.create_connection(address, timeout=120)
    head = f"POST /events HTTP/1.1\r\nHost: service\r\nContent-Type: application/json\r\nContent-Length: {len(EVENT)}"
    held.sendall(f"{head}\r\nExpect: 100-continue\r\n\r\n".encode())
    assert _read_until_closed_or(held, b"\r\n\r\n").startswith(b"HTTP/1.1 100 ")
    return held


def _read_until_closed_or(sock: socket.socket, end: bytes = b"") -> bytes:
    received = b""
    while not (end and end in received):
        chunk = sock.recv(4096)
        if not chunk:
            break
        received += chunk
    return received


def _wait_until_stopping(address: tuple[str, int], process: subprocess.Popen) -> None:
    """Until the service refuses new connections: it closes its listening socket when its graceful stop begins."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            socket.create_connection(address, timeout=10).close()
        except ConnectionRefusedError:
            return
        time.sleep(0.05)
    raise AssertionError(f"the service did not begin to stop (exit code {process.poll()})")


def _signal_a_thread_not_the_main_one(process: subprocess.Popen, signum: int) -> None:
    """Send `signum` to one of the service's other threads that does not block it, as the kernel does with a signal
    sent to the process when the main thread has one pending and is not running. The lowest thread id: the thread
    started first, which lives as long as the process (a thread that ends drops a signal sent to it)."""
    assert process.poll() is None, f"the service ended (exit code {process.returncode})"
    tgkill = ctypes.CDLL(None).tgkill
    for task in sorted(Path(f"/proc/{process.pid}/task").iterdir(), key=lambda task: int(task.name)):
        if int(task.name) == process.pid:
            continue
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            blocked = re.search(r"^SigBlk:\s*([0-9a-f]+)$", (task / "status").read_text(), re.MULTILINE)
            if (
                blocked
                and not int(blocked.group(1), 16) >> (signum - 1) & 1
                and tgkill(process.pid, int(task.name), signum) == 0
            ):
                return
    raise AssertionError(f"no thread of the service but the main one takes signal {signum}")


def _assert_answered_service_stopping(held: socket.socket) -> None:
    """The cut request's answer: the service's JSON 503, not uvicorn's plain-text 500; then its connection closes."""
    head, _, body = _read_until_closed_or(held).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503 ") and b"content-type: application/json" in head.lower(), head
    assert json.loads(body) == {
        "error": "the service stopped before it answered this request; send it again once the service is back"
    }


def _assert_ctrl_c_cut_one_short(project, process: subprocess.Popen, output: tuple[str, str], cut, served: int):
    """The service stopped cleanly after `served` requests, the one still held (`cut`) answered as cut short, and
    the trial finished with those counts."""
    stdout, stderr = output
    assert process.returncode == 0, stderr
    assert f"service stopped after {served} request(s); Ctrl-C cut 1 of them short" in stdout.splitlines()
    assert "Traceback" not in stderr, stderr
    _assert_answered_service_stopping(cut)
    [trial] = trials_of(project, experiment=TASK)
    deployment = store_client(project).get_run(trial.components["Deployment"])
    assert trial.status == deployment.info.status == "FINISHED"
    assert deployment.data.metrics["requests_served"] == served
    assert deployment.data.metrics["requests_cut"] == 1


@pytest.mark.usefixtures("tmp_project_with_store")
def test_a_second_ctrl_c_drops_the_request_in_flight_and_the_trial_finishes(tmp_project):
    process, address = _start_service(tmp_project)
    try:
        held = _held_request(address)
        process.send_signal(signal.SIGINT)
        _wait_until_stopping(address, process)
        assert process.poll() is None  # the graceful stop waits for the held request
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=60)
    finally:
        if process.poll() is None:  # a service the second Ctrl-C did not stop would wait 10 minutes
            stop_process_group(process)
    # the dropped request is one line: neither uvicorn's CancelledError traceback nor the "stopping" notice
    assert "mlexp: stopping" not in output[1], output[1]
    _assert_ctrl_c_cut_one_short(tmp_project, process, output, held, served=1)


@pytest.mark.usefixtures("tmp_project_with_store")
def test_a_second_sigterm_still_lets_requests_finish_and_ctrl_c_then_cuts_the_wait(tmp_project):
    process, address = _start_service(tmp_project)
    try:
        finishing, cut = _held_request(address), _held_request(address)
        process.send_signal(signal.SIGTERM)
        _wait_until_stopping(address, process)
        # as a supervisor repeating its SIGTERM: the stop stays graceful, the requests in flight are still answered
        process.send_signal(signal.SIGTERM)
        finishing.sendall(EVENT.encode())
        answer = _read_until_closed_or(finishing)
        assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b'{"recorded":1}'), answer
        process.send_signal(signal.SIGINT)  # the one left would hold the stop 10 minutes
        output = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            stop_process_group(process)
    _assert_ctrl_c_cut_one_short(tmp_project, process, output, cut, served=2)


@pytest.mark.usefixtures("tmp_project_with_store")
def test_signals_another_thread_received_stop_the_service_as_the_main_thread_would(tmp_project):
    """Python runs every handler in the main thread; a wait that ignored a signal another thread got held the stop
    until its own end: SIGTERM forever, Ctrl-C during the graceful stop for the held request's 10 minutes."""
    process, address = _start_service(tmp_project)
    try:
        held = _held_request(address)
        _signal_a_thread_not_the_main_one(process, signal.SIGTERM)
        _wait_until_stopping(address, process)
        _signal_a_thread_not_the_main_one(process, signal.SIGINT)
        output = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            stop_process_group(process)
    _assert_ctrl_c_cut_one_short(tmp_project, process, output, held, served=1)
