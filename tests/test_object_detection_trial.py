"""A tiny football-detection trial end to end, resuming from its checkpoint, and its local endpoint."""

from __future__ import annotations

import base64
import json
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from conftest import REPO, cli_env, run_cli, store_client, trials_of
from mlexp.data import football_frames
from run_folders import run_folder

# 128-pixel frames, 4 held out, the rest to train on, 2 epochs: a trial in about 15 s on one core
TINY = (
    "task=object_detection",
    "dataset.n_val=4",
    "dataset.image_size=128",
    "model.input_size=128",
    "model.epochs=2",
    "model.batch_size=4",
    "model.speed_frames=2",
    "compute.num_threads=1",
)
EXPERIMENT = "object_detection"


@pytest.fixture(scope="module")
def trial(tmp_path_factory):
    """One trial on a Ground Truth manifest with a malformed line and a missing image."""
    project = tmp_path_factory.mktemp("detection") / "project"
    shutil.copytree(REPO / "conf", project / "conf")
    manifest = football_frames.generate(project / "labels", 13, 128, 5, {"small": [0.08, 0.1], "large": [0.14, 0.18]})
    (project / "labels/frames/frame_000012.jpg").unlink()
    with manifest.open("a") as handle:
        handle.write('{"source-ref": "s3://mlexp-football-frames/frames/x.jpg", "football": \n')
    done = run_cli(project, *TINY, f"dataset.path={manifest}", f"dataset.image_root={project / 'labels'}")
    [view] = trials_of(project, EXPERIMENT)
    return project, done, view


def test_trial_reads_the_manifest_and_reports_what_it_skipped(trial):
    _, done, view = trial
    assert (
        "skipped in output.manifest: 1 × malformed JSON line (first at output.manifest:14); 1 × image missing"
        in done.stdout
    )
    assert "notice: no local base weights for ssd_300_mobilenet0.25_custom" in done.stdout
    assert view.status == "FINISHED"
    assert view.component_names == {"Pre-processing", "Training", "Evaluation"}
    # 13 lines with a box, 4 held out; the missing image is skipped from whichever split it fell in
    assert view.metrics["frames_train"] + view.metrics["frames_val"] == 12
    assert view.metrics["frames_val"] in (3, 4) and view.metrics["manifest_problems"] == 2


def test_trial_logs_loss_terms_per_epoch_and_an_map(trial):
    project, done, view = trial
    client = store_client(project)
    for name in ("train_cls_loss", "train_box_loss", "val_map_50"):
        history = client.get_metric_history(view.run_id, name)
        assert sorted(m.step for m in history) == [1, 2], name
    assert 0.0 <= view.metrics["map_50"] <= 1.0
    assert 0.0 <= view.metrics["map_50_95"] <= view.metrics["map_50"] + 1e-9
    assert view.metrics["inference_fps"] > 0 and view.metrics["hybridize_speedup"] > 0
    headline = json.loads((run_folder(done) / "reports/metrics.json").read_text())
    assert headline["map_50"] == pytest.approx(view.metrics["map_50"])
    assert {"map_50", "map_50_95", "inference_fps", "train_images_per_s"} <= set(headline)


def test_evaluation_writes_the_pr_curve_and_the_sensitivity_table(trial):
    project, done, view = trial
    plots = run_folder(done) / "reports/plots"
    rows = (plots / "sensitivity.csv").read_text().splitlines()
    assert rows[0] == "attribute,value,frames,map_50"
    assert {r.split(",")[0] for r in rows[1:]} == set(football_frames.ATTRIBUTES)
    assert sum(int(r.split(",")[2]) for r in rows[1:] if r.startswith("occlusion,")) == view.metrics["frames_val"]
    assert any(k.startswith("map_50_occlusion_") for k in view.metrics)
    assert "occlusion" in done.stdout and "mAP@0.5" in done.stdout
    client = store_client(project)
    evaluation = client.list_artifacts(view.components["Evaluation"], "plots")
    assert {"plots/precision_recall.png", "plots/sensitivity.png", "plots/sensitivity.csv"} <= {
        a.path for a in evaluation
    }
    training = client.list_artifacts(view.components["Training"], "model")
    assert {a.path for a in training} == {"model/model.json", "model/model.params"}


