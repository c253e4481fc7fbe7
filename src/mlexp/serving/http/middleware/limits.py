"""Request limits: a deadline per request (504) and a body size limit (411/413)."""

from __future__ import annotations

import asyncio
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mlexp.serving.http.json_api import ServiceError
from mlexp.serving.http.middleware.errors import send_json_error

logger = logging.getLogger("mlexp.serving")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class RequestTimeout:
    """Answers 504 when a request has not started its response within `seconds`.

    A timer (not a task per request: that doubled the layer's cost) sends the 504 at the deadline and cancels the
    request. A handler blocked in a thread (a sync endpoint) cannot be interrupted: the client still gets its 504
    on time and the handler's late answer is dropped.
    """

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = asyncio.current_task()
        loop = asyncio.get_running_loop()
        started = False
        reply: asyncio.Task | None = None

        async def send_unless_timed_out(message: Message) -> None:
            nonlocal started
            if reply is not None:
                return  # the client already has its 504
            started = started or message["type"] == "http.response.start"
            await send(message)

        def expire() -> None:
            nonlocal reply
            if started or request is None:
                return  # a response under way is left to finish
            message = f"the request took longer than {self.seconds:g} s (deploy.request_timeout_s)"
            reply = loop.create_task(send_json_error(send, 504, message))
            request.cancel()

        timer = loop.call_later(self.seconds, expire)
        try:
            await self.app(scope, receive, send_unless_timed_out)
        except BaseException as error:
            if reply is None or not isinstance(error, (Exception, asyncio.CancelledError)):
                raise
            if isinstance(error, asyncio.CancelledError) and request is not None:
                request.uncancel()
        finally:
            timer.cancel()
        if reply is not None:
            logger.warning("%s %s took over %s s: answered 504", scope.get("method"), scope.get("path"), self.seconds)
            try:
                await asyncio.shield(reply)
            except asyncio.CancelledError:
                # our own cancel, delivered late: the handler finished without awaiting anything after it
                if request is None or request.uncancel() > 0:
                    raise  # someone else is cancelling this request too (a server shutdown)
                await reply


class BodySizeLimit:
    """413 for a body over `max_bytes` (by Content-Length before reading, or counted while a chunked body is read);
    411 for a POST/PUT/PATCH with neither Content-Length nor chunked encoding."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        length = chunked = None
        for key, value in scope["headers"]:
            if key == b"content-length":
                length = value
            elif key == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
        if length is not None:
            if int(length) > self.max_bytes:
                await send_json_error(send, 413, self._too_large(f"{int(length)} bytes"))
                return
            await self.app(scope, receive, send)
        elif chunked:
            await self.app(scope, self._counting(receive), send)
        else:
            await send_json_error(send, 411, "send a Content-Length header (or a chunked body)")

    def _too_large(self, size: str) -> str:
        return f"the body is over the limit of {self.max_bytes} bytes ({size}; deploy.max_request_bytes)"

    def _counting(self, receive: Receive) -> Receive:
        received = 0

        async def receive_within_limit() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise ServiceError(413, self._too_large(f"{received} bytes read so far"))
            return message

        return receive_within_limit
