"""Detectors from the GluonCV model zoo (`*_custom` variants), built, saved and loaded by name.

No network access: base weights come from a local folder (pretrained_base.py) or training starts from scratch.
Which networks model.network may name is network_choice.py's; anchors follow the training boxes (anchors.py);
model.init_from copies a previous trial's weights (init_from.py).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mxnet as mx
import numpy as np
from gluoncv import model_zoo

from mlexp.tasks.object_detection import init_from
from mlexp.tasks.object_detection.anchors import RCNN_ANCHOR_CELLS, RPN_ANCHORS, fit_to_boxes, rcnn_options
from mlexp.tasks.object_detection.config import Detector
from mlexp.tasks.object_detection.network_choice import check, check_same_network, checkpoint_architecture, family_of
from mlexp.tasks.object_detection.pretrained_base import base_weights, mxnet_home_with

ARCHITECTURE_KEYS = ("network", "classes", "input_size", "anchor_scale", "tile_size", "tile_overlap")


def clip_boxes(boxes: np.ndarray, width: float, height: float) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (K, 4 corners) clipped to a width × height image, and which of them to keep.

    A barely trained network decodes boxes far outside the frame, or NaN/Inf: those rows are
    zeroed and, like boxes left with no area after clipping, marked not kept.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    finite = np.isfinite(boxes).all(axis=1)
    clipped = np.where(np.isfinite(boxes), boxes, 0.0)
    clipped[:, 0::2] = clipped[:, 0::2].clip(0.0, float(width))
    clipped[:, 1::2] = clipped[:, 1::2].clip(0.0, float(height))
    keep = finite & (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
    return clipped, keep


@mx.init.register
class HeNormal(mx.init.Xavier):
    """He-normal weights; vectors (BatchNorm's scale and statistics, biases) get their usual ones and zeros.

    Zoo networks built from symbols hand every parameter to the global initializer, vectors included.
    """

    def __init__(self) -> None:
        super().__init__(rnd_type="gaussian", factor_type="in", magnitude=2)

    def _init_weight(self, name: Any, arr: mx.nd.NDArray) -> None:
        if len(arr.shape) >= 2:
            super()._init_weight(name, arr)
        else:
            arr[:] = 1.0 if str(name).endswith(("gamma", "running_var")) else 0.0


def build(
    model: Detector,
    notice: Callable[[str], None],
    train_box_sizes: np.ndarray | None = None,
    client: Any = None,
) -> tuple[Any, bool]:
    """A network whose anchors follow the training boxes, and whether pretrained weights were loaded.

    `train_box_sizes` (N, 2) are the training boxes' widths and heights in network-input pixels;
    `client` is the MlflowClient that resolves model.init_from=runs:/... (None: MLflow's default store).
    """
    family = check(model)
    if model.resume:
        folder = Path(model.resume).expanduser()
        check_same_network(model, checkpoint_architecture(folder / "model.params"), "model.resume", folder)
    weights = base_weights(model.network, model.pretrained_base)
    options: dict[str, Any] = {"classes": list(model.classes)}
    if family == "faster_rcnn":  # its R-CNN target sampler is built for a fixed number of images per batch
        options["per_device_batch_size"] = model.batch_size
        architecture = rcnn_options(model.input_size, train_box_sizes, model.rcnn_rois, tiled=bool(model.tile_size))
        options.update(architecture)
    else:
        architecture = {}
    from_checkpoint = bool(model.resume or model.init_from)
    if weights is None:
        if not from_checkpoint:
            notice(
                f"no local base weights for {model.network} in model.pretrained_base={model.pretrained_base}: "
                "training from scratch"
            )
        net = model_zoo.get_model(model.network, pretrained_base=False, **options)
    else:
        with mxnet_home_with(weights):
            net = model_zoo.get_model(model.network, pretrained_base=True, **options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "already initialized" for the loaded base
        # He initialisation where a layer declares none: Gluon's default (uniform ±0.07) shrinks the signal at
        # every layer, so from scratch a dozen layers in every frame looks alike at inference (running
        # BatchNorm statistics cannot undo a 1e-20 scale; batch statistics in training hide it). Not for
        # Faster-RCNN: its ResNet's BatchNorm is frozen (identity from scratch), so He weights would make
        # 16 residual blocks blow the signal up instead; its heads declare their own initialisation.
        net.initialize(init=mx.init.Uniform() if family == "faster_rcnn" else HeNormal())
    net.mlexp_architecture = architecture  # rebuilt by load(): constructor options that are not weights
    loaded = weights is not None
    if model.init_from and not model.resume:
        init_from.initialise(net, model, client, notice)
        loaded = True
    fit_to_boxes(net, model, family, train_box_sizes)
    return net, loaded


def save(net: Any, model: Detector, folder: Path, name: str = "model") -> Path:
    """Weights and the architecture that rebuilds them (written under a temporary name first)."""
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f"{name}.params.partial"
    net.save_parameters(str(partial))
    partial.replace(folder / f"{name}.params")
    architecture = {key: getattr(model, key) for key in ARCHITECTURE_KEYS}
    options = getattr(net, "mlexp_architecture", {})
    about = {**architecture, "classes": list(model.classes), "options": options}
    (folder / f"{name}.json").write_text(json.dumps(about, indent=2))
    return folder / f"{name}.params"


def load_weights(net: Any, params: str, kept: Callable[[str], bool]) -> None:
    """The saved weights into an initialised `net`, but for the parameters `kept` names, which keep their value (a
    trial's own anchors; a Faster-RCNN's RPN anchors, a constant its `alloc_size` sizes and saved ones may cover fewer
    cells of). ValueError for a parameter the file lacks; AssertionError (MXNet's) for one of another shape."""
    own = net._collect_params_with_prefix()
    saved = mx.nd.load(params)
    missing = [name for name in own if name not in saved and not kept(name)]
    if missing:
        raise ValueError(f"{params} lacks {len(missing)} parameters of this network, e.g. {missing[0]}")
    for name, value in saved.items():
        if name in own and not kept(name):
            own[name]._load_init(value, mx.cpu())


def load(folder: Path, name: str = "model", hybridize: bool = True) -> tuple[Any, dict[str, Any]]:
    """The saved network (anchors and proposal settings as trained), ready for inference."""
    architecture = json.loads((folder / f"{name}.json").read_text())
    options = {k: tuple(v) if isinstance(v, list) else v for k, v in (architecture.get("options") or {}).items()}
    rcnn = family_of(architecture["network"]) == "faster_rcnn"
    if rcnn:  # checkpoints from before RCNN_ANCHOR_CELLS hold GluonCV's 128 × 128 cells of anchors
        options["alloc_size"] = (RCNN_ANCHOR_CELLS, RCNN_ANCHOR_CELLS)
    net = model_zoo.get_model(
        architecture["network"], classes=architecture["classes"], pretrained_base=False, **options
    )
    params = str(folder / f"{name}.params")
    if rcnn:
        net.initialize(ctx=mx.cpu())  # the RPN anchors' constant takes its value; load_weights sets the rest
        # its saved weights include the training-time target generator, which inference does not build
        load_weights(net, params, kept=lambda name: name.endswith(RPN_ANCHORS))
    else:  # SSD and YOLOv3: their anchors, derived from the training boxes, come from the checkpoint
        net.load_parameters(params, ctx=mx.cpu(), ignore_extra=True)
    if hybridize:
        net.hybridize(static_alloc=True, static_shape=True)
    return net, architecture
