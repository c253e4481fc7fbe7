"""The post's two APIs: POST /classify (with implicit feedback below the threshold) and POST /feedback (+ batch)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mlexp.errors import DataError
from mlexp.serving.http import ModelSlot, ServiceError, json_response, read_json
from mlexp.tasks.text_classification.service.batch_files import FeedbackBatch, parse_batch
from mlexp.tasks.text_classification.service.config import ServiceConfig
from mlexp.tasks.text_classification.service.records import (
    BATCH_API,
    BATCH_FOLDER,
    EXPLICIT,
    IMPLICIT,
    FeedbackRecord,
    utc_now,
)
from mlexp.tasks.text_classification.service.store import FeedbackStore

_TEXT = {"classifier": str, "sentence": str}
_VERDICTS = ("like", "dislike")


@dataclass
class Classifier:
    """The served model (hot-swappable), the feedback store and the settings the handlers share."""

    slot: ModelSlot
    store: FeedbackStore
    config: ServiceConfig

    @property
    def labels(self) -> list[str]:
        return list(self.slot.current.labels)

    def check_classifier(self, name: str) -> None:
        if name != self.config.classifier:
            raise ServiceError(404, f"no classifier {name!r}; this service serves {self.config.classifier!r}")

    def batch_records(self, batch: FeedbackBatch, source: str) -> list[FeedbackRecord]:
        """A batch file's sentences as feedback records, each with the model's current prediction."""
        predictions = self.slot.current.predict_many(batch.sentences)
        now = utc_now()
        return [
            FeedbackRecord(source, batch.classifier, text, str(label), float(score), now)
            for text, (label, score) in zip(batch.sentences, predictions, strict=True)
        ]

    def ingest_folder_batch(self, batch: FeedbackBatch) -> int:
        """The watched folder's handler: store a dropped file's sentences (unknown classifier: refused)."""
        if batch.classifier != self.config.classifier:
            raise DataError(f"classifier {batch.classifier!r} is not served here; use {self.config.classifier!r}")
        return len(self.store.add(self.batch_records(batch, BATCH_FOLDER)))


def _sentence(body: dict[str, Any]) -> str:
    sentence = str(body["sentence"])
    if not sentence.strip():
        raise ServiceError(422, "field 'sentence' is empty")
    return sentence


def _shown_prediction(body: dict[str, Any], labels: list[str]) -> tuple[str, float]:
    """The client's "class" and "score": a class this service knows and a probability, else 422."""
    label, score = body.get("class"), body.get("score")
    if ("class" in body) != ("score" in body):
        given, missing = ("class", "score") if "class" in body else ("score", "class")
        raise ServiceError(
            422,
            f"field '{given}' comes with '{missing}' (the prediction the user saw): send both, or neither for the "
            "model's current prediction",
        )
    if not isinstance(label, str) or label not in labels:
        raise ServiceError(422, f"field 'class' must be one of {', '.join(labels)}, got {label!r}")
    if not isinstance(score, int | float) or isinstance(score, bool) or not 0.0 <= score <= 1.0:
        raise ServiceError(422, f"field 'score' must be a number from 0 to 1, got {score!r}")
    return label, float(score)


def routes(service: Classifier) -> list[Route]:
    """The /classify, /feedback and /feedback/batch routes."""

    async def classify(request: Request) -> Response:
        body = await read_json(request, _TEXT)
        service.check_classifier(body["classifier"])
        sentence = _sentence(body)
        # one attribute read: a promotion swapping the model mid-request leaves this request on the old one
        label, score = service.slot.current.predict_one(sentence)
        if score < service.config.threshold:
            record = FeedbackRecord(IMPLICIT, body["classifier"], sentence, str(label), float(score), utc_now())
            # answered only once the review item is committed: a crash loses no low-confidence prediction
            await asyncio.wrap_future(service.store.add_async([record]))
        return json_response({"class": label, "score": float(score)})

    async def feedback(request: Request) -> Response:
        body = await read_json(request, _TEXT)
        service.check_classifier(body["classifier"])
        sentence = _sentence(body)
        verdict = body.get("feedback", "dislike")
        if verdict not in _VERDICTS:
            raise ServiceError(422, f"field 'feedback' must be 'like' or 'dislike', got {verdict!r}")
        # the prediction the user saw, if the app sends it back (checked: it goes to reviewers and retraining as is);
        # else what the model says now
        if "class" in body or "score" in body:
            label, score = _shown_prediction(body, service.labels)
        else:
            label, score = service.slot.current.predict_one(sentence)
        record = FeedbackRecord(EXPLICIT, body["classifier"], sentence, str(label), float(score), utc_now(), verdict)
        (stored,) = await asyncio.wrap_future(service.store.add_async([record]))
        return json_response({"id": stored, "queued_for_review": verdict == "dislike"})

    async def feedback_batch(request: Request) -> Response:
        body = await read_json(request, {"classifier": str, "sentences": list})
        service.check_classifier(body["classifier"])
        try:
            batch = parse_batch(body, service.config.max_batch_sentences)
        except DataError as bad:
            raise ServiceError(422, str(bad).removeprefix("the batch: ")) from None
        # a thousand sentences take a while: off the event loop, so /classify keeps answering meanwhile
        records = await run_in_threadpool(service.batch_records, batch, BATCH_API)
        ids = await asyncio.wrap_future(service.store.add_async(records))
        return json_response({"stored": len(ids), "ids": ids})

    return [
        Route("/classify", classify, methods=["POST"]),
        Route("/feedback", feedback, methods=["POST"]),
        Route("/feedback/batch", feedback_batch, methods=["POST"]),
    ]
