"""Label Studio instead of the review page: export the queue as tasks, import its exported annotations as decisions.

Formats from Label Studio's docs ("Label Studio Task Format", "Export annotations"): tasks to import are
`[{"data": {...}, "predictions": [{"model_version", "score", "result": [...]}]}]`; an export is either the full JSON
(`annotations[].result[].value.choices`, `completed_by`, `was_cancelled`, `updated_at`) or JSON_MIN (one flat object
per annotation: the task's data fields, the choice under the control's name, `annotator`, `annotation_id`,
`updated_at`). The latest annotation of a record (by `updated_at`) becomes its decision. Each task carries our
`feedback_id` in its data, so the annotation finds its record again.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from mlexp.console import warn
from mlexp.data.text_files import decode_utf8
from mlexp.errors import DataError
from mlexp.serving.http.json_api import unstorable_field
from mlexp.tasks.text_classification.service.store import FeedbackStore

CONTROL = "category"  # the <Choices> name: from_name in results, the label's key in JSON_MIN
OBJECT = "text"  # the <Text> name: to_name in results


def labeling_config(labels: list[str]) -> str:
    """The text-classification labeling config (Label Studio's template) with one choice per class."""
    choices = "\n".join(f"    <Choice value={quoteattr(label)}/>" for label in labels)
    return (
        "<View>\n"
        f'  <Text name="{OBJECT}" value="$text"/>\n'
        '  <Header value="Model: $predicted_class ($score) — source: $source"/>\n'
        f'  <Choices name="{CONTROL}" toName="{OBJECT}" choice="single" showInLine="true">\n'
        f"{choices}\n"
        "  </Choices>\n"
        "</View>\n"
    )


def export_tasks(store: FeedbackStore, model_version: str = "mlexp") -> list[dict[str, Any]]:
    """Every record waiting for review as a Label Studio task, the model's label as its pre-annotation."""
    tasks = []
    for item in store.pending(limit=1_000_000):
        record = item.record
        result = {"from_name": CONTROL, "to_name": OBJECT, "type": "choices"}
        tasks.append(
            {
                "data": {
                    "text": record.text,
                    "feedback_id": item.id,
                    "classifier": record.classifier,
                    "predicted_class": record.predicted_class,
                    "score": round(record.score, 4),
                    "source": record.source,
                },
                "predictions": [
                    {
                        "model_version": model_version,
                        "score": record.score,
                        "result": [{**result, "value": {"choices": [record.predicted_class]}}],
                    }
                ],
            }
        )
    return tasks


def write_export(store: FeedbackStore, folder: Path, labels: list[str]) -> tuple[Path, Path]:
    """Write tasks.json and labeling_config.xml into `folder`; returns both paths."""
    folder.mkdir(parents=True, exist_ok=True)
    tasks, config = folder / "tasks.json", folder / "labeling_config.xml"
    tasks.write_text(json.dumps(export_tasks(store), ensure_ascii=False, indent=1), encoding="utf-8")
    config.write_text(labeling_config(labels), encoding="utf-8")
    return tasks, config


def _annotator(completed_by: Any) -> str:
    # a user id in the raw JSON export (completed_by) and JSON_MIN (annotator); a user object or email in some versions
    if isinstance(completed_by, dict):
        return str(completed_by.get("email") or f"label-studio-user-{completed_by.get('id')}")
    if isinstance(completed_by, str) and completed_by and not completed_by.isdigit():
        return completed_by
    return f"label-studio-user-{completed_by}" if completed_by not in (None, "") else "label-studio"


def _from_full(task: dict[str, Any]) -> tuple[Any, str, str, str | None] | None:
    """(feedback id, label, reviewer, time) of a full-JSON task's latest kept annotation."""
    kept = [a for a in task.get("annotations") or [] if not a.get("was_cancelled")]
    for annotation in sorted(kept, key=lambda a: str(a.get("updated_at") or a.get("created_at") or ""), reverse=True):
        for result in annotation.get("result") or []:
            choices = (result.get("value") or {}).get("choices")
            if result.get("type", "choices") == "choices" and choices:  # a result without its type: by its value
                when = annotation.get("updated_at") or annotation.get("created_at")
                feedback_id = (task.get("data") or {}).get("feedback_id")
                return feedback_id, str(choices[0]), _annotator(annotation.get("completed_by")), when
    return None


def _from_min(task: dict[str, Any]) -> tuple[Any, str, str, str | None] | None:
    label = task.get(CONTROL)
    if isinstance(label, dict):  # JSON_MIN with several choices allowed: {"choices": [...]}
        label = (label.get("choices") or [None])[0]
    if not label:
        return None
    # one item per annotation: a task annotated twice appears twice (the later one wins in import_tasks)
    return (
        task.get("feedback_id"),
        str(label),
        _annotator(task.get("annotator")),
        task.get("updated_at") or task.get("created_at"),
    )


# the fix of a file that is not what Label Studio exports: UTF-8 JSON
EXPORT_AGAIN = "export it again from Label Studio (Export → JSON or JSON_MIN)"
# how mlexp.data.text_files ends its line on a binary file: a dataset's fix, where a Label Studio import is a file
# the user exported (a zip, or Label Studio's database, given by mistake), which no re-save makes JSON
BINARY_DATASET = "the file is binary, not a text file; point the dataset at the text file"


class NothingStored(DataError):
    """An export none of whose tasks gave a decision: the CLI exits 1 and the review page answers 422, both with
    this line and the page with the counts too, rather than a success that stored 0."""

    def __init__(self, origin: str, imported: Imported) -> None:
        if imported.tasks:
            reason = f"no annotation to store among its {imported.tasks} task(s): {_why(imported.reasons)}"
        else:
            reason = "it holds no task"
        super().__init__(
            f"{origin}: {reason}; annotate the tasks in Label Studio (a choice of the labeling config's), then "
            "Export → JSON or JSON_MIN again"
        )
        self.imported = imported


def read_export(data: bytes, origin: Path) -> Any:
    """The decoded tasks of a Label Studio export's bytes; one line naming `origin` when they are not UTF-8 JSON."""
    try:
        text = decode_utf8(origin, data, excel=False)
    except DataError as not_utf8:
        line = str(not_utf8)
        if line.endswith(BINARY_DATASET):
            raise DataError(
                f"{line.removesuffix(BINARY_DATASET)}the file is binary, not the JSON Label Studio exports; export the "
                f"annotations again from Label Studio as JSON (Export → JSON or JSON_MIN) and import that file in "
                f"place of {origin}"
            ) from None
        raise DataError(f"{line}, or {EXPORT_AGAIN}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as bad:
        raise DataError(f"{origin}: not a Label Studio JSON export ({bad}); {EXPORT_AGAIN}") from None
    except RecursionError:
        deep = "its arrays or objects nest too deeply for a Label Studio export"
        raise DataError(f"{origin}: {deep}; {EXPORT_AGAIN}") from None


def import_export(store: FeedbackStore, data: bytes, labels: list[str], origin: Path) -> Imported:
    """Store the annotations of a Label Studio export (JSON or JSON_MIN, its bytes) as review decisions; what was
    stored and skipped. An export of which nothing could be stored raises NothingStored, not a silent 0."""
    imported = _import(store, read_export(data, origin), labels, str(origin))
    if not imported.stored:
        raise NothingStored(str(origin), imported)
    return imported


def import_annotations(store: FeedbackStore, path: Path, labels: list[str]) -> int:
    """Store the annotations of a Label Studio export file as review decisions; returns how many. The tasks skipped
    (not annotated, cancelled) are counted in a warning."""
    imported = import_export(store, path.read_bytes(), labels, path)
    if imported.skipped:
        warn(f"{path}: skipped {imported.skipped} of its {imported.tasks} task(s): {_why(imported.reasons)}")
    return imported.stored


# why a task was skipped: it has no annotation, every annotation was cancelled, or no kept one holds a choice
NOT_ANNOTATED, CANCELLED, NO_CHOICE = "have no annotation", "were cancelled (skipped)", "hold no choice"


@dataclass(frozen=True)
class Imported:
    stored: int  # decisions stored (one per record)
    tasks: int  # tasks in the file (JSON_MIN: annotations)
    reasons: Counter[str]  # why the others were skipped -> how many

    @property
    def skipped(self) -> int:
        return sum(self.reasons.values())

    def to_json(self) -> dict[str, Any]:
        """The review page's answer: the counts `mlexp review label-studio-import` prints, commonest reason first."""
        return {
            "imported": self.stored,
            "tasks": self.tasks,
            "skipped": self.skipped,
            "skipped_by_reason": dict(self.reasons.most_common()),
        }


def _why(reasons: Counter[str]) -> str:
    """`2 have no annotation, 1 were cancelled (skipped)`."""
    return ", ".join(f"{count} {reason}" for reason, count in reasons.most_common())


def _skipped_because(task: dict[str, Any]) -> str:
    """Why a task gave no decision."""
    if "annotations" not in task:
        return NOT_ANNOTATED  # JSON_MIN: an item without the control's choice
    annotations = task.get("annotations") or []
    if not annotations:
        return NOT_ANNOTATED
    return CANCELLED if all(a.get("was_cancelled") for a in annotations) else NO_CHOICE


def _import(store: FeedbackStore, tasks: Any, labels: list[str], origin: str) -> Imported:
    """Store the annotations of decoded Label Studio tasks as review decisions; what was stored and skipped."""
    if not isinstance(tasks, list) or not all(isinstance(task, dict) for task in tasks):
        raise DataError(f"{origin}: a Label Studio export is a JSON list of tasks; export as JSON or JSON_MIN")
    latest: dict[int, tuple[int, str, str, str | None]] = {}
    reasons: Counter[str] = Counter()
    for number, task in enumerate(tasks, 1):
        problem = unstorable_field(task)
        if problem is not None:  # the store cannot hold it: refused here, before any task is stored
            raise DataError(f"{origin}: task {number}: {problem}; import the file Label Studio exported, unedited")
        try:
            found = _from_full(task) if "annotations" in task else _from_min(task)
            if found is None:  # not annotated yet, or cancelled (skipped) in Label Studio
                reasons[_skipped_because(task)] += 1
                continue
        except (AttributeError, TypeError, KeyError, IndexError):  # an annotation or result that is not an object
            raise DataError(
                f"{origin}: task {number} is not shaped like a Label Studio task (its annotations or results); "
                "import the file Label Studio exported (JSON or JSON_MIN), unedited"
            ) from None
        feedback_id, label, reviewer, when = found
        if not isinstance(feedback_id, int) or isinstance(feedback_id, bool):  # true would read as record 1
            raise DataError(f"{origin}: task {number} has no data.feedback_id; import tasks exported by mlexp")
        if labels and label not in labels:
            raise DataError(f"{origin}: task {number} is labelled {label!r}, not one of {', '.join(labels)}")
        store.get(feedback_id)  # an id this store does not hold fails here, before anything is stored
        # several annotations of one record (JSON_MIN lists each as its own item): the last updated wins
        if feedback_id not in latest or str(when or "") >= str(latest[feedback_id][3] or ""):
            latest[feedback_id] = (feedback_id, label, reviewer, when)
    # checked whole before anything is stored: a bad file imports nothing
    for feedback_id, label, reviewer, when in latest.values():
        store.decide(feedback_id, reviewer, label, channel="label-studio", time=_utc(when))
    return Imported(len(latest), len(tasks), reasons)


def _utc(when: Any) -> str | None:
    """Label Studio's '2021-03-09T22:16:08.728353Z' as A2I-style milliseconds."""
    if not isinstance(when, str) or len(when) < 19:
        return None
    return when[:23].rstrip("Z") + "Z" if "." in when[:23] else when[:19] + ".000Z"
