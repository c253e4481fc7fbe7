"""The football detector behind `POST /invocations` (shaped like a SageMaker inference container).

    POST /invocations   body: the image (Content-Type image/jpeg, image/png, application/x-image)
                        or JSON {"image": "<base64>", "score_threshold": 0.3}
                        → 200 {"boxes": [[xmin, ymin, xmax, ymax], ...], "classes": [...], "scores": [...],
                               "image_size": {"width": w, "height": h}, "model": "<network>"}

The serving layer (mlexp.serving.http) adds GET /ping, API keys, the body limit (411/413), the
request deadline (504) and JSON 500s. Errors here: 413 for an image over deploy.max_pixels (read
from its header, before decoding), for a tiled model one cut into more than MAX_TILES tiles, and for
a tiled Faster-RCNN (which takes the whole image at its tiles' scale) one whose input would exceed
MAX_WHOLE_FRAME_PIXELS; 415 for other content types; 422 for a body that is not a JPEG or PNG or not
that JSON. Boxes are clipped to the image; boxes with a non-finite coordinate or score, and boxes
left with no area, are dropped, so a weakly trained model never answers `[-162155.1, -316605802.5,
...]`, `NaN` or `Infinity`.
"""

from __future__ import annotations

import base64
import binascii
import io
import threading
import warnings
from pathlib import Path
from typing import Any

import mxnet as mx
import numpy as np
from PIL import Image, UnidentifiedImageError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mlexp.serving.http import ModelSlot, ServiceError, ServiceSettings, check_image_pixels, json_response, read_json
from mlexp.tasks.object_detection import evaluation, networks, tiling
from mlexp.tasks.object_detection.config import DetectionAugmentation

IMAGE_TYPES = ("image/jpeg", "image/png", "application/x-image", "application/octet-stream")
NOT_AN_IMAGE = "the body is not a JPEG or PNG image"
# most tiles one image may be cut into (a tiled model): 8000x5000 at tile 128 would be ~5,000 forwards' worth
MAX_TILES = 2000
# largest input a tiled Faster-RCNN takes an image as (the image at its tiles' scale): a 1920x1080 frame at
# tile 128 and input 256, 24 s and 2.9 GB on two cores; a 2048x2048 image (4096x4096) took 101 s and 4.8 GB
MAX_WHOLE_FRAME_PIXELS = 3840 * 2160
# tiles per forward: memory stays that of a small batch however many tiles an image has
TILES_PER_FORWARD = 16
# the limits a detector applies when no service gives them (the registered pyfunc model)
DEFAULT_LIMITS = ServiceSettings()


def image_size(image: bytes, limits: ServiceSettings) -> tuple[int, int]:
    """(width, height) from the image's header, checked against deploy.max_pixels before anything is decoded."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit decides
            with Image.open(io.BytesIO(image), formats=("JPEG", "PNG")) as header:  # reads the header only
                width, height = header.size
    except Image.DecompressionBombError:
        # Pillow's own ceiling (2 × Image.MAX_IMAGE_PIXELS, ~179 million) is far above any sane deploy.max_pixels
        raise ServiceError(
            413, f"the image has more pixels than Pillow opens; the limit is {limits.max_pixels} (deploy.max_pixels)"
        ) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise ServiceError(422, NOT_AN_IMAGE) from None
    check_image_pixels(width, height, limits)
    return width, height


def check_input_size(
    width: int, height: int, size: int, tile: int | None, overlap: int, whole_side: int | None
) -> None:
    """ServiceError 413 when a model that takes the whole image at its tiles' scale (`whole_side`,
    evaluation.whole_frame_side) would get an input of more than MAX_WHOLE_FRAME_PIXELS, or when a tiled model
    would cut the image into more than MAX_TILES tiles (as such a model is, where its input's longer side would
    exceed `whole_side`: `evaluate` tiles those frames too)."""
    if not tile:
        return
    window = tiling.whole_frame(width, height, size, tile, whole_side)
    if window is not None:
        if window.input_width * window.input_height > MAX_WHOLE_FRAME_PIXELS:
            scale = size / tile
            largest = int(MAX_WHOLE_FRAME_PIXELS / scale**2)
            raise ServiceError(
                413,
                f"a {width}x{height} image is a {window.input_width}x{window.input_height} input for this model "
                f"(the whole image at its tiles' scale, {scale:g}x), over the limit of {MAX_WHOLE_FRAME_PIXELS} "
                f"pixels (endpoint.MAX_WHOLE_FRAME_PIXELS); send an image of at most about {largest} pixels",
            )
        return
    count = len(tiling.origins(width, tile, overlap)) * len(tiling.origins(height, tile, overlap))
    if count > MAX_TILES:
        raise ServiceError(
            413,
            f"a {width}x{height} image is {count} tiles of {tile} px for this model, over the limit of {MAX_TILES} "
            "(endpoint.MAX_TILES); send a smaller image",
        )


def served_detections(
    outputs: list[list[np.ndarray]], placed: list[tiling.Window], width: int, height: int, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(class ids, scores, boxes in image pixels) from the network's outputs for each window of the image:
    finite, clipped to the image, with an area as answered (0.1 px), over the threshold."""
    boxes, ids, scores = evaluation.frame_detections(outputs, placed, width, height)
    # rounded as answered before the area check: a box thinner than 0.1 px would come back with none
    clipped, keep = networks.clip_boxes(np.round(boxes, 1), width, height)
    keep &= scores >= threshold
    return ids[keep], np.round(scores[keep], 4), clipped[keep]


