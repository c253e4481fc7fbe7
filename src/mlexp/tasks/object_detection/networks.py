"""Detectors from the GluonCV model zoo (`*_custom` variants), built, saved and loaded by name.

No network access: base weights come from a local folder (GluonCV's `<base>-<hash>.params`
files, checked against the zoo's SHA-1) or training starts from scratch.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mxnet as mx
from gluoncv import model_zoo
from gluoncv.model_zoo import model_store
from gluoncv.utils import check_sha1

from mlexp.errors import ConfigError
from mlexp.tasks.object_detection.config import Detector

FAMILIES = {"ssd": "ssd_", "yolo3": "yolo3_", "faster_rcnn": "faster_rcnn_"}
ARCHITECTURE_KEYS = ("network", "classes", "input_size", "anchor_scale")


def zoo_networks() -> list[str]:
    return sorted(n for n in model_zoo.get_model_list() if n.endswith("_custom") and family_of(n))


def family_of(network: str) -> str | None:
    return next((family for family, prefix in FAMILIES.items() if network.startswith(prefix)), None)


def check(model: Detector, option: str | None = None) -> str:
    """The network's family; ConfigError naming the valid networks when the name is not one."""
    family = family_of(model.network)
    valid = [n for n in zoo_networks() if option is None or family_of(n) == option]
    if model.network not in valid:
        raise ConfigError(
            f"model.network={model.network!r} is not a GluonCV *_custom detector; choose one of: {', '.join(valid)}"
        )
    assert family is not None
    return family


def base_weights(network: str, pretrained_base: str | None) -> Path | None:
    """The zoo's base-network weights for `network` in the configured folder, if present and intact."""
    if not pretrained_base:
        return None
    where = Path(pretrained_base).expanduser()
    folder = where.parent if where.is_file() else where
    # "faster_rcnn_resnet50_v1b_custom" holds both resnet50_v1 and resnet50_v1b: the longest is its base
    base = max((b for b in model_store._model_sha1 if b in network), key=len, default=None)
    if base is None:
        return None
    candidate = folder / f"{base}-{model_store.short_hash(base)}.params"
    if candidate.is_file() and check_sha1(str(candidate), model_store._model_sha1[base]):
        return candidate
    return None


@contextmanager
def _mxnet_home_with(weights: Path):
    """GluonCV reads base weights from $MXNET_HOME/models (YOLOv3 and Faster-RCNN ignore `root`)."""
    previous = os.environ.get("MXNET_HOME")
    with tempfile.TemporaryDirectory() as home:
        (Path(home) / "models").mkdir()
        (Path(home) / "models" / weights.name).symlink_to(weights.resolve())
        os.environ["MXNET_HOME"] = home
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop("MXNET_HOME", None)
            else:
                os.environ["MXNET_HOME"] = previous


def fit_anchors(net: Any, size: int, scale: float) -> None:
    """Lay each SSD layer's anchors on its feature map's real stride at this input size, sizes × scale.

    The presets fix anchor steps for their native size (and ssd_300_mobilenet0.25's first steps
    are half its real strides), so at other sizes anchor centres would miss parts of the frame.
    """
    maps = net.features(mx.nd.zeros((1, 3, size, size)))
    for generator, feature_map in zip(net.anchor_generators, maps):
        alloc = generator.anchors.shape[2:4]
        stride = size / feature_map.shape[2]
        sizes = tuple(s * scale for s in generator._sizes)
        anchors = generator._generate_anchors(sizes, generator._ratios, stride, alloc, (0.5, 0.5))
        generator.anchors.set_data(mx.nd.array(anchors))


def anchor_scale(model: Detector) -> float:
    """model.anchor_scale, or input_size / the preset's size (ssd_512_* → 512): anchors keep their share of a frame."""
    if model.anchor_scale is not None:
        return float(model.anchor_scale)
    preset = model.network.split("_")[1]
    return model.input_size / int(preset) if preset.isdigit() else 1.0


def build(model: Detector, notice: Callable[[str], None]) -> tuple[Any, bool]:
    """A freshly initialised network and whether its base weights were loaded."""
    family = check(model)
    weights = base_weights(model.network, model.pretrained_base)
    options: dict[str, Any] = {"classes": list(model.classes)}
    if family == "faster_rcnn":  # its R-CNN target sampler is built for a fixed number of images per batch
        options["per_device_batch_size"] = model.batch_size
    if weights is None:
        notice(
            f"no local base weights for {model.network} in model.pretrained_base={model.pretrained_base}: "
            "training from scratch"
        )
        net = model_zoo.get_model(model.network, pretrained_base=False, **options)
    else:
        with _mxnet_home_with(weights):
            net = model_zoo.get_model(model.network, pretrained_base=True, **options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "already initialized" for the loaded base
        net.initialize()
    if family == "ssd":
        fit_anchors(net, model.input_size, anchor_scale(model))
    return net, weights is not None


def save(net: Any, model: Detector, folder: Path, name: str = "model") -> Path:
    """Weights and the architecture that rebuilds them (written under a temporary name first)."""
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f"{name}.params.partial"
    net.save_parameters(str(partial))
    partial.replace(folder / f"{name}.params")
    architecture = {key: getattr(model, key) for key in ARCHITECTURE_KEYS}
    (folder / f"{name}.json").write_text(json.dumps({**architecture, "classes": list(model.classes)}, indent=2))
    return folder / f"{name}.params"


def load(folder: Path, name: str = "model", hybridize: bool = True) -> tuple[Any, dict[str, Any]]:
    architecture = json.loads((folder / f"{name}.json").read_text())
    net = model_zoo.get_model(architecture["network"], classes=architecture["classes"], pretrained_base=False)
    # Faster-RCNN saves its training-time target generator too, which inference does not build
    net.load_parameters(str(folder / f"{name}.params"), ctx=mx.cpu(), ignore_extra=True)
    if hybridize:
        net.hybridize(static_alloc=True, static_shape=True)
    return net, architecture
