"""Windows of a frame that the network sees: the whole frame resized, or overlapping tiles at its own resolution.

A 1280×720 broadcast frame squeezed into a 512-px input leaves a 13-38 px ball 5-15 px wide, below what
the detectors' coarsest useful stride finds. The post crops instead of squeezing: with `model.tile_size`
set, training takes random tile-sized crops of the frame (most around a ball, the rest anywhere) and
inference cuts the frame into overlapping tiles, runs them in batches and merges their boxes. Tiles
overlap by at least the largest ball plus a few pixels (`model.tile_overlap`), so a ball cut by one tile's
inner edge lies whole in its neighbour: boxes no inner edge cut are merged first (NMS), and a box an inner
edge cut is kept only where no kept box already covers most of it (a ball cut in every tile comes back clipped).

A two-stage detector (Faster-RCNN) needs no tiles at inference: it proposes regions over whatever image
it is given, so the whole frame goes through once at the tiles' scale (`whole_frame_side`). Cutting it
would run its backbone on every overlap twice and its R-CNN head once per tile (120 tiles at tile 128).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mxnet as mx
import numpy as np
from gluoncv.data.transforms import bbox as tbbox
from gluoncv.data.transforms import image as timage

# a box within this many frame pixels of a tile's inner edge was cut by it
EDGE_PX = 2.0


@dataclass(frozen=True)
class Window:
    """Where one network input comes from: frame pixels = input pixels × scale + origin."""

    x0: float
    y0: float
    scale_x: float
    scale_y: float
    # the network input's size in pixels
    input_width: int
    input_height: int
    # the window's edges inside the frame (left, top, right, bottom), None where the edge is the frame's own
    inner: tuple[float | None, float | None, float | None, float | None] = (None, None, None, None)


def origins(length: int, tile: int, overlap: int) -> list[int]:
    """Start of each tile along one side: evenly spread, adjacent tiles overlapping by at least `overlap`."""
    if length <= tile:
        return [0]
    count = math.ceil((length - overlap) / (tile - overlap))
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def whole_frame(width: int, height: int, size: int, tile: int, whole_frame_side: int | None) -> Window | None:
    """The whole frame as one network input at the tiles' scale (size / tile input px per frame px; padded right and
    below to at least size × size), if that input's longer side fits in `whole_frame_side`."""
    if whole_frame_side is None:
        return None
    resized_width, resized_height = round(width * size / tile), round(height * size / tile)
    input_width, input_height = max(resized_width, size), max(resized_height, size)
    if max(input_width, input_height) > whole_frame_side:
        return None
    return Window(0.0, 0.0, width / resized_width, height / resized_height, input_width, input_height)


def windows(
    width: int, height: int, size: int, tile: int | None, overlap: int, whole_frame_side: int | None = None
) -> list[Window]:
    """The windows covering a width × height frame for a square network input of `size` px, or with
    `whole_frame_side` one window of the whole frame at the tiles' scale where its input fits in that many px."""
    if not tile:
        return [Window(0.0, 0.0, width / size, height / size, size, size)]
    scaled = whole_frame(width, height, size, tile, whole_frame_side)
    if scaled is not None:
        return [scaled]
    found = []
    for y0 in origins(height, tile, overlap):
        for x0 in origins(width, tile, overlap):
            right, bottom = x0 + tile, y0 + tile
            inner = (
                float(x0) if x0 > 0 else None,
                float(y0) if y0 > 0 else None,
                float(right) if right < width else None,
                float(bottom) if bottom < height else None,
            )
            found.append(Window(float(x0), float(y0), tile / size, tile / size, size, size, inner))
    return found


def cut(image: mx.nd.NDArray, x0: int, y0: int, tile: int, fill: float = 0.0) -> mx.nd.NDArray:
    """The tile × tile crop at (x0, y0) of an HWC image; a frame smaller than the tile is padded right and below."""
    height, width = int(image.shape[0]), int(image.shape[1])
    crop = image[y0 : min(y0 + tile, height), x0 : min(x0 + tile, width)]
    if crop.shape[0] == tile and crop.shape[1] == tile:
        return crop
    canvas = mx.nd.full((tile, tile, image.shape[2]), fill, dtype=image.dtype)
    canvas[: crop.shape[0], : crop.shape[1]] = crop
    return canvas


