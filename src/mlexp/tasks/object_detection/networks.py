"""Detectors from the GluonCV model zoo (`*_custom` variants), built, saved and loaded by name.

No network access: base weights come from a local folder (GluonCV's `<base>-<hash>.params`
files, checked against the zoo's SHA-1) or training starts from scratch.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mxnet as mx
import numpy as np
from gluoncv import model_zoo
from gluoncv.model_zoo import model_store
from gluoncv.utils import check_sha1

from mlexp.errors import ConfigError
from mlexp.tasks.object_detection.config import Detector
from mlexp.tasks.object_detection.config_rules import tiles_advance

FAMILIES = {"ssd": "ssd_", "yolo3": "yolo3_", "faster_rcnn": "faster_rcnn_"}
# smallest model.tile_size: a smaller tile holds hardly a ball and its overlap (and catches tile_size=1 typos)
MIN_TILE = 16
ARCHITECTURE_KEYS = ("network", "classes", "input_size", "anchor_scale", "tile_size", "tile_overlap")


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


def box_sides(train_box_sizes: np.ndarray | None) -> np.ndarray:
    """Each training box's side sqrt(width × height), boxes without area left out."""
    if train_box_sizes is None:
        return np.zeros(0)
    sizes = np.asarray(train_box_sizes, dtype=np.float64).reshape(-1, 2)
    sizes = sizes[np.isfinite(sizes).all(axis=1) & (sizes > 0).all(axis=1)]
    return np.sqrt(sizes[:, 0] * sizes[:, 1])


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


def fit_finest_anchors(net: Any, size: int, train_box_sizes: np.ndarray) -> None:
    """The finest SSD layer's anchors: the balls' median shape at sub-cell centres (a 2 × 2 grid in each cell).

    Its feature map has a 16-px stride at 512 px, coarser than a 5-15 px ball: with one anchor centre per cell
    and square or 2:1 shapes, the best anchor of most balls overlaps them at IoU ~0.3, so each ball trains one
    badly placed positive. The cell's anchor slots (a fixed count) are spent on one shape at half the stride.
    Balls larger than the stride keep the preset's shapes (the scale spread serves them better).
    """
    sizes = np.asarray(train_box_sizes, dtype=np.float64).reshape(-1, 2)
    sizes = sizes[np.isfinite(sizes).all(axis=1) & (sizes > 0).all(axis=1)]
    generator = net.anchor_generators[0]
    feature_map = net.features(mx.nd.zeros((1, 3, size, size)))[0]
    stride = size / feature_map.shape[2]
    if len(sizes) == 0 or np.median(np.sqrt(sizes[:, 0] * sizes[:, 1])) >= stride:
        return
    _, _, rows, cols, depth = generator.anchors.shape
    slots = depth // 4
    # a little larger than the median ball, so a ball a quarter-stride off the centre still overlaps at IoU ~0.5
    width, height = np.median(sizes, axis=0) * 1.2
    offsets = [(0.25, 0.25), (0.25, 0.75), (0.75, 0.25), (0.75, 0.75)]
    offsets = (offsets * slots)[:slots]
    anchors = np.zeros((rows, cols, slots, 4))
    for slot, (dy, dx) in enumerate(offsets):
        anchors[:, :, slot, 0] = (np.arange(cols)[None, :] + dx) * stride
        anchors[:, :, slot, 1] = (np.arange(rows)[:, None] + dy) * stride
        anchors[:, :, slot, 2], anchors[:, :, slot, 3] = width, height
    generator.anchors.set_data(mx.nd.array(anchors.reshape(1, 1, rows, cols, depth)))


def anchor_scale(model: Detector, train_box_sizes: np.ndarray | None = None, net: Any = None) -> float:
    """SSD anchor sizes' factor: model.anchor_scale; else the smallest anchor on the small balls (10th
    percentile of the training boxes' sides) but not below its layer's stride; without boxes,
    input_size / the preset's size.

    An anchor much smaller than the spacing of its centres overlaps no ball well: a 7-px anchor every 16 px
    leaves the matched one up to 8 px off a 10-px ball, a box target of ~11 (box_loss 18 at 512 px).
    """
    if model.anchor_scale is not None:
        return float(model.anchor_scale)
    sides = box_sides(train_box_sizes)
    if len(sides) and net is not None:
        first_map = net.features(mx.nd.zeros((1, 3, model.input_size, model.input_size)))[0]
        stride = model.input_size / first_map.shape[2]
        smallest = float(net.anchor_generators[0]._sizes[0])
        return max(float(np.quantile(sides, 0.1)), stride) / smallest
    preset = model.network.split("_")[1]
    return model.input_size / int(preset) if preset.isdigit() else 1.0


