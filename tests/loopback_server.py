"""A real HTTP server on loopback that answers every request the same way, or never: a tracking server that refuses,
is unavailable (503) or hangs, as a client meets it on the network."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@contextmanager
def answering(
    status: int | None,
    body: str = "",
    requests: list[str] | None = None,
    except_for: Mapping[str, tuple[int, str]] | None = None,
) -> Iterator[str]:
    """The URL of a server answering `status` with `body` to every request; `status` None: it takes the request and
    never answers (until the block ends). Each request's path is appended to `requests` when one is given.
    `except_for` answers a request whose path holds one of its keys (`/runs/get`) with that key's status and body."""
    stop = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            if requests is not None:
                requests.append(self.path)
            given = next((answer for part, answer in (except_for or {}).items() if part in self.path), None)
            if given is None and status is None:
                stop.wait()
                return
            answer, text = given or (status, body)
            data = text.encode()
            self.send_response(answer)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_DELETE = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