def window_inputs(
    image: mx.nd.NDArray, size: int, tile: int | None, overlap: int, whole_frame_side: int | None = None
) -> tuple[list, list[Window]]:
    """The frame's network inputs (HWC, not yet normalised) and where each comes from."""
    height, width = int(image.shape[0]), int(image.shape[1])
    scaled = whole_frame(width, height, size, tile, whole_frame_side) if tile else None
    if scaled is not None:
        return [_scaled_whole(image, scaled)], [scaled]
    placed = windows(width, height, size, tile, overlap)
    if not tile:
        return [timage.imresize(image, size, size, interp=1)], placed
    crops = [cut(image, int(w.x0), int(w.y0), tile) for w in placed]
    return [c if tile == size else timage.imresize(c, size, size, interp=1) for c in crops], placed


def _scaled_whole(image: mx.nd.NDArray, window: Window) -> mx.nd.NDArray:
    """The frame resized by 1 / window's scale, padded right and below to the window's input size."""
    width = round(int(image.shape[1]) / window.scale_x)
    height = round(int(image.shape[0]) / window.scale_y)
    resized = timage.imresize(image, width, height, interp=1)
    if (width, height) == (window.input_width, window.input_height):
        return resized
    canvas = mx.nd.zeros((window.input_height, window.input_width, image.shape[2]), dtype=image.dtype)
    canvas[:height, :width] = resized
    return canvas


def random_tile(image: mx.nd.NDArray, bbox: np.ndarray, tile: int, ball_share: float) -> tuple:
    """A tile × tile training crop and its boxes: around a random ball with probability `ball_share`
    (the ball whole inside, anywhere in the tile), else anywhere in the frame (a ball cut by its edge
    is kept if its centre is inside, clipped)."""
    height, width = int(image.shape[0]), int(image.shape[1])
    balls = bbox[bbox[:, 4] >= 0] if len(bbox) else bbox
    x0, y0 = np.random.randint(0, max(width - tile, 0) + 1), np.random.randint(0, max(height - tile, 0) + 1)
    if len(balls) and np.random.uniform() < ball_share:
        ball = balls[np.random.randint(len(balls))]
        x0 = _start_around(ball[0], ball[2], width, tile)
        y0 = _start_around(ball[1], ball[3], height, tile)
    crop = cut(image, x0, y0, tile)
    boxes = tbbox.crop(bbox, (x0, y0, tile, tile), allow_outside_center=False) if len(bbox) else bbox
    return crop, boxes


def _start_around(low: float, high: float, length: int, tile: int) -> int:
    """A random tile start along one side that keeps [low, high] inside the tile and the tile inside the frame."""
    first = max(0, math.ceil(high) - tile)
    last = min(math.floor(low), length - tile)
    if last < first:  # a ball larger than the tile, or a frame smaller than it: centre on the ball
        return int(np.clip(round((low + high - tile) / 2), 0, max(length - tile, 0)))
    return int(np.random.randint(first, last + 1))


def place(boxes: np.ndarray, window: Window) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (K, 4) in network-input pixels → frame pixels, clipped to the window's inner edges (the network saw
    nothing beyond them), and which of them no inner edge cut (within EDGE_PX of it)."""
    scale = np.array([window.scale_x, window.scale_y, window.scale_x, window.scale_y])
    placed = boxes.reshape(-1, 4).astype(np.float64) * scale + np.array([window.x0, window.y0] * 2)
    left, top, right, bottom = window.inner
    whole = np.ones(len(placed), dtype=bool)
    with np.errstate(invalid="ignore"):
        if left is not None:
            whole &= placed[:, 0] > left + EDGE_PX
        if top is not None:
            whole &= placed[:, 1] > top + EDGE_PX
        if right is not None:
            whole &= placed[:, 2] < right - EDGE_PX
        if bottom is not None:
            whole &= placed[:, 3] < bottom - EDGE_PX
    low = [-np.inf if edge is None else edge for edge in (left, top)] * 2
    high = [np.inf if edge is None else edge for edge in (right, bottom)] * 2
    return np.clip(placed, low, high), whole
