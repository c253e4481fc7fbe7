"""Football detection (the NFL post): Ground Truth manifest → RecordIO, GluonCV training,
mAP with a sensitivity analysis, and a local endpoint."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from mlexp.data import football_frames, ground_truth_manifest
from mlexp.data.frame_images import ImageSource
from mlexp.data.sources import expand
from mlexp.errors import ConfigError, DataError
from mlexp.paths import resolve
from mlexp.tasks.object_detection import charts, evaluation, networks, records, training
from mlexp.tasks.object_detection.config import DetectionAugmentation, Detector, Serving
from mlexp.tracking import Tracker


def _augmentation(cfg: DictConfig) -> DetectionAugmentation:
    return DetectionAugmentation(**OmegaConf.to_container(cfg.preprocessing, resolve=True))  # type: ignore[arg-type]


def _model(cfg: DictConfig) -> Detector:
    values: dict[str, Any] = OmegaConf.to_container(cfg.model, resolve=True, enum_to_str=True)  # type: ignore[assignment]
    return Detector(**{**values, "serving": Serving(**values["serving"])})


def _existing(cfg: DictConfig, name: str, stage: str) -> Path:
    path = Path(cfg.paths.data if name.endswith(".rec") else cfg.paths.models) / name
    if not path.exists():
        raise DataError(f"{path} is missing: run the {stage} stage first (mlexp task={cfg.task.name} stage={stage})")
    return path


def _manifests(cfg: DictConfig, out: Path) -> tuple[list[Path], Path | None]:
    data = cfg.dataset
    if data.path:
        return expand(data.path, ground_truth_manifest.SUFFIXES), resolve(data.image_root) if data.image_root else None
    if data.n_train is None:
        raise ConfigError("dataset.n_train=null needs dataset.path: generated frames need a count")
    lengths = {"small": list(data.small_ball), "large": list(data.large_ball)}
    manifest = football_frames.generate(
        out / "generated", data.n_train + data.n_val, data.image_size, cfg.seed, lengths
    )
    return [manifest], out / "generated"


def prepare(cfg: DictConfig, tracker: Tracker) -> None:
    """Read the Ground Truth manifest, split held-out frames off, write train.rec and val.rec."""
    model = _model(cfg)
    networks.check(model)  # a wrong network name fails before minutes of conversion
    out = Path(cfg.paths.data)
    files, image_root = _manifests(cfg, out)
    frames, problems = ground_truth_manifest.read(files, cfg.dataset.label_attribute, cfg.dataset.attributes_key)
    order = np.random.default_rng(cfg.seed).permutation(len(frames))
    n_val = cfg.dataset.n_val
    if len(frames) <= n_val:
        raise DataError(f"{len(frames)} usable frames in {files[0]}: dataset.n_val={n_val} leaves none for training")
    val = [frames[i] for i in order[:n_val]]
    train = [frames[i] for i in order[n_val:]][: cfg.dataset.n_train]
    source = ImageSource(image_root, files[0].parent)
    written = {
        name: records.write(split, list(model.classes), source, out / f"{name}.rec", problems)
        for name, split in (("val", val), ("train", train))
    }
    (out / "problems.json").write_text(
        json.dumps({"counts": problems.counts, "first_seen": problems.first_seen}, indent=2)
    )
    if problems.counts:
        print(f"skipped in {', '.join(f.name for f in files)}: {problems.summary()}", flush=True)
    if not all(written.values()):
        empty = " or ".join(name for name, count in written.items() if not count)
        raise DataError(f"{files[0]}: no usable {empty} frame left; {problems.summary()}")

    tracker.log_parameters(
        {"manifests": ", ".join(str(f) for f in files), "image_root": str(image_root), "classes": list(model.classes)}
    )
    for file in files:
        tracker.log_input(
            "ground truth manifest" if len(files) == 1 else f"manifest: {file.name}", "application/x-ndjson", file
        )
    for name in written:
        tracker.log_output(f"{name} RecordIO", "application/x-recordio", out / f"{name}.rec")
    tracker.log_artifact(out / "problems.json", name="data", media_type="application/json")
    tracker.log_metrics(
        {
            "frames_train": written["train"],
            "frames_val": written["val"],
            "manifest_problems": sum(problems.counts.values()),
        }
    )


def train(cfg: DictConfig, tracker: Tracker) -> None:
    """Train the zoo network on train.rec; validation mAP each model.val_interval epochs; keep the best."""
    from mlexp.tasks.object_detection.families import FAMILY_TRAINING

    model, augmentation = _model(cfg), _augmentation(cfg)
    family = networks.check(model)
    train_rec, val_rec = _existing(cfg, "train.rec", "prepare"), _existing(cfg, "val.rec", "prepare")
    frames = len(json.loads(records.frames_json(train_rec).read_text()))
    model = replace(model, batch_size=min(model.batch_size, frames))  # at least one full batch per epoch
    net, pretrained = networks.build(model, lambda message: print(f"notice: {message}", flush=True))
    tracker.log_parameters({**OmegaConf.to_container(cfg.model, resolve=True), "pretrained_base_loaded": pretrained})  # type: ignore[dict-item]
    tracker.log_input("train RecordIO", "application/x-recordio", train_rec)

    def validate(network: Any) -> float:
        return evaluation.voc_map(evaluation.detect(network, val_rec, augmentation, model.input_size))

    def on_epoch(epoch: training.Epoch) -> None:
        tracker.log_metrics({f"train_{name}": value for name, value in epoch.losses.items()}, step=epoch.epoch)
        tracker.log_metrics({"epoch_images_per_s": epoch.images_per_s, "lr": epoch.lr}, step=epoch.epoch)
        if epoch.val_map_50 is not None:
            tracker.log_metric("val_map_50", epoch.val_map_50, step=epoch.epoch)
        shown = ", ".join(f"{k}={v:.4f}" for k, v in epoch.losses.items())
        validated = f", val mAP@0.5={epoch.val_map_50:.4f}" if epoch.val_map_50 is not None else ""
        print(f"epoch {epoch.epoch}/{model.epochs}: {shown}, {epoch.images_per_s:.1f} images/s{validated}", flush=True)

    models = Path(cfg.paths.models)
    history = training.fit(
        net, FAMILY_TRAINING[family](net, model, augmentation), model, train_rec, models, validate, on_epoch
    )
    epochs = [vars(e) for e in history.epochs]
    tracker.log_metrics(
        {
            "best_val_map_50": history.best_map_50,
            "best_epoch": history.best_epoch,
            # the first epoch pays for hybridizing and memory planning
            "train_images_per_s": float(np.mean([e["images_per_s"] for e in epochs[1:] or epochs])),
            "final_train_loss": float(sum(epochs[-1]["losses"].values())),
        }
    )
    for name in ("model.params", "model.json"):
        tracker.log_artifact(models / name, name="model")
    tracker.log_output("model", "application/x-mxnet-params", models / "model.params")
    plots = Path(cfg.paths.reports) / "plots"
    with _csv_file(plots / "training.csv") as writer:
        writer.writerow(["epoch", *history.epochs[0].losses, "val_map_50"])
        writer.writerows([e["epoch"], *e["losses"].values(), e["val_map_50"]] for e in epochs)
    tracker.log_artifact(
        charts.training_curves(epochs, plots / "training_curves.png"), name="plots", media_type="image/png"
    )


@contextmanager
def _csv_file(path: Path) -> Iterator[Any]:
    """A CSV writer on a file that appears whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    with partial.open("w", newline="") as handle:
        yield csv.writer(handle)
    partial.replace(path)


