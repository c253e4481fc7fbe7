"""Football detection (the NFL post): Ground Truth manifest → train / val / test RecordIO split by play,
GluonCV training validated on val, mAP with a sensitivity analysis measured once on test, and a local endpoint."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from mlexp.data import football_frames, ground_truth_manifest
from mlexp.data.frame_images import ImageSource
from mlexp.data.sources import expand
from mlexp.errors import ConfigError, DataError
from mlexp.paths import resolve
from mlexp.tasks.object_detection import charts, evaluation, network_choice, networks, records, splits, tiling, training
from mlexp.tasks.object_detection.config import DetectionAugmentation, Detector
from mlexp.tracking import Tracker

SPLITS = splits.SPLITS


def _augmentation(cfg: DictConfig) -> DetectionAugmentation:
    """The preprocessing config; ConfigError for a tile_around_ball that is not a share."""
    augmentation = DetectionAugmentation(**OmegaConf.to_container(cfg.preprocessing, resolve=True))  # type: ignore[arg-type]
    if not 0.0 <= augmentation.tile_around_ball <= 1.0:
        raise ConfigError(
            f"preprocessing.tile_around_ball={augmentation.tile_around_ball} must be from 0 to 1 "
            "(the share of training tiles cut around a ball)"
        )
    return augmentation


def _model(cfg: DictConfig) -> Detector:
    """The detector's settings (keys Detector does not declare, such as the endpoint's, are left out)."""
    values: dict[str, Any] = OmegaConf.to_container(cfg.model, resolve=True, enum_to_str=True)  # type: ignore[assignment]
    known = {f.name for f in fields(Detector)}
    return Detector(**{k: v for k, v in values.items() if k in known})


def _existing(cfg: DictConfig, name: str, stage: str) -> Path:
    path = Path(cfg.paths.data if name.endswith(".rec") else cfg.paths.models) / name
    if not path.exists():
        raise DataError(f"{path} is missing: run the {stage} stage first (mlexp task={cfg.task.name} stage={stage})")
    return path


def _manifests(cfg: DictConfig, out: Path) -> tuple[list[Path], Path | None]:
    data = cfg.dataset
    if data.path:
        image_root = resolve(data.image_root) if data.image_root else None
        if image_root is not None and not image_root.is_dir():
            raise ConfigError(f"dataset.image_root={data.image_root}: no such folder ({image_root}); fix or unset it")
        return expand(data.path, ground_truth_manifest.SUFFIXES), image_root
    if data.n_frames < 3:
        raise ConfigError(f"dataset.n_frames={data.n_frames}: generated frames need at least 3 (train, val, test)")
    manifest = football_frames.generate(
        out / "generated",
        data.n_frames,
        cfg.seed,
        width=data.frame_width,
        height=data.frame_height,
        frames_per_play=data.frames_per_play,
        no_ball_fraction=data.no_ball_fraction,
        ball_length=tuple(data.ball_length),
    )
    return [manifest], out / "generated"


def _check_init_from(model: Detector) -> None:
    """A local model.init_from that is not there fails in prepare, not after it (runs:/ is looked up before it)."""
    source = model.init_from
    if source and not str(source).startswith("runs:/") and not Path(str(source)).expanduser().is_file():
        raise ConfigError(f"model.init_from={source} is not a file: give a .params file or runs:/<run_id>/...")


def prepare(cfg: DictConfig, tracker: Tracker) -> None:
    """Read the Ground Truth manifest, split it by play into train / val / test, write one RecordIO file each."""
    model = _model(cfg)
    network_choice.check(model)  # a wrong network name fails before minutes of conversion
    _check_init_from(model)
    out = Path(cfg.paths.data)
    data = cfg.dataset
    files, image_root = _manifests(cfg, out)
    group_key = None if data.group_by == splits.AUTO else str(data.group_by)
    frames, problems = ground_truth_manifest.read(files, data.label_attribute, data.attributes_key, group_key)
    plays = splits.plays(frames, str(data.group_by))
    if data.group_by == splits.AUTO and plays == [f.source_ref for f in frames]:
        print(
            f"notice: fewer than 3 plays or videos in the source-refs of {files[0].name}: frames are split one by "
            "one, so near-identical frames of a play may sit in two splits; set dataset.group_by=<play id key>",
            flush=True,
        )
    chosen = splits.split(frames, plays, data.val_fraction, data.test_fraction, cfg.seed)
    source = ImageSource(image_root, files[0].parent)
    written = {
        name: records.write(
            [frames[i] for i in chosen[name]],
            list(model.classes),
            source,
            out / f"{name}.rec",
            problems,
            [plays[i] for i in chosen[name]],
        )
        for name in SPLITS
    }
    (out / "problems.json").write_text(
        json.dumps({"counts": problems.counts, "first_seen": problems.first_seen}, indent=2)
    )
    if problems.counts:
        print(f"skipped in {', '.join(f.name for f in files)}: {problems.summary()}", flush=True)
    if not all(count > empty for count, empty in written.values()):
        empty = " or ".join(name for name, (count, negatives) in written.items() if count <= negatives)
        raise DataError(f"{files[0]}: no readable {empty} frame with a ball left; {problems.summary()}")
    print(
        "frames (without a ball) in plays: "
        + ", ".join(
            f"{name} {written[name][0]} ({written[name][1]}) in {len({plays[i] for i in chosen[name]})}"
            for name in SPLITS
        ),
        flush=True,
    )

    tracker.log_parameters(
        {
            "manifests": ", ".join(str(f) for f in files),
            "image_root": str(image_root),
            "classes": list(model.classes),
            "plays": len(set(plays)),
        }
    )
    for file in files:
        tracker.log_input(
            "ground truth manifest" if len(files) == 1 else f"manifest: {file.name}", "application/x-ndjson", file
        )
    for name in SPLITS:
        tracker.log_output(f"{name} RecordIO", "application/x-recordio", out / f"{name}.rec")
    tracker.log_artifact(out / "problems.json", name="data", media_type="application/json")
    tracker.log_metrics(
        {
            **{f"frames_{name}": written[name][0] for name in SPLITS},
            **{f"frames_{name}_no_ball": written[name][1] for name in SPLITS},
            "manifest_problems": sum(problems.counts.values()),
        }
    )


def train(cfg: DictConfig, tracker: Tracker) -> None:
    """Train the zoo network on train.rec; mAP@0.5 on val.rec each model.val_interval epochs chooses the checkpoint."""
    from mlexp.tasks.object_detection.families import FAMILY_TRAINING

    model, augmentation = _model(cfg), _augmentation(cfg)
    family = network_choice.check(model)
    train_rec, val_rec = _existing(cfg, "train.rec", "prepare"), _existing(cfg, "val.rec", "prepare")
    frames = len(json.loads(records.frames_json(train_rec).read_text()))
    model = replace(model, batch_size=min(model.batch_size, frames))  # at least one full batch per epoch
    net, pretrained = networks.build(
        model,
        lambda message: print(f"notice: {message}", flush=True),
        train_box_sizes=records.box_sizes(train_rec, model.input_size, model.tile_size),
        client=tracker.client if model.init_from else None,  # resolves model.init_from=runs:/...
    )
    tracker.log_parameters({**OmegaConf.to_container(cfg.model, resolve=True), "pretrained_base_loaded": pretrained})  # type: ignore[dict-item]
    tracker.log_input("train RecordIO", "application/x-recordio", train_rec)
    tracker.log_input("val RecordIO", "application/x-recordio", val_rec)

    def validate(network: Any) -> float:
        found = evaluation.detect(network, val_rec, augmentation, model.input_size, model.tile_size, model.tile_overlap)
        return evaluation.voc_ap_50(found)

    def on_epoch(epoch: training.Epoch) -> None:
        values = {f"train_{name}": value for name, value in epoch.losses.items()}
        values |= {"epoch_images_per_s": epoch.images_per_s, "lr": epoch.lr}
        if epoch.val_map_50 is not None:
            values["val_map_50"] = epoch.val_map_50
        tracker.log_metrics(values, step=epoch.epoch)  # one call: the epoch's values reach the MLflow UI together
        shown = ", ".join(f"{k}={v:.4f}" for k, v in epoch.losses.items())
        validated = f", val mAP@0.5={epoch.val_map_50:.4f}" if epoch.val_map_50 is not None else ""
        print(f"epoch {epoch.epoch}/{model.epochs}: {shown}, {epoch.images_per_s:.1f} images/s{validated}", flush=True)

    models = Path(cfg.paths.models)
    history = training.fit(
        net, FAMILY_TRAINING[family](net, model, augmentation), model, train_rec, models, validate, on_epoch
    )
    epochs = [vars(e) for e in history.epochs]
    # the kept checkpoint's validation mAP closes the curve, so the trial's val_map_50 (the objective) is the best
    tracker.log_metric("val_map_50", history.best_map_50, step=history.epochs[-1].epoch)
    tracker.log_metrics(
        {
            "best_val_map_50": history.best_map_50,
            "best_epoch": history.best_epoch,
            # the first epoch pays for hybridizing and memory planning
            "train_images_per_s": float(np.mean([e["images_per_s"] for e in epochs[1:] or epochs])),
            "final_train_loss": float(sum(epochs[-1]["losses"].values())),
            "train_seconds": history.train_seconds,
            # 1: model.max_train_seconds ended training before model.epochs
            "train_budget_spent": float(history.budget_spent),
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
        charts.training_curves(epochs, plots / "training_curves.png", history.best_epoch),
        name="plots",
        media_type="image/png",
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
    """Once, on test.rec: mAP@0.5 (the headline), mAP@[.5:.95], PR curve, mAP per characteristic, false
    positives on frames without a ball, inference fps."""
    from mlexp.tasks.object_detection.speed import frames_per_second

    model, augmentation = _model(cfg), _augmentation(cfg)
    test_rec = _existing(cfg, "test.rec", "prepare")
    net, architecture = networks.load(_existing(cfg, "model.params", "train").parent)
    size, tile = int(architecture["input_size"]), architecture.get("tile_size")
    overlap = int(architecture.get("tile_overlap") or 0)
    found = evaluation.detect(net, test_rec, augmentation, size, tile, overlap)
    whole_side = evaluation.whole_frame_side(net)
    map_50 = evaluation.voc_ap_50(found)
    recall, precision = evaluation.pr_curve(found)
    frames = json.loads(records.frames_json(test_rec).read_text())
    attributes = evaluation.frame_attributes(frames, found, augmentation.small_box_px)
    rows = evaluation.sensitivity(found, attributes, model.score_threshold)
    false_positives = evaluation.false_positive_rate_no_ball(found, model.score_threshold)
    # a frame costs all its windows (tiles): timed at the test frames' size
    width, height = frames[0]["size"] if frames else (1280, 720)
    windows = tiling.windows(width, height, size, tile, overlap, whole_side)
    fps = frames_per_second(net, windows, model.speed_frames, hybridize=True)
    fps_imperative = frames_per_second(net, windows, model.speed_frames, hybridize=False)
    tracker.log_input("test RecordIO", "application/x-recordio", test_rec)
    tracker.log_input("model", "application/x-mxnet-params", _existing(cfg, "model.params", "train"))
    tracker.log_metrics(
        {
            "map_50": map_50,
            "test_map_50": map_50,
            "map_50_95": evaluation.coco_map(found),
            "false_positive_rate_no_ball": false_positives,
            "inference_fps": fps,
            "inference_fps_imperative": fps_imperative,
            "hybridize_speedup": fps / fps_imperative,
            **{f"map_50_{r['attribute']}_{r['value']}": r["map_50"] for r in rows if "false_positive_rate" not in r},
        }
    )
    plots = Path(cfg.paths.reports) / "plots"
    with _csv_file(plots / "precision_recall.csv") as writer:
        writer.writerow(["recall", "precision"])
        writer.writerows(zip(recall.round(5), precision.round(5)))
    with _csv_file(plots / "sensitivity.csv") as writer:
        writer.writerow(["attribute", "value", "frames", "map_50", "false_positive_rate"])
        writer.writerows(
            [r["attribute"], r["value"], r["frames"], round(r["map_50"], 5), _rounded(r.get("false_positive_rate"))]
            for r in rows
        )
    title = f"{architecture['network']}: test frames"
    for chart in (
        charts.precision_recall(recall, precision, map_50, plots / "precision_recall.png", title),
        charts.sensitivity_bars(rows, map_50, plots / "sensitivity.png"),
    ):
        tracker.log_artifact(chart, name="plots", media_type="image/png")
    tracker.log_artifact(plots / "sensitivity.csv", name="plots", media_type="text/csv")
    speed = f"{fps:.1f} fps hybridized ({fps_imperative:.1f} not)"
    tested = f"{len(frames)} test {charts.frames_word(len(frames))}"
    print(f"test mAP@0.5 {map_50:.4f} on {tested}; {speed}", flush=True)
    print("\n".join(_table_line(r) for r in rows), flush=True)


def _rounded(value: float | None) -> str:
    return "" if value is None else f"{value:.5f}"


def _table_line(row: dict[str, Any]) -> str:
    count = row["frames"]
    head = f"  {row['attribute']:<15} {row['value']:<9} {count:>5} {charts.frames_word(count):<6}  "
    if "false_positive_rate" in row:
        return head + f"false positives on {row['false_positive_rate']:.1%} of {charts.them_word(count)}"
    return head + f"mAP@0.5 {row['map_50']:.3f}"


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

    serve(cfg, tracker, _augmentation(cfg))
