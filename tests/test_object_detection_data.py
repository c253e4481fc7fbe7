"""Ground Truth manifests (bad lines counted, negatives kept, boxes clipped on every side), S3 refs, RecordIO with
frames without a ball, the seeded broadcast-like generator, and splits that keep a play in one split."""

from __future__ import annotations

import io
import json
from pathlib import Path

import boto3
import numpy as np
import pytest
from botocore.config import Config
from botocore.response import StreamingBody
from botocore.stub import Stubber

from mlexp.data import football_frames, ground_truth_manifest
from mlexp.data.frame_images import ImageMissing, ImageSource
from mlexp.errors import ConfigError, DataError
from mlexp.tasks.object_detection import splits

# tiny frames for speed; the ball a larger share of them so it stays a few pixels
SMALL = {"width": 160, "height": 90, "ball_length": (0.06, 0.12)}


def _line(ref: str = "s3://b/frames/a.jpg", **box: float) -> dict:
    return football_frames.manifest_line(ref, 64, 64, [(1, 2, 10, 8)], {"contrast": "low"}) | (
        {"football": {"image_size": [{"width": 64, "height": 64}], "annotations": [box]}} if box else {}
    )


def _negative(ref: str) -> dict:
    return football_frames.manifest_line(ref, 64, 48, [], {"camera_angle": "sideline"})


def test_manifest_lines_that_are_malformed_are_counted_and_skipped(tmp_path: Path):
    good = _line()
    lines = [
        json.dumps(good),
        "{not json",
        "",
        json.dumps({k: v for k, v in good.items() if k != "source-ref"}),
        json.dumps(_line(class_id=0, left=60, top=10, width=20, height=10) | {"source-ref": "s3://b/clipped.jpg"}),
        json.dumps(_line(class_id=0, left=70, top=10, width=5, height=5)),
        json.dumps(_line(class_id=3, left=1, top=1, width=5, height=5)),
        json.dumps(_line(class_id=0, left=1, top=1)),
        json.dumps({"source-ref": "s3://b/c.jpg", "football": {"annotations": []}, "football-metadata": {}}),
        # valid JSON that is not an object: counted, not a crash
        "[1, 2]",
        '"text"',
        "42",
        "null",
        # objects inside the line that are not objects
        json.dumps(good | {"football-metadata": [1], "source-ref": "s3://b/bad-metadata.jpg"}),
        json.dumps(good | {"frame-attributes": ["far"], "source-ref": "s3://b/bad-attributes.jpg"}),
        json.dumps(_line(class_id=0, left=float("nan"), top=1, width=5, height=5)),
    ]
    manifest = tmp_path / "output.manifest"
    manifest.write_text("\n".join(lines) + "\n")

    frames, problems = ground_truth_manifest.read([manifest])

    assert [f.source_ref for f in frames] == ["s3://b/frames/a.jpg", "s3://b/clipped.jpg", "s3://b/bad-attributes.jpg"]
    first = frames[0]
    assert (first.width, first.height, first.attributes) == (64, 64, {"contrast": "low"})
    assert first.boxes == [ground_truth_manifest.Box("football", 1, 2, 10, 8)]
    assert frames[1].boxes[0].width == 4  # clipped at the right edge (64 - 60)
    assert frames[2].attributes == {}  # attributes that are not an object are ignored, the box is kept
    assert problems.counts == {
        "malformed JSON line": 1,
        "line is not a JSON object": 4,
        "no source-ref": 1,
        "box outside the image or empty": 1,
        "class_id 3 not in the class-map": 1,
        "no bounding-box label attribute (auto)": 1,  # metadata [1]: no object-detection label found
        "malformed box (needs class_id, left, top, width, height)": 2,
        "no image_size": 1,
    }
    assert problems.first_seen["line is not a JSON object"] == "output.manifest:10"
    assert problems.first_seen["malformed JSON line"] == "output.manifest:2"
    assert "1 × no source-ref (first at output.manifest:4)" in problems.summary()


