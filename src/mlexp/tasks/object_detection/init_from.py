"""model.init_from: a previous trial's weights (all layers, or the base network's) copied into a new network.

The weights are a local .params file or a run's artifact (runs:/<run_id>/<path>); a trial's id finds them in its
Training component. Anchors are left as this trial derived them: they follow this trial's input size and boxes.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mxnet as mx

from mlexp.errors import ConfigError
from mlexp.tasks.object_detection.anchors import is_anchors
from mlexp.tasks.object_detection.config import Detector
from mlexp.tasks.object_detection.init_from_run import locate
from mlexp.tasks.object_detection.network_choice import check_same_network, checkpoint_architecture, family_of

# the feature extractor's parameter names: what model.init_layers=base copies
BASE_PREFIXES = {"ssd": ("features.",), "yolo3": ("stages.",), "faster_rcnn": ("features.", "top_features.")}


def initialise(net: Any, model: Detector, client: Any, notice: Callable[[str], None]) -> None:
    """Copy model.init_from's weights into the freshly built `net` and say how many were copied."""
    _infer_shapes(net, model.input_size)
    copied = _copy_weights(net, model, client)
    notice(f"initialised {copied} parameters ({_value(model.init_layers)}) from model.init_from={model.init_from}")


def _value(option: Any) -> str:
    return str(getattr(option, "value", option))


def _infer_shapes(net: Any, size: int) -> None:
    """One forward pass, so that every parameter has its shape (Gluon infers them lazily)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net(mx.nd.zeros((1, 3, size, size)))


def _download(uri: str, client: Any, into: Path) -> Path:
    """runs:/<run_id>/<path>: the artifact, from the run or (a trial's id) from its Training component."""
    if client is None:
        from mlflow.tracking import MlflowClient

        client = MlflowClient()
    weights = locate(uri, client)  # found before the trial when its store answered then: no second lookup
    downloaded = Path(client.download_artifacts(weights.run_id, weights.path, str(into)))
    if weights.about is not None:
        client.download_artifacts(weights.run_id, weights.about, str(into))
    return downloaded


def _copy_weights(net: Any, model: Detector, client: Any) -> int:
    """Copy a previous trial's weights (all layers or the base network's) into `net`; how many were copied."""
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
