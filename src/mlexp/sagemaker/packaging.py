"""The code archive a training job runs: src/mlexp, the composed config, the job's context and the requirements.

The config travels as a file, not as hyperparameters: SageMaker caps those at 100 keys of 256 characters and
passes them as `--key value`, which is not Hydra's `key=value`.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path, PurePosixPath
from typing import Any

from omegaconf import DictConfig, OmegaConf

from mlexp.errors import ConfigError

ARCHIVE = "mlexp_code.tar.gz"
CONFIG_FILE = "mlexp_config.yaml"
JOB_FILE = "mlexp_job.json"
REQUIREMENTS_FILE = "requirements.txt"
# where SageMaker puts what the job reads and what it keeps (https://docs.aws.amazon.com/sagemaker/latest/dg/)
CODE_DIR = "/opt/ml/input/data/code"
INPUT_DIR = "/opt/ml/input/data"
MODEL_DIR = "/opt/ml/model"  # uploaded as the job's model.tar.gz
OUTPUT_DIR = "/opt/ml/output/data"  # uploaded as the job's output.tar.gz
SKIPPED_SUFFIXES = (".pyc", ".pyo")


def s3_inputs(cfg: DictConfig) -> dict[str, tuple[str, str]]:
    """dataset.* values that are s3:// URIs, as {channel: (config key, uri)}; the channel is the key, dots as '_'."""
    dataset = OmegaConf.to_container(cfg.dataset, resolve=True) if cfg.get("dataset") is not None else {}
    found: dict[str, tuple[str, str]] = {}

    def visit(node: Any, key: str) -> None:
        if isinstance(node, dict):
            for name, value in node.items():
                visit(value, f"{key}.{name}" if key else str(name))
        elif isinstance(node, str) and node.startswith("s3://"):
            found[key.replace(".", "_")] = (f"dataset.{key}", node)

    visit(dataset, "")
    return found


def _is_object(s3: Any, uri: str) -> bool:
    """Whether `uri` names one S3 object (HeadObject finds it), not a prefix of several."""
    from botocore.exceptions import ClientError

    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not key or key.endswith("/"):
        return False
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError:
        return False  # 404 (a prefix) or no HeadObject right on it: the channel is a folder either way
    return True


def channel_path(channel: str, uri: str, s3: Any = None) -> str:
    """Where the container sees an S3 input: its channel folder, and the object's name when the URI names one.

    With an S3 client the URI is looked up (DVC's remote objects, files/md5/ab/<hash>, have no suffix to go by);
    without one a name with a dot is taken for a file.
    """
    name = PurePosixPath(uri.removeprefix("s3://")).name
    folder = f"{INPUT_DIR}/{channel}"
    if s3 is not None:
        return f"{folder}/{name}" if _is_object(s3, uri) else folder
    return folder if uri.endswith("/") or "." not in name else f"{folder}/{name}"


def container_config(cfg: DictConfig, s3: Any = None) -> dict[str, Any]:
    """The composed config as the container runs it: local compute, its folders and its S3 inputs' paths.

    `s3` (a boto3 S3 client) tells an input object from a prefix; without it the name decides (channel_path).
    """
    resolved = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    assert isinstance(resolved, dict)
    container = OmegaConf.create(resolved)
    container.compute.target = "local"  # inside the job the stages run on its instance
    container.deploy.target = "none"  # this machine deploys the model that comes back (training_job)
    container.compute.dry_run = False
    container.paths = {
        "root": CODE_DIR,
        "data": f"{OUTPUT_DIR}/data",
        "models": MODEL_DIR,
        "reports": f"{MODEL_DIR}/reports",
    }
    uri = container.tracking.get("uri")
    if not uri or not str(uri).startswith(("http://", "https://", "arn:", "databricks")):
        # a store on this machine is out of the job's reach: the job keeps its own, returned in output.tar.gz
        container.tracking.uri = f"sqlite:///{OUTPUT_DIR}/mlflow.db"
    for channel, (key, uri_value) in s3_inputs(cfg).items():
        OmegaConf.update(container, key, channel_path(channel, uri_value, s3))
    plain = OmegaConf.to_container(container)
    assert isinstance(plain, dict)
    return {str(key): value for key, value in plain.items()}


def _add_tree(archive: tarfile.TarFile, folder: Path, name: str) -> None:
    for path in sorted(folder.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in SKIPPED_SUFFIXES:
            archive.add(path, arcname=f"{name}/{path.relative_to(folder).as_posix()}")


def _add_text(archive: tarfile.TarFile, name: str, text: str, folder: Path) -> None:
    staged = folder / name
    staged.write_text(text)
    archive.add(staged, arcname=name)


def package_code(cfg: DictConfig, root: Path, job: dict[str, Any], folder: Path, s3: Any = None) -> Path:
    """Write the code archive into `folder`: src/mlexp, conf/, the container's config and job context.

    `s3` (the session's S3 client) looks up the S3 inputs, so each one's path in the config is its file or folder.
    """
    source = root / "src" / "mlexp"
    if not source.is_dir():
        import mlexp

        source = Path(mlexp.__file__).parent  # an installed mlexp (no src/ checkout)
    folder.mkdir(parents=True, exist_ok=True)
    archive_path = folder / ARCHIVE
    with tarfile.open(archive_path, "w:gz") as archive:
        _add_tree(archive, source, "src/mlexp")
        if (root / "conf").is_dir():
            _add_tree(archive, root / "conf", "conf")  # the project root marker inside the container
        _add_text(archive, CONFIG_FILE, OmegaConf.to_yaml(OmegaConf.create(container_config(cfg, s3))), folder)
        _add_text(archive, JOB_FILE, json.dumps(job, indent=2) + "\n", folder)
        requirements = cfg.compute.get("requirements")
        if requirements:
            path = Path(requirements) if Path(requirements).is_absolute() else root / requirements
            if not path.is_file():
                raise ConfigError(
                    f"compute.requirements={requirements}: no such file; name the pip requirements the container "
                    "installs (default requirements.lock), or null when compute.image_uri already has them"
                )
            _add_text(archive, REQUIREMENTS_FILE, path.read_text(), folder)
    return archive_path
