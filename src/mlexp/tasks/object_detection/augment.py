"""GluonCV's detection augmentations, each one switchable from config.

The order is the one of GluonCV's SSD and YOLOv3 training presets: colour jitter, random
expansion (zoom out), random crop that keeps the boxes, resize with a random interpolation,
random horizontal flip; then ImageNet normalisation.
"""

from __future__ import annotations

import mxnet as mx
import numpy as np
from gluoncv.data.transforms import bbox as tbbox
from gluoncv.data.transforms import experimental
from gluoncv.data.transforms import image as timage

from mlexp.tasks.object_detection import tiling
from mlexp.tasks.object_detection.config import DetectionAugmentation


class Augment:
    """(HWC uint8 image, (N, 5+) pixel boxes) → the same at size × size, randomly transformed."""

    def __init__(self, augmentation: DetectionAugmentation, size: int, tile: int | None = None) -> None:
        self.aug = augmentation
        self.size = size
        self.tile = tile

    def __call__(self, img: mx.nd.NDArray, label: np.ndarray) -> tuple[mx.nd.NDArray, np.ndarray]:
        aug = self.aug
        # a frame without a ball carries a placeholder row of class -1: moved by flips it could land in the frame
        bbox = np.asarray(label)[np.asarray(label)[:, 4] >= 0] if len(label) else np.zeros((0, 5), np.float32)
        if self.tile:  # a native-resolution crop, as tiled inference will see the frame (and 10x fewer pixels)
            img, bbox = tiling.random_tile(img, bbox, self.tile, aug.tile_around_ball)
        if aug.color_jitter:
            # GluonCV rotates hue by `hue_delta * pi` radians: pass degrees / 180 for a rotation in degrees
            img = experimental.image.random_color_distort(
                img,
                brightness_delta=aug.brightness_delta,
                contrast_low=aug.contrast[0],
                contrast_high=aug.contrast[1],
                saturation_low=aug.saturation[0],
                saturation_high=aug.saturation[1],
                hue_delta=aug.hue_delta_degrees / 180.0,
            ).clip(0, 255)
        if not self.tile and aug.expand_max_ratio > 1 and np.random.uniform() < aug.expand_prob:
            fill = [m * 255 for m in aug.mean]
            img, expand = timage.random_expand(img, max_ratio=aug.expand_max_ratio, fill=fill)
            bbox = tbbox.translate(bbox, x_offset=expand[0], y_offset=expand[1])
        if not self.tile and len(bbox) and np.random.uniform() < aug.crop_prob:
            h, w, _ = img.shape
            cropped, (x0, y0, cw, ch) = experimental.bbox.random_crop_with_constraints(bbox, (w, h))
            if len(cropped):  # a crop that lost every ball would teach "no ball here"
                img, bbox = mx.image.fixed_crop(img, x0, y0, cw, ch), cropped
        h, w, _ = img.shape
        if (w, h) != (self.size, self.size):
            img = timage.imresize(img, self.size, self.size, interp=np.random.randint(0, 5))
            bbox = tbbox.resize(bbox, (w, h), (self.size, self.size))
        img, flips = timage.random_flip(img, px=aug.flip_prob)
        bbox = tbbox.flip(bbox, (self.size, self.size), flip_x=flips[0])
        return img, bbox if len(bbox) else no_object(self.size)


def no_object(size: int) -> np.ndarray:
    """The row of a frame without a ball, as the families' target generators need one: class -1, a box
    with an area (a zero-size box encodes to log(0)) left of and above the input, matching no anchor."""
    return np.array([[-size, -size, -size / 2, -size / 2, -1]], dtype=np.float32)


def normalize(img: mx.nd.NDArray, augmentation: DetectionAugmentation) -> mx.nd.NDArray:
    """HWC uint8 → CHW float, ImageNet-normalised (what the model zoo's bases expect)."""
    return mx.nd.image.normalize(mx.nd.image.to_tensor(img), mean=augmentation.mean, std=augmentation.std)