class FootballDetector:
    """A saved network answering one image at a time (MXNet runs one forward at a time)."""

    def __init__(self, folder: Path, augmentation: DetectionAugmentation, score_threshold: float) -> None:
        self.net, self.architecture = networks.load(folder)
        self.augmentation = augmentation
        self.score_threshold = score_threshold
        self._lock = threading.Lock()

    def detect(
        self, image: bytes, score_threshold: float | None = None, limits: ServiceSettings = DEFAULT_LIMITS
    ) -> dict[str, Any]:
        """Boxes, classes and scores found in a JPEG or PNG (ServiceError 413/422 for a refused image)."""
        width, height = image_size(image, limits)
        size, tile = int(self.architecture["input_size"]), self.architecture.get("tile_size")
        overlap = int(self.architecture.get("tile_overlap") or 0)
        whole_side = evaluation.whole_frame_side(self.net)
        check_input_size(width, height, size, tile, overlap, whole_side)  # from the header: before decoding
        try:
            img = mx.image.imdecode(image, to_rgb=1)
            img.wait_to_read()  # MXNet decodes lazily: a broken image would fail later, in the forward pass
        except mx.base.MXNetError:
            raise ServiceError(422, NOT_AN_IMAGE) from None
        if img.shape[:2] != (height, width):  # a header that lies about the size the image decodes to
            raise ServiceError(422, f"{NOT_AN_IMAGE}: its header says {width}x{height}")
        inputs, placed = evaluation.network_inputs(img, self.augmentation, size, tile, overlap, whole_side)
        with self._lock:
            outputs, _ = evaluation.run_batches(
                self.net, inputs, TILES_PER_FORWARD, evaluation.one_image_per_forward(self.net)
            )
        threshold = self.score_threshold if score_threshold is None else score_threshold
        ids, scores, boxes = served_detections(outputs, placed, width, height, threshold)
        classes = self.architecture["classes"]
        return {
            "boxes": boxes.tolist(),
            "classes": [classes[int(i)] for i in ids],
            "scores": scores.tolist(),
            "image_size": {"width": width, "height": height},
            "model": self.architecture["network"],
        }


async def _request_image(request: Request) -> tuple[bytes, float | None]:
    """The posted image and score threshold: raw image bytes, or JSON {"image": base64, "score_threshold": 0-1}."""
    content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type in IMAGE_TYPES:
        return await request.body(), None
    if content_type != "application/json":
        raise ServiceError(
            415, f"Content-Type {content_type or '(none)'}: send {', '.join(IMAGE_TYPES)} or application/json"
        )
    body = await read_json(request, {"image": str})
    try:
        image = base64.b64decode(body["image"], validate=True)
    except (binascii.Error, ValueError):
        raise ServiceError(422, "field 'image' is not base64") from None
    threshold = body.get("score_threshold")
    if threshold is None:
        return image, None
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0.0 <= threshold <= 1.0:
        raise ServiceError(422, f"field 'score_threshold' must be a number from 0 to 1, got {threshold!r}")
    return image, float(threshold)


def routes(slot: ModelSlot, settings: ServiceSettings) -> list[Route]:
    """POST /invocations over the detector in `slot` (hot-swappable)."""

    async def invocations(request: Request) -> Response:
        image, threshold = await _request_image(request)
        # one attribute read: a promotion swapping the model mid-request leaves this request on the old one
        detector: FootballDetector = slot.current
        # off the event loop: a forward takes tens of milliseconds, and /ping must keep answering
        return json_response(await run_in_threadpool(detector.detect, image, threshold, settings))

    return [Route("/invocations", invocations, methods=["POST"])]