def test_a_box_crossing_the_left_or_top_edge_is_clipped_to_the_image(tmp_path: Path):
    manifest = tmp_path / "edges.manifest"
    rows = [
        _line("s3://b/left.jpg", class_id=0, left=-5, top=20, width=10, height=8),
        _line("s3://b/top.jpg", class_id=0, left=20, top=-3, width=9, height=8),
        _line("s3://b/corner.jpg", class_id=0, left=-2.5, top=-4, width=6, height=10),
        _line("s3://b/gone.jpg", class_id=0, left=-12, top=5, width=10, height=8),
    ]
    manifest.write_text("\n".join(json.dumps(r) for r in rows) + "\n")

    frames, problems = ground_truth_manifest.read([manifest])

    box = ground_truth_manifest.Box
    assert [f.boxes for f in frames] == [
        [box("football", 0, 20, 5, 8)],
        [box("football", 20, 0, 9, 5)],
        [box("football", 0, 0, 3.5, 6)],
    ]
    assert problems.counts == {"box outside the image or empty": 1}


def test_frames_without_a_ball_are_kept_as_negatives(tmp_path: Path):
    manifest = tmp_path / "negatives.manifest"
    manifest.write_text(
        "\n".join(json.dumps(r) for r in (_line(), _negative("s3://b/empty.jpg"), _line("s3://b/c.jpg"))) + "\n"
    )

    frames, problems = ground_truth_manifest.read([manifest])

    assert [(f.source_ref, len(f.boxes)) for f in frames] == [
        ("s3://b/frames/a.jpg", 1),
        ("s3://b/empty.jpg", 0),
        ("s3://b/c.jpg", 1),
    ]
    assert (frames[1].width, frames[1].height, frames[1].attributes) == (64, 48, {"camera_angle": "sideline"})
    assert not problems.counts


def test_a_manifest_without_any_usable_frame_fails_naming_the_file_and_the_reasons(tmp_path: Path):
    manifest = tmp_path / "broken.manifest"
    manifest.write_text("{oops\n" + json.dumps({"source-ref": "x.jpg"}) + "\n")
    with pytest.raises(DataError, match=r"broken.manifest: no usable frame; 1 × malformed JSON line"):
        ground_truth_manifest.read([manifest])


def test_s3_refs_read_from_image_root_when_set_else_from_s3(tmp_path: Path):
    (tmp_path / "frames").mkdir()
    (tmp_path / "frames" / "a.jpg").write_bytes(b"local copy")
    assert ImageSource(tmp_path, tmp_path).read("s3://bucket/frames/a.jpg") == b"local copy"
    assert ImageSource(None, tmp_path).read("frames/a.jpg") == b"local copy"  # relative to the manifest
    with pytest.raises(ImageMissing, match="frames/b.jpg"):
        ImageSource(tmp_path, tmp_path).read("s3://bucket/frames/b.jpg")

    client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    with Stubber(client) as stub:
        body = StreamingBody(io.BytesIO(b"from s3"), len(b"from s3"))
        stub.add_response("get_object", {"Body": body}, {"Bucket": "nfl-frames", "Key": "week1/play3/0001.jpg"})
        stub.add_client_error("get_object", "NoSuchKey", expected_params={"Bucket": "nfl-frames", "Key": "gone.jpg"})
        stub.add_client_error("get_object", "ExpiredToken", expected_params={"Bucket": "nfl-frames", "Key": "a.jpg"})
        source = ImageSource(None, tmp_path, s3_client=client)
        assert source.read("s3://nfl-frames/week1/play3/0001.jpg") == b"from s3"
        with pytest.raises(ImageMissing, match="s3://nfl-frames/gone.jpg.*NoSuchKey") as gone:
            source.read("s3://nfl-frames/gone.jpg")
        assert "image_root" not in str(gone.value)  # S3 answered: the object is not there
        with pytest.raises(ImageMissing, match=r"ExpiredToken.*dataset.image_root=<its folder>"):  # these credentials
            source.read("s3://nfl-frames/a.jpg")
        stub.assert_no_pending_responses()
    # S3 out of reach (offline, here a closed port): it did not say how to read the images without it
    unreachable = boto3.client(
        "s3", endpoint_url="http://127.0.0.1:9", region_name="us-east-1", aws_access_key_id="x",
        aws_secret_access_key="y", config=Config(retries={"total_max_attempts": 1}),
    )  # fmt: skip
    with pytest.raises(
        ImageMissing, match=r"s3://nfl-frames/a.jpg: Could not connect.*dataset.image_root=<its folder>"
    ):
        ImageSource(None, tmp_path, s3_client=unreachable).read("s3://nfl-frames/a.jpg")


