"""Ground Truth frames → RecordIO (.rec + .idx), the compact format the post trains from.

Each record is the image's original encoded bytes and MXNet's packed detection label
`[header_len=2, label_width=5, (class, xmin, ymin, xmax, ymax) per box]`, corners normalised
to [0, 1] — what `mxnet.image.ImageDetIter` and GluonCV's `RecordFileDetection` read. A
`<split>.frames.json` beside it keeps each record's source-ref and characteristics.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import mxnet as mx
import numpy as np
from PIL import Image, UnidentifiedImageError

from mlexp.data.frame_images import ImageMissing, ImageSource
from mlexp.data.ground_truth_manifest import Frame, Problems

HEADER = [2.0, 5.0]


def packed_label(frame: Frame, classes: list[str]) -> np.ndarray:
    objects = [
        [classes.index(b.label), b.left / frame.width, b.top / frame.height]
        + [(b.left + b.width) / frame.width, (b.top + b.height) / frame.height]
        for b in frame.boxes
    ]
    return np.array(HEADER + [v for o in objects for v in o], dtype=np.float32)


def unpack_label(raw: np.ndarray) -> np.ndarray:
    """(N, 5) rows of class, xmin, ymin, xmax, ymax (normalised), from a packed label."""
    header_len, width = int(raw[0]), int(raw[1])
    return np.asarray(raw[header_len:]).reshape(-1, width)


def _usable(frame: Frame, classes: list[str], problems: Problems) -> Frame | None:
    kept = [b for b in frame.boxes if b.label in classes]
    if len(kept) < len(frame.boxes):
        problems.add(f"box of a class outside model.classes {classes} (dropped)", frame.where)
    if not kept:
        problems.add("no box of model.classes in the frame", frame.where)
        return None
    return Frame(frame.source_ref, frame.width, frame.height, kept, frame.attributes, frame.where)


def write(frames: list[Frame], classes: list[str], source: ImageSource, rec: Path, problems: Problems) -> int:
    """Write the usable frames to `rec` (and its .idx, .frames.json); returns how many were written."""
    rec.parent.mkdir(parents=True, exist_ok=True)
    tmp_rec, tmp_idx = rec.with_suffix(".rec.partial"), rec.with_suffix(".idx.partial")
    writer = mx.recordio.MXIndexedRecordIO(str(tmp_idx), str(tmp_rec), "w")
    kept: list[Frame] = []
    for frame in frames:
        usable = _usable(frame, classes, problems)
        if usable is None:
            continue
        try:
            data = source.read(frame.source_ref)
            Image.open(io.BytesIO(data)).verify()
        except ImageMissing as missing:
            problems.add("image missing", f"{frame.where} ({missing})")
            continue
        except (UnidentifiedImageError, OSError, SyntaxError):
            problems.add("image unreadable", f"{frame.where} ({source.where(frame.source_ref)})")
            continue
        header = mx.recordio.IRHeader(0, packed_label(usable, classes), len(kept), 0)
        writer.write_idx(len(kept), mx.recordio.pack(header, data))
        kept.append(usable)
    writer.close()
    tmp_rec.replace(rec)
    tmp_idx.replace(rec.with_suffix(".idx"))
    sidecar = [
        {"source_ref": f.source_ref, "where": f.where, "attributes": f.attributes, "size": [f.width, f.height]}
        for f in kept
    ]
    frames_json(rec).write_text(json.dumps(sidecar, indent=1))
    return len(kept)


def frames_json(rec: Path) -> Path:
    return rec.with_suffix(".frames.json")


def read_labels(rec: Path) -> list[np.ndarray]:
    """Every record's unpacked label, in order (for checks and tests)."""
    reader = mx.recordio.MXIndexedRecordIO(str(rec.with_suffix(".idx")), str(rec), "r")
    labels = []
    for key in sorted(reader.keys):
        header, _ = mx.recordio.unpack(reader.read_idx(key))
        labels.append(unpack_label(np.asarray(header.label)))
    reader.close()
    return labels
