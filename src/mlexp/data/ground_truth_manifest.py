"""SageMaker Ground Truth bounding-box output manifests (JSON lines), read line by line.

One line per image:

    {"source-ref": "s3://bucket/frames/0001.jpg",
     "football": {"image_size": [{"width": 1280, "height": 720, "depth": 3}],
                  "annotations": [{"class_id": 0, "left": 611, "top": 302, "width": 18, "height": 11}]},
     "football-metadata": {"class-map": {"0": "football"}, "type": "groundtruth/object-detection", ...}}

`football` is the label attribute (the labeling job's name). A frame whose `annotations` list is
empty is a frame without a ball and is kept: the detector must learn, and be measured, on those too.
Bad lines and boxes are counted per reason and skipped, so one broken annotation does not lose a
labeling job's work.
"""

from __future__ import annotations

import json
import math
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
    # the value of dataset.group_by's manifest key (frames sharing it stay in one split); None: from source_ref
    group: str | None = None


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
    except (KeyError, TypeError, ValueError, OverflowError):
        return "malformed box (needs class_id, left, top, width, height)"
    if not all(math.isfinite(v) for v in (left, top, w, h)):
        return "malformed box (needs class_id, left, top, width, height)"
    if class_id not in class_map:
        return f"class_id {class_id} not in the class-map"
    # a ball crossing the frame edge: keep the visible part, on every side (left=-5, width=10 → left=0, width=5)
    right, bottom = min(left + w, width), min(top + h, height)
    left, top = max(left, 0.0), max(top, 0.0)
    if w <= 0 or h <= 0 or right - left < 1 or bottom - top < 1:
        return "box outside the image or empty"
    return Box(class_map[class_id], left, top, right - left, bottom - top)


def _mapping(value: Any) -> dict[str, Any]:
    """A JSON object's items, or none when the value is missing or not an object."""
    return value if isinstance(value, dict) else {}


def _frame(
    line: dict[str, Any], where: str, label_attribute: str | None, attributes_key: str, group_by: str | None
) -> Frame | str:
    source_ref = line.get("source-ref")
    if not isinstance(source_ref, str) or not source_ref:
        return "no source-ref"
    attribute = _label_attribute(line, label_attribute)
    if attribute is None:
        return f"no bounding-box label attribute {label_attribute or '(auto)'}"
    label, metadata = line[attribute], _mapping(line.get(f"{attribute}-metadata"))
    try:
        size = label["image_size"][0]
        width, height = int(size["width"]), int(size["height"])
    except (KeyError, IndexError, TypeError, ValueError):
        return "no image_size"
    if width <= 0 or height <= 0:
        return "no image_size"
    annotations = label.get("annotations", [])
    if not isinstance(annotations, list):
        return "annotations is not a list"
    class_map = {str(k): str(v) for k, v in _mapping(metadata.get("class-map")).items()}
    boxes = []
    for raw in annotations:
        box = _box(raw, class_map, width, height)
        if isinstance(box, str):
            return box
        boxes.append(box)
    attributes = {str(k): str(v) for k, v in _mapping(line.get(attributes_key)).items()}
    group = None
    if group_by is not None:
        value = line.get(group_by, attributes.get(group_by))
        if value is None or isinstance(value, dict | list):
            return f"no {group_by} to group frames by (dataset.group_by)"
        group = str(value)
    # an empty annotations list: a frame without a ball, kept as a negative
    return Frame(source_ref, width, height, boxes, attributes, where, group)


def read(
    files: list[Path],
    label_attribute: str | None = None,
    attributes_key: str = "frame-attributes",
    group_by: str | None = None,
) -> tuple[list[Frame], Problems]:
    """Every usable frame of the manifests, in order (frames without a box included), and what was skipped.

    A frame with any unusable box is skipped whole: training on a frame whose ball lost its
    box would teach the detector that the ball is background. `group_by` names a key of the line
    (or of its frame attributes) whose value each frame must carry, e.g. a play or video id.
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
                if not isinstance(line, dict):  # valid JSON such as [1, 2], "text" or 42
                    problems.add("line is not a JSON object", where)
                    continue
                frame = _frame(line, where, label_attribute, attributes_key, group_by)
                if isinstance(frame, Frame):
                    frames.append(frame)
                else:
                    problems.add(frame, where)
    if not frames:
        names = ", ".join(str(f) for f in files)
        raise DataError(f"{names}: no usable frame; {problems.summary() or 'the manifest is empty'}")
    return frames, problems