def test_generated_frames_are_deterministic_by_seed_grouped_in_plays_and_carry_the_attributes(tmp_path: Path):
    first = football_frames.generate(tmp_path / "a", 12, 7, frames_per_play=4, **SMALL)
    again = football_frames.generate(tmp_path / "b", 12, 7, frames_per_play=4, **SMALL)
    other = football_frames.generate(tmp_path / "c", 12, 8, frames_per_play=4, **SMALL)
    assert first.read_text() == again.read_text() != other.read_text()
    name = "play-0002/frame-0003.jpg"
    assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    frames, problems = ground_truth_manifest.read([first])
    assert len(frames) == 12 and not problems.counts
    assert [f.source_ref for f in frames[:5]] == [
        f"s3://{football_frames.BUCKET}/play-000{p}/frame-000{f}.jpg"
        for p, f in ((0, 0), (0, 1), (0, 2), (0, 3), (1, 0))
    ]
    for play in range(3):  # a play's frames share its camera
        cameras = {
            tuple(f.attributes[k] for k in football_frames.PLAY_ATTRIBUTES) for f in frames[4 * play : 4 * play + 4]
        }
        assert len(cameras) == 1
    for frame in frames:
        assert (frame.width, frame.height) == (160, 90)
        if frame.boxes:
            assert set(frame.attributes) == set(football_frames.ATTRIBUTES)
            (box,) = frame.boxes
            assert box.left >= 0 and box.top >= 0 and box.left + box.width <= 160 and box.top + box.height <= 90
            assert (box.height > box.width) == (frame.attributes["aspect_ratio"] == "tall")
        else:
            assert frame.attributes["ball"] == "none"


def test_generated_frames_are_broadcast_sized_with_a_1_to_3_percent_ball_and_correlated_difficulty(tmp_path: Path):
    broadcast = football_frames.generate(tmp_path / "hd", 3, 1, frames_per_play=3, no_ball_fraction=0.0)
    frames, _ = ground_truth_manifest.read([broadcast])
    for frame in frames:
        assert (frame.width, frame.height) == (1280, 720)
        inside = [b for b in frame.boxes if b.left > 0 and b.top > 0 and b.left + b.width < 1280]
        assert all(10 <= max(b.width, b.height) <= 40 for b in inside)  # ~13-38 px: 1-3 % of 1280 px

    many = football_frames.generate(tmp_path / "many", 320, 3, no_ball_fraction=0.25, **{**SMALL, "width": 96})
    frames, _ = ground_truth_manifest.read([many])
    with_ball = [f for f in frames if f.boxes]
    assert 0.15 < 1 - len(with_ball) / len(frames) < 0.4  # frames without a ball: ~ no_ball_fraction

    def share(value: tuple[str, str], distance: str) -> float:
        chosen = [f for f in with_ball if f.attributes["camera_distance"] == distance]
        return sum(f.attributes[value[0]] == value[1] for f in chosen) / len(chosen)

    # a far camera: a small ball with low contrast more often than a near one
    assert share(("size", "small"), "far") > share(("size", "small"), "near") + 0.3
    assert share(("contrast", "low"), "far") > share(("contrast", "low"), "near") + 0.15
    # balls crossing the frame edge exist and keep a clipped box
    assert any(b.left == 0 or b.top == 0 or b.left + b.width == 96 for f in with_ball for b in f.boxes)