def yolo_anchors(train_box_sizes: np.ndarray, count: int = 9) -> np.ndarray:
    """`count` (width, height) anchors at evenly spaced quantiles of the boxes' areas, smallest first.

    Quantiles rather than k-means: a few dozen balls of one shape give k-means empty clusters.
    """
    sizes = np.asarray(train_box_sizes, dtype=np.float64).reshape(-1, 2)
    sizes = sizes[np.isfinite(sizes).all(axis=1) & (sizes > 0).all(axis=1)]
    order = np.argsort(sizes[:, 0] * sizes[:, 1])
    picks = np.quantile(np.arange(len(order)), np.linspace(0.05, 0.95, count)).round().astype(int)
    return np.maximum(sizes[order[picks]], 1.0)


def fit_yolo_anchors(net: Any, train_box_sizes: np.ndarray) -> None:
    """Each YOLOv3 output's three anchors from the training boxes: the smallest on the finest stride."""
    outputs = sorted(net.yolo_outputs, key=lambda output: output._stride)
    per_output = outputs[0].anchors.shape[2]
    anchors = yolo_anchors(train_box_sizes, per_output * len(outputs))
    for index, output in enumerate(outputs):
        chosen = anchors[index * per_output : (index + 1) * per_output]
        output.anchors.set_data(mx.nd.array(chosen.reshape(1, 1, per_output, 2)))


# GluonCV's Faster-RCNN: anchors of scale × 16 px on a stride-16 feature map, proposals counted as in its defaults
RCNN_BASE_SIZE, RCNN_STRIDE = 16, 16
RCNN_PROPOSALS = {"rpn_train_pre_nms": 12000, "rpn_train_post_nms": 2000, "rpn_test_pre_nms": 6000,
                  "rpn_test_post_nms": 300}  # fmt: skip
# feature-map cells the anchors are generated for (GluonCV: 128): inputs up to 4096 px a side, so that a tiled
# model's whole 1280×720 frame at twice its size (2560×1440) goes through at once; 9.4 MB of anchors
RCNN_ANCHOR_CELLS = 256
RCNN_MAX_INPUT_SIDE = RCNN_ANCHOR_CELLS * RCNN_STRIDE
RPN_ANCHORS = "rpn.anchor_generator.anchors"


def rcnn_options(size: int, train_box_sizes: np.ndarray | None, rois: int = 32, tiled: bool = False) -> dict[str, Any]:
    """Faster-RCNN anchors, minimum proposal size and proposal counts for this input size and these boxes.

    GluonCV's defaults (anchors 128–512 px, proposals under 16 px dropped) suit 600-px COCO frames:
    a 10-px ball then matches no anchor. Proposal counts cannot exceed the anchors a small input has.
    In training, the R-CNN head runs ResNet's last stage on each of `rois` regions pooled to 7 × 7 (GluonCV:
    300 at 14 × 14, 20 s a frame on two cores), and so it does at inference on the frame resized to `size`.
    A `tiled` model is trained on tiles but infers on the whole frame at once (tiling.whole_frame): there it
    keeps GluonCV's test counts, 6000 boxes into the proposals' NMS and 300 out, a whole 600-px image's worth
    (0.4 s more than 100 on a 2560×1440 input). Only the count out must not exceed the anchors an input has:
    an input is padded to at least size × size, so a frame too large for one input still gets that many per tile.
    """
    anchors_per_cell = 9
    cells = math.ceil(size / RCNN_STRIDE) ** 2
    counts = {key: min(value, cells * anchors_per_cell) for key, value in RCNN_PROPOSALS.items()}
    if tiled:
        counts["rpn_test_pre_nms"] = RCNN_PROPOSALS["rpn_test_pre_nms"]
    test_rois = RCNN_PROPOSALS["rpn_test_post_nms"] if tiled else rois
    counts["rpn_test_post_nms"] = min(test_rois, cells * anchors_per_cell)
    options: dict[str, Any] = {
        **counts,
        "num_sample": min(rois, counts["rpn_train_post_nms"]),
        "roi_size": (7, 7),
        "alloc_size": (RCNN_ANCHOR_CELLS, RCNN_ANCHOR_CELLS),
    }
    sizes = np.asarray(train_box_sizes if train_box_sizes is not None else np.zeros((0, 2)), dtype=np.float64)
    sizes = sizes.reshape(-1, 2)
    sizes = sizes[np.isfinite(sizes).all(axis=1) & (sizes > 0).all(axis=1)]
    if len(sizes) == 0:
        return options
    sides = np.sqrt(sizes[:, 0] * sizes[:, 1])
    # three anchor sizes spanning the boxes (a little beyond both ends), three aspect ratios (height / width)
    low, middle, high = np.quantile(sides, [0.05, 0.5, 0.95])
    scales = np.array([low / 1.25, middle, high * 1.25]) / RCNN_BASE_SIZE
    aspect = np.quantile(sizes[:, 1] / sizes[:, 0], [0.1, 0.5, 0.9])
    ratios = np.clip(aspect * np.array([0.8, 1.0, 1.25]), 0.2, 5.0)
    options.update(
        scales=tuple(round(float(s), 4) for s in scales),
        ratios=tuple(round(float(r), 4) for r in ratios),
        # proposals below half the smallest ball are noise; GluonCV's 16 px would drop every ball
        rpn_min_size=max(1, int(np.quantile(sides, 0.02) / 2)),
    )
    return options


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


