"""Broadcast-like football frames: grass, yard lines, players and one small ball per frame.

Written as JPEG images plus a SageMaker Ground Truth bounding-box output manifest, the format
the labeling job of the NFL post produces. Each frame also records the characteristics the
post's sensitivity analysis groups its test sets by (`frame-attributes`). Frame i depends only
on (seed, i), so a larger set keeps the frames of a smaller one.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

# the post's error analysis: each frame takes one value of each characteristic, at random
ATTRIBUTES = {
    "occlusion": ("high", "low"),
    "size": ("small", "large"),
    "aspect_ratio": ("tall", "wide"),
    "camera_angle": ("endzone", "sideline"),
    "contrast": ("high", "low"),
}
BUCKET = "mlexp-football-frames"
LABEL = "football"
ATTRIBUTES_KEY = "frame-attributes"
MANIFEST = "output.manifest"
BALL_BROWN = np.array([122.0, 66.0, 34.0])
TEAM_COLOURS = [(235, 235, 235), (150, 25, 35), (20, 40, 110), (240, 170, 30), (25, 90, 40)]

RGB = tuple[int, int, int]


def _rgb(colour: np.ndarray | tuple[float, ...]) -> RGB:
    r, g, b = (int(np.clip(c, 0, 255)) for c in colour)
    return r, g, b


def _field(rng: np.random.Generator, size: int, camera: str) -> Image.Image:
    """Mown grass in stripes, lit unevenly, with yard lines across the view."""
    green = rng.uniform(95, 150)
    base = np.array([green * 0.45, green, green * 0.35])
    axis = np.arange(size)
    band = size / rng.uniform(5, 9)
    stripes = 1.0 + 0.06 * np.where((axis // band) % 2 == 0, 1.0, -1.0)
    light = 1.0 + rng.uniform(-0.12, 0.12) * (axis / size - 0.5)
    shade = np.outer(light, stripes) if camera == "sideline" else np.outer(stripes * light, np.ones(size))
    image = Image.fromarray(np.clip(shade[..., None] * base, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    width = max(1, size // 128)
    spacing = size / rng.uniform(3.5, 5.5)
    offset = rng.uniform(0, spacing)
    if camera == "sideline":  # lines run top to bottom, leaning towards a vanishing point
        lean = rng.uniform(-0.2, 0.2)
        for k in range(-2, 8):
            x = offset + k * spacing
            draw.line([(x - lean * size / 2, 0), (x + lean * size / 2, size)], fill=(230, 235, 230), width=width)
    else:  # seen from the end zone, lines run across and crowd towards the far side
        for k in range(8):
            y = size * ((offset / spacing + k) / 7) ** 1.35
            draw.line([(0, y), (size, y)], fill=(230, 235, 230), width=width)
    return image


def _player(draw: ImageDraw.ImageDraw, rng: np.random.Generator, x: float, y: float, height: float) -> None:
    jersey, helmet = TEAM_COLOURS[rng.integers(len(TEAM_COLOURS))], TEAM_COLOURS[rng.integers(len(TEAM_COLOURS))]
    w = height * 0.38
    draw.line([(x - w * 0.2, y + height * 0.2), (x - w * 0.3, y + height * 0.5)], fill=(30, 30, 30), width=3)
    draw.line([(x + w * 0.2, y + height * 0.2), (x + w * 0.35, y + height * 0.5)], fill=(30, 30, 30), width=3)
    draw.rectangle([x - w / 2, y - height * 0.05, x + w / 2, y + height * 0.22], fill=(200, 200, 190))
    draw.ellipse([x - w / 2, y - height * 0.32, x + w / 2, y + 0.02 * height], fill=jersey)
    draw.ellipse([x - w * 0.25, y - height * 0.5, x + w * 0.25, y - height * 0.3], fill=helmet)


def _ball(rng: np.random.Generator, size: int, attributes: dict[str, str], lengths: dict[str, list[float]]):
    """The ball's outline (polygon points) for its size and aspect ratio, placed in the frame."""
    low, high = lengths[attributes["size"]]
    length = size * rng.uniform(low, high)
    girth = length / rng.uniform(1.55, 1.8)
    angle = rng.uniform(-35, 35) + (90 if attributes["aspect_ratio"] == "tall" else 0)
    cos, sin = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    margin = length
    cx, cy = rng.uniform(margin, size - margin, size=2)
    t = np.linspace(0, 2 * np.pi, 32, endpoint=False)
    ex, ey = length / 2 * np.cos(t), girth / 2 * np.sin(t)
    return [(cx + a * cos - b * sin, cy + a * sin + b * cos) for a, b in zip(ex, ey)], (cx, cy, cos, sin, length)


