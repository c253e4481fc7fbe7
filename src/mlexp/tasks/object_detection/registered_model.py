"""The registered football detector: images in, boxes, scores and classes out (an MLflow pyfunc model).

Input: a DataFrame with one column, `image`, of JPEG or PNG bytes (binary: Python callers pass
bytes, JSON requests to `mlflow models serve` send them base64-encoded, which MLflow decodes).
Parameter `score_threshold` (default: the trial's model.score_threshold) drops weaker detections.
Output: one row per image with `boxes` ([xmin, ymin, xmax, ymax] in the image's pixels, clipped to
it; degenerate and non-finite boxes dropped), `scores`,
`classes` (names), `width` and `height` — what the deploy=local endpoint answers.
"""

from __future__ import annotations

import base64
import json
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

import mxnet as mx
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.pyfunc import PythonModel
from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema
from mlflow.types.schema import Array
from omegaconf import DictConfig, OmegaConf

from mlexp.errors import DataError
from mlexp.serving.http import ServiceError
from mlexp.serving.pyfunc_model import PyfuncModel
from mlexp.tasks.object_detection.config import DetectionAugmentation
from mlexp.tasks.object_detection.endpoint import FootballDetector

EXAMPLE_IMAGES = 2
OUTPUT_COLUMNS = ["boxes", "scores", "classes", "width", "height"]
# the input example's frames as a training job ships them: their records of val.rec, copied as they are into a
# RecordIO of their own, so its model.tar.gz does not carry the whole validation split (gigabytes of frames for a
# real labeling job); a local trial reads val.rec itself
EXAMPLE_FILE = "input_example.rec"
# what pyfunc_model reads from paths.data (the input example's frames): a SageMaker training job ships them in its
# model.tar.gz (mlexp.sagemaker.trained_model)
DATA_FILES = (EXAMPLE_FILE, str(Path(EXAMPLE_FILE).with_suffix(".idx")))


class FootballDetections(PythonModel):
    """The trial's GluonCV detector, normalising frames as in training."""

    def load_context(self, context: Any) -> None:
        settings = json.loads(Path(context.artifacts["inference"]).read_text())
        augmentation = DetectionAugmentation(**settings["augmentation"])
        self.detector = FootballDetector(Path(context.artifacts["network"]), augmentation, settings["score_threshold"])

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        threshold = (params or {}).get("score_threshold")
        rows = []
        for number, image in enumerate(pd.DataFrame(model_input)["image"]):
            data = base64.b64decode(image) if isinstance(image, str) else bytes(image)
            try:
                found = self.detector.detect(data, None if threshold is None else float(threshold))
            except ServiceError as error:  # not a JPEG/PNG, or over the default pixel limit
                raise MlflowException.invalid_parameter_value(f"image {number}: {error.message}") from error
            rows.append({**{k: found[k] for k in ("boxes", "scores", "classes")}, **found["image_size"]})
        return pd.DataFrame(rows, columns=OUTPUT_COLUMNS)


def signature(score_threshold: float) -> ModelSignature:
    return ModelSignature(
        inputs=Schema([ColSpec("binary", "image")]),
        outputs=Schema(
            [
                ColSpec(Array(Array("double")), "boxes"),
                ColSpec(Array("double"), "scores"),
                ColSpec(Array("string"), "classes"),
                ColSpec("long", "width"),
                ColSpec("long", "height"),
            ]
        ),
        params=ParamSchema([ParamSpec("score_threshold", "double", score_threshold)]),
    )


def _first_records(rec: Path, count: int = EXAMPLE_IMAGES) -> list[bytes]:
    """The first `count` packed records (label and original image bytes) of an indexed RecordIO."""
    reader = mx.recordio.MXIndexedRecordIO(str(rec.with_suffix(".idx")), str(rec), "r")
    try:
        return [reader.read_idx(key) for key in sorted(reader.keys)[:count]]
    finally:
        reader.close()


def example_images(rec: Path, count: int = EXAMPLE_IMAGES) -> pd.DataFrame:
    """The first held-out frames' original image bytes, from the validation RecordIO (or EXAMPLE_FILE)."""
    return pd.DataFrame({"image": [mx.recordio.unpack(record)[1] for record in _first_records(rec, count)]})


def example_records(cfg: DictConfig) -> Path:
    """The trial's val.rec, else EXAMPLE_FILE (where a training job's model came back without it): a split the
    trial made wins over an example left from an earlier job's files."""
    data = Path(cfg.paths.data)
    split = data / "val.rec"
    return split if split.is_file() or not (data / EXAMPLE_FILE).is_file() else data / EXAMPLE_FILE


def write_data_files(cfg: DictConfig) -> None:
    """In a training job, before its data files are shipped: the input example's records of val.rec as
    EXAMPLE_FILE (none when the stages wrote no val.rec: the trial on this machine then names the missing file)."""
    data = Path(cfg.paths.data)
    if not (data / "val.rec").is_file():
        return
    records = _first_records(data / "val.rec")
    example = data / EXAMPLE_FILE
    writer = mx.recordio.MXIndexedRecordIO(str(example.with_suffix(".idx")), str(example), "w")
    try:
        for key, record in enumerate(records):
            writer.write_idx(key, record)
    finally:
        writer.close()


def pyfunc_model(cfg: DictConfig, staging: Path) -> PyfuncModel:
    """The trial's detector (models folder) and its input normalisation as a pyfunc model."""
    models, examples = Path(cfg.paths.models), example_records(cfg)
    for needed, stage in ((models / "model.params", "train"), (examples, "prepare")):
        if not needed.exists():
            raise DataError(f"{needed} is missing: run the {stage} stage first (mlexp task={cfg.task.name})")
    # the best weights and their architecture, not the training checkpoint beside them
    network = staging / "network"
    network.mkdir(parents=True)
    for name in ("model.params", "model.json"):
        shutil.copy2(models / name, network / name)
    augmentation = DetectionAugmentation(**OmegaConf.to_container(cfg.preprocessing, resolve=True))  # type: ignore[arg-type]
    threshold = float(cfg.model.score_threshold)
    inference = staging / "inference.json"
    inference.write_text(json.dumps({"augmentation": asdict(augmentation), "score_threshold": threshold}, indent=2))
    return PyfuncModel(
        python_model=FootballDetections,
        artifacts={"network": network, "inference": inference},
        input_example=example_images(examples),
        signature=signature(threshold),
        requirements=("mxnet", "gluoncv", "opencv-python", "Pillow"),
        params={"score_threshold": threshold},
    )
