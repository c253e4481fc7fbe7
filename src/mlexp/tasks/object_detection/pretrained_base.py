"""model.pretrained_base: the zoo's base-network weights from a local folder, never downloaded.

The folder holds GluonCV's `<base>-<hash>.params` files; one is used only when it matches the zoo's SHA-1.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gluoncv.model_zoo import model_store
from gluoncv.utils import check_sha1


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
def mxnet_home_with(weights: Path) -> Iterator[None]:
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
