"""A tiny football-detection trial end to end on a 47-frame manifest at the default splits: validated on val,
measured once on test, frames without a ball counted, resuming from its checkpoint."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from conftest import REPO, TrialView, run_cli, seed_store, store_client, trials_of
from mlexp.data import football_frames
from object_detection_tiny import TINY_TILED_TRIAL, TINY_TILED_TRIAL_ONE_FRAME_HELD_OUT
from run_folders import run_folder

# small frames, 2 epochs at a 96-pixel input: a trial in about 20 s on one core
TINY = (
    "task=object_detection",
    "model.input_size=96",
    "model.epochs=2",
    "model.val_interval=1",  # the conf validates every 25 epochs (and the last)
    "model.batch_size=4",
    "model.speed_frames=2",
    "compute.num_threads=1",
)
ONE_EPOCH = tuple("model.epochs=1" if arg == "model.epochs=2" else arg for arg in TINY)
# the tiny tiled trial's model and no generated frames: for a trial of a manifest's frames
TINY_TILED_MODEL = tuple(arg for arg in TINY_TILED_TRIAL if arg.startswith("model."))
EXPERIMENT = "object_detection"
SPLITS = ("train", "val", "test")


@pytest.fixture(scope="module")
def trial(tmp_path_factory, empty_store):
    """One trial at the default val/test fractions on the size of a small real labeling job (47 frames in 8 plays),
    with frames without a ball, a malformed line, a line that is not an object and a missing image."""
    project = tmp_path_factory.mktemp("detection") / "project"
    shutil.copytree(REPO / "conf", project / "conf")
    seed_store(project, empty_store)  # the store's first set-up is other tests' concern
    manifest = football_frames.generate(
        project / "labels",
        47,
        2,  # a seed whose val and test splits both hold frames without a ball
        width=160,
        height=90,
        frames_per_play=6,
        no_ball_fraction=0.2,
        ball_length=(0.1, 0.14),
    )
    (project / "labels/play-0007/frame-0004.jpg").unlink()
    with manifest.open("a") as handle:
        handle.write('[1, 2]\n{"source-ref": "s3://mlexp-football-frames/play-0009/frame-0000.jpg", "football": \n')
    done = run_cli(project, *TINY, f"dataset.path={manifest}", f"dataset.image_root={project / 'labels'}")
    [view] = trials_of(project, EXPERIMENT)
    return project, done, view


def test_trial_reads_the_manifest_splits_it_by_play_and_reports_what_it_skipped(trial):
    _, done, view = trial
    assert "skipped in output.manifest: 1 × line is not a JSON object (first at output.manifest:48)" in done.stdout
    assert "1 × malformed JSON line (first at output.manifest:49); 1 × image missing" in done.stdout
    assert view.status == "FINISHED"
    assert view.component_names == {"Pre-processing", "Training", "Evaluation"}
    counts = {name: int(view.metrics[f"frames_{name}"]) for name in SPLITS}
    # 47 frames less the missing image, split 70/15/15 by whole plays of 6 frames (the last play has 5)
    assert sum(counts.values()) == 46 and counts["train"] >= 29 and min(counts["val"], counts["test"]) >= 5
    assert view.metrics["manifest_problems"] == 3
    data = run_folder(done) / "data"
    sidecars = {name: json.loads((data / f"{name}.frames.json").read_text()) for name in SPLITS}
    plays = {name: {frame["play"] for frame in sidecars[name]} for name in SPLITS}
    assert all(not plays[a] & plays[b] for a, b in (("train", "val"), ("train", "test"), ("val", "test")))
    negatives = {name: sum(frame["boxes"] == 0 for frame in sidecars[name]) for name in SPLITS}
    assert sum(negatives.values()) >= 5  # frames without a ball are kept, in the splits they fell in
    assert all(view.metrics[f"frames_{name}_no_ball"] == negatives[name] for name in SPLITS)


def test_trial_validates_on_val_and_reports_the_test_map_once(trial):
    project, done, view = trial
    client = store_client(project)
    for name in ("train_cls_loss", "train_box_loss"):
        assert sorted(m.step for m in client.get_metric_history(view.run_id, name)) == [1, 2], name
    history = client.get_metric_history(view.components["Training"], "val_map_50")
    per_epoch = sorted((m.step, m.timestamp, m.value) for m in history)
    assert [step for step, _, _ in per_epoch][:2] == [1, 2]
    # the objective is the kept checkpoint's validation mAP: the best epoch's
    assert view.metrics["val_map_50"] == pytest.approx(max(value for _, _, value in per_epoch[:2]))
    assert view.metrics["val_map_50"] == pytest.approx(view.metrics["best_val_map_50"])
    assert view.metrics["test_map_50"] == view.metrics["map_50"]
    assert 0.0 <= view.metrics["map_50_95"] <= view.metrics["map_50"] + 1e-9
    assert 0.0 <= view.metrics["false_positive_rate_no_ball"] <= 1.0
    assert view.metrics["train_seconds"] > 0 and view.metrics["train_budget_spent"] == 0.0  # no budget set
    # validation reads val.rec, the test mAP test.rec, nothing else
    training, evaluation = (client.get_run(view.components[name]).data for name in ("Training", "Evaluation"))
    assert training.tags["input.val RecordIO"].endswith("data/val.rec")
    assert evaluation.tags["input.test RecordIO"].endswith("data/test.rec")
    assert not any(key.startswith("input.val") for key in evaluation.tags)
    assert "test_map_50" in evaluation.metrics and "val_map_50" not in evaluation.metrics
    headline = json.loads((run_folder(done) / "reports/metrics.json").read_text())
    assert headline["map_50"] == pytest.approx(view.metrics["map_50"])
    assert headline["val_map_50"] == pytest.approx(view.metrics["val_map_50"])
    assert {"map_50_95", "test_map_50", "false_positive_rate_no_ball", "inference_fps"} <= set(headline)
    assert view.metrics["inference_fps"] > 0 and view.metrics["hybridize_speedup"] > 0


def test_evaluation_writes_the_pr_curve_and_the_sensitivity_table_with_the_no_ball_row(trial):
    project, done, view = trial
    plots = run_folder(done) / "reports/plots"
    rows = [row.split(",") for row in (plots / "sensitivity.csv").read_text().splitlines()]
    assert rows[0] == ["attribute", "value", "frames", "map_50", "false_positive_rate"]
    test_frames = json.loads((run_folder(done) / "data/test.frames.json").read_text())
    with_ball = sum(frame["boxes"] > 0 for frame in test_frames)
    assert {r[0] for r in rows[1:]} - {"ball"} <= set(football_frames.ATTRIBUTES)
    camera = [r for r in rows[1:] if r[0] == "camera_distance"]
    assert sum(int(r[2]) for r in camera) == len(test_frames) == view.metrics["frames_test"]
    assert sum(int(r[2]) for r in rows[1:] if r[0] == "occlusion") == with_ball
    # this seed's test split holds frames without a ball: their row reports the false-positive rate
    [(_, _, frames, _, rate)] = [r for r in rows[1:] if r[:2] == ["ball", "none"]]
    assert int(frames) == len(test_frames) - with_ball == view.metrics["frames_test_no_ball"] > 0
    assert float(rate) == pytest.approx(view.metrics["false_positive_rate_no_ball"], abs=1e-5)
    assert "test mAP@0.5" in done.stdout and "camera_distance" in done.stdout
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
    model = Detector(input_size=96, epochs=3, batch_size=4, resume=str(checkpoint))
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
        lambda n: evaluation.voc_ap_50(evaluation.detect(n, val, augmentation, 96)),
        lambda epoch: ran.append(epoch.epoch),
    )
    assert ran == [3]
    assert [e.epoch for e in history.epochs] == [1, 2, 3]
    assert [e.losses for e in history.epochs[:2]] == [e["losses"] for e in before["epochs"]]


def test_training_fine_tunes_from_a_runs_uri_never_reading_test_and_evaluation_never_reads_val(trial, tmp_path):
    # the post's transfer learning through the command line: the earlier trial's id, as MLflow's UI shows it; the
    # training runs with the test split moved away, the evaluation with val deleted
    project, done, view = trial
    data, models = tmp_path / "data", tmp_path / "models"
    shutil.copytree(run_folder(done) / "data", data)
    held_out = tmp_path / "held_out"
    held_out.mkdir()
    for file in data.glob("test.*"):  # test.rec, .idx, .frames.json
        file.rename(held_out / file.name)
    stage = (*ONE_EPOCH, f"paths.data={data}", f"paths.models={models}", f"paths.reports={tmp_path}")
    uri = f"runs:/{view.run_id}/model/model.params"
    tuned = run_cli(project, *stage, "stage=train", f"model.init_from={uri}")
    assert (models / "model.params").is_file() and not list(data.glob("test.*"))
    copied = re.search(rf"initialised (\d+) parameters \(all\) from model.init_from={re.escape(uri)}", tuned.stdout)
    assert copied and int(copied.group(1)) > 0, tuned.stdout
    assert "from scratch" not in tuned.stdout
    [later] = [t for t in trials_of(project, EXPERIMENT) if t.params.get("model.init_from") == uri]
    assert later.status == "FINISHED" and later.run_id != view.run_id

    for file in held_out.iterdir():
        file.rename(data / file.name)
    for file in data.glob("val.*"):
        file.unlink()
    evaluated = run_cli(project, *stage, "stage=evaluate")
    assert "test mAP@0.5" in evaluated.stdout and (tmp_path / "plots/sensitivity.csv").is_file()


def _ran_on_tiles(project, done, family: str) -> tuple[TrialView, dict]:
    """The family's trial and its saved model.json, once checked: finished, its conf's network trained on the
    48-px tiles (overlap 16) and measured on val and test, its only epoch kept, no library warning printed."""
    [view] = trials_of(project, EXPERIMENT)
    assert view.status == "FINISHED" and view.params["model.network"].startswith(family)
    assert {"val_map_50", "test_map_50", "inference_fps"} <= set(view.metrics)
    assert view.metrics["best_epoch"] == 1
    saved = json.loads((run_folder(done) / "models/model.json").read_text())
    assert (saved["network"], saved["tile_size"], saved["tile_overlap"]) == (view.params["model.network"], 48, 16)
    assert "Warning" not in done.stdout + done.stderr  # e.g. Gluon on the training-only parameters
    return view, saved


def test_yolo3_runs_as_the_readme_gives_it_on_a_manifest_split_by_dataset_group_by(tmp_project_with_store):
    # `mlexp task=object_detection model=yolo3` with the README's time budget: it ends the first of 3 epochs, which
    # is validated and kept. Its frames come split by `dataset.group_by=video-id` (README): grouped by a key of each
    # manifest line, here a game that spans several of the folders the default grouping would use
    project = tmp_project_with_store
    manifest = football_frames.generate(project / "labels", 24, 3, width=96, height=64, frames_per_play=2,
                                        no_ball_fraction=0.0, ball_length=(0.15, 0.2))  # fmt: skip
    lines = [json.loads(line) for line in manifest.read_text().splitlines()]
    games = {line["source-ref"]: f"game-{index % 6}" for index, line in enumerate(lines)}
    manifest.write_text("".join(json.dumps({**line, "video-id": games[line["source-ref"]]}) + "\n" for line in lines))
    done = run_cli(project, "task=object_detection", "model=yolo3", *TINY_TILED_MODEL, "compute.num_threads=1",
                   "model.epochs=3", "model.max_train_seconds=0.001", f"dataset.path={manifest}",
                   f"dataset.image_root={project / 'labels'}", "dataset.group_by=video-id")  # fmt: skip
    view, _ = _ran_on_tiles(project, done, "yolo3")
    assert view.metrics["train_budget_spent"] == 1.0

    data = run_folder(done) / "data"
    sidecars = {name: json.loads((data / f"{name}.frames.json").read_text()) for name in SPLITS}
    groups = {name: {frame["play"] for frame in sidecars[name]} for name in SPLITS}
    assert set().union(*groups.values()) == {f"game-{n}" for n in range(6)}  # the key's values, not the folders
    assert all(not groups[a] & groups[b] for a, b in (("train", "val"), ("train", "test"), ("val", "test")))
    assert all(len(sidecars[name]) >= 4 for name in SPLITS)  # whole games of 4 frames in each split


def test_faster_rcnn_runs_as_the_readme_gives_it_keeping_gluoncvs_proposal_counts(tmp_project_with_store):
    # `mlexp task=object_detection model=faster_rcnn`: its conf composes, trains on tiles and is measured on val and
    # test, keeping GluonCV's proposal counts for its whole-frame inference
    done = run_cli(tmp_project_with_store, "task=object_detection", "model=faster_rcnn",
                   *TINY_TILED_TRIAL_ONE_FRAME_HELD_OUT, "compute.num_threads=1", "model.epochs=1")  # fmt: skip
    view, saved = _ran_on_tiles(tmp_project_with_store, done, "faster_rcnn")
    assert view.metrics["frames_val"] == view.metrics["frames_test"] == 1
    assert view.metrics["train_budget_spent"] == 0.0
    assert saved["options"]["rpn_test_pre_nms"] == 6000 and saved["options"]["num_sample"] == 8
