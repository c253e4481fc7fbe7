"""The feedback record (one format for implicit and explicit feedback) and the human review decision."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from typing import Any

# where a feedback record came from
IMPLICIT = "implicit"  # /classify scored below the threshold
EXPLICIT = "explicit"  # POST /feedback (a user's like/dislike)
BATCH_API = "batch-api"  # a batch file posted to /feedback/batch
BATCH_FOLDER = "batch-folder"  # a batch file dropped in the watched folder (the post's S3 upload)
SOURCES = (IMPLICIT, EXPLICIT, BATCH_API, BATCH_FOLDER)


def utc_now() -> str:
    """The time as A2I writes it: ISO 8601 UTC with milliseconds, e.g. 2026-12-02T08:31:50.123Z."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utc_after(seconds: float) -> str:
    """utc_now() `seconds` from now (same format, so the strings compare as the times do)."""
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
    return later.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class FeedbackRecord:
    """One text sent to human review: why (source), what the model said, when."""

    source: str
    classifier: str
    text: str
    predicted_class: str
    score: float
    time: str
    # the user's verdict on explicit feedback: "like" | "dislike"; None for implicit and batch feedback
    feedback: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PendingItem:
    """A stored feedback record waiting for a reviewer."""

    id: int
    record: FeedbackRecord

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, **self.record.to_json()}


@dataclass(frozen=True)
class ReviewDecision:
    """A reviewer's final label for one feedback record (the post's A2I output.json)."""

    feedback_id: int
    reviewer: str
    time: str
    final_label: str
    record: FeedbackRecord
    # review-page | label-studio
    channel: str = "review-page"

    @property
    def approved(self) -> bool:
        return self.final_label == self.record.predicted_class

    def review_line(self) -> dict[str, Any]:
        """One line of the JSONL export that retraining reads."""
        return {
            "reviewer": self.reviewer,
            "time": self.time,
            "text": self.record.text,
            "classifier": self.record.classifier,
            "predicted_class": self.record.predicted_class,
            "score": self.record.score,
            "final_label": self.final_label,
            "source": self.record.source,
        }

    def a2i_output(self) -> dict[str, Any]:
        """The decision in the shape of Amazon A2I's output.json (humanAnswers + inputContent)."""
        return {
            "humanLoopName": f"feedback-{self.feedback_id}",
            "flowDefinitionArn": f"local:review:{self.record.classifier}",
            "humanAnswers": [
                {
                    "answerContent": {
                        "category": {"label": self.final_label},
                        "approved": self.approved,
                    },
                    "submissionTime": self.time,
                    "workerId": self.reviewer,
                    "workerMetadata": {"channel": self.channel},
                }
            ],
            "inputContent": {
                "taskObject": self.record.text,
                "classifier": self.record.classifier,
                "predictedClass": self.record.predicted_class,
                "confidenceScore": self.record.score,
                "source": self.record.source,
                "feedbackTime": self.record.time,
            },
        }


def to_jsonl(lines: list[dict[str, Any]]) -> str:
    """JSON Lines text: one object per line, UTF-8 kept readable."""
    return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
