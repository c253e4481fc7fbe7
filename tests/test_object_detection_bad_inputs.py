"""A Ground Truth line whose image_size is not its image's own size: the image is skipped and reported, since its
boxes are pixels of another image (they were silently normalised by the wrong size)."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from conftest import run_cli, trials_of
from mlexp.data import football_frames, ground_truth_manifest
from mlexp.data.frame_images import ImageSource
from mlexp.tasks.object_detection import records, splits

SMALL = {"width": 160, "height": 90, "ball_length": (0.06, 0.12)}
REASON = "image_size differs from the image's own size (fix the line's image_size and boxes, or the image)"


def _claim_size(manifest: Path, lines: set[int], width: int, height: int) -> None:
    """Rewrite the image_size of the manifest's `lines` (1-based) as a labeling job of larger frames gives it."""
    rows = [json.loads(text) for text in manifest.read_text().splitlines()]
    for number in lines:
        rows[number - 1]["football"]["image_size"] = [{"width": width, "height": height, "depth": 3}]
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))


def test_an_image_of_another_size_than_its_image_size_is_skipped_naming_the_file_both_sizes_and_the_line(
    tmp_path: Path,
):
    manifest = football_frames.generate(tmp_path / "gen", 6, 3, frames_per_play=3, no_ball_fraction=0.0, **SMALL)
    _claim_size(manifest, {2}, 1280, 720)
    frames, problems = ground_truth_manifest.read([manifest])
    source = ImageSource(tmp_path / "gen", manifest.parent)

    written, _ = records.write(
        frames, ["football"], source, tmp_path / "out/train.rec", problems, splits.plays(frames, "auto")
    )

    assert written == 5
    image = tmp_path / "gen/play-0000/frame-0001.jpg"
    assert problems.summary() == (
        f"1 × {REASON} (first at output.manifest:2 ({image} is 160×90, image_size says 1280×720))"
    )
    kept = json.loads(records.frames_json(tmp_path / "out/train.rec").read_text())
    assert [frame["where"] for frame in kept] == [f"output.manifest:{n}" for n in (1, 3, 4, 5, 6)]
    assert all(frame["size"] == [160, 90] for frame in kept)


def test_a_phone_photo_labelled_as_shown_turned_is_skipped_with_the_way_to_save_it_turned(tmp_path: Path):
    # an EXIF orientation of 6 (turn 90°): the labeling tool showed it 90×160, the network reads 160×90 pixels
    manifest = football_frames.generate(tmp_path / "gen", 6, 3, frames_per_play=3, no_ball_fraction=0.0, **SMALL)
    image = tmp_path / "gen/play-0000/frame-0001.jpg"
    with Image.open(image) as stored:
        exif = stored.getexif()
        exif[0x0112] = 6
        stored.save(image, exif=exif)
    _claim_size(manifest, {2}, 90, 160)
    rows = [json.loads(text) for text in manifest.read_text().splitlines()]
    for annotation in rows[1]["football"]["annotations"]:  # drawn on the turned image: within 90×160
        annotation.update(left=10, top=100, width=8, height=8)
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    frames, problems = ground_truth_manifest.read([manifest])
    source = ImageSource(tmp_path / "gen", manifest.parent)

    written, _ = records.write(
        frames, ["football"], source, tmp_path / "out/train.rec", problems, splits.plays(frames, "auto")
    )

    assert written == 5
    assert problems.summary() == f"1 × {records.TURNED} (first at output.manifest:2 ({image} is 160×90 stored))"


def test_a_manifest_whose_every_image_size_is_wrong_fails_the_trial_in_one_line(tmp_project_with_store: Path):
    project = tmp_project_with_store
    manifest = football_frames.generate(project / "labels", 6, 3, frames_per_play=2, no_ball_fraction=0.0, **SMALL)
    _claim_size(manifest, set(range(1, 7)), 1280, 720)

    done = run_cli(project, "task=object_detection", f"dataset.path={manifest}",
                   f"dataset.image_root={project / 'labels'}", check=False)  # fmt: skip

    assert done.returncode == 1, done.stdout + done.stderr
    [line] = [x for x in done.stderr.splitlines() if x.startswith("mlexp: error:")]
    assert line.startswith(
        f"mlexp: error: stage 'prepare' failed: {manifest}: no readable train or val or test frame with a ball left; "
        f"6 × {REASON} (first at output.manifest:"
    )
    assert "is 160×90, image_size says 1280×720))" in line and "marked FAILED" in line
    [trial] = trials_of(project, "object_detection")
    assert trial.status == "FAILED" and trial.component_names == {"Pre-processing"}
