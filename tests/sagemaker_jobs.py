"""A training job played for real on the fake AWS: its container runs the uploaded code's entry in a temporary /opt/ml.

`completed_job(aws, lambda params: run_entry(aws, params, opt_ml))` makes each CreateTrainingJob complete with what
`python -m mlexp.sagemaker.entry` left: its model folder as the job's model.tar.gz in S3, its metric lines as the
job's final metrics. `registered_version` loads what the trial registered here, as MLflow serves it.
"""

from __future__ import annotations

import io
import json
import math
import re
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO
from sagemaker_aws import FakeAws, container_env, on_create_training_job, put_model


def job_project(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project of its own (its registry starts empty) at `folder`, recording straight to its store."""
    shutil.copytree(REPO / "conf", folder / "conf")
    shutil.copy(REPO / "requirements.lock", folder / "requirements.lock")
    monkeypatch.setenv("MLEXP_TRACKING_WRITER", "inline")  # records straight to the store: no writer process
    monkeypatch.delenv("MLEXP_PIPELINE_RUN", raising=False)
    return folder


def archive_of_folder(folder: Path) -> bytes:
    """A folder as SageMaker uploads /opt/ml/model: its contents at the archive's root."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:gz") as tar:
        for path in sorted(folder.rglob("*")):
            tar.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)
    return data.getvalue()


def unpack_code(aws: FakeAws, params: dict[str, Any], opt_ml: Path) -> Path:
    """The job's code channel where its container finds it: the uploaded archive unpacked in `opt_ml`."""
    (code_channel,) = [c for c in params["InputDataConfig"] if c["ChannelName"] == "code"]
    bucket, _, key = code_channel["DataSource"]["S3DataSource"]["S3Uri"].removeprefix("s3://").partition("/")
    code = opt_ml / "input" / "data" / "code"
    code.mkdir(parents=True)
    body = aws.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        tar.extractall(code, filter="data")
    return code


def run_entry(aws: FakeAws, params: dict[str, Any], opt_ml: Path) -> tuple[bytes, dict[str, float]]:
    """The job's container: the uploaded code archive's entry run in `opt_ml`; (model.tar.gz, metrics printed).

    Each metric the job defines is printed with the value the trial wrote, unless the trial did not measure it (an
    active-learning metric when that stage is off) or it is not finite: SageMaker's metric parser reads numbers only.
    """
    code = unpack_code(aws, params, opt_ml)
    env = container_env(code, opt_ml, params["HyperParameters"])
    done = subprocess.run(
        [sys.executable, "-m", "mlexp.sagemaker.entry"], cwd=code, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    # what the job's MetricDefinitions read from its log
    definitions = params["AlgorithmSpecification"]["MetricDefinitions"]
    names = [d["Name"] for d in definitions]
    metrics = {d["Name"]: float(m[0]) for d in definitions if (m := re.findall(d["Regex"], done.stdout))}
    written = json.loads((opt_ml / "model" / "reports" / "metrics.json").read_text())
    measured = {name: float(written[name]) for name in names if math.isfinite(written.get(name, math.nan))}
    assert metrics == pytest.approx(measured, rel=1e-9), done.stdout
    return archive_of_folder(opt_ml / "model"), metrics


@contextmanager
def completed_job(
    aws: FakeAws, container: Callable[[dict[str, Any]], tuple[bytes, dict[str, float]]]
) -> Iterator[dict[str, float]]:
    """On CreateTrainingJob, `container(request)` plays the job: it completes with that model.tar.gz and metrics.

    Yields the final metrics the (last) job reported, filled in once it has run."""
    reported: dict[str, float] = {}

    def play(params: dict[str, Any], job: Any) -> None:
        archive, metrics = container(params)
        job.final_metric_data_list = [
            {"MetricName": name, "Value": value, "Timestamp": job.creation_time} for name, value in metrics.items()
        ]
        put_model(aws, job, archive)
        reported.clear()
        reported.update(metrics)

    with on_create_training_job(aws, play):
        yield reported


def registered_version(project: Path, name: str, version: str) -> Any:
    """Version `models:/<name>/<version>` of the project's registry, loaded as MLflow serves it."""
    import mlflow.pyfunc

    # a version's source is models:/<logged model id>, which MLflow resolves through the global tracking URI
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    try:
        return mlflow.pyfunc.load_model(f"models:/{name}/{version}")
    finally:
        mlflow.set_tracking_uri(None)
