"""Broadcast-like football frames grouped into plays, written as a SageMaker Ground Truth manifest.

What makes real broadcast footage hard, drawn on purpose: 1280×720 frames where the ball is 1-3 %
of the width (13-38 px), several players whose brown and white helmets, gloves and numbers look
like a ball, yard lines and numbers, a midfield logo, the crowd, a score bug; motion blur on the
ball (and a camera pan on some frames), players covering part of it, balls crossing the frame edge
(the box is clipped to the image) and frames without a ball at all (empty annotations).

Frames come in plays: consecutive frames of one play share the camera, the field position, the
players and a similar ball path, and the source-ref names the play
(`s3://mlexp-football-frames/play-0007/frame-0003.jpg`) as real footage names its video, so
splits can keep a play together. A play's camera sets how hard its frames are, as in real
games: a far camera shows a small ball with little contrast more often than a near one. Each
frame records those characteristics (`frame-attributes`) for the post's sensitivity analysis.
Play p and its frames depend only on (seed, p), so a larger set keeps the plays of a smaller one.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from tqdm import tqdm

from mlexp.data.football_drawing import ATTRIBUTES, BALL_BROWN, NO_BALL, PLAY_ATTRIBUTES, Box, draw_frame, new_play

# drawing lives in football_drawing; what callers read from here is the manifest's vocabulary and the ball's colour
__all__ = ["ATTRIBUTES", "ATTRIBUTES_KEY", "BALL_BROWN", "BUCKET", "LABEL", "MANIFEST", "NO_BALL", "PLAY_ATTRIBUTES"]
__all__ += ["generate", "manifest_line"]

BUCKET = "mlexp-football-frames"
LABEL = "football"
ATTRIBUTES_KEY = "frame-attributes"
MANIFEST = "output.manifest"


def manifest_line(source_ref: str, width: int, height: int, boxes: list[Box], attributes: dict[str, str]) -> dict:
    """A Ground Truth bounding-box output line; `boxes` empty for a frame without a ball."""
    return {
        "source-ref": source_ref,
        LABEL: {
            "image_size": [{"width": width, "height": height, "depth": 3}],
            "annotations": [
                {"class_id": 0, "left": int(x), "top": int(y), "width": int(w), "height": int(h)}
                for x, y, w, h in boxes
            ],
        },
        f"{LABEL}-metadata": {
            "objects": [{"confidence": 1.0} for _ in boxes],
            "class-map": {"0": "football"},
            "type": "groundtruth/object-detection",
            "human-annotated": "no",
            "creation-date": "2020-09-10T00:00:00.000000",
            "job-name": f"labeling-job/{LABEL}",
        },
        ATTRIBUTES_KEY: attributes,
    }


def generate(
    out: Path,
    n_frames: int,
    seed: int,
    width: int = 1280,
    height: int = 720,
    frames_per_play: int = 8,
    no_ball_fraction: float = 0.1,
    ball_length: tuple[float, float] = (0.01, 0.03),
) -> Path:
    """Write `n_frames` JPEG frames under out/play-NNNN/ and their manifest; returns the manifest.

    Source refs are `s3://mlexp-football-frames/play-NNNN/frame-NNNN.jpg`, as a labeling job's
    output would name them, so read them with dataset.image_root=<out>. `ball_length` is the
    ball's length as a share of the frame width (a real broadcast ball: 1-3 % of 1280 px).
    """
    lines = []
    per_play = max(1, frames_per_play)
    plays = math.ceil(n_frames / per_play)
    with tqdm(total=n_frames, desc="drawing frames", unit="frame", disable=None, leave=False) as bar:
        for p in range(plays):
            play = new_play(np.random.default_rng([seed, p]), width, height, ball_length)
            folder = out / f"play-{p:04d}"
            folder.mkdir(parents=True, exist_ok=True)
            for f in range(min(per_play, n_frames - p * per_play)):
                rng = np.random.default_rng([seed, p, f])
                ball = rng.random() >= no_ball_fraction
                image, boxes, attributes = draw_frame(play, rng, width, height, f, ball)
                if ball and not boxes:  # the ball left the frame entirely: a frame without a ball
                    attributes = {**{k: attributes[k] for k in PLAY_ATTRIBUTES}, NO_BALL[0]: NO_BALL[1]}
                name = f"play-{p:04d}/frame-{f:04d}.jpg"
                image.save(out / name, quality=88)
                lines.append(json.dumps(manifest_line(f"s3://{BUCKET}/{name}", width, height, boxes, attributes)))
                bar.update(1)
    out.mkdir(parents=True, exist_ok=True)
    partial = out / f"{MANIFEST}.partial"
    partial.write_text("\n".join(lines) + "\n")
    partial.replace(out / MANIFEST)
    return out / MANIFEST
