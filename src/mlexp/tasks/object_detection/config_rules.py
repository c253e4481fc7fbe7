"""The rules across object_detection's config keys (the task's `constraints`), and the predicates its stages check
again.

Their own module, not the package's `__init__`: a stage's DVC dependencies are the modules it imports, and a range or
a help text edited in `__init__` must not re-run training.
"""

import math

from mlexp.config.constraints import Constraint, leave_a_training_share

# The smallest model.input_size each network trains and detects at, measured one by one (GluonCV 0.10, MXNet 1.9).
# Below these, an SSD's last extra 3×3 convolutions get a map smaller than their kernel, Faster-RCNN-101's pooling
# kernel is larger than its map, and Faster-RCNN-50 aborted the process (7 px) or diverged to NaN box losses.
SMALLEST_INPUT = {
    "ssd_300_resnet34_v1b_custom": 257,
    "ssd_300_vgg16_atrous_custom": 257,
    "ssd_512_vgg16_atrous_custom": 257,
    "faster_rcnn_resnet50_v1b_custom": 8,
    "faster_rcnn_resnet101_v1d_custom": 9,
}
# Why each network of SMALLEST_INPUT needs its smallest input (none of these depends on the classes)
_SSD_LAST_LAYERS = "below it, this SSD's last extra 3x3 convolutions get a map smaller than their kernel"
SMALLEST_INPUT_REASON = {
    "ssd_300_resnet34_v1b_custom": _SSD_LAST_LAYERS,
    "ssd_300_vgg16_atrous_custom": _SSD_LAST_LAYERS,
    "ssd_512_vgg16_atrous_custom": _SSD_LAST_LAYERS,
    "faster_rcnn_resnet50_v1b_custom": "below it, this Faster-RCNN's training aborted the process or diverged to NaN "
    "box losses",
    "faster_rcnn_resnet101_v1d_custom": "below it, this Faster-RCNN's pooling kernel is larger than its feature map",
}
# The other SSDs and YOLOv3 keep their top 100 detections after NMS (GluonCV's post_nms): an input with fewer anchors
# times classes fails that slice. Their anchors per cell on each map, a map being ceil(input / stride) a side
# (checked against every such network's own output at inputs of 1-69 px with 1-3 classes).
KEPT_DETECTIONS = 100
ANCHORS = {"ssd_": ((16, 4), (32, 6), (64, 6), (128, 6), (256, 4), (512, 4)), "yolo3_": ((8, 3), (16, 3), (32, 3))}


def smallest_input(network: str, n_classes: int) -> int:
    """The smallest input side `network` trains and detects at with `n_classes` classes (1: not measured)."""
    if network in SMALLEST_INPUT:
        return SMALLEST_INPUT[network]
    maps = next((anchors for prefix, anchors in ANCHORS.items() if network.startswith(prefix)), None)
    if maps is None or n_classes < 1:
        return 1
    size = 1
    while sum(math.ceil(size / stride) ** 2 * per_cell for stride, per_cell in maps) * n_classes < KEPT_DETECTIONS:
        size += 1
    return size


def input_fits_network(network: str, classes: list[str], input_size: int) -> bool:
    return input_size >= smallest_input(network, len(classes))


def larger_input(network: str, classes: list[str], _input_size: int) -> str:
    """The input_size rule's fix: the smallest input `network` takes with `classes`, and why it is that one."""
    smallest = smallest_input(network, len(classes))
    if network in SMALLEST_INPUT_REASON:
        reason = SMALLEST_INPUT_REASON[network]
    else:
        family = "YOLOv3" if network.startswith("yolo3_") else "this SSD"
        reason = (
            f"{family} keeps its top {KEPT_DETECTIONS} detections, so its anchors times classes ({len(classes)} here) "
            f"must reach {KEPT_DETECTIONS}, and fewer classes need a larger input"
        )
    return f"give model.input_size={smallest} or more: {reason}"


def tiles_advance(tile_size: int | None, tile_overlap: int) -> bool:
    """Whether each tile starts past the one before it: it shares fewer pixels with it than it has (null tile_size:
    the whole frame, no tiles)."""
    return tile_size is None or 0 <= tile_overlap < tile_size


def network_of_family(family: str | None, network: str | None) -> bool:
    """Whether model.network is a network of the chosen model option (each option's recipe is tuned for its family)."""
    return family is None or network is None or network.startswith(f"{family}_")


def choose_the_family(family: str | None, network: str | None) -> str:
    own = next((f for f in ("faster_rcnn", "yolo3", "ssd") if str(network).startswith(f"{f}_")), None)
    if own is None:
        return f"give model.network one of the {family}_* networks"
    recipe = "its recipe: epochs, batch size, optimizer"
    return f"choose model={own} for {network} ({recipe}), or one of the {family}_* networks"


def init_from_found(init_from: object, tracking_uri: str | None, root: str, target: str, stage: str | None) -> bool:
    """Whether model.init_from=runs:/... names weights the trial's store holds (or cannot be judged before it)."""
    from mlexp.tasks.object_detection.init_from_run import problem

    return problem(init_from, tracking_uri, root, target, stage) is None


def init_from_fix(init_from: object, tracking_uri: str | None, root: str, target: str, stage: str | None) -> str:
    from mlexp.tasks.object_detection.init_from_run import problem

    return problem(init_from, tracking_uri, root, target, stage) or ""


CONSTRAINTS = (
    Constraint(
        ("model.family", "model.network"),
        network_of_family,
        "model.network must be a network of the chosen model option, whose training recipe is set for it",
        choose_the_family,
    ),
    Constraint(
        ("dataset.val_fraction", "dataset.test_fraction"),
        leave_a_training_share,
        "dataset.val_fraction + dataset.test_fraction must be below 1, to leave frames for training",
        "lower one of them (defaults 0.15 + 0.15)",
    ),
    Constraint(
        ("model.tile_size", "model.tile_overlap"),
        tiles_advance,
        "model.tile_overlap must be below model.tile_size (null: the whole frame), or the tiles would not advance",
        "lower model.tile_overlap: at least the largest ball plus a few pixels (defaults 40 of 128)",
    ),
    Constraint(
        ("model.network", "model.classes", "model.input_size"),
        input_fits_network,
        "model.input_size must be at least the smallest input model.network trains and detects at",
        larger_input,
    ),
    # before prepare's minutes of converting frames, not in the train stage after them
    Constraint(
        ("model.init_from", "tracking.uri", "paths.root", "compute.target", "stage"),
        init_from_found,
        "model.init_from=runs:/<run id>/<path> must name weights a run of the tracking store holds",
        init_from_fix,
        context=("tracking.uri", "paths.root", "compute.target", "stage"),
        asks_store=True,
    ),
)
