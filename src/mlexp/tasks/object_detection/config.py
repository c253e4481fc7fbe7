"""Schemas of the football frames, the detection augmentations and the GluonCV detectors."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from hydra.core.config_store import ConfigStore


@dataclass
class FootballDataset:
    # a SageMaker Ground Truth bounding-box output manifest (file, folder or glob); null: generated frames
    path: str | None = None
    # local copy of the labeling job's bucket: s3://<bucket>/<key> is read from <image_root>/<key>;
    # null: read s3:// images from S3 (local refs never need it)
    image_root: str | None = None
    # the manifest's label attribute (the labeling job's name); null: the one holding object-detection boxes
    label_attribute: str | None = None
    # per-frame characteristics for the sensitivity analysis (the generator writes them)
    attributes_key: str = "frame-attributes"
    # shares of the frames held out for validation (checkpoint choice, early stopping, tuning) and for the
    # test (the reported map_50, measured once); whole plays go to one split
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    # what makes frames one play: auto (the source-ref's folder, or its file name without the frame number)
    # or a manifest key (on the line or in its frame attributes) holding a play or video id
    group_by: str = "auto"
    # generated frames only: how many, in plays of frames_per_play, frame size in pixels, the share without
    # a ball, and the ball's length as a share of the frame width (a broadcast ball: 1-3 % of 1280 px)
    n_frames: int = 650
    frames_per_play: int = 8
    frame_width: int = 1280
    frame_height: int = 720
    no_ball_fraction: float = 0.1
    ball_length: list[float] = field(default_factory=lambda: [0.01, 0.03])


@dataclass
class DetectionAugmentation:
    """GluonCV's training transforms, each switchable (the post's defence against overfitting)."""

    # off: its hue and saturation shifts blur the brown-on-green cue of a low-contrast ball
    color_jitter: bool = False
    # GluonCV's SSD colour distortion: brightness ± delta, contrast and saturation × [low, high], hue ± degrees
    brightness_delta: float = 32
    contrast: list[float] = field(default_factory=lambda: [0.5, 1.5])
    saturation: list[float] = field(default_factory=lambda: [0.5, 1.5])
    hue_delta_degrees: float = 18
    flip_prob: float = 0.5
    expand_prob: float = 0.0
    # zoom out by up to this factor (GluonCV's SSD preset uses 4; small balls vanish at that)
    expand_max_ratio: float = 2.0
    # without tiles only (with tiles the tile is the crop)
    crop_prob: float = 0.5
    # with model.tile_size: the share of training tiles cut around a ball (the rest anywhere in the frame)
    tile_around_ball: float = 1.0
    # ImageNet statistics, which the model zoo's bases expect
    mean: list[float] = field(default_factory=lambda: [0.485, 0.456, 0.406])
    std: list[float] = field(default_factory=lambda: [0.229, 0.224, 0.225])
    # boxes whose side is below this in original pixels are labelled "small" when a manifest has no sizes
    small_box_px: int = 22


class LrMode(str, Enum):
    step = "step"
    cosine = "cosine"


class Optimizer(str, Enum):
    sgd = "sgd"
    adam = "adam"


class InitLayers(str, Enum):
    """What model.init_from copies: every layer, or the base network (feature extractor) only."""

    all = "all"
    base = "base"


@dataclass
class Detector:
    # the model option (conf/model/<family>.yaml: ssd, yolo3, faster_rcnn) whose networks model.network names
    family: str | None = "ssd"
    # a GluonCV model-zoo name of a *_custom network: ssd_*, yolo3_* or faster_rcnn_*
    network: str = "ssd_300_mobilenet0.25_custom"
    classes: list[str] = field(default_factory=lambda: ["football"])
    # square network input (Faster-RCNN: shorter side); frames (or tiles) are resized to it
    input_size: int = 256
    # null: the whole frame is resized to input_size. A size in frame pixels: the network sees tiles of that
    # size at the frame's own resolution (training: random crops, most around a ball; inference: overlapping
    # tiles whose boxes are merged), so a 13-38 px ball keeps its pixels
    tile_size: int | None = 128
    # pixels adjacent tiles share at inference: at least the largest ball plus a few pixels, so every ball lies
    # whole in a tile (a ball cut in every tile still comes back, clipped to the larger part)
    tile_overlap: int = 40
    # folder of GluonCV base-network weights (<base>-<hash>.params); absent: train from scratch
    pretrained_base: str | None = "~/.mxnet/models"
    # SSD anchor sizes times this; null: derived from the training boxes (the smallest anchor is the 10th
    # percentile of the balls' sides; YOLOv3 and Faster-RCNN anchors always are); without boxes,
    # input_size / the preset's size (512 for ssd_512_*)
    anchor_scale: float | None = None
    # SSD loss: background anchors mined per positive, and at least this many per frame (GluonCV: 3, 0);
    # one ball per frame leaves 3 negatives, too few to learn the background from
    negative_mining_ratio: float = 3.0
    min_hard_negatives: int = 8
    # Faster-RCNN: regions its R-CNN head samples per training image and, untiled, classifies per frame at
    # inference (GluonCV: 128 and 300, for 80 COCO classes); the head's cost grows with it, one ball needs few.
    # A tiled model keeps GluonCV's 300 proposals at inference, where it takes the whole frame
    rcnn_rois: int = 32
    batch_size: int = 8
    # SSD's 60-CPU-minute recipe (conf/model/ssd.yaml); the post's estimator ran 15 epochs of whole frames
    epochs: int = 100
    lr: float = 0.001
    lr_mode: LrMode = LrMode.step
    lr_decay: float = 0.1
    lr_decay_epochs: list[int] = field(default_factory=lambda: [95])
    warmup_epochs: int = 1
    # from scratch (no pretrained base offline) Adam needs fewer epochs than SGD
    optimizer: Optimizer = Optimizer.adam
    momentum: float = 0.9
    wd: float = 0.0
    # validation mAP every this many epochs; the best checkpoint is kept
    val_interval: int = 25
    hybridize: bool = True
    # a checkpoint folder (models/<task>/checkpoint) to continue training from
    resume: str | None = None
    # start from a previous trial's weights (transfer learning offline): runs:/<run_id>/model/model.params
    # (a trial's or its train component's run id) or a local .params file; null: pretrained_base or scratch
    init_from: str | None = None
    # all: every layer of init_from (same network and classes); base: its feature extractor only
    init_layers: InitLayers = InitLayers.all
    # stop training once this many seconds were spent on it (the epoch ends, is validated and saved); null: no limit
    max_train_seconds: float | None = None
    # DataLoader worker processes for decoding and augmentation (0: in the training process)
    data_workers: int = 0
    # detections below this score are not returned by the endpoint
    score_threshold: float = 0.3
    # frames timed for inference speed (hybridized and not)
    speed_frames: int = 20


store = ConfigStore.instance()
store.store(group="schema/dataset", name="football_frames", node=FootballDataset)
store.store(group="schema/preprocessing", name="detection_augmentation", node=DetectionAugmentation)
for option in ("ssd", "yolo3", "faster_rcnn"):
    store.store(group="schema/model", name=option, node=Detector)
