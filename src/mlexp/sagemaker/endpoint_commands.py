"""`mlexp predict` and `mlexp undeploy`: a request to a deploy=sagemaker endpoint, and its removal."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from mlexp.errors import MlexpError
from mlexp.paths import project_root


def configured(target: str) -> tuple[str, str | None]:
    """(endpoint name, region) for a task name (conf/deploy/sagemaker.yaml's settings) or an endpoint name."""
    from mlexp import tasks
    from mlexp.sagemaker.endpoint_setup import endpoint_name

    if target not in tasks.load_all():
        return target, None
    conf = project_root() / "conf" / "deploy" / "sagemaker.yaml"
    deploy = OmegaConf.load(conf) if conf.is_file() else OmegaConf.create({})
    assert isinstance(deploy, DictConfig)
    return endpoint_name(target, deploy.get("endpoint_name")), deploy.get("region")


def _parser(command: str) -> argparse.ArgumentParser:
    what = "send a request to" if command == "predict" else "delete (endpoint, endpoint config, model)"
    parser = argparse.ArgumentParser(prog=f"mlexp {command}", description=f"{what} a deploy=sagemaker endpoint")
    parser.add_argument(
        "target", help="a task (its endpoint mlexp-<task>, or deploy.endpoint_name) or an endpoint name"
    )
    parser.add_argument("--region", help="AWS region (default: deploy.region, else AWS_DEFAULT_REGION)")
    if command == "predict":
        parser.add_argument("--file", type=Path, help="the request body (default: standard input)")
        parser.add_argument("--content-type", default="application/json", help="(default: application/json)")
        parser.add_argument("--accept", default="application/json", help="(default: application/json)")
    return parser


def predict(argv: list[str]) -> int:
    """Run `mlexp predict <task or endpoint> [--file request.json]`: prints the endpoint's answer."""
    from mlexp.sagemaker import endpoint_client as endpoint

    args = _parser("predict").parse_args(argv)
    name, region = configured(args.target)
    if args.file is not None and not args.file.is_file():
        fix = "name the request's file in it" if args.file.is_dir() else "write the request there"
        what = "a folder" if args.file.is_dir() else "no such file"
        raise MlexpError(f"--file {args.file}: {what}; {fix}, or pipe it on standard input")
    body = args.file.read_bytes() if args.file is not None else sys.stdin.buffer.read()
    if not body.strip():
        raise MlexpError('the request is empty: --file request.json, e.g. {"dataframe_records": [{...}]}')
    answer, _ = endpoint.invoke(name, body, args.content_type, args.accept, args.region or region)
    text = answer.decode("utf-8", errors="replace")
    print(text, end="" if text.endswith("\n") else "\n", flush=True)
    return 0


def undeploy(argv: list[str]) -> int:
    """Run `mlexp undeploy <task or endpoint>`: deletes the endpoint, its config and its model."""
    from mlexp.sagemaker import endpoint_client as endpoint

    args = _parser("undeploy").parse_args(argv)
    name, region = configured(args.target)
    for deleted in endpoint.undeploy(name, args.region or region):
        print(f"deleted {deleted}", flush=True)
    return 0
