"""The service's Starlette app: the classify/feedback APIs and the review page behind the serving layer."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from starlette.applications import Starlette

from mlexp.serving.http import ApiKeys, ServiceSettings, create_app
from mlexp.tasks.text_classification.service import classify_api, review_page
from mlexp.tasks.text_classification.service.classify_api import Classifier

NAME = "text_classification"
# the review page signs reviewers in itself (a session cookie), so it needs no API key
PUBLIC_PATHS = ("/ping", review_page.PREFIX, review_page.PREFIX + "/")


def build_app(
    service: Classifier,
    settings: ServiceSettings,
    api_keys: ApiKeys | None,
    on_shutdown: Iterable[Callable[[], Any]] = (),
) -> Starlette:
    """POST /classify, /feedback, /feedback/batch (API key) and /review (reviewer sign-in) in one app."""
    routes = [*classify_api.routes(service), *review_page.routes(service)]
    return create_app(NAME, routes, settings, api_keys=api_keys, public_paths=PUBLIC_PATHS, on_shutdown=on_shutdown)
