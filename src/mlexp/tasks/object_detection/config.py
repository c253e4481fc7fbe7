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
    # held-out frames, then training frames (null: all the rest); the generator writes n_train + n_val
    n_train: int | None = 500
    n_val: int = 150
    # generated frames only: side in pixels, ball length as a fraction of it per size class
    image_size: int = 256
    small_ball: list[float] = field(default_factory=lambda: [0.045, 0.065])
    large_ball: list[float] = field(default_factory=lambda: [0.09, 0.13])


@dataclass
class DetectionAugmentation:
    """GluonCV's training transforms, each switchable (the post's defence against overfitting)."""

    color_jitter: bool = True
    # GluonCV's SSD colour distortion: brightness ± delta, contrast and saturation × [low, high], hue ± degrees
    brightness_delta: float = 32
    contrast: list[float] = field(default_factory=lambda: [0.5, 1.5])
    saturation: list[float] = field(default_factory=lambda: [0.5, 1.5])
    hue_delta_degrees: float = 18
    flip_prob: float = 0.5
    expand_prob: float = 0.0
    # zoom out by up to this factor (GluonCV's SSD preset uses 4; small balls vanish at that)
    expand_max_ratio: float = 2.0
    crop_prob: float = 0.0
    # ImageNet statistics, which the model zoo's bases expect
    mean: list[float] = field(default_factory=lambda: [0.485, 0.456, 0.406])
    std: list[float] = field(default_factory=lambda: [0.229, 0.224, 0.225])
    # boxes whose side is below this in model-input pixels are labelled "small" when a manifest has no sizes
    small_box_px: int = 16


class LrMode(str, Enum):
    step = "step"
    cosine = "cosine"


class Optimizer(str, Enum):
    sgd = "sgd"
    adam = "adam"


@dataclass
class Serving:
    """The local endpoint of deploy=local (kept here until DeployConfig has these keys)."""

    host: str = "127.0.0.1"
    port: int = 8080
    # largest request body accepted (413 above)
    max_request_bytes: int = 5_000_000
    # which model: "trial" (this trial's), "best" (the experiment's best finished trial) or a trial run id
    source: str = "trial"
    # stop after this many seconds; null: serve until Ctrl-C
    max_seconds: float | None = None


@dataclass
class Detector:
    # a GluonCV model-zoo name of a *_custom network: ssd_*, yolo3_* or faster_rcnn_*
    network: str = "ssd_300_mobilenet0.25_custom"
    classes: list[str] = field(default_factory=lambda: ["football"])
    # square network input (Faster-RCNN: shorter side); frames are resized to it
    input_size: int = 256
    # folder of GluonCV base-network weights (<base>-<hash>.params); absent: train from scratch
    pretrained_base: str | None = "~/.mxnet/models"
    # SSD anchor sizes times this; null: input_size / the preset's size (512 for ssd_512_*), so anchors
    # cover the same share of the frame as the preset intends
    anchor_scale: float | None = None
    # SSD loss: background anchors mined per positive, and at least this many per frame (GluonCV: 3, 0);
    # one ball per frame leaves 3 negatives, too few to learn the background from
    negative_mining_ratio: float = 3.0
    min_hard_negatives: int = 0
    batch_size: int = 8
    # the post's estimator: hyperparameters={"epochs": 15}
    epochs: int = 15
    lr: float = 0.001
    lr_mode: LrMode = LrMode.step
    lr_decay: float = 0.1
    lr_decay_epochs: list[int] = field(default_factory=lambda: [12, 14])
    warmup_epochs: int = 1
    # from scratch (no pretrained base offline) Adam needs fewer epochs than SGD
    optimizer: Optimizer = Optimizer.adam
    momentum: float = 0.9
    wd: float = 0.0
    # validation mAP every this many epochs; the best checkpoint is kept
    val_interval: int = 1
    hybridize: bool = True
    # a checkpoint folder (models/<task>/checkpoint) to continue training from
    resume: str | None = None
    # DataLoader worker processes for decoding and augmentation (0: in the training process)
    data_workers: int = 0
    # detections below this score are not returned by the endpoint
    score_threshold: float = 0.3
    # frames timed for inference speed (hybridized and not)
    speed_frames: int = 20
    serving: Serving = field(default_factory=Serving)


store = ConfigStore.instance()
store.store(group="schema/dataset", name="football_frames", node=FootballDataset)
store.store(group="schema/preprocessing", name="detection_augmentation", node=DetectionAugmentation)
for option in ("ssd", "yolo3", "faster_rcnn"):
    store.store(group="schema/model", name=option, node=Detector)
