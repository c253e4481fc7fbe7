"""Ground Truth manifests: bad lines counted, S3 refs resolved, RecordIO round trip, seeded frames."""

from __future__ import annotations

import io
import json
from pathlib import Path

import boto3
import numpy as np
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from mlexp.data import football_frames, ground_truth_manifest
from mlexp.data.frame_images import ImageMissing, ImageSource
from mlexp.errors import DataError

LENGTHS = {"small": [0.05, 0.07], "large": [0.1, 0.13]}


def _line(ref: str = "s3://b/frames/a.jpg", **box: float) -> dict:
    return football_frames.manifest_line(ref, 64, (1, 2, 10, 8), {"contrast": "low"}) | (
        {"football": {"image_size": [{"width": 64, "height": 64}], "annotations": [box]}} if box else {}
    )


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
    ]
    manifest = tmp_path / "output.manifest"
    manifest.write_text("\n".join(lines) + "\n")

    frames, problems = ground_truth_manifest.read([manifest])

    assert [f.source_ref for f in frames] == ["s3://b/frames/a.jpg", "s3://b/clipped.jpg"]
    first = frames[0]
    assert (first.width, first.height, first.attributes) == (64, 64, {"contrast": "low"})
    assert first.boxes == [ground_truth_manifest.Box("football", 1, 2, 10, 8)]
    assert frames[1].boxes[0].width == 4  # clipped at the right edge (64 - 60)
    assert problems.counts == {
        "malformed JSON line": 1,
        "no source-ref": 1,
        "box outside the image or empty": 1,
        "class_id 3 not in the class-map": 1,
        "malformed box (needs class_id, left, top, width, height)": 1,
        "no image_size": 1,
    }
    assert problems.first_seen["malformed JSON line"] == "output.manifest:2"
    assert "1 × no source-ref (first at output.manifest:4)" in problems.summary()


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
        source = ImageSource(None, tmp_path, s3_client=client)
        assert source.read("s3://nfl-frames/week1/play3/0001.jpg") == b"from s3"
        with pytest.raises(ImageMissing, match="s3://nfl-frames/gone.jpg.*NoSuchKey"):
            source.read("s3://nfl-frames/gone.jpg")
        stub.assert_no_pending_responses()


def test_generated_frames_are_deterministic_by_seed_and_carry_every_attribute(tmp_path: Path):
    first = football_frames.generate(tmp_path / "a", 6, 96, 7, LENGTHS)
    again = football_frames.generate(tmp_path / "b", 6, 96, 7, LENGTHS)
    other = football_frames.generate(tmp_path / "c", 6, 96, 8, LENGTHS)
    assert first.read_text() == again.read_text() != other.read_text()
    assert (tmp_path / "a/frames/frame_000005.jpg").read_bytes() == (
        tmp_path / "b/frames/frame_000005.jpg"
    ).read_bytes()
    frames, problems = ground_truth_manifest.read([first])
    assert len(frames) == 6 and not problems.counts
    assert all(set(f.attributes) == set(football_frames.ATTRIBUTES) for f in frames)
    for frame in frames:
        (box,) = frame.boxes
        big = box.width > 96 * 0.07 or box.height > 96 * 0.07
        assert big == (frame.attributes["size"] == "large")
        assert (box.height > box.width) == (frame.attributes["aspect_ratio"] == "tall")


def test_recordio_round_trip_keeps_labels_identical_and_counts_missing_images(tmp_path: Path):
    from gluoncv.data import RecordFileDetection

    from mlexp.tasks.object_detection import records

    manifest = football_frames.generate(tmp_path / "gen", 5, 80, 3, LENGTHS)
    (tmp_path / "gen/frames/frame_000002.jpg").unlink()
    frames, problems = ground_truth_manifest.read([manifest])
    source = ImageSource(tmp_path / "gen", manifest.parent)

    written = records.write(frames, ["football"], source, tmp_path / "out" / "val.rec", problems)

    kept = [f for f in frames if not f.source_ref.endswith("frame_000002.jpg")]
    assert written == 4
    assert problems.counts == {"image missing": 1}
    assert "manifest:3" in problems.first_seen["image missing"]
    labels = records.read_labels(tmp_path / "out" / "val.rec")
    assert all(
        np.array_equal(got, records.packed_label(f, ["football"])[2:].reshape(-1, 5)) for got, f in zip(labels, kept)
    )
    dataset = RecordFileDetection(str(tmp_path / "out" / "val.rec"))
    image, label = dataset[0]
    box = kept[0].boxes[0]
    assert image.shape == (80, 80, 3)
    np.testing.assert_allclose(label[0], [box.left, box.top, box.left + box.width, box.top + box.height, 0], atol=1e-4)
    sidecar = json.loads(records.frames_json(tmp_path / "out" / "val.rec").read_text())
    assert [s["source_ref"] for s in sidecar] == [f.source_ref for f in kept]
    assert not list((tmp_path / "out").glob("*.partial"))
