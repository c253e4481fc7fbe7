"""The API-key check: every non-public path needs a known, unrevoked key within its usage plan."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from mlexp.serving.http.api_keys import ApiKeys
from mlexp.serving.http.json_api import ServiceError
from mlexp.serving.http.middleware.errors import send_json_error


class ApiKeyCheck:
    """401/429 before the handler runs; `request.state.api_key` holds the caller's KeyRecord.

    `public_paths`: exact paths, or prefixes when they end in "/" (static files, a login page).
    """

    def __init__(self, app: ASGIApp, api_keys: ApiKeys, public_paths: Iterable[str]) -> None:
        self.app = app
        self.api_keys = api_keys
        self.public = frozenset(p for p in public_paths if not p.endswith("/"))
        self.public_prefixes = tuple(p for p in public_paths if p.endswith("/"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path in self.public or path.startswith(self.public_prefixes):
            await self.app(scope, receive, send)
            return
        token = None
        for key, value in scope["headers"]:
            if key == b"x-api-key":
                token = value.decode("latin-1")
                break
        try:
            record = self.api_keys.check(token)
        except ServiceError as error:
            await send_json_error(send, error.status, error.message, error.headers)
            return
        scope.setdefault("state", {})["api_key"] = record
        await self.app(scope, receive, send)
