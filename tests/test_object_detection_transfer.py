"""Transfer learning offline: model.init_from starts a network from a previous trial's checkpoint; checkpoints
of another family are refused with a message naming both."""

from __future__ import annotations

from pathlib import Path

import mxnet as mx
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from conftest import seed_store
from mlexp.errors import ConfigError
from mlexp.tasks.object_detection import evaluation, networks, training
from mlexp.tasks.object_detection.families import FAMILY_TRAINING
from mlexp.tracking import tags
from object_detection_tiny import NO_JITTER, box_sizes_at, detector, write_frames


def _weights(net) -> dict:
    return {k: p.data().asnumpy() for k, p in net._collect_params_with_prefix().items() if "anchor" not in k}


SIZE = 128
BALL = (40, 56)  # 27-37 px at the 128-px input: a previous trial learns them in a few hundred frame-epochs


def _validate_on(rec: Path):
    return lambda network: evaluation.voc_ap_50(evaluation.detect(network, rec, NO_JITTER, SIZE))


def _trial(rec: Path, boxes: np.ndarray, folder: Path, validate, **values):
    """One SSD trial at the tiny size, seeded, on `rec`; its checkpoint lands in `folder`."""
    mx.random.seed(0)
    np.random.seed(0)
    model = detector("ssd", input_size=SIZE, batch_size=8, hybridize=True, **values)
    net, _ = networks.build(model, lambda _: None, train_box_sizes=box_sizes_at(boxes, SIZE))
    family = FAMILY_TRAINING["ssd"](net, model, NO_JITTER)
    return training.fit(net, family, model, rec, folder, validate, lambda _: None)


@pytest.fixture(scope="module")
def previous(tmp_path_factory: pytest.TempPathFactory):
    """A previous SSD trial trained on its own frames: its folder (model.params + model.json), its saved weights,
    its best validation mAP and the validation frames every trial here is measured on."""
    data = tmp_path_factory.mktemp("previous")
    # 80 frames, not 40: at 40 the 6th epoch reached 0.09 on an AMD host where it had passed 0.2 on another CPU
    boxes = write_frames(data / "previous.rec", 80, seed=1, ball=BALL)
    write_frames(data / "val.rec", 8, seed=2, ball=BALL)
    history = _trial(data / "previous.rec", boxes, data / "model", _validate_on(data / "val.rec"),
                     epochs=6, val_interval=6, lr=0.006)  # fmt: skip
    saved = mx.nd.load(str(data / "model/model.params"))
    weights = {k: v.asnumpy() for k, v in saved.items() if "anchor" not in k}
    return data / "model", weights, history.best_map_50, data / "val.rec"


def test_init_from_a_local_checkpoint_copies_all_layers_or_the_base(previous):
    folder, before, _, _ = previous
    notices: list[str] = []
    model = detector("ssd", input_size=SIZE, init_from=str(folder / "model.params"))
    copied = _weights(networks.build(model, notices.append)[0])
    assert copied.keys() == before.keys() and all((copied[k] == before[k]).all() for k in before)
    assert not any("from scratch" in n for n in notices) and any("init_from" in n for n in notices)

    base = _weights(networks.build(detector("ssd", input_size=SIZE, init_from=str(folder / "model.params"),
                                            init_layers="base"), lambda _: None)[0])  # fmt: skip
    assert all((base[k] == before[k]).all() for k in before if k.startswith("features."))
    heads = [k for k in before if k.startswith("class_predictors.")]
    assert heads and not all((base[k] == before[k]).all() for k in heads)  # freshly initialised


def test_init_from_a_runs_uri_reads_the_trial_s_train_component(previous, tmp_path, empty_store):
    folder, before, _, _ = previous
    client = MlflowClient(tracking_uri=f"sqlite:///{seed_store(tmp_path, empty_store)}")  # no migrations to run
    experiment = client.create_experiment("object_detection", artifact_location=(tmp_path / "artifacts").as_uri())
    trial = client.create_run(experiment, tags={tags.KIND: "trial"}).info.run_id
    component = client.create_run(experiment, tags={tags.MLFLOW_PARENT_RUN_ID: trial, tags.STAGE: "train"})
    for name in ("model.params", "model.json"):
        client.log_artifact(component.info.run_id, str(folder / name), "model")
    model = detector("ssd", input_size=SIZE, init_from=f"runs:/{trial}/model/model.params")
    copied = _weights(networks.build(model, lambda _: None, client=client)[0])
    assert all((copied[k] == before[k]).all() for k in before)

    with pytest.raises(ConfigError, match="no run"):
        networks.build(detector("ssd", input_size=SIZE, init_from="runs:/0123abcd/model/model.params"), print,
                       client=client)  # fmt: skip


def test_a_checkpoint_of_another_family_is_refused_naming_both(previous):
    folder, _, _, _ = previous
    notices: list[str] = []
    resume = detector("yolo3", input_size=SIZE, resume=str(folder))
    with pytest.raises(ConfigError, match=r"ssd network \(ssd_300_mobilenet0.25_custom\).*yolo3_mobilenet0.25_custom"):
        networks.build(resume, notices.append)
    assert not any("from scratch" in n for n in notices)
    with pytest.raises(ConfigError, match="model.init_from=.*ssd_300_mobilenet0.25_custom.*yolo3"):
        networks.build(detector("yolo3", input_size=SIZE, init_from=str(folder / "model.params")), notices.append)


def test_a_fine_tuned_trial_starts_above_one_from_scratch(previous, tmp_path):
    """The post's transfer learning, offline: a previous trial's network on other frames of the same kind gives
    the next trial a head start over random weights, on the same validation frames after the same epoch."""
    folder, _, previous_map_50, val = previous
    boxes = write_frames(tmp_path / "train.rec", 8, seed=3, ball=BALL)
    # both trials alike (Adam at 0.001, one epoch of 8 frames); only the starting weights differ
    weights = str(folder / "model.params")
    fine_tuned = _trial(tmp_path / "train.rec", boxes, tmp_path / "fine_tuned", _validate_on(val), init_from=weights)
    scratch = _trial(tmp_path / "train.rec", boxes, tmp_path / "scratch", _validate_on(val))
    first = fine_tuned.epochs[0].val_map_50, scratch.epochs[0].val_map_50
    assert previous_map_50 > 0.2, previous_map_50  # it did learn the ball
    assert first[0] > first[1] + 0.2, first