def test_recordio_round_trip_keeps_labels_and_frames_without_a_ball(tmp_path: Path):
    from gluoncv.data import RecordFileDetection

    from mlexp.tasks.object_detection import records

    manifest = football_frames.generate(tmp_path / "gen", 8, 3, frames_per_play=3, no_ball_fraction=0.3, **SMALL)
    (tmp_path / "gen/play-0000/frame-0002.jpg").unlink()
    frames, problems = ground_truth_manifest.read([manifest])
    source = ImageSource(tmp_path / "gen", manifest.parent)
    plays = splits.plays(frames, "auto")

    written, negatives = records.write(frames, ["football"], source, tmp_path / "out" / "val.rec", problems, plays)

    kept = [f for f in frames if not f.source_ref.endswith("play-0000/frame-0002.jpg")]
    assert written == 7 and negatives == sum(not f.boxes for f in kept) >= 1
    assert problems.counts == {"image missing": 1}
    assert "manifest:3" in problems.first_seen["image missing"]
    labels = records.read_labels(tmp_path / "out" / "val.rec")
    for got, frame in zip(labels, kept):
        assert np.array_equal(got, records.packed_label(frame, ["football"])[2:].reshape(-1, 5))
        assert len(records.boxes(got)) == len(frame.boxes)  # the placeholder of a frame without a ball is dropped
    dataset = RecordFileDetection(str(tmp_path / "out" / "val.rec"))
    first_ball = next(i for i, f in enumerate(kept) if f.boxes)
    image, label = dataset[first_ball]
    box = kept[first_ball].boxes[0]
    assert image.shape == (90, 160, 3)
    np.testing.assert_allclose(label[0], [box.left, box.top, box.left + box.width, box.top + box.height, 0], atol=1e-3)
    empty = next(i for i, f in enumerate(kept) if not f.boxes)
    assert len(records.boxes(dataset[empty][1], class_column=4)) == 0  # GluonCV reads it; no ball in it
    sidecar = json.loads(records.frames_json(tmp_path / "out" / "val.rec").read_text())
    assert [s["source_ref"] for s in sidecar] == [f.source_ref for f in kept]
    assert [s["play"] for s in sidecar][:3] == ["mlexp-football-frames/play-0000"] * 2 + [
        "mlexp-football-frames/play-0001"
    ]
    assert sidecar[empty]["attributes"]["ball"] == "none" and sidecar[empty]["boxes"] == 0
    sizes = records.box_sizes(tmp_path / "out" / "val.rec", 100)
    assert sizes.shape == (written - negatives, 2)
    np.testing.assert_allclose(sizes[0], [box.width / 160 * 100, box.height / 90 * 100], rtol=1e-4)
    assert not list((tmp_path / "out").glob("*.partial"))


def _frames(refs: list[str], boxes: int = 1) -> list[ground_truth_manifest.Frame]:
    ball = [ground_truth_manifest.Box("football", 1, 1, 5, 5)] * boxes
    return [ground_truth_manifest.Frame(r, 64, 64, list(ball), {}, f"m:{i}") for i, r in enumerate(refs)]


def test_plays_come_from_the_folder_the_file_name_or_a_manifest_key(tmp_path: Path):
    by_folder = _frames(["s3://b/play-0001/frame-0001.jpg", "s3://b/play-0001/frame-0002.jpg", "s3://b/play-2/x.jpg"])
    by_folder += _frames(["/local/play-3/frame-0001.jpg"])
    assert splits.plays(by_folder, "auto") == ["b/play-0001", "b/play-0001", "b/play-2", "/local/play-3"]
    # two videos cannot make three splits: frames are split one by one (prepare prints a notice)
    assert splits.plays(by_folder[:3], "auto") == [f.source_ref for f in by_folder[:3]]
    flat = _frames(["s3://b/f/57583_000082_Endzone_frame0001.jpg", "s3://b/f/57583_000082_Endzone_frame0002.jpg"])
    flat += _frames(["s3://b/f/57583_000099_Sideline-0007.jpg", "s3://b/f/0001.jpg", "s3://b/f/0002.jpg"])
    assert splits.plays(flat, "auto") == [
        "b/f/57583_000082_Endzone",
        "b/f/57583_000082_Endzone",
        "b/f/57583_000099_Sideline",
        "b/f",  # nothing but a frame number: the folder
        "b/f",
    ]
    # one video in one folder: too few plays for three splits, so frames are split one by one
    one_video = _frames([f"/data/clip/clip_{i:04d}.jpg" for i in range(4)])
    assert splits.plays(one_video, "auto") == [f.source_ref for f in one_video]

    manifest = tmp_path / "keyed.manifest"
    lines = [_line(f"s3://b/f/{i}.jpg") | {"video-id": f"game-{i // 2}"} for i in range(4)]
    lines[3]["frame-attributes"] = {"video-id": "game-9"}
    del lines[3]["video-id"]
    lines.append(_line("s3://b/f/untagged.jpg"))
    manifest.write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    frames, problems = ground_truth_manifest.read([manifest], group_by="video-id")
    assert splits.plays(frames, "video-id") == ["game-0", "game-0", "game-1", "game-9"]
    assert problems.counts == {"no video-id to group frames by (dataset.group_by)": 1}


