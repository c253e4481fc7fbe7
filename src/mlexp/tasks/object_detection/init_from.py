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
    run_id, _, path = uri.removeprefix("runs:/").partition("/")
    if not run_id or not path:
        raise ConfigError(f"model.init_from={uri} is not runs:/<run_id>/<artifact path> (e.g. model/model.params)")
    from mlexp.tracking import tags

    runs = [run_id]
    try:
        experiment = client.get_run(run_id).info.experiment_id
    except Exception as missing:  # MlflowException: no such run in this store
        raise ConfigError(f"model.init_from={uri}: {_no_run(client, run_id, path)} ({missing})") from None
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


def _no_run(client: Any, run_id: str, path: str) -> str:
    """No run of that id: a trial's name (what `mlexp compare` lists) is told its run id, which runs:/ takes."""
    from mlexp.serving.trial_names import trials_named

    ids = trials_named(client, run_id)
    if len(ids) == 1:
        return f"{run_id} is a trial's name, runs:/ takes its run id: model.init_from=runs:/{ids[0]}/{path}"
    if ids:  # two projects' trials on one server may share a name
        return f"{run_id} names {len(ids)} trials: model.init_from=runs:/<run id>/{path} with one of {', '.join(ids)}"
    return f"no run {run_id} in the tracking store; runs:/ takes a run id (the MLflow UI's Run ID)"


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
