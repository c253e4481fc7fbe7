"""Nothing acknowledged is lost: SIGKILL the service during a burst of concurrent feedback writes, restart it, and
every record the clients got a 200 for is in the store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

from conftest import REPO
from text_classification_service_setup import CLASSIFIER, shared_model, start_service

SERVER = REPO / "tests" / "text_classification_service_setup.py"


def _start(model: Path, store: Path) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "tests"), os.environ.get("PYTHONPATH", "")])}
    server = subprocess.Popen(
        [sys.executable, str(SERVER), str(model), str(store)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert server.stdout is not None
    url = server.stdout.readline().strip()
    assert url.startswith("http://"), f"the server did not start (exit {server.poll()})"
    return server, url


def test_sigkill_during_a_feedback_burst_loses_no_acknowledged_record(tmp_path, tmp_path_factory):
    model = shared_model(tmp_path_factory)
    store = tmp_path / "feedback.sqlite"
    server, url = _start(model, store)
    acknowledged: dict[int, str] = {}
    failures = [0]
    lock = threading.Lock()
    stop = threading.Event()

    def client(number: int) -> None:
        with requests.Session() as session:
            sent = 0
            while not stop.is_set():
                text = f"client {number} feedback {sent}: the hockey playoffs"
                sent += 1
                try:
                    answer = session.post(
                        url + "/feedback", json={"classifier": CLASSIFIER, "sentence": text}, timeout=30
                    )
                except requests.RequestException:
                    with lock:
                        failures[0] += 1
                    continue
                if answer.status_code == 200:
                    with lock:
                        acknowledged[answer.json()["id"]] = text

    clients = [threading.Thread(target=client, args=(n,)) for n in range(16)]
    for thread in clients:
        thread.start()
    # counted, not timed: a busy machine acknowledges far fewer than 300 records in 10 s
    deadline = time.monotonic() + 120
    while len(acknowledged) < 300 and time.monotonic() < deadline:
        time.sleep(0.01)
    server.send_signal(signal.SIGKILL)  # mid-burst: writes are queued, committing and answered at this moment
    server.wait(60)
    # the clients see the dead server (a refused or dropped request) before they stop
    deadline = time.monotonic() + 60
    while failures[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    for thread in clients:
        thread.join()
    assert len(acknowledged) >= 300 and failures[0] > 0, "the kill must land during the burst"

    # restart on the same store (in this process: the same start-up path, without a second interpreter's imports)
    restarted = start_service(model, store, None)
    try:
        after = requests.post(
            restarted.url + "/feedback", json={"classifier": CLASSIFIER, "sentence": "after the restart"}
        )
        assert after.status_code == 200
        stored = {item.id: item.record.text for item in restarted.store.feedback()}
    finally:
        restarted.stop()
    missing = {i: t for i, t in acknowledged.items() if stored.get(i) != t}
    assert not missing, f"{len(missing)} acknowledged record(s) lost, e.g. {list(missing.items())[:3]}"
    assert stored[after.json()["id"]] == "after the restart"