def draw_frame(
    rng: np.random.Generator, size: int, lengths: dict[str, list[float]]
) -> tuple[Image.Image, tuple[int, int, int, int], dict[str, str]]:
    """One frame, its ball's box (left, top, width, height) and its characteristics."""
    attributes = {name: str(values[rng.integers(2)]) for name, values in ATTRIBUTES.items()}
    image = _field(rng, size, attributes["camera_angle"])
    draw = ImageDraw.Draw(image)
    for _ in range(rng.integers(4, 10)):
        x, y = rng.uniform(0, size, size=2)
        depth = 0.6 + 0.5 * y / size if attributes["camera_angle"] == "endzone" else 1.0
        _player(draw, rng, x, y, size * rng.uniform(0.12, 0.2) * depth)
    outline, (cx, cy, cos, sin, length) = _ball(rng, size, attributes, lengths)
    xs, ys = [p[0] for p in outline], [p[1] for p in outline]
    box = (math.floor(min(xs)), math.floor(min(ys)), math.ceil(max(xs)), math.ceil(max(ys)))
    background = np.asarray(image, dtype=float)[box[1] : box[3], box[0] : box[2]].reshape(-1, 3).mean(axis=0)
    brown = BALL_BROWN * rng.uniform(0.8, 1.15)
    low = attributes["contrast"] == "low"
    draw.polygon(outline, fill=_rgb(0.4 * brown + 0.6 * background if low else brown))
    if not low and length >= 10:  # laces along the long axis
        half = length * 0.18
        draw.line([(cx - half * cos, cy - half * sin), (cx + half * cos, cy + half * sin)], fill=(240, 240, 235))
    if attributes["occlusion"] == "high":  # an arm or a body across 40-65% of the ball
        covered = rng.uniform(0.4, 0.65)
        left, top, right, bottom = box
        reach = length * rng.uniform(0.5, 1.5)
        if right - left >= bottom - top:
            edge = left + covered * (right - left)
            rect = (
                [left - reach, top - 2, edge, bottom + 2]
                if rng.random() < 0.5
                else [right - (edge - left), top - 2, right + reach, bottom + 2]
            )
        else:
            edge = top + covered * (bottom - top)
            rect = (
                [left - 2, top - reach, right + 2, edge]
                if rng.random() < 0.5
                else [left - 2, bottom - (edge - top), right + 2, bottom + reach]
            )
        draw.rectangle(rect, fill=TEAM_COLOURS[rng.integers(len(TEAM_COLOURS))])
    pixels = np.asarray(image, dtype=float) + rng.normal(0, 4, size=(size, size, 3))
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    return image, (box[0], box[1], box[2] - box[0], box[3] - box[1]), attributes


def manifest_line(source_ref: str, size: int, box: tuple[int, int, int, int], attributes: dict[str, str]) -> dict:
    left, top, width, height = box
    return {
        "source-ref": source_ref,
        LABEL: {
            "image_size": [{"width": size, "height": size, "depth": 3}],
            "annotations": [{"class_id": 0, "left": left, "top": top, "width": width, "height": height}],
        },
        f"{LABEL}-metadata": {
            "objects": [{"confidence": 1.0}],
            "class-map": {"0": "football"},
            "type": "groundtruth/object-detection",
            "human-annotated": "no",
            "creation-date": "2020-09-10T00:00:00.000000",
            "job-name": f"labeling-job/{LABEL}",
        },
        ATTRIBUTES_KEY: attributes,
    }


def generate(out: Path, n_frames: int, size: int, seed: int, lengths: dict[str, list[float]]) -> Path:
    """Write `n_frames` JPEG frames under out/frames/ and their manifest; returns the manifest.

    Source refs are `s3://mlexp-football-frames/frames/<name>`, as a labeling job's output
    would name them, so read them with dataset.image_root=<out>.
    """
    (out / "frames").mkdir(parents=True, exist_ok=True)
    lines = []
    for index in range(n_frames):
        image, box, attributes = draw_frame(np.random.default_rng([seed, index]), size, lengths)
        name = f"frame_{index:06d}.jpg"
        image.save(out / "frames" / name, quality=90)
        lines.append(json.dumps(manifest_line(f"s3://{BUCKET}/frames/{name}", size, box, attributes)))
    partial = out / f"{MANIFEST}.partial"
    partial.write_text("\n".join(lines) + "\n")
    partial.replace(out / MANIFEST)
    return out / MANIFEST
