"""The outermost layer: an unexpected exception becomes a JSON 500 (traceback logged), never a dropped connection;
a request a forced stop cancels gets a JSON 503."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mlexp.serving.http.json_api import ServiceError, error_body

logger = logging.getLogger("mlexp.serving")
STOPPED = "the service stopped before it answered this request; send it again once the service is back"


@dataclass
class ServiceStats:
    """Counters of a running service, read when it stops."""

    requests_served: int = 0
    requests_in_flight: int = 0  # begun and not yet answered: what a forced stop cuts short


async def send_json_error(send: Send, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
    """Send a whole `{"error": message}` response through ASGI `send`."""
    body = error_body(message)
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw_headers += [(k.lower().encode(), str(v).encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


class CatchAllErrors:
    """Counts requests; turns a ServiceError or any unexpected exception into a JSON answer."""

    def __init__(self, app: ASGIApp, stats: ServiceStats) -> None:
        self.app = app
        self.stats = stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.stats.requests_served += 1
        self.stats.requests_in_flight += 1
        try:
            await self._answer(scope, receive, send)
        finally:
            self.stats.requests_in_flight -= 1

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def send_tracking_start(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_tracking_start)
        except ServiceError as error:
            if not started:
                await send_json_error(send, error.status, error.message, error.headers)
        except asyncio.CancelledError:
            # only a stopping server cancels a request here (RequestTimeout answers and absorbs its own cancel):
            # without this answer uvicorn sends its plain-text 500 while the connection closes
            if not started:
                await send_json_error(send, 503, STOPPED, {"Connection": "close"})
            raise
        except Exception as error:
            logger.exception("%s %s failed", scope.get("method"), scope.get("path"))
            if not started:  # a response already under way can only be cut short
                await send_json_error(send, 500, f"internal error: {type(error).__name__}")