def test_splits_keep_every_play_in_one_split_near_the_fractions_and_follow_the_seed(tmp_path: Path):
    refs = [f"s3://b/play-{p:03d}/frame-{f}.jpg" for p in range(40) for f in range(int(3 + p % 5))]
    frames = _frames(refs)
    plays = splits.plays(frames, "auto")

    chosen = splits.split(frames, plays, 0.15, 0.2, seed=1)

    assert sorted(i for part in chosen.values() for i in part) == list(range(len(frames)))
    owners: dict[str, set[str]] = {}
    for name, indices in chosen.items():
        for i in indices:
            owners.setdefault(plays[i], set()).add(name)
    assert all(len(names) == 1 for names in owners.values())  # no play in two splits
    assert abs(len(chosen["val"]) - 0.15 * len(frames)) <= 7 and abs(len(chosen["test"]) - 0.2 * len(frames)) <= 7
    assert chosen == splits.split(frames, plays, 0.15, 0.2, seed=1) != splits.split(frames, plays, 0.15, 0.2, seed=2)


def test_too_few_plays_for_three_splits_is_one_clear_error():
    frames = _frames([f"s3://b/play-{p}/frame-{f}.jpg" for p in range(2) for f in range(5)])
    two_plays = [f"play-{p}" for p in range(2) for _ in range(5)]  # e.g. dataset.group_by=<a key with 2 values>
    with pytest.raises(DataError, match=r"10 frames in 2 plays cannot make train, val and test splits.*train 0"):
        splits.split(frames, two_plays, 0.15, 0.15, seed=0)
    with_ball = _frames([f"s3://b/play-{p}/frame.jpg" for p in range(2)]) + _frames(["s3://b/play-3/x.jpg"], boxes=0)
    with pytest.raises(DataError, match=r"3 frames in 3 plays .*\(0 with a ball\)"):
        splits.split(with_ball, splits.plays(with_ball, "auto"), 0.3, 0.3, seed=0)
    with pytest.raises(ConfigError, match=r"dataset.val_fraction=0.6 \+ dataset.test_fraction=0.5 leave no frame"):
        splits.split(frames, splits.plays(frames, "auto"), 0.6, 0.5, seed=0)


def test_generated_frames_hold_look_alikes_a_score_bug_and_covered_balls(tmp_path: Path):
    from PIL import Image

    width, height = 320, 180
    manifest = football_frames.generate(
        tmp_path, 48, 0, width=width, height=height, frames_per_play=6, no_ball_fraction=0.3
    )
    lines = [json.loads(line) for line in manifest.read_text().splitlines()]

    def pixels(line: dict) -> np.ndarray:
        name = line["source-ref"].split(f"{football_frames.BUCKET}/")[1]
        return np.asarray(Image.open(tmp_path / name).convert("RGB"), dtype=np.float32)

    def ball_brown(image: np.ndarray) -> np.ndarray:
        return np.linalg.norm(image - football_frames.BALL_BROWN, axis=2) < 40

    no_ball = [line for line in lines if not line[football_frames.LABEL]["annotations"]]
    assert len(no_ball) >= 5
    # the field: below the stands (random crowd colours) and above the score bug (its team tile is brown too)
    field = slice(int(height * 0.2), int(height * 0.86))
    # helmets and the midfield logo: ball-brown clusters on the field in frames without any ball
    with_look_alikes = [line for line in no_ball if ball_brown(pixels(line)[field]).sum() >= 10]
    assert len(with_look_alikes) >= len(no_ball) // 2
    # the score bug along the bottom is a dark graphic, not grass
    image = pixels(lines[0])
    bug = image[int(height * 0.9) : int(height * 0.95), int(width * 0.3) : int(width * 0.8)].mean(axis=(0, 1))
    grass = np.median(image[int(height * 0.4) : int(height * 0.8)].reshape(-1, 3), axis=0)
    assert grass[1] > grass[0] and grass[1] > grass[2] and bug[1] < grass[1] - 40
    # players cover some balls, others are seen whole; some lose contrast against what is around them
    attributes = [line[football_frames.ATTRIBUTES_KEY] for line in lines if line[football_frames.LABEL]["annotations"]]
    assert {a["occlusion"] for a in attributes} == {"high", "low"}
    assert {a["contrast"] for a in attributes} == {"high", "low"}


