"""Running a service: `serve` for `deploy=local` (until Ctrl-C / SIGTERM / max_seconds), `start_in_thread` for tests."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import shlex
import signal
import socket
import threading
import time
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Any

import uvicorn
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig
from starlette.applications import Starlette

from mlexp.errors import ConfigError
from mlexp.interrupts import wait_obeying_signals
from mlexp.serving.http.middleware.errors import ServiceStats
from mlexp.serving.http.settings import ServiceSettings

if TYPE_CHECKING:  # the tracker's MLflow import costs 2 s that `mlexp keys` should not pay
    from mlexp.tracking import Tracker

# in-flight requests get this long to finish after a stop, beyond the request deadline
SHUTDOWN_GRACE_S = 5.0


@dataclass
class RunningService:
    """A uvicorn server answering on a loopback port from a background thread."""

    server: uvicorn.Server
    thread: threading.Thread
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self, timeout: float = 30.0) -> None:
        """Stop accepting connections, let in-flight requests finish, then return."""
        self.server.should_exit = True
        # in slices: a Ctrl-C another thread received still runs serve's cut_short before the timeout
        wait_obeying_signals(self._stopped_within, timeout)

    def _stopped_within(self, seconds: float) -> bool:
        self.thread.join(seconds)
        return not self.thread.is_alive()


def start_in_thread(
    app: Any, host: str = "127.0.0.1", port: int = 0, graceful_s: float = SHUTDOWN_GRACE_S
) -> RunningService:
    """Start a real uvicorn server for `app` on host:port (0: a free port) in a daemon thread, once it listens."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise ConfigError(
            f"cannot listen on {host}:{port} ({error.strerror}); pick another deploy.port (0: any free one)"
        ) from None
    config = uvicorn.Config(
        app, log_level="warning", lifespan="on", timeout_graceful_shutdown=math.ceil(graceful_s), access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="mlexp-service", daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(f"the service on {host}:{port} failed to start; see the log above")
        time.sleep(0.01)
    return RunningService(server, thread, host, int(sock.getsockname()[1]))


def curl_example(url: str, endpoint: str, key_header: bool) -> str:
    """One `curl` line for an endpoint given as "METHOD /path [JSON body]"."""
    method, _, rest = endpoint.strip().partition(" ")
    path, _, body = rest.strip().partition(" ")
    parts = ["curl", "-s"]
    if key_header:
        parts += ["-H", '"x-api-key: $MLEXP_API_KEY"']
    if method.upper() != "GET":
        parts += ["-X", method.upper()]
    if body:
        with contextlib.suppress(ValueError):  # not JSON: printed as given
            body = json.dumps(json.loads(body), ensure_ascii=False)
        parts += ["-H", "'Content-Type: application/json'", "-d", shlex.quote(body)]
    parts.append(shlex.quote(url + path))
    return " ".join(parts)


def _refuse_multirun(cfg: DictConfig) -> None:
    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        raise ConfigError(
            "deploy=local serves one model and would stop the sweep; after the sweep run "
            f"`mlexp task={cfg.task.name} deploy=local deploy.source=best`"
        )


def serve(cfg: DictConfig, tracker: Tracker, app: Starlette, *, description: str, endpoints: list[str]) -> None:
    """Serve `app` on deploy.host:port until Ctrl-C, SIGTERM or deploy.max_seconds, then stop gracefully (a Ctrl-C
    meanwhile drops the requests still in flight and stops at once).

    `endpoints`: lines like 'POST /classify {"classifier": "news", "sentence": "..."}' printed as curl examples.
    """
    _refuse_multirun(cfg)
    settings = ServiceSettings.from_config(cfg.deploy)
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        service = start_in_thread(app, settings.host, settings.port, settings.request_timeout_s + SHUTDOWN_GRACE_S)
    except BaseException:
        signal.signal(signal.SIGTERM, previous)
        raise
    try:
        tracker.log_parameters({"endpoint": service.url, "served_model": description})
        tracker.flush()
        print(f"service: {service.url}  serving {description}; Ctrl-C stops it", flush=True)
        if settings.require_api_key:
            print(f"  API key: mlexp keys create <name>  (store: {settings.keys_db}); export MLEXP_API_KEY=<the key>")
        for endpoint in endpoints:
            print("  " + curl_example(service.url, endpoint, settings.require_api_key), flush=True)
        wait_obeying_signals(stop.wait, settings.max_seconds)
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a service is meant to stop: the trial still finishes
    finally:
        # stopped before the handler is restored: a second SIGTERM while requests finish must not kill the process.
        # Deliberate, as in uvicorn: SIGTERM comes from supervisors (systemd, docker stop, Kubernetes), which send
        # SIGKILL after their own grace period; a person at the terminal cuts the wait short with Ctrl-C instead
        cut = _stop_unless_ctrl_c(service, app.state.stats, settings.request_timeout_s + 2 * SHUTDOWN_GRACE_S)
        signal.signal(signal.SIGTERM, previous)
    served = app.state.stats.requests_served
    tracker.log_metric("requests_served", served)
    if cut:
        tracker.log_metric("requests_cut", cut)
        print(f"service stopped after {served} request(s); Ctrl-C cut {cut} of them short", flush=True)
    else:
        print(f"service stopped after {served} request(s)", flush=True)


def _stop_unless_ctrl_c(service: RunningService, stats: ServiceStats, timeout: float) -> int:
    """Stop `service`, letting in-flight requests finish unless Ctrl-C is pressed meanwhile: then they are dropped
    and the service ends at once, as uvicorn's own second Ctrl-C does. Returns how many requests Ctrl-C dropped."""
    cut: list[int] = []

    def cut_short(signum: int, frame: FrameType | None) -> None:
        if not cut:
            cut.append(stats.requests_in_flight)
            service.server.force_exit = True

    def not_a_dropped_request(record: logging.LogRecord) -> bool:
        # uvicorn logs each dropped request's CancelledError as a traceback: the line `serve` prints says it instead
        return not (cut and record.thread == service.thread.ident)

    previous = signal.getsignal(signal.SIGINT)
    # a command started in the background (`&`) ignores Ctrl-C; None: a handler not set from Python, not restorable
    obeyed = previous is not signal.SIG_IGN and previous is not None
    if obeyed:
        signal.signal(signal.SIGINT, cut_short)
    uvicorn_log = logging.getLogger("uvicorn.error")
    uvicorn_log.addFilter(not_a_dropped_request)
    try:
        service.stop(timeout)
    finally:
        uvicorn_log.removeFilter(not_a_dropped_request)
        if obeyed:
            signal.signal(signal.SIGINT, previous)
    return cut[0] if cut else 0