def evaluate(cfg: DictConfig, tracker: Tracker) -> None:
    """VOC mAP@0.5 (the objective), COCO-style mAP, PR curve, mAP per frame characteristic, inference fps."""
    from mlexp.tasks.object_detection.speed import frames_per_second

    model, augmentation = _model(cfg), _augmentation(cfg)
    val_rec = _existing(cfg, "val.rec", "prepare")
    net, architecture = networks.load(_existing(cfg, "model.params", "train").parent)
    size = int(architecture["input_size"])
    found = evaluation.detect(net, val_rec, augmentation, size)
    map_50 = evaluation.voc_map(found)
    recall, precision = evaluation.pr_curve(found)
    frames = json.loads(records.frames_json(val_rec).read_text())
    rows = evaluation.sensitivity(found, evaluation.frame_attributes(frames, found, augmentation.small_box_px))
    fps = frames_per_second(net, size, model.speed_frames, hybridize=True)
    fps_imperative = frames_per_second(net, size, model.speed_frames, hybridize=False)
    tracker.log_input("val RecordIO", "application/x-recordio", val_rec)
    tracker.log_input("model", "application/x-mxnet-params", _existing(cfg, "model.params", "train"))
    tracker.log_metrics(
        {
            "map_50": map_50,
            "map_50_95": evaluation.coco_style_map(found),
            "inference_fps": fps,
            "inference_fps_imperative": fps_imperative,
            "hybridize_speedup": fps / fps_imperative,
            **{f"map_50_{r['attribute']}_{r['value']}": r["map_50"] for r in rows},
        }
    )
    plots = Path(cfg.paths.reports) / "plots"
    with _csv_file(plots / "precision_recall.csv") as writer:
        writer.writerow(["recall", "precision"])
        writer.writerows(zip(recall.round(5), precision.round(5)))
    with _csv_file(plots / "sensitivity.csv") as writer:
        writer.writerow(["attribute", "value", "frames", "map_50"])
        writer.writerows([r["attribute"], r["value"], r["frames"], round(r["map_50"], 5)] for r in rows)
    title = f"{architecture['network']}: held-out frames"
    for chart in (
        charts.precision_recall(recall, precision, map_50, plots / "precision_recall.png", title),
        charts.sensitivity_bars(rows, map_50, plots / "sensitivity.png"),
    ):
        tracker.log_artifact(chart, name="plots", media_type="image/png")
    tracker.log_artifact(plots / "sensitivity.csv", name="plots", media_type="text/csv")
    table = "\n".join(
        f"  {r['attribute']:<13} {r['value']:<9} {r['frames']:>5} frames  mAP@0.5 {r['map_50']:.3f}" for r in rows
    )
    speed = f"{fps:.1f} fps hybridized ({fps_imperative:.1f} not)"
    print(f"mAP@0.5 {map_50:.4f} on {len(frames)} held-out frames; {speed}\n{table}", flush=True)


def deploy(cfg: DictConfig, tracker: Tracker) -> None:
    """deploy=local: serve the model on loopback; deploy=registry: register it like every task."""
    if cfg.deploy.target == "registry":
        from mlexp.serving import registry

        registry.deploy_trial(cfg, tracker)
        return
    if cfg.deploy.target != "local":
        raise ConfigError(
            f"deploy={cfg.deploy.target!r} is not available for task {cfg.task.name!r}; use local or registry"
        )
    from mlexp.tasks.object_detection.deployment import serve

    serve(cfg, tracker, _augmentation(cfg), _model(cfg))