def test_a_missing_image_root_or_init_from_fails_naming_it(tmp_path: Path):
    from omegaconf import OmegaConf

    from mlexp.tasks.object_detection import stages
    from mlexp.tasks.object_detection.config import Detector

    manifest = football_frames.generate(tmp_path / "labels", 3, 0, **SMALL)
    missing = tmp_path / "no-such-folder"
    cfg = OmegaConf.create({"dataset": {"path": str(manifest), "image_root": str(missing)}})
    with pytest.raises(ConfigError, match=f"dataset.image_root={missing}: no such folder"):
        stages._manifests(cfg, tmp_path / "data")
    cfg.dataset.image_root = str(tmp_path / "labels")
    assert stages._manifests(cfg, tmp_path / "data") == ([manifest], tmp_path / "labels")

    with pytest.raises(ConfigError, match=r"model.init_from=.*previous.params is not a file"):
        stages._check_init_from(Detector(init_from=str(tmp_path / "previous.params")))
    (tmp_path / "previous.params").write_bytes(b"")
    stages._check_init_from(Detector(init_from=str(tmp_path / "previous.params")))
    stages._check_init_from(Detector(init_from="runs:/0123abcd/model/model.params"))  # resolved when training


def test_init_from_a_trials_name_is_told_its_run_id(tmp_path: Path, empty_store: Path):
    # `mlexp compare` lists trials by name; runs:/<name>/... said only "no run <name>", after prepare had run
    from mlflow.tracking import MlflowClient

    from conftest import seed_store
    from mlexp.tasks.object_detection.init_from import _download

    uri = f"sqlite:///{seed_store(tmp_path, empty_store)}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("object_detection", artifact_location=(tmp_path / "artifacts").as_uri())
    (tmp_path / "model.params").write_bytes(b"weights")
    run = client.create_run(experiment, run_name="object_detection-20261207-0844", tags={"mlexp.kind": "trial"})
    client.log_artifact(
        run.info.run_id, str(tmp_path / "model.params"), "model"
    )  # only a trial with weights is offered
    client.set_terminated(run.info.run_id)
    with pytest.raises(ConfigError, match=r"object_detection-20261207-0844 is a trial's name, runs:/ takes its run id: "
                       rf"model.init_from=runs:/{run.info.run_id}/model/model.params \("):  # fmt: skip
        _download("runs:/object_detection-20261207-0844/model/model.params", client, tmp_path)
    with pytest.raises(ConfigError, match=r"no run nosuch in the tracking store; runs:/ takes a run id \(the MLflow"):
        _download("runs:/nosuch/model/model.params", client, tmp_path)
    # a component's name is no trial's; a name two trials share lists both
    client.create_run(run.info.experiment_id, run_name="Training")
    with pytest.raises(ConfigError, match=r"no run Training in the tracking store"):
        _download("runs:/Training/model/model.params", client, tmp_path)
    runs = [client.create_run(run.info.experiment_id, run_name="dup", tags={"mlexp.kind": "trial"}) for _ in "ab"]
    for finished in runs:
        client.log_artifact(finished.info.run_id, str(tmp_path / "model.params"), "model")
        client.set_terminated(finished.info.run_id)
    with pytest.raises(
        ConfigError, match=r"dup names 2 trials: model.init_from=runs:/<run id>/model/model.params with one of "
    ) as shared:
        _download("runs:/dup/model/model.params", client, tmp_path)
    assert all(r.info.run_id in str(shared.value) for r in runs)


