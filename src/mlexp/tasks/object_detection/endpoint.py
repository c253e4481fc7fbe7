"""A local detection endpoint on loopback, shaped like a SageMaker inference container.

    POST /invocations   body: the image (Content-Type image/jpeg, image/png, application/x-image)
                        or JSON {"image": "<base64>", "score_threshold": 0.3}
                        → 200 {"boxes": [[xmin, ymin, xmax, ymax], ...], "classes": [...], "scores": [...],
                               "image_size": {"width": w, "height": h}, "model": "<network>"}
    GET  /ping          → 200 {"status": "healthy"}

Errors are JSON {"error": "..."}: 400 bad image or body, 411 no Content-Length, 413 body over
the limit, 415 other content types, 404 other paths.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import mxnet as mx
import numpy as np
from gluoncv.data.transforms import image as timage

from mlexp.tasks.object_detection import networks
from mlexp.tasks.object_detection.augment import normalize
from mlexp.tasks.object_detection.config import DetectionAugmentation

IMAGE_TYPES = ("image/jpeg", "image/png", "application/x-image", "application/octet-stream")


class BadRequest(Exception):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


class FootballDetector:
    """A saved network answering one image at a time (MXNet runs one forward at a time)."""

    def __init__(self, folder: Path, augmentation: DetectionAugmentation, score_threshold: float) -> None:
        self.net, self.architecture = networks.load(folder)
        self.augmentation = augmentation
        self.score_threshold = score_threshold
        self._lock = threading.Lock()
        self.served = 0

    def detect(self, image: bytes, score_threshold: float | None = None) -> dict[str, Any]:
        try:
            img = mx.image.imdecode(image, to_rgb=1)
        except mx.base.MXNetError as error:
            raise BadRequest(HTTPStatus.BAD_REQUEST, "the body is not a JPEG or PNG image") from error
        height, width, _ = img.shape
        size = int(self.architecture["input_size"])
        x = normalize(timage.imresize(img, size, size, interp=1), self.augmentation).expand_dims(0)
        with self._lock:
            ids, scores, boxes = (a.asnumpy()[0] for a in self.net(x))
            self.served += 1
        threshold = self.score_threshold if score_threshold is None else score_threshold
        keep = (ids.reshape(-1) >= 0) & (scores.reshape(-1) >= threshold)
        scale = np.array([width / size, height / size, width / size, height / size])
        classes = self.architecture["classes"]
        return {
            "boxes": np.round(boxes[keep] * scale, 1).tolist(),
            "classes": [classes[int(i)] for i in ids.reshape(-1)[keep]],
            "scores": np.round(scores.reshape(-1)[keep].astype(float), 4).tolist(),
            "image_size": {"width": width, "height": height},
            "model": self.architecture["network"],
        }


def _parse(content_type: str, body: bytes) -> tuple[bytes, float | None]:
    if content_type in IMAGE_TYPES:
        return body, None
    if content_type != "application/json":
        raise BadRequest(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
            f"Content-Type {content_type or '(none)'}: send {', '.join(IMAGE_TYPES)} or application/json",
        )
    try:
        request = json.loads(body)
        image = base64.b64decode(request["image"], validate=True)
        threshold = request.get("score_threshold")
        if threshold is not None and not 0.0 <= float(threshold) <= 1.0:
            raise ValueError("score_threshold must be within [0, 1]")
    except (ValueError, KeyError, TypeError, binascii.Error) as error:
        raise BadRequest(
            HTTPStatus.BAD_REQUEST, f'expected JSON {{"image": "<base64>", "score_threshold": 0-1}}: {error}'
        ) from error
    return image, None if threshold is None else float(threshold)


def make_server(detector: FootballDetector, host: str, port: int, max_request_bytes: int) -> ThreadingHTTPServer:
    """A threading HTTP server for `detector`; port 0 picks a free port (server.server_port)."""

    class Handler(BaseHTTPRequestHandler):
        def _reply(self, status: HTTPStatus, payload: dict[str, Any]) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            if self.path == "/ping":
                self._reply(HTTPStatus.OK, {"status": "healthy", "model": detector.architecture["network"]})
            else:
                self._reply(HTTPStatus.NOT_FOUND, {"error": "GET /ping or POST /invocations"})

        def do_POST(self) -> None:  # noqa: N802
            try:
                if self.path != "/invocations":
                    raise BadRequest(HTTPStatus.NOT_FOUND, "POST the image to /invocations")
                length = self.headers.get("Content-Length")
                if length is None or not length.isdigit():
                    raise BadRequest(HTTPStatus.LENGTH_REQUIRED, "send a Content-Length header")
                if int(length) > max_request_bytes:
                    self.close_connection = True  # the body is left unread
                    raise BadRequest(
                        HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"{length} bytes is over the limit of {max_request_bytes}"
                    )
                content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
                image, threshold = _parse(content_type, self.rfile.read(int(length)))
                self._reply(HTTPStatus.OK, detector.detect(image, threshold))
            except BadRequest as error:
                self._reply(error.status, {"error": str(error)})

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # one line per request would drown the trial's output

    return ThreadingHTTPServer((host, port), Handler)
