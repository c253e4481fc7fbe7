"""What differs between training SSD, YOLOv3 and Faster-RCNN: targets, batching, losses.

Each follows GluonCV's own training script for the family (train_ssd.py, train_yolo3.py,
train_faster_rcnn.py): targets are generated in the data pipeline from the network's anchors,
and one `forward_backward` returns the loss terms logged as step metrics.
"""

from __future__ import annotations

from typing import Any

import mxnet as mx
import numpy as np
from gluoncv.data.batchify import FasterRCNNTrainBatchify, Pad, Stack, Tuple
from gluoncv.data.transforms.presets.rcnn import FasterRCNNDefaultTrainTransform
from gluoncv.loss import SSDMultiBoxLoss
from gluoncv.model_zoo.rcnn.faster_rcnn.data_parallel import ForwardBackwardTask
from gluoncv.model_zoo.ssd.target import SSDTargetGenerator
from gluoncv.model_zoo.yolo.yolo_target import YOLOV3PrefetchTargetGenerator
from mxnet import autograd, gluon

from mlexp.tasks.object_detection.augment import Augment, normalize
from mlexp.tasks.object_detection.config import DetectionAugmentation, Detector


def _gt(bbox: np.ndarray) -> tuple[mx.nd.NDArray, mx.nd.NDArray]:
    return mx.nd.array(bbox[np.newaxis, :, :4]), mx.nd.array(bbox[np.newaxis, :, 4:5])


class SSD:
    """Anchor matching at IoU 0.5, box targets normalised by (0.1, 0.1, 0.2, 0.2), mined hard negatives."""

    loss_names = ("cls_loss", "box_loss")

    def __init__(self, net: Any, model: Detector, augmentation: DetectionAugmentation) -> None:
        size = model.input_size
        with autograd.train_mode():
            _, _, self.anchors = net(mx.nd.zeros((1, 3, size, size)))
        self.augment, self.aug = Augment(augmentation, size, model.tile_size), augmentation
        self.targets = SSDTargetGenerator(iou_thresh=0.5, stds=(0.1, 0.1, 0.2, 0.2), negative_mining_ratio=-1)
        self.loss = SSDMultiBoxLoss(
            negative_mining_ratio=model.negative_mining_ratio, min_hard_negatives=model.min_hard_negatives
        )
        self.batchify = Tuple(Stack(), Stack(), Stack())

    def transform(self, img: mx.nd.NDArray, label: np.ndarray) -> tuple:
        img, bbox = self.augment(img, label)
        cls_targets, box_targets, _ = self.targets(self.anchors, None, *_gt(bbox))
        return normalize(img, self.aug), cls_targets[0], box_targets[0]

    def forward_backward(self, net: Any, batch: tuple) -> tuple[dict[str, float], int]:
        data, cls_targets, box_targets = batch
        with autograd.record():
            cls_preds, box_preds, _ = net(data)
            total, cls_loss, box_loss = self.loss([cls_preds], [box_preds], [cls_targets], [box_targets])
            autograd.backward(total)
        # the loss is already normalised by the number of positive anchors: step(1), as train_ssd.py
        return {"cls_loss": float(cls_loss[0].mean().asscalar()), "box_loss": float(box_loss[0].mean().asscalar())}, 1


class YOLO3:
    """Objectness, centre, scale and class losses against prefetched YOLOv3 targets."""

    loss_names = ("obj_loss", "center_loss", "scale_loss", "cls_loss")

    def __init__(self, net: Any, model: Detector, augmentation: DetectionAugmentation) -> None:
        size = model.input_size
        self.fake_x = mx.nd.zeros((1, 3, size, size))
        with autograd.train_mode():
            _, self.anchors, self.offsets, self.feat_maps, *_ = net(self.fake_x)
        self.augment, self.aug = Augment(augmentation, size, model.tile_size), augmentation
        self.targets = YOLOV3PrefetchTargetGenerator(num_class=len(net.classes))
        self.batchify = Tuple(*([Stack() for _ in range(6)] + [Pad(axis=0, pad_val=-1)]))

    def transform(self, img: mx.nd.NDArray, label: np.ndarray) -> tuple:
        img, bbox = self.augment(img, label)
        boxes, ids = _gt(bbox)
        targets = self.targets(self.fake_x, self.feat_maps, self.anchors, self.offsets, boxes, ids, None)
        return (normalize(img, self.aug), *(t[0] for t in targets), boxes[0])

    def forward_backward(self, net: Any, batch: tuple) -> tuple[dict[str, float], int]:
        data, *fixed_targets, gt_boxes = batch
        with autograd.record():
            losses = net(data, gt_boxes, *fixed_targets)
            autograd.backward(sum(losses))
        return {n: float(v.mean().asscalar()) for n, v in zip(self.loss_names, losses)}, data.shape[0]


class FasterRCNN:
    """RPN and R-CNN head losses (GluonCV's ForwardBackwardTask), on frames already augmented and resized."""

    loss_names = ("rpn_cls_loss", "rpn_box_loss", "rcnn_cls_loss", "rcnn_box_loss")

    def __init__(self, net: Any, model: Detector, augmentation: DetectionAugmentation) -> None:
        size = model.input_size
        self.augment = Augment(augmentation, size, model.tile_size)
        aug = augmentation
        self.targets = FasterRCNNDefaultTrainTransform(size, size, net, mean=aug.mean, std=aug.std, flip_p=0.0)
        self.batchify = FasterRCNNTrainBatchify(net, num_shards=1)
        huber_rpn, huber_rcnn = gluon.loss.HuberLoss(rho=1 / 9.0), gluon.loss.HuberLoss()
        rpn_cls, rcnn_cls = (
            gluon.loss.SigmoidBinaryCrossEntropyLoss(from_sigmoid=False),
            gluon.loss.SoftmaxCrossEntropyLoss(),
        )
        self.task = lambda trainer: ForwardBackwardTask(
            net, trainer, rpn_cls, huber_rpn, rcnn_cls, huber_rcnn, 1.0, False
        )
        self._bound: Any = None

    def transform(self, img: mx.nd.NDArray, label: np.ndarray) -> tuple:
        return self.targets(*self.augment(img, label))

    def bind(self, trainer: gluon.Trainer) -> None:
        self._bound = self.task(trainer)

    def forward_backward(self, net: Any, batch: tuple) -> tuple[dict[str, float], int]:
        shard = tuple(part[0] if isinstance(part, list | tuple) else part for part in batch)  # one shard: the CPU
        terms = self._bound.forward_backward(shard)[:4]
        return {n: float(v.asscalar()) for n, v in zip(self.loss_names, terms)}, shard[0].shape[0]


FAMILY_TRAINING = {"ssd": SSD, "yolo3": YOLO3, "faster_rcnn": FasterRCNN}
