"""SageMaker Ground Truth bounding-box output manifests (JSON lines), read line by line.

One line per image:

    {"source-ref": "s3://bucket/frames/0001.jpg",
     "football": {"image_size": [{"width": 1280, "height": 720, "depth": 3}],
                  "annotations": [{"class_id": 0, "left": 611, "top": 302, "width": 18, "height": 11}]},
     "football-metadata": {"class-map": {"0": "football"}, "type": "groundtruth/object-detection", ...}}

`football` is the label attribute (the labeling job's name). Bad lines and boxes are counted
per reason and skipped, so one broken annotation does not lose a labeling job's work.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlexp.errors import DataError

SUFFIXES = (".manifest", ".jsonl", ".json")
DETECTION_TYPE = "groundtruth/object-detection"


@dataclass(frozen=True)
class Box:
    """One labelled object in pixels of the manifest's image_size; `label` is its class name."""

    label: str
    left: float
    top: float
    width: float
    height: float


@dataclass
class Frame:
    source_ref: str
    width: int
    height: int
    boxes: list[Box]
    attributes: dict[str, str]
    where: str  # "<manifest>:<line>", for messages


@dataclass
class Problems:
    """What was skipped, counted per reason, with the first place each reason was seen."""

    counts: Counter[str] = field(default_factory=Counter)
    first_seen: dict[str, str] = field(default_factory=dict)

    def add(self, reason: str, where: str) -> None:
        self.counts[reason] += 1
        self.first_seen.setdefault(reason, where)

    def summary(self) -> str:
        return "; ".join(f"{n} × {reason} (first at {self.first_seen[reason]})" for reason, n in self.counts.items())


def _label_attribute(line: dict[str, Any], wanted: str | None) -> str | None:
    if wanted is not None:
        return wanted if isinstance(line.get(wanted), dict) else None
    for key, value in line.items():
        metadata = line.get(f"{key}-metadata")
        if not (isinstance(value, dict) and "annotations" in value and isinstance(metadata, dict)):
            continue
        if metadata.get("type", DETECTION_TYPE) == DETECTION_TYPE:
            return str(key)
    return None


def _box(raw: Any, class_map: dict[str, str], width: int, height: int) -> Box | str:
    """The box, clipped to the image, or the reason it is unusable."""
    try:
        class_id = str(int(raw["class_id"]))
        left, top, w, h = (float(raw[k]) for k in ("left", "top", "width", "height"))
    except (KeyError, TypeError, ValueError):
        return "malformed box (needs class_id, left, top, width, height)"
    if class_id not in class_map:
        return f"class_id {class_id} not in the class-map"
    right, bottom = min(left + w, width), min(top + h, height)
    left, top = max(left, 0.0), max(top, 0.0)
    if w <= 0 or h <= 0 or right - left < 1 or bottom - top < 1:
        return "box outside the image or empty"
    return Box(class_map[class_id], left, top, right - left, bottom - top)


def _frame(line: dict[str, Any], where: str, label_attribute: str | None, attributes_key: str) -> Frame | str:
    source_ref = line.get("source-ref")
    if not isinstance(source_ref, str) or not source_ref:
        return "no source-ref"
    attribute = _label_attribute(line, label_attribute)
    if attribute is None:
        return f"no bounding-box label attribute {label_attribute or '(auto)'}"
    label, metadata = line[attribute], line.get(f"{attribute}-metadata") or {}
    try:
        size = label["image_size"][0]
        width, height = int(size["width"]), int(size["height"])
    except (KeyError, IndexError, TypeError, ValueError):
        return "no image_size"
    class_map = {str(k): str(v) for k, v in (metadata.get("class-map") or {}).items()}
    boxes = []
    for raw in label.get("annotations") or []:
        box = _box(raw, class_map, width, height)
        if isinstance(box, str):
            return box
        boxes.append(box)
    if not boxes:
        return "no box in the frame"
    extra = line.get(attributes_key) or {}
    return Frame(source_ref, width, height, boxes, {str(k): str(v) for k, v in extra.items()}, where)


def read(
    files: list[Path], label_attribute: str | None = None, attributes_key: str = "frame-attributes"
) -> tuple[list[Frame], Problems]:
    """Every usable frame of the manifests, in order, and what was skipped.

    A frame with any unusable box is skipped whole: training on a frame whose ball lost its
    box would teach the detector that the ball is background.
    """
    frames: list[Frame] = []
    problems = Problems()
    for file in files:
        with file.open(encoding="utf-8") as handle:
            for number, text in enumerate(handle, start=1):
                if not text.strip():
                    continue
                where = f"{file.name}:{number}"
                try:
                    line = json.loads(text)
                except json.JSONDecodeError:
                    problems.add("malformed JSON line", where)
                    continue
                frame = _frame(line, where, label_attribute, attributes_key) if isinstance(line, dict) else None
                if isinstance(frame, Frame):
                    frames.append(frame)
                else:
                    problems.add(frame or "line is not a JSON object", where)
    if not frames:
        names = ", ".join(str(f) for f in files)
        raise DataError(f"{names}: no usable frame; {problems.summary() or 'the manifest is empty'}")
    return frames, problems