def test_deploy_source_a_trials_name_is_told_its_run_id(tmp_project_with_store: Path):
    # deploy.source=<the name compare lists> said only "no trial run with a trained model has this id"
    from mlflow.tracking import MlflowClient

    from conftest import run_cli

    client = MlflowClient(f"sqlite:///{tmp_project_with_store / 'mlflow.db'}")
    serve = ("task=object_detection", "stage=deploy", "deploy=local", "deploy.port=0")

    def refusal(name: str) -> str:
        done = run_cli(tmp_project_with_store, *serve, f"deploy.source={name}", check=False)
        [line] = done.stderr.strip().splitlines()
        assert done.returncode != 0 and line.startswith(f"mlexp: error: stage 'deploy' failed: deploy.source={name}: ")
        return line.removeprefix(f"mlexp: error: stage 'deploy' failed: deploy.source={name}: ").split(" (trial ")[0]

    trials = {}
    for experiment, name, status in (
        ("object_detection", "object_detection-20261207-1057", "FINISHED"),
        ("object_detection", "object_detection-20261207-1058", "FAILED"),
        ("od_v2", "object_detection-20261207-1059", "FINISHED"),  # read with tracking.experiment_name=od_v2
    ):
        experiment_id = (client.get_experiment_by_name(experiment) or client.get_experiment(
            client.create_experiment(experiment))).experiment_id  # fmt: skip
        trial = client.create_run(experiment_id, run_name=name, tags={"mlexp.kind": "trial"})
        client.set_terminated(trial.info.run_id, status)
        trials[name] = trial.info.run_id
    assert refusal("object_detection-20261207-1057") == (
        "object_detection-20261207-1057 is a trial's name, deploy.source takes its run id: "
        f"deploy.source={trials['object_detection-20261207-1057']}"
    )
    assert refusal("object_detection-20261207-1058") == (
        "object_detection-20261207-1058 is a trial's name, but it ended FAILED: give a finished object_detection "
        "trial's run id"
    )  # its run id would fail the same way: it saved no model
    assert refusal("object_detection-20261207-1059") == (
        "object_detection-20261207-1059 is a trial of experiment 'od_v2', which the deploy stage reads with "
        f"tracking.experiment_name=od_v2 deploy.source={trials['object_detection-20261207-1059']}"
    )
    assert refusal("nosuch").startswith("no trial run with a trained model has this id")


def test_a_wrong_init_from_run_is_refused_before_prepare_converts_any_frame(tmp_project_with_store: Path):
    # runs:/<typo> failed in the train stage, after prepare had converted every frame
    from mlflow.tracking import MlflowClient

    from conftest import run_cli

    client = MlflowClient(f"sqlite:///{tmp_project_with_store / 'mlflow.db'}")
    weights = tmp_project_with_store / "weights"
    experiment = client.create_experiment("object_detection", artifact_location=weights.as_uri())
    trial = client.create_run(experiment, run_name="object_detection-20261207-1101", tags={"mlexp.kind": "trial"})
    weights.mkdir()
    (weights / "model.params").write_bytes(b"weights")
    client.log_artifact(trial.info.run_id, str(weights / "model.params"), "model")  # a trial whose name is offered
    client.set_terminated(trial.info.run_id)
    name = "runs:/object_detection-20261207-1101/model/model.params"
    for given, said in [
        (name, f"is a trial's name, runs:/ takes its run id: model.init_from=runs:/{trial.info.run_id}/model/"),
        ("runs:/nosuch/model/model.params", "no run nosuch in the tracking store; runs:/ takes a run id"),
        (f"runs:/{trial.info.run_id}/model/typo.params", f"run {trial.info.run_id} (nor its train component) has no"),
    ]:
        done = run_cli(tmp_project_with_store, "task=object_detection", f"model.init_from={given}", check=False)
        [line] = done.stderr.strip().splitlines()
        assert done.returncode == 2 and line.startswith(f"mlexp: error: model.init_from={given}: ") and said in line
    assert [r.info.run_id for r in client.search_runs([experiment])] == [trial.info.run_id]  # no trial, no component
    assert not list(tmp_project_with_store.glob("outputs/object_detection/*/data"))  # no prepare output either


def test_a_server_that_does_not_answer_before_the_trial_leaves_init_from_to_the_train_stage(tmp_path: Path):
    # no verdict is no refusal: the train stage asks the store again and says what it answers then
    import socket

    from mlexp.tasks.object_detection.init_from_run import problem

    with socket.socket() as closed:  # a loopback port nothing listens on
        closed.bind(("127.0.0.1", 0))
        uri = f"http://127.0.0.1:{closed.getsockname()[1]}"
    assert problem("runs:/0123abcd/model/model.params", uri, str(tmp_path), "local", None) is None
