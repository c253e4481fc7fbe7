"""object_detection's deploy=local endpoint on the serving layer: a real uvicorn server on 127.0.0.1 serving saved
detectors — a fresh one, one whose box layer makes wild boxes, one that fails at inference — and the CLI's deploy."""

from __future__ import annotations

import base64
import json
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import mxnet as mx
import numpy as np
import pytest

from conftest import REPO, cli_env, store_client, trials_of
from mlexp.serving.http import ApiKeys, ModelSlot, ServiceSettings, start_in_thread
from mlexp.tasks.object_detection import networks
from mlexp.tasks.object_detection.config import DetectionAugmentation, Detector
from mlexp.tasks.object_detection.deployment import build_app
from mlexp.tasks.object_detection.endpoint import FootballDetector

SIZE = 128  # network input
WIDTH, HEIGHT = 160, 96  # posted frames: not the network's square, so boxes are scaled back


def _save_variant(source: Path, into: Path, **architecture: object) -> Path:
    """A copy of a saved detector with some of its model.json changed."""
    into.mkdir(parents=True)
    shutil.copy2(source / "model.params", into / "model.params")
    described = {**json.loads((source / "model.json").read_text()), **architecture}
    (into / "model.json").write_text(json.dumps(described))
    return into


@pytest.fixture(scope="module")
def detectors(tmp_path_factory) -> dict[str, Path]:
    """Saved detectors: a freshly initialised SSD, a wild one, one that fails at inference, a slow one."""
    root = tmp_path_factory.mktemp("detectors")
    # seeded: the wild boxes must reach the frame's edges whatever tests ran in this worker before
    mx.random.seed(0)
    model = Detector(input_size=SIZE, pretrained_base=None, tile_size=None)  # the whole image resized
    net, _ = networks.build(model, lambda message: None)
    net(mx.nd.zeros((1, 3, SIZE, SIZE)))  # shapes are inferred at the first forward
    networks.save(net, model, root / "plain")
    # a barely trained box regressor: box offsets 60x too large decode to coordinates far outside the frame
    # (and to ±Infinity where the exponential overflows), as in the issue's [-162155.1, -316605802.5, ...]
    for predictor in net.box_predictors:
        for parameter in predictor.collect_params().values():
            parameter.set_data(parameter.data() * 60)
    networks.save(net, model, root / "wild")
    return {
        "plain": root / "plain",
        "wild": root / "wild",
        # an architecture the network cannot run at: its feature maps vanish, MXNet fails in the forward pass
        "broken": _save_variant(root / "plain", root / "broken", input_size=8),
        # 640-px input: the first forward (hybridizing, memory planning) takes far longer than 20 ms
        "slow": _save_variant(root / "plain", root / "slow", input_size=640),
    }


@contextmanager
def service(folder: Path, keys: ApiKeys | None = None, **settings: object) -> Iterator[str]:
    """The object_detection app over the detector in `folder` on a real loopback server; yields its URL."""
    detector = FootballDetector(folder, DetectionAugmentation(), 0.3)
    if keys is not None:
        settings.update(keys_db=keys.path)
    limits = ServiceSettings(require_api_key=keys is not None, **settings)  # type: ignore[arg-type]
    running = start_in_thread(build_app(ModelSlot(lambda: (detector, "test")), limits))
    try:
        yield running.url
    finally:
        running.stop()


