"""The training loop shared by every detector family: schedule, validation, checkpoints, resume."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mxnet as mx
from gluoncv.data import RecordFileDetection
from gluoncv.utils import LRScheduler, LRSequential
from mxnet import gluon
from tqdm import tqdm

from mlexp.errors import ConfigError
from mlexp.tasks.object_detection import anchors, network_choice, networks
from mlexp.tasks.object_detection.config import Detector

CHECKPOINT = "checkpoint"


@dataclass
class Epoch:
    """What one epoch measured; `val_map_50` only on validation epochs."""

    epoch: int
    losses: dict[str, float]
    images_per_s: float
    lr: float
    val_map_50: float | None = None


@dataclass
class History:
    epochs: list[Epoch] = field(default_factory=list)
    best_map_50: float = -1.0
    best_epoch: int = 0
    # seconds spent training (without validation), and whether model.max_train_seconds stopped it
    train_seconds: float = 0.0
    budget_spent: bool = False


def _value(option: Any) -> str:
    return str(getattr(option, "value", option))


def on_cpu(batch: Any) -> Any:
    """GluonCV's batchify builds arrays in shared memory (cpu_shared); the network's weights are on cpu."""
    if isinstance(batch, list | tuple):
        return type(batch)(on_cpu(part) for part in batch)
    return batch.as_in_context(mx.cpu())


def _images_in(batch: tuple) -> int:
    data = batch[0][0] if isinstance(batch[0], list | tuple) else batch[0]  # Faster-RCNN batches come in shards
    return int(data.shape[0])


def _trainer(net: Any, model: Detector, iters_per_epoch: int) -> gluon.Trainer:
    warmup = min(model.warmup_epochs, model.epochs - 1)
    schedules = (
        [LRScheduler("linear", base_lr=0.0, target_lr=model.lr, nepochs=warmup, iters_per_epoch=iters_per_epoch)]
        if warmup > 0
        else []
    )
    schedules.append(
        LRScheduler(
            _value(model.lr_mode),
            base_lr=model.lr,
            nepochs=model.epochs - warmup,
            iters_per_epoch=iters_per_epoch,
            step_epoch=[e - warmup for e in model.lr_decay_epochs],
            step_factor=model.lr_decay,
        )
    )
    schedule = LRSequential(schedules)
    schedule.base_lr = model.lr  # what the optimizer checks its learning_rate against
    options: dict[str, Any] = {"lr_scheduler": schedule, "learning_rate": model.lr, "wd": model.wd}
    if _value(model.optimizer) == "sgd":
        options["momentum"] = model.momentum
    return gluon.Trainer(net.collect_params(), _value(model.optimizer), options)


def _resume(net: Any, trainer: gluon.Trainer, model: Detector, folder: Path) -> History:
    state_file = folder / "state.json"
    if not state_file.exists():
        raise ConfigError(
            f"model.resume={folder} holds no checkpoint (state.json); point it at models/<task>/{CHECKPOINT}"
        )
    state = json.loads(state_file.read_text())
    network_choice.check_same_network(
        model, network_choice.checkpoint_architecture(folder / "model.params"), "model.resume", folder
    )
    # this trial's anchors (derived from its boxes, sized by its alloc_size) stay; the rest continues from the
    # checkpoint, whose own anchors may cover another extent (a Faster-RCNN saved before RCNN_ANCHOR_CELLS)
    try:
        networks.load_weights(net, str(folder / "model.params"), kept=anchors.is_anchors)
    except (AssertionError, ValueError) as mismatch:  # AssertionError: MXNet's for a parameter of another shape
        raise ConfigError(f"model.resume={folder} does not fit model.network={model.network}: {mismatch}") from None
    schedule, kind = trainer.optimizer.lr_scheduler, type(trainer.optimizer)
    trainer.load_states(str(folder / "trainer.states"))
    if type(trainer.optimizer) is not kind:
        name = type(trainer.optimizer).__name__.lower()
        raise ConfigError(f"model.resume={folder} was trained with model.optimizer={name}; resume with the same")
    # momenta and the update count come from the checkpoint; the schedule from this run's config,
    # so a resumed run may train longer than the one that wrote the checkpoint
    trainer.optimizer.lr_scheduler = schedule
    history = History(
        best_map_50=state["best_map_50"], best_epoch=state["best_epoch"], train_seconds=state.get("train_seconds", 0.0)
    )
    history.epochs = [
        Epoch(e["epoch"], e["losses"], e["images_per_s"], e["lr"], e.get("val_map_50")) for e in state["epochs"]
    ]
    return history


def _checkpoint(net: Any, trainer: gluon.Trainer, model: Detector, history: History, folder: Path) -> None:
    networks.save(net, model, folder)
    trainer.save_states(str(folder / "trainer.states"))
    state = {
        "best_map_50": history.best_map_50,
        "best_epoch": history.best_epoch,
        "train_seconds": history.train_seconds,
        "epochs": [vars(e) for e in history.epochs],
    }
    (folder / "state.json").write_text(json.dumps(state, indent=1))


def _fresh_graph(net: Any, model: Detector) -> None:
    """Hybridize anew: a cached graph keeps the training/inference branch it was traced in."""
    if model.hybridize:
        net.hybridize(static_alloc=True, static_shape=True)


def fit(
    net: Any,
    family: Any,
    model: Detector,
    train_rec: Path,
    models_dir: Path,
    validate: Callable[[Any], float],
    on_epoch: Callable[[Epoch], None],
) -> History:
    """Train, validating every model.val_interval epochs; the best network is saved as models_dir/model.*."""
    dataset = RecordFileDetection(str(train_rec)).transform(family.transform)
    batch_size = min(model.batch_size, len(dataset))
    loader = gluon.data.DataLoader(
        dataset,
        batch_size,
        shuffle=True,
        batchify_fn=family.batchify,
        last_batch="rollover",
        num_workers=model.data_workers,
    )
    trainer = _trainer(net, model, max(1, len(dataset) // batch_size))
    if hasattr(family, "bind"):
        family.bind(trainer)
    history = _resume(net, trainer, model, Path(model.resume).expanduser()) if model.resume else History()
    _fresh_graph(net, model)
    budget = model.max_train_seconds
    for number in range(len(history.epochs) + 1, model.epochs + 1):
        totals: dict[str, float] = dict.fromkeys(family.loss_names, 0.0)
        batches = images = 0
        started = time.perf_counter()
        # frames/s and the epoch's ETA while it runs (shown on a terminal only, as the other tasks' bars)
        with tqdm(
            total=len(loader) * batch_size, desc=f"epoch {number}/{model.epochs}", unit="frame", leave=False,
            disable=None,
        ) as bar:  # fmt: skip
            for batch in loader:
                batch = on_cpu(batch)
                terms, step_size = family.forward_backward(net, batch)
                trainer.step(step_size)
                for name, value in terms.items():
                    totals[name] += value
                batches += 1
                images += _images_in(batch)
                bar.update(_images_in(batch))
                if budget is not None and history.train_seconds + time.perf_counter() - started >= budget:
                    history.budget_spent = True
                    break
        elapsed = time.perf_counter() - started
        history.train_seconds += elapsed
        losses = {name: total / max(batches, 1) for name, total in totals.items()}
        if not all(math.isfinite(v) for v in losses.values()):
            raise ConfigError(f"training diverged in epoch {number} (losses {losses}); lower model.lr (now {model.lr})")
        epoch = Epoch(number, losses, images / elapsed if elapsed > 0 else 0.0, float(trainer.learning_rate))
        if number % model.val_interval == 0 or number == model.epochs or history.budget_spent:
            _fresh_graph(net, model)
            epoch.val_map_50 = validate(net)
            _fresh_graph(net, model)
            if epoch.val_map_50 > history.best_map_50:
                history.best_map_50, history.best_epoch = epoch.val_map_50, number
                networks.save(net, model, models_dir)
        history.epochs.append(epoch)
        _checkpoint(net, trainer, model, history, models_dir / CHECKPOINT)
        on_epoch(epoch)
        if history.budget_spent:
            break
    return history
