"""Train / validation / test splits that keep every frame of a play in one split.

Consecutive frames of one play look almost alike: split frame by frame, the validation and test
frames would have near-copies in training and their mAP would flatter the detector. Frames are
therefore grouped — by the play or video folder of their source-ref (`.../play-0007/frame-0003.jpg`,
`.../57583_000082_Endzone/0001.jpg`), by the frame-number-free part of the file name when the
folders are too few (`57583_000082_Endzone_frame0001.jpg`), or by a manifest key
(`dataset.group_by=<key>`) — and whole groups are dealt to test, validation and training.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import PurePosixPath

import numpy as np

from mlexp.config.constraints import leave_a_training_share
from mlexp.data.ground_truth_manifest import Frame
from mlexp.errors import ConfigError, DataError

AUTO = "auto"
SPLITS = ("train", "val", "test")
# a file name's trailing frame number: "frame-0003", "_000123", "frame12"
FRAME_NUMBER = re.compile(r"[-_. ]*(frame|img|image)?[-_. ]*\d+$", re.IGNORECASE)


def _path(source_ref: str) -> PurePosixPath:
    return PurePosixPath(source_ref.split("://", 1)[-1])


def plays(frames: list[Frame], group_by: str) -> list[str]:
    """Each frame's play: its group_by value; auto: its folder, else its file name without the frame number,
    whichever makes at least three groups (one per split), else the frame itself (split one by one)."""
    if group_by != AUTO:
        return [str(f.group) for f in frames]
    folders = [str(_path(f.source_ref).parent) for f in frames]
    stems = [FRAME_NUMBER.sub("", _path(f.source_ref).stem) for f in frames]
    named = [f"{folder}/{stem}" if stem else folder for folder, stem in zip(folders, stems)]
    for candidate in (folders, named):
        if len(set(candidate)) >= len(SPLITS):
            return candidate
    return [f.source_ref for f in frames]


def split(
    frames: list[Frame], plays_of_frames: list[str], val_fraction: float, test_fraction: float, seed: int
) -> dict[str, list[int]]:
    """Frame indices per split: whole plays, shuffled by seed, dealt to test and val until each is nearest its share.

    DataError naming the counts when there are too few plays (or frames with a ball) for three splits.
    """
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0 < value < 1:
            raise ConfigError(f"dataset.{name}={value} must be between 0 and 1 (e.g. 0.15)")
    if not leave_a_training_share(val_fraction, test_fraction):
        raise ConfigError(
            f"dataset.val_fraction={val_fraction} + dataset.test_fraction={test_fraction} leave no frame for training;"
            " keep their sum below 1 (defaults 0.15 + 0.15)"
        )
    members: dict[str, list[int]] = defaultdict(list)
    for index, play in enumerate(plays_of_frames):
        members[play].append(index)
    order = [list(members)[i] for i in np.random.default_rng(seed).permutation(len(members))]
    total = len(frames)
    chosen: dict[str, list[int]] = {name: [] for name in SPLITS}
    remaining = order
    for name, share in (("test", test_fraction), ("val", val_fraction)):
        target, rest = share * total, []
        for play in remaining:
            now, group = len(chosen[name]), members[play]
            # take a play while it brings the split nearer its share (always the first: no split stays empty)
            if not chosen[name] or abs(now + len(group) - target) < abs(now - target):
                chosen[name].extend(group)
            else:
                rest.append(play)
        remaining = rest
    chosen["train"] = [i for play in remaining for i in members[play]]
    with_ball = {name: sum(bool(frames[i].boxes) for i in chosen[name]) for name in SPLITS}
    if any(not chosen[name] or not with_ball[name] for name in SPLITS):
        counts = ", ".join(f"{name} {len(chosen[name])} ({with_ball[name]} with a ball)" for name in SPLITS)
        raise DataError(
            f"{total} frames in {len(members)} plays cannot make train, val and test splits that each hold a ball "
            f"(got {counts} at dataset.val_fraction={val_fraction}, dataset.test_fraction={test_fraction}): "
            "label more plays, or group differently with dataset.group_by"
        )
    return {name: sorted(chosen[name]) for name in SPLITS}