def call(url: str, body: bytes | None = None, content_type: str = "image/jpeg", **headers: str) -> tuple[int, dict]:
    """Status and JSON answer of a request; every body must be standard JSON (no NaN/Infinity tokens)."""
    sent = {"Content-Type": content_type, **{k.replace("_", "-"): v for k, v in headers.items()}}
    request = urllib.request.Request(url, data=body, headers=sent, method="GET" if body is None else "POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    assert not re.search(rb"NaN|Infinity", raw), raw[:300]
    return status, json.loads(raw, parse_constant=lambda token: pytest.fail(f"{token} in {raw[:300]!r}"))


def frame(seed: int = 0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    return cv2.imencode(".jpg", pixels)[1].tobytes()


def as_json(image: bytes, score_threshold: float | None = 0.0) -> bytes:
    body: dict[str, object] = {"image": base64.b64encode(image).decode()}
    if score_threshold is not None:
        body["score_threshold"] = score_threshold
    return json.dumps(body).encode()


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width × height, followed by a scrap of image data that decodes to nothing."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


def assert_within_the_frame(boxes: list[list[float]]) -> None:
    for xmin, ymin, xmax, ymax in boxes:
        assert 0.0 <= xmin < xmax <= WIDTH and 0.0 <= ymin < ymax <= HEIGHT, (xmin, ymin, xmax, ymax)


def test_a_frame_gets_boxes_within_the_image_behind_an_api_key(detectors, tmp_path):
    keys = ApiKeys(tmp_path / "keys.sqlite")
    key = keys.create("tester")
    with service(detectors["plain"], keys) as url:
        assert call(url + "/ping") == (200, {"status": "healthy", "service": "object_detection"})
        status, answer = call(url + "/invocations", as_json(frame()), "application/json")
        assert status == 401 and "x-api-key" in answer["error"]
        status, answer = call(url + "/invocations", as_json(frame()), "application/json", x_api_key=key)
        assert status == 200, answer
        assert answer["image_size"] == {"width": WIDTH, "height": HEIGHT}
        assert answer["model"] == "ssd_300_mobilenet0.25_custom"
        assert len(answer["boxes"]) == len(answer["scores"]) == len(answer["classes"]) > 0
        assert set(answer["classes"]) == {"football"} and all(0.0 <= s <= 1.0 for s in answer["scores"])
        assert_within_the_frame(answer["boxes"])
        # the raw image as the body: the model's score threshold (0.3) applies, so no more boxes than at 0
        status, raw = call(url + "/invocations", frame(), "image/jpeg", x_api_key=key)
        assert status == 200 and len(raw["boxes"]) <= len(answer["boxes"])
        assert all(s >= 0.3 for s in raw["scores"])
    assert keys.usage("tester") == 2


def test_an_image_over_max_pixels_is_refused_from_its_header(detectors):
    with service(detectors["plain"], max_pixels=1_000_000) as url:
        status, answer = call(url + "/invocations", png_header(5000, 5000), "image/png")
        assert status == 413, answer
        assert (
            "5000x5000 = 25000000 pixels" in answer["error"]
            and "limit of 1000000 (deploy.max_pixels)" in (answer["error"])
        )
        status, answer = call(url + "/invocations", as_json(png_header(5000, 5000)), "application/json")
        assert status == 413 and "deploy.max_pixels" in answer["error"]
        # a bomb beyond Pillow's own ceiling is refused as over the limit too, not as a broken image
        status, answer = call(url + "/invocations", png_header(100_000, 100_000), "image/png")
        assert status == 413 and "deploy.max_pixels" in answer["error"]
        # a frame under the limit is served
        assert call(url + "/invocations", frame(), "image/jpeg")[0] == 200
    # the same header under a higher limit gets as far as decoding, which fails: the limit acted before decoding
    with service(detectors["plain"], max_pixels=40_000_000) as url:
        status, answer = call(url + "/invocations", png_header(5000, 5000), "image/png")
        assert status == 422 and answer["error"] == "the body is not a JPEG or PNG image"


def test_bad_requests_get_json_errors_naming_the_problem(detectors):
    with service(detectors["plain"], max_request_bytes=100_000) as url:
        invocations = url + "/invocations"
        assert call(invocations, b"these bytes are no image") == (422, {"error": "the body is not a JPEG or PNG image"})
        status, answer = call(invocations, b'{"picture": 1}', "application/json")
        assert status == 422 and answer["error"] == "field 'image' is missing"
        status, answer = call(invocations, b'{"image": "***"}', "application/json")
        assert status == 422 and "base64" in answer["error"]
        status, answer = call(invocations, as_json(frame(), 1.5), "application/json")
        assert status == 422 and "score_threshold" in answer["error"]
        status, answer = call(invocations, b"hello", "text/plain")
        assert status == 415 and "application/json" in answer["error"]
        status, answer = call(invocations, b"x" * 200_000)
        assert status == 413 and "100000" in answer["error"]
        status, answer = call(invocations)
        assert status == 405


def test_a_model_failing_at_inference_gets_a_json_500_and_the_service_keeps_answering(detectors):
    with service(detectors["broken"]) as url:
        status, answer = call(url + "/invocations", frame(), "image/jpeg")
        assert status == 500 and answer == {"error": "internal error: MXNetError"}
        assert call(url + "/ping")[0] == 200


def test_a_request_slower_than_the_timeout_gets_a_json_504(detectors):
    with service(detectors["slow"], request_timeout_s=0.02) as url:
        started = time.monotonic()
        status, answer = call(url + "/invocations", frame(), "image/jpeg")
        assert status == 504 and "error" in answer
        assert time.monotonic() - started < 5


def test_wild_boxes_come_back_clipped_to_the_image_and_finite(detectors):
    # the saved model really is wild: raw decoded boxes leave the frame and overflow
    net, _ = networks.load(detectors["wild"])
    mx.random.seed(0)  # a zero frame gives bare anchors with zero-bias heads: probe with a seeded random frame
    _, _, raw = (a.asnumpy()[0] for a in net(mx.nd.random.normal(shape=(1, 3, SIZE, SIZE))))
    finite = raw[np.isfinite(raw).all(axis=1)]
    assert not np.isfinite(raw).all() and (np.abs(finite) > 10 * SIZE).any()
    with service(detectors["wild"]) as url:
        for seed in range(3):
            status, answer = call(url + "/invocations", as_json(frame(seed)), "application/json")
            assert status == 200 and answer["boxes"], answer
            assert all(isinstance(v, float) for box in answer["boxes"] for v in box)
            assert_within_the_frame(answer["boxes"])
            # boxes that were wild before clipping reach the frame's edges
            assert any(0.0 in box or WIDTH in box or HEIGHT in box for box in answer["boxes"])


@pytest.fixture(scope="module", autouse=True)
def cli_service(detectors, tmp_path_factory) -> Iterator[tuple[subprocess.Popen, Path, str]]:
    """`mlexp ... stage=deploy deploy=local` serving the plain detector, started first: it boots while tests run."""
    project = tmp_path_factory.mktemp("deploy") / "project"
    shutil.copytree(REPO / "conf", project / "conf")
    key = ApiKeys(project / "serving" / "keys.sqlite").create("cli")
    command = [sys.executable, "-u", "-m", "mlexp.cli", "task=object_detection", "stage=deploy", "deploy=local"]
    command += ["deploy.source=trial", f"paths.models={detectors['plain']}", "deploy.port=0", "model.score_threshold=0"]
    server = subprocess.Popen(
        command,
        cwd=project,
        env=cli_env(project),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a suite started in the background ignores SIGINT and its children inherit that: Ctrl-C must reach the service
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        yield server, project, key
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=60)
            finally:  # a service Ctrl-C did not stop fails the test, and does not outlive it
                if server.poll() is None:
                    server.kill()
                    server.wait()


def test_cli_deploy_local_serves_this_trials_model_on_the_serving_layer(cli_service, detectors):
    server, project, key = cli_service
    try:
        deadline, lines = time.monotonic() + 300, [""]
        while not lines[-1].startswith("service: ") and time.monotonic() < deadline and server.poll() is None:
            lines.append(server.stdout.readline())
        assert lines[-1].startswith("service: "), server.stderr.read() if server.poll() is not None else lines
        url = lines[-1].split()[1]
        assert f"serving this trial's model ({detectors['plain']})" in lines[-1]
        assert any("--data-binary @frame.jpg" in line for line in lines)
        status, answer = call(url + "/invocations", frame(), "image/jpeg", x_api_key=key)
        assert status == 200 and answer["boxes"]
        assert_within_the_frame(answer["boxes"])
        assert call(url + "/invocations", frame())[0] == 401  # the default deploy.require_api_key=true
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)
    assert server.returncode == 0, server.stderr.read()
    [deployed] = trials_of(project, "object_detection")
    component = store_client(project).get_run(deployed.components["Deployment"])
    assert component.info.status == "FINISHED"
    assert component.data.params["endpoint"] == url
    assert component.data.params["network"] == "ssd_300_mobilenet0.25_custom"
    assert component.data.metrics["requests_served"] == 2


def test_served_detections_clip_wild_boxes_and_drop_degenerate_and_non_finite_ones():
    from mlexp.tasks.object_detection.endpoint import served_detections
    from mlexp.tasks.object_detection.tiling import windows

    boxes = np.array(
        [
            [-162155.1, -316605802.5, 160289.1, 316608997.5],  # the box on a 256-px frame
            [10.0, 20.0, 30.0, 40.0],
            [np.nan, 1.0, 2.0, 3.0],
            [1.0, 2.0, np.inf, 5.0],
            [300.0, 10.0, 400.0, 20.0],  # wholly right of the frame: no area left
            [50.0, 50.0, 50.04, 60.0],  # thinner than the 0.1 px answered
            [-5.0, -5.0, 5.0, 5.0],  # at the top-left edge: left=-5, width=10 → left=0, width=5
            [60.0, 60.0, 70.0, 70.0],
        ],
        dtype=np.float32,
    )
    ids = np.array([0, 0, 0, 0, 0, 0, 0, -1], dtype=np.float32)  # -1: no detection
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.5, 0.4, 0.9], dtype=np.float32)
    kept_ids, kept_scores, kept = served_detections(
        [[ids, scores, boxes]], windows(256, 256, 256, None, 0), 256, 256, 0.3
    )
    assert kept.tolist() == [[0.0, 0.0, 256.0, 256.0], [10.0, 20.0, 30.0, 40.0], [0.0, 0.0, 5.0, 5.0]]
    assert kept_scores.tolist() == pytest.approx([0.9, 0.8, 0.4]) and kept_ids.tolist() == [0, 0, 0]
    # scaled back to a 512x128 frame from the 256-px network input; a NaN score is dropped too
    scores[1] = np.nan
    _, _, kept = served_detections([[ids, scores, boxes]], windows(512, 128, 256, None, 0), 512, 128, 0.3)
    # (the thin box is 0.08 px wide at twice the scale: 0.1 px as answered, so it stays)
    assert kept.tolist() == [[0.0, 0.0, 512.0, 128.0], [100.0, 25.0, 100.1, 30.0], [0.0, 0.0, 10.0, 2.5]]