def test_training_resumes_from_its_checkpoint(trial, tmp_path):
    from mlexp.tasks.object_detection import evaluation, networks, training
    from mlexp.tasks.object_detection.config import DetectionAugmentation, Detector
    from mlexp.tasks.object_detection.families import SSD

    _, done, _ = trial
    folder = run_folder(done)
    checkpoint = folder / "models/checkpoint"
    before = json.loads((checkpoint / "state.json").read_text())
    model = Detector(input_size=128, epochs=3, batch_size=4, resume=str(checkpoint))
    augmentation = DetectionAugmentation()
    net, _ = networks.build(model, print)
    val = folder / "data/val.rec"
    ran: list[int] = []
    history = training.fit(
        net,
        SSD(net, model, augmentation),
        model,
        folder / "data/train.rec",
        tmp_path,
        lambda n: evaluation.voc_map(evaluation.detect(n, val, augmentation, 128)),
        lambda epoch: ran.append(epoch.epoch),
    )
    assert ran == [3]
    assert [e.epoch for e in history.epochs] == [1, 2, 3]
    assert [e.losses for e in history.epochs[:2]] == [e["losses"] for e in before["epochs"]]


def _post(url: str, body: bytes, content_type: str) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_local_endpoint_serves_the_best_trial_over_http(trial):
    project, _, view = trial
    command = [sys.executable, "-u", "-m", "mlexp.cli", *TINY, "stage=deploy", "deploy=local"]
    command += ["model.serving.source=best", "model.serving.port=0", "model.serving.max_request_bytes=200000"]
    server = subprocess.Popen(
        command, cwd=project, env=cli_env(project), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline, line = time.monotonic() + 120, ""
        while not line.startswith("endpoint: POST") and time.monotonic() < deadline and server.poll() is None:
            line = server.stdout.readline()
        assert line.startswith("endpoint: POST"), server.stderr.read() if server.poll() is not None else line
        url = line.split()[2]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/invocations")
        assert f"best trial {view.name}" in line
        assert "curl -s -X POST -H 'Content-Type: image/jpeg' --data-binary @frame.jpg" in server.stdout.readline()

        frame = (project / "labels/frames/frame_000000.jpg").read_bytes()
        status, answer = _post(url, frame, "image/jpeg")
        assert status == 200
        assert answer["image_size"] == {"width": 128, "height": 128}
        assert len(answer["boxes"]) == len(answer["classes"]) == len(answer["scores"])
        request = json.dumps({"image": base64.b64encode(frame).decode(), "score_threshold": 0.0}).encode()
        status, answer = _post(url, request, "application/json")
        assert status == 200 and len(answer["boxes"]) >= 1
        assert set(answer["classes"]) == {"football"} and all(len(b) == 4 for b in answer["boxes"])

        status, answer = _post(url, b"these bytes are no image", "image/jpeg")
        assert status == 400 and "not a JPEG or PNG image" in answer["error"]
        status, answer = _post(url, b'{"picture": 1}', "application/json")
        assert status == 400 and "image" in answer["error"]
        status, answer = _post(url, b"x" * 300_000, "image/jpeg")
        assert status == 413 and "over the limit of 200000" in answer["error"]
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)
    assert server.returncode == 0, server.stderr.read()
    deployed = next(t for t in trials_of(project, EXPERIMENT) if t.component_names == {"Deployment"})
    component = store_client(project).get_run(deployed.components["Deployment"])
    assert component.info.status == "FINISHED"
    assert component.data.params["endpoint"] == url
    assert component.data.metrics["requests_served"] == 2