def _download(uri: str, client: Any, into: Path) -> Path:
    """runs:/<run_id>/<path>: the artifact, from the run or (a trial's id) from its Training component."""
    if client is None:
        from mlflow.tracking import MlflowClient

        client = MlflowClient()
    run_id, _, path = uri.removeprefix("runs:/").partition("/")
    if not run_id or not path:
        raise ConfigError(f"model.init_from={uri} is not runs:/<run_id>/<artifact path> (e.g. model/model.params)")
    from mlexp.tracking import tags

    runs = [run_id]
    try:
        experiment = client.get_run(run_id).info.experiment_id
    except Exception as missing:  # MlflowException: no such run in this store
        raise ConfigError(f"model.init_from={uri}: no run {run_id} in the tracking store ({missing})") from None
    children = client.search_runs(
        [experiment], filter_string=f"tags.`{tags.MLFLOW_PARENT_RUN_ID}` = '{run_id}' and tags.`{tags.STAGE}` = 'train'"
    )
    runs += [child.info.run_id for child in children]
    folder, name = path.rpartition("/")[0], path.rpartition("/")[2]
    for candidate in runs:
        if any(a.path == path for a in client.list_artifacts(candidate, folder or None)):
            weights = Path(client.download_artifacts(candidate, path, str(into)))
            about = f"{path.rsplit('.', 1)[0]}.json"
            if any(a.path == about for a in client.list_artifacts(candidate, folder or None)):
                client.download_artifacts(candidate, about, str(into))
            return weights
    raise ConfigError(f"model.init_from={uri}: run {run_id} (nor its train component) has no artifact {name} there")


def _initialise_from(net: Any, model: Detector, client: Any) -> int:
    """Copy a previous trial's weights (all layers or the base network's) into `net`; how many were copied.

    Anchors are left as this trial derived them: they follow this trial's input size and boxes.
    """
    source = str(model.init_from)
    with tempfile.TemporaryDirectory(prefix="mlexp-init-") as folder:
        if source.startswith("runs:/"):
            params = _download(source, client, Path(folder))
        else:
            params = Path(source).expanduser()
            if not params.is_file():
                raise ConfigError(f"model.init_from={source} is not a file: give a .params file or runs:/<run_id>/...")
        check_same_network(model, checkpoint_architecture(params), "model.init_from", Path(source))
        try:
            saved = mx.nd.load(str(params))
        except mx.base.MXNetError:
            raise ConfigError(f"model.init_from={source} is not an MXNet .params file") from None
    if not isinstance(saved, dict):
        raise ConfigError(f"model.init_from={source} holds no named parameters (save_parameters' format)")
    prefixes = BASE_PREFIXES[family_of(model.network) or ""] if _value(model.init_layers) == "base" else ("",)
    copied = 0
    for name, parameter in net._collect_params_with_prefix().items():
        if is_anchors(name) or not name.startswith(prefixes) or name not in saved:
            continue
        if saved[name].shape != parameter.shape:
            raise ConfigError(
                f"model.init_from={source}: {name} has shape {saved[name].shape}, this network's "
                f"{parameter.shape} (other classes?); use model.init_layers=base"
            )
        parameter.set_data(saved[name])
        copied += 1
    if copied == 0:
        raise ConfigError(f"model.init_from={source} holds none of {model.network}'s parameters")
    return copied


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


def _infer_shapes(net: Any, size: int) -> None:
    """One forward pass, so that every parameter has its shape (Gluon infers them lazily)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net(mx.nd.zeros((1, 3, size, size)))


# the feature extractor's parameter names: what model.init_layers=base copies
BASE_PREFIXES = {"ssd": ("features.",), "yolo3": ("stages.",), "faster_rcnn": ("features.", "top_features.")}


def _value(option: Any) -> str:
    return str(getattr(option, "value", option))


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
        with _mxnet_home_with(weights):
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
        _infer_shapes(net, model.input_size)
        copied = _initialise_from(net, model, client)
        notice(f"initialised {copied} parameters ({_value(model.init_layers)}) from model.init_from={model.init_from}")
        loaded = True
    if family == "ssd":
        fit_anchors(net, model.input_size, anchor_scale(model, train_box_sizes, net))
        if train_box_sizes is not None and len(box_sides(train_box_sizes)):
            fit_finest_anchors(net, model.input_size, train_box_sizes)
    elif family == "yolo3" and len(box_sides(train_box_sizes)):
        assert train_box_sizes is not None
        fit_yolo_anchors(net, train_box_sizes)
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


def is_anchors(name: str) -> bool:
    """Whether a parameter holds anchors (SSD's, YOLOv3's or the RPN's): derived from a trial's boxes and input
    size, so copied or resumed weights leave them as the trial made them."""
    return "anchor" in name


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
