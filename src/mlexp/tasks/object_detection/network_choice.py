"""Which GluonCV detector model.network names (a `*_custom` zoo network of a family), checked before any work, and
whether a saved checkpoint was trained as that network."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gluoncv import model_zoo

from mlexp.errors import ConfigError
from mlexp.tasks.object_detection.config import Detector
from mlexp.tasks.object_detection.config_rules import tiles_advance

FAMILIES = {"ssd": "ssd_", "yolo3": "yolo3_", "faster_rcnn": "faster_rcnn_"}
# smallest model.tile_size: a smaller tile holds hardly a ball and its overlap (and catches tile_size=1 typos)
MIN_TILE = 16


def zoo_networks() -> list[str]:
    return sorted(n for n in model_zoo.get_model_list() if n.endswith("_custom") and family_of(n))


def family_of(network: str) -> str | None:
    return next((family for family, prefix in FAMILIES.items() if network.startswith(prefix)), None)


def check(model: Detector, option: str | None = None) -> str:
    """The network's family; ConfigError naming the valid networks when the name is not one, or for tiles
    that would not advance."""
    family = family_of(model.network)
    valid = [n for n in zoo_networks() if option is None or family_of(n) == option]
    if model.network not in valid:
        raise ConfigError(
            f"model.network={model.network!r} is not a GluonCV *_custom detector; choose one of: {', '.join(valid)}"
        )
    assert family is not None
    if model.tile_size is not None and model.tile_size < MIN_TILE:
        raise ConfigError(
            f"model.tile_size={model.tile_size} must be null (the whole frame) or at least {MIN_TILE} frame pixels"
        )
    if not tiles_advance(model.tile_size, model.tile_overlap):
        raise ConfigError(
            f"model.tile_overlap={model.tile_overlap} must be at least 0 and below model.tile_size={model.tile_size} "
            "(tiles share that many pixels; at least the largest ball plus a few pixels)"
        )
    return family


def checkpoint_architecture(params: Path) -> dict[str, Any] | None:
    """The architecture saved beside a checkpoint's weights (<name>.json), if there is one."""
    about = params.with_suffix(".json")
    return json.loads(about.read_text()) if about.is_file() else None


def check_same_network(model: Detector, architecture: dict[str, Any] | None, key: str, where: Path) -> None:
    """ConfigError naming both networks when a checkpoint was trained as another one."""
    theirs = (architecture or {}).get("network")
    if theirs is not None and theirs != model.network:
        mine, other = family_of(model.network), family_of(theirs)
        raise ConfigError(
            f"{key}={where} holds a {other} network ({theirs}) but model.network={model.network} ({mine}): "
            f"choose model={other} model.network={theirs}, or a checkpoint of {model.network}"
        )
