"""The DVC S3 remote for real: `dvc push` / `dvc pull` of the project's raw data against moto's S3 on loopback."""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
from pathlib import Path

import boto3
import pytest

from dvc_copy import copy_project, dvc
from sagemaker_aws import moto_server  # noqa: F401

BUCKET = "mlexp-data"
PREFIX = "dvc"
# the project's DVC-tracked data: the raw-data stages of the root dvc.yaml
RAW_STAGES = {"abalone_raw": "data/raw/abalone.data", "churn_raw": "data/raw/churn.txt"}


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_dvc_push_sends_the_raw_data_to_s3_and_pull_restores_it_into_a_fresh_cache(tmp_path, moto_server):  # noqa: F811
    # fail first and plainly: without the plugin DVC only says "s3 is supported, but requires 'dvc-s3'"
    if importlib.util.find_spec("dvc_s3") is None:
        pytest.fail(
            "dvc-s3 is not installed in this environment: the S3 remote cannot work; "
            'add it to requirements.lock (pip install -c requirements.lock "dvc[s3]")'
        )
    copy = copy_project(tmp_path / "copy")
    dvc(copy, "repro", *RAW_STAGES)
    originals = {path: (copy / path).read_bytes() for path in RAW_STAGES.values()}
    # moto_server put fake credentials and the region in os.environ: the `dvc` subprocesses inherit them
    s3 = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)

    # the README's set-up, plus the endpoint a non-AWS S3 (here moto) needs
    dvc(copy, "remote", "add", "-d", "s3", f"s3://{BUCKET}/{PREFIX}")
    dvc(copy, "remote", "modify", "s3", "endpointurl", moto_server)
    pushed = dvc(copy, "push", *RAW_STAGES)
    assert "2 files pushed" in pushed.stdout, pushed.stdout

    # DVC 3's remote layout: files/md5/<first two hex digits>/<the rest>, the bytes as they are
    objects = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/")
    keys = {entry["Key"] for entry in objects.get("Contents", [])}
    expected = {path: _md5(copy / path) for path in RAW_STAGES.values()}
    assert keys == {f"{PREFIX}/files/md5/{md5[:2]}/{md5[2:]}" for md5 in expected.values()}
    for path, md5 in expected.items():
        stored = s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/files/md5/{md5[:2]}/{md5[2:]}")["Body"].read()
        assert stored == originals[path]

    # the URI a training job's input channel takes (dataset.path=s3://...): DVC names it for a tracked file
    shown = dvc(copy, "get", "--show-url", ".", RAW_STAGES["abalone_raw"]).stdout.strip()
    abalone = expected[RAW_STAGES["abalone_raw"]]
    assert shown == f"s3://{BUCKET}/{PREFIX}/files/md5/{abalone[:2]}/{abalone[2:]}"

    # a fresh cache and no workspace copies: everything must come back from the bucket
    shutil.rmtree(copy / ".dvc" / "cache")
    for path in RAW_STAGES.values():
        (copy / path).unlink()
    pulled = dvc(copy, "pull", *RAW_STAGES)
    assert "2 files fetched" in pulled.stdout, pulled.stdout
    for path, content in originals.items():
        assert (copy / path).read_bytes() == content
