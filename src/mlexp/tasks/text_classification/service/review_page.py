"""The human review page (the A2I worker portal's analog): sign-in, the queue, approve / relabel / skip, exports.

Reviewers sign in with a name and password (accounts from the CLI); a signed, HttpOnly, SameSite=Strict cookie
carries the session, so the page needs no API key. Every call is a JSON fetch (no form posts).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from mlexp.errors import DataError
from mlexp.serving.http import ServiceError, json_response, read_json
from mlexp.tasks.text_classification.service import label_studio
from mlexp.tasks.text_classification.service.classify_api import Classifier
from mlexp.tasks.text_classification.service.records import to_jsonl
from mlexp.tasks.text_classification.service.reviewers import sign_in

PREFIX = "/review"
COOKIE = "mlexp_review"
SESSION_HOURS = 12
QUEUE_PAGE = 20
_HERE = Path(__file__).parent
_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(_HERE / "templates"), autoescape=True, undefined=jinja2.StrictUndefined
)


def routes(service: Classifier) -> list[BaseRoute]:
    """The page, its static files and its JSON calls, all under /review."""
    sessions = URLSafeTimedSerializer(service.store.session_secret(), salt="mlexp-review")
    page = _TEMPLATES.get_template("review.html")

    async def reviewer_of(request: Request) -> str:
        """The signed-in reviewer; 401 without a valid session or once the account was removed (mlexp review remove)."""
        try:
            session = sessions.loads(request.cookies.get(COOKIE, ""), max_age=SESSION_HOURS * 3600)
        except BadSignature:
            raise ServiceError(401, "sign in on the review page first") from None
        reviewer = str(session["reviewer"])
        # the cookie outlives the account: checked on every call, so removing a reviewer ends their session now
        if await run_in_threadpool(service.store.reviewer_hash, reviewer) is None:
            raise ServiceError(401, f"reviewer {reviewer} no longer has an account; ask for one (mlexp review add)")
        return reviewer

    def state(reviewer: str) -> dict[str, Any]:
        # the item shown (the first) is leased to this reviewer: two reviewers never work on the same item
        items = service.store.lease_next(reviewer, QUEUE_PAGE, service.config.review_lease_minutes * 60)
        return {
            "reviewer": reviewer,
            "labels": service.labels,
            "items": [item.to_json() for item in items],
            "progress": service.store.progress(reviewer),
        }

    async def show(request: Request) -> Response:
        html = page.render(classifier=service.config.classifier, threshold=service.config.threshold)
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    async def login(request: Request) -> Response:
        body = await read_json(request, {"name": str, "password": str})
        if not await run_in_threadpool(sign_in, service.store, body["name"], body["password"]):
            raise ServiceError(401, "unknown reviewer or wrong password")
        answer = json_response({"reviewer": body["name"]})
        token = sessions.dumps({"reviewer": body["name"]})
        answer.set_cookie(COOKIE, token, max_age=SESSION_HOURS * 3600, path=PREFIX, httponly=True, samesite="strict")
        return answer

    async def logout(request: Request) -> Response:
        answer = json_response({"signed_out": True})
        answer.delete_cookie(COOKIE, path=PREFIX)
        return answer

    async def queue(request: Request) -> Response:
        return json_response(await run_in_threadpool(state, await reviewer_of(request)))

    async def decide(request: Request) -> Response:
        reviewer = await reviewer_of(request)
        body = await read_json(request, {"id": int, "label": str})
        if body["label"] not in service.labels:
            raise ServiceError(422, f"label {body['label']!r} is not one of {', '.join(service.labels)}")
        try:
            decision = await run_in_threadpool(service.store.decide, body["id"], reviewer, body["label"])
        except DataError as missing:
            raise ServiceError(404, str(missing)) from None
        return json_response({"decision": decision.a2i_output(), **await run_in_threadpool(state, reviewer)})

    async def skip(request: Request) -> Response:
        reviewer = await reviewer_of(request)
        body = await read_json(request, {"id": int})
        try:
            await run_in_threadpool(service.store.skip, body["id"], reviewer)
        except DataError as missing:
            raise ServiceError(404, str(missing)) from None
        return json_response(await run_in_threadpool(state, reviewer))

    async def export_jsonl(request: Request) -> Response:
        await reviewer_of(request)
        decisions = await run_in_threadpool(service.store.decisions)
        text = to_jsonl([d.review_line() for d in decisions])
        disposition = {"Content-Disposition": 'attachment; filename="reviews.jsonl"'}
        return Response(text, media_type="application/x-ndjson", headers=disposition)

    async def label_studio_tasks(request: Request) -> Response:
        await reviewer_of(request)
        return json_response(await run_in_threadpool(label_studio.export_tasks, service.store))

    async def label_studio_config(request: Request) -> Response:
        await reviewer_of(request)
        return Response(label_studio.labeling_config(service.labels), media_type="application/xml")

    async def label_studio_import(request: Request) -> Response:
        await reviewer_of(request)
        # the page sends the file's bytes as they are (a browser's file.text() would replace what is not UTF-8) and
        # its name, so the answer names the file as `mlexp review label-studio-import` does
        origin = _export_name(request.query_params.get("file"))
        body = await request.body()
        try:
            imported = await run_in_threadpool(label_studio.import_export, service.store, body, service.labels, origin)
        except label_studio.NothingStored as nothing:  # every task skipped: a client error, with the counts
            return json_response({"error": str(nothing), **nothing.imported.to_json()}, status=422)
        except (ValueError, DataError) as bad:
            raise ServiceError(422, str(bad)) from None
        return json_response(imported.to_json())

    return [
        Route(PREFIX, show, methods=["GET"]),
        Route(f"{PREFIX}/api/login", login, methods=["POST"]),
        Route(f"{PREFIX}/api/logout", logout, methods=["POST"]),
        Route(f"{PREFIX}/api/queue", queue, methods=["GET"]),
        Route(f"{PREFIX}/api/decide", decide, methods=["POST"]),
        Route(f"{PREFIX}/api/skip", skip, methods=["POST"]),
        Route(f"{PREFIX}/api/reviews.jsonl", export_jsonl, methods=["GET"]),
        Route(f"{PREFIX}/api/label-studio/tasks.json", label_studio_tasks, methods=["GET"]),
        Route(f"{PREFIX}/api/label-studio/labeling_config.xml", label_studio_config, methods=["GET"]),
        Route(f"{PREFIX}/api/label-studio/import", label_studio_import, methods=["POST"]),
        Mount(f"{PREFIX}/static", app=StaticFiles(directory=_HERE / "static"), name="review-static"),
    ]


def _export_name(given: str | None) -> Path:
    """The name the page gave its Label Studio export, for the answer's messages; `the export` without one."""
    if not given or not given.isprintable() or len(given) > 255:  # one line, whatever a client sends
        return Path("the export")
    return Path(given)
