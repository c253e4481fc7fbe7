"""Ground Truth frames → RecordIO (.rec + .idx), the compact format the post trains from.

Each record is the image's original encoded bytes and MXNet's packed detection label
`[header_len=2, label_width=5, (class, xmin, ymin, xmax, ymax) per box]`, corners normalised
to [0, 1] — what `mxnet.image.ImageDetIter` and GluonCV's `RecordFileDetection` read. A frame
without a ball carries one placeholder row of class -1 (GluonCV's padding) outside the image, since
`RecordFileDetection` refuses a label without a row; `boxes()` drops it. A
`<split>.frames.json` beside it keeps each record's source-ref, play and characteristics.
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
# the row of a frame without a ball: class -1 (GluonCV's padding), a box left of and above the image with a
# size, so anchor matchers that still see it encode finite targets (a zero-size box gives log(0))
NO_OBJECT = [-1.0, -1.0, -1.0, -0.5, -0.5]
# the characteristic a frame without a ball gets in the sensitivity analysis
NO_BALL = ("ball", "none")
# an image whose decoded size is not its line's image_size is skipped, not rescaled: Ground Truth's boxes are pixels
# of the image the annotator saw, and another size means another image or a resized copy, which only the user knows
SIZE_MISMATCH = "image_size differs from the image's own size (fix the line's image_size and boxes, or the image)"
# a phone photo: stored one way, shown (and labelled) a quarter turned by its EXIF orientation
EXIF_ORIENTATION = 0x0112
QUARTER_TURNS = {5, 6, 7, 8}
TURNED = (
    "image_size is the image turned by its EXIF orientation, and training reads it as stored (save the images turned, "
    "e.g. `mogrify -auto-orient *.jpg`, before labelling)"
)


def packed_label(frame: Frame, classes: list[str]) -> np.ndarray:
    objects = [
        [classes.index(b.label), b.left / frame.width, b.top / frame.height]
        + [(b.left + b.width) / frame.width, (b.top + b.height) / frame.height]
        for b in frame.boxes
    ] or [NO_OBJECT]
    return np.array(HEADER + [v for o in objects for v in o], dtype=np.float32)


def unpack_label(raw: np.ndarray) -> np.ndarray:
    """(N, 5) rows of class, xmin, ymin, xmax, ymax (normalised), from a packed label; placeholder rows kept."""
    header_len, width = int(raw[0]), int(raw[1])
    return np.asarray(raw[header_len:]).reshape(-1, width)


def boxes(label: np.ndarray, class_column: int = 0) -> np.ndarray:
    """The label's rows without the placeholder of a frame without a ball (class < 0).

    `class_column` is 0 for unpacked records and 4 for GluonCV's (xmin, ymin, xmax, ymax, class) rows.
    """
    label = np.asarray(label).reshape(-1, 5) if np.asarray(label).size else np.zeros((0, 5))
    return label[label[:, class_column] >= 0]


def _usable(frame: Frame, classes: list[str], problems: Problems) -> Frame:
    """The frame with its boxes of model.classes only; no box left makes it a frame without a ball."""
    kept = [b for b in frame.boxes if b.label in classes]
    if len(kept) < len(frame.boxes):
        problems.add(f"box of a class outside model.classes {classes} (dropped)", frame.where)
    attributes = frame.attributes if kept else {**frame.attributes, NO_BALL[0]: NO_BALL[1]}
    return Frame(frame.source_ref, frame.width, frame.height, kept, attributes, frame.where, frame.group)


def write(
    frames: list[Frame], classes: list[str], source: ImageSource, rec: Path, problems: Problems, plays: list[str]
) -> tuple[int, int]:
    """Write the frames whose image reads to `rec` (and its .idx, .frames.json).

    `plays` names each frame's play (the split's group). Returns the frames written and how many have no ball.
    """
    rec.parent.mkdir(parents=True, exist_ok=True)
    tmp_rec, tmp_idx = rec.with_suffix(".rec.partial"), rec.with_suffix(".idx.partial")
    writer = mx.recordio.MXIndexedRecordIO(str(tmp_idx), str(tmp_rec), "w")
    kept: list[Frame] = []
    kept_plays: list[str] = []
    for frame, play in zip(frames, plays, strict=True):
        usable = _usable(frame, classes, problems)
        try:
            data = source.read(frame.source_ref)
            image = Image.open(io.BytesIO(data))
            size, turned = image.size, image.getexif().get(EXIF_ORIENTATION) in QUARTER_TURNS
            image.verify()
        except ImageMissing as missing:
            problems.add("image missing", f"{frame.where} ({missing})")
            continue
        except (UnidentifiedImageError, OSError, SyntaxError):
            problems.add("image unreadable", f"{frame.where} ({source.where(frame.source_ref)})")
            continue
        if turned and size[::-1] == (frame.width, frame.height):
            # the annotator saw it turned, and the network reads the stored pixels: the boxes would be turned
            problems.add(TURNED, f"{frame.where} ({source.where(frame.source_ref)} is {size[0]}×{size[1]} stored)")
            continue
        if size != (frame.width, frame.height):
            sizes = f"is {size[0]}×{size[1]}, image_size says {frame.width}×{frame.height}"
            problems.add(SIZE_MISMATCH, f"{frame.where} ({source.where(frame.source_ref)} {sizes})")
            continue
        header = mx.recordio.IRHeader(0, packed_label(usable, classes), len(kept), 0)
        writer.write_idx(len(kept), mx.recordio.pack(header, data))
        kept.append(usable)
        kept_plays.append(play)
    writer.close()
    tmp_rec.replace(rec)
    tmp_idx.replace(rec.with_suffix(".idx"))
    sidecar = [
        {
            "source_ref": f.source_ref,
            "where": f.where,
            "play": play,
            "attributes": f.attributes,
            "size": [f.width, f.height],
            "boxes": len(f.boxes),
        }
        for f, play in zip(kept, kept_plays)
    ]
    frames_json(rec).write_text(json.dumps(sidecar, indent=1))
    return len(kept), sum(not f.boxes for f in kept)


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


def box_sizes(rec: Path, input_size: int, tile_size: int | None = None) -> np.ndarray:
    """(N, 2) width and height of every ball in `rec`, in pixels of the square network input: the frame resized
    to it, or with `tile_size` a tile of the frame at its own resolution resized to it."""
    frames = json.loads(frames_json(rec).read_text())
    sizes: list[np.ndarray] = []
    for label, frame in zip(read_labels(rec), frames, strict=True):
        if tile_size:
            scale = np.asarray(frame["size"], dtype=np.float64) * input_size / tile_size
        else:
            scale = np.full(2, float(input_size))
        sizes.extend(np.array([row[3] - row[1], row[4] - row[2]]) * scale for row in boxes(label) if len(row))
    return np.asarray(sizes, dtype=np.float64).reshape(-1, 2)
