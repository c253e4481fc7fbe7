"""Scan degradations of a generated page, with its ground-truth boxes moved to match.

Each is set by config (dataset.degradations.<level>): resolution (dpi), skew, blur, scan noise,
uneven lighting and JPEG artefacts, applied in the order a scanner and its encoder would.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Mapping
from typing import Any

import cv2
import numpy as np
from PIL import Image

from mlexp.data.documents import DPI, Page

Box = list[int]

SETTINGS = ("dpi", "skew_degrees", "blur_sigma", "noise_sigma", "uneven_light", "jpeg_quality")


def _move_boxes(page: Page, move: Callable[[Box], Box]) -> None:
    """Apply `move` to every box of the page's ground truth."""
    for line in page.lines:
        line["box"] = move(line["box"])
    for table in page.tables:
        table["box"] = move(table["box"])
        for cell in table["cells"]:
            cell["box"] = move(cell["box"])
    for pair in page.key_values:
        pair["key_box"], pair["value_box"] = move(pair["key_box"]), move(pair["value_box"])
    for element in page.selection_elements:
        element["box"], element["label_box"] = move(element["box"]), move(element["label_box"])


def _resample(page: Page, dpi: int) -> None:
    scale = dpi / DPI
    width, height = page.image.size
    page.image = page.image.resize((round(width * scale), round(height * scale)), Image.Resampling.LANCZOS)
    _move_boxes(page, lambda b: [round(v * scale) for v in b])


def _skew(page: Page, degrees: float) -> None:
    width, height = page.image.size
    page.image = page.image.rotate(degrees, resample=Image.Resampling.BICUBIC, expand=True, fillcolor="white")
    radians = math.radians(degrees)
    cos, sin = math.cos(radians), math.sin(radians)
    cx, cy = width / 2, height / 2
    nx, ny = page.image.size[0] / 2, page.image.size[1] / 2

    def move(box: Box) -> Box:
        # PIL rotates counter-clockwise in image coordinates (y down): x' = cos·dx + sin·dy, y' = −sin·dx + cos·dy
        xs, ys = [], []
        for x, y in ((box[0], box[1]), (box[2], box[1]), (box[0], box[3]), (box[2], box[3])):
            dx, dy = x - cx, y - cy
            xs.append(nx + cos * dx + sin * dy)
            ys.append(ny - sin * dx + cos * dy)
        return [round(min(xs)), round(min(ys)), round(max(xs)), round(max(ys))]

    _move_boxes(page, move)


def degrade(page: Page, level: Mapping[str, Any], rng: np.random.Generator) -> Page:
    """The page as scanned at `level` (keys: SETTINGS)."""
    if level.get("dpi") and int(level["dpi"]) != DPI:
        _resample(page, int(level["dpi"]))
    if level.get("skew_degrees"):
        _skew(page, float(rng.uniform(-1, 1)) * float(level["skew_degrees"]))
    pixels = np.asarray(page.image.convert("L"), dtype=np.float32)
    if level.get("blur_sigma"):
        pixels = cv2.GaussianBlur(pixels, (0, 0), float(level["blur_sigma"])).astype(np.float32)
    if level.get("uneven_light"):
        # a lamp off to one side: brightness falls off linearly across the page, down to 1 - uneven_light
        height, width = pixels.shape
        angle = rng.uniform(0, 2 * math.pi)
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        ramp = (math.cos(angle) * xx / width + math.sin(angle) * yy / height) + 1.0
        ramp = ramp / max(float(ramp.max()), 1e-6)
        pixels = pixels * (1.0 - float(level["uneven_light"]) * (1.0 - ramp))
    if level.get("noise_sigma"):
        pixels = pixels + rng.normal(0, float(level["noise_sigma"]), pixels.shape).astype(np.float32)
        # salt-and-pepper specks, one pixel in a thousand, as on photocopies
        specks = rng.random(pixels.shape) < 0.001
        pixels[specks] = rng.choice([0.0, 255.0], int(specks.sum()))
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).convert("RGB")
    if level.get("jpeg_quality"):
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=int(level["jpeg_quality"]))
        image = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    page.image = image
    return page
