"""`create_app`: a task's routes inside the service's layers (errors, deadline, size limit, API keys)."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mlexp.serving.http.api_keys import ApiKeys
from mlexp.serving.http.json_api import ServiceError, json_response
from mlexp.serving.http.middleware import ApiKeyCheck, BodySizeLimit, CatchAllErrors, RequestTimeout, ServiceStats
from mlexp.serving.http.settings import ServiceSettings


def open_api_keys(settings: ServiceSettings) -> ApiKeys | None:
    """The key store at deploy.keys_db, or None when deploy.require_api_key is false."""
    return ApiKeys(settings.keys_db) if settings.require_api_key else None


async def _service_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, ServiceError)
    return json_response({"error": error.message}, error.status, error.headers)


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    if error.status_code == 404:
        message = f"no such path: {request.url.path}"
    elif error.status_code == 405:
        allowed = (error.headers or {}).get("Allow", "")
        message = f"{request.method} is not allowed on {request.url.path}; use {allowed}"
    else:
        message = str(error.detail)
    return json_response({"error": message}, error.status_code, error.headers)


def _lifespan(on_shutdown: Iterable[Callable[[], Any]]) -> Callable[[Starlette], Any]:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            for callback in on_shutdown:
                result = callback()
                if inspect.isawaitable(result):
                    await result

    return lifespan


def create_app(
    name: str,
    routes: Sequence[BaseRoute],
    settings: ServiceSettings,
    *,
    api_keys: ApiKeys | None,
    public_paths: tuple[str, ...] = ("/ping",),
    on_shutdown: Iterable[Callable[[], Any]] = (),
    middleware: Sequence[Middleware] = (),
) -> Starlette:
    """A Starlette app serving `routes` with JSON errors, a deadline, a body limit and (with api_keys) key checks.

    `public_paths` need no key: exact paths, or prefixes when they end in "/". `api_keys=None` checks no key
    (use `open_api_keys(settings)`, which honours deploy.require_api_key). `middleware`: the task's own (e.g.
    sessions for a review page), innermost, after the key check. `app.state.stats.requests_served` counts HTTP
    requests.
    """

    async def ping(request: Request) -> Response:
        return json_response({"status": "healthy", "service": name})

    stats = ServiceStats()
    layers = [
        Middleware(CatchAllErrors, stats=stats),
        Middleware(RequestTimeout, seconds=settings.request_timeout_s),
        Middleware(BodySizeLimit, max_bytes=settings.max_request_bytes),
    ]
    if api_keys is not None:
        layers.append(Middleware(ApiKeyCheck, api_keys=api_keys, public_paths=public_paths))
    app = Starlette(
        routes=[Route("/ping", ping, methods=["GET"]), *routes],
        middleware=[*layers, *middleware],
        exception_handlers={ServiceError: _service_error, HTTPException: _http_error},
        lifespan=_lifespan(tuple(on_shutdown)),
    )
    app.state.name = name
    app.state.settings = settings
    app.state.stats = stats
    return app
