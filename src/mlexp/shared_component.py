"""A Pre-processing component shared by trials, as SageMaker Experiments' `trial.add_trial_component`.

Trials that differ only in what comes after pre-processing (a sweep over architectures, say)
need its outputs once. The first trial runs the stage as usual and publishes what the stage
declares it writes into `.mlexp/shared/<task>/<key>/`; every later trial with the same key
gets hard-linked copies of those files and links to the original component run (a tag and an
MLflow dataset input) instead of recomputing, and prints again the warnings the stage printed
(kept in the record beside its metrics): each trial on a bad file says so. The key covers
everything the stage's results depend on: the config values it reads, the input data files
(path, size, modification time) and the source of the task package and of mlexp's data
loaders. Parallel trials wait on one file lock, so the stage runs once even when they start
together.
"""

from __future__ import annotations

import functools
import glob
import hashlib
import importlib
import json
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from filelock import FileLock
from omegaconf import DictConfig, OmegaConf

from mlexp import tasks
from mlexp.paths import resolve
from mlexp.tracking import Trial, tags
from mlexp.tracking.provenance import package_versions

SHARED_STAGE = "prepare"
SHARED_TAG = tags.SHARED_PREPROCESSING
FOLDERS = ("data", "models", "reports")


def _source_digest(task: tasks.Task, digest: hashlib._Hash) -> None:
    """The task package's and mlexp's data loaders' source: a code change means a new key."""
    import mlexp.data

    package = importlib.import_module(task.stages_module.rsplit(".", 1)[0])
    sources = []
    for folder in (Path(package.__file__ or "").parent, Path(mlexp.data.__file__ or "").parent):
        for source in sorted(folder.rglob("*.py")):
            stat = source.stat()
            sources.append((str(source), str(source.relative_to(folder)), stat.st_size, stat.st_mtime_ns))
    digest.update(_sources_hash(tuple(sources)).encode())


@functools.lru_cache(maxsize=16)
def _sources_hash(sources: tuple[tuple[str, str, int, int], ...]) -> str:
    """The files' names and bytes as one hash, read again only when a file's size or time changes."""
    digest = hashlib.sha256()
    for path, relative, _, _ in sources:
        digest.update(relative.encode())
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()


class NotShareable(Exception):
    """The stage's inputs have no version this machine can check: run it, never reuse it."""


def _data_files(cfg: DictConfig) -> list[Path]:
    """Every file the dataset config names (paths, folders, globs such as `dataset.path`, `image_root`)."""
    files: list[Path] = []
    for value in flatten_values(OmegaConf.to_container(cfg.dataset, resolve=True)):
        # an enum (format: parquet) is a choice among names, never a path: Path() of one reads `FileFormat.parquet`
        if not isinstance(value, str) or isinstance(value, Enum) or not value:
            continue
        if "://" in value:
            raise NotShareable(value)  # remote data (s3://…) may change under the same name
        target = resolve(value)
        if glob.has_magic(value):
            matched = [Path(p) for p in glob.glob(str(target), recursive=True)]
            if not matched:
                raise NotShareable(value)  # the stage itself reports the empty pattern
            files.extend(matched)
        elif target.is_dir():
            files.extend(target.rglob("*"))
        elif target.is_file():
            files.append(target)
        elif "/" in value or target.suffix:
            raise NotShareable(value)  # a path to nothing: the stage itself says so
    return sorted(f for f in files if f.is_file())


def flatten_values(node: object) -> Iterator[object]:
    if isinstance(node, dict):
        for value in node.values():
            yield from flatten_values(value)
    elif isinstance(node, list):
        for value in node:
            yield from flatten_values(value)
    else:
        yield node


def share_key(cfg: DictConfig, task: tasks.Task) -> str | None:
    """What the Pre-processing results depend on, as one hash; None when they must not be shared.

    The whole `dataset` section (paths DVC passes as arguments included), the config keys the
    stage declares, its command's arguments, the input files' path, size and modification
    time, the installed library versions and the source of the task and of the loaders.
    """
    spec = task.spec(SHARED_STAGE)
    engine = OmegaConf.select(cfg, "engine.name", default=None)
    if not spec.outs or engine not in (None, "duckdb"):
        return None  # a remote engine's tables have no version here
    try:
        files = _data_files(cfg)
    except NotShareable:
        return None
    digest = hashlib.sha256(task.name.encode())
    for key in sorted({"dataset", *spec.params}):
        value = OmegaConf.select(cfg, key)
        plain = OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
        digest.update(f"{key}={json.dumps(plain, sort_keys=True, default=str)}\n".encode())
    digest.update("\n".join(spec.args).encode())
    for file in files:
        stat = file.stat()
        digest.update(f"{file.resolve()}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    digest.update(json.dumps(package_versions(), sort_keys=True).encode())
    _source_digest(task, digest)
    return digest.hexdigest()


def _outputs(cfg: DictConfig, task: tasks.Task) -> list[tuple[str, Path]]:
    """Each declared output of the stage as (folder name, path relative to that folder)."""
    found = []
    for path in tasks.declared_outputs(task, SHARED_STAGE, cfg):
        for folder in FOLDERS:
            base = Path(cfg.paths[folder])
            if path == base or base in path.parents:
                found.append((folder, path.relative_to(base)))
                break
    return found


def _copy(source: Path, target: Path) -> None:
    """Hard links where the file system allows them (no bytes copied), else a copy."""
    if source.is_dir():
        shutil.copytree(source, target, copy_function=_link_or_copy, dirs_exist_ok=True)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        _link_or_copy(str(source), str(target))


def _link_or_copy(source: str, target: str) -> None:
    if os.path.lexists(target):
        os.unlink(target)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


@dataclass
class SharedPreprocessing:
    """The shared Pre-processing of one key: reuse it when published, else publish after running it."""

    folder: Path
    key: str
    outputs: list[tuple[str, Path]]

    @property
    def record(self) -> Path:
        return self.folder / "component.json"

    def published_run(self, trial: Trial) -> str | None:
        """The component run whose outputs are here, if complete and published from this trial's store.

        Read from the record alone, so that the store (still being set up in the background) is not waited
        for: the record is written only after its component FINISHED, and `mlexp delete` removes it with the run.
        """
        if not self.record.exists():
            return None
        record = json.loads(self.record.read_text())
        if record.get("store") != trial.writer.store.uri or "metrics" not in record:
            return None  # another store's run, or a record from before stores were named: run the stage again
        return str(record["run_id"])

    def reuse(self, cfg: DictConfig, trial: Trial, run_id: str) -> None:
        """Copy the published outputs into this trial's folders and link the trial to the component."""
        for folder, relative in self.outputs:
            source = self.folder / folder / relative
            if source.exists():
                _copy(source, Path(cfg.paths[folder]) / relative)
        record = json.loads(self.record.read_text())
        trial.tracker.set_tags({SHARED_TAG: run_id, tags.SHARED_KEY: self.key})
        trial.tracker.log_metrics(record["metrics"])
        self._link_dataset(trial)
        trial.tracker.flush()
        source_trial = record.get("trial", "")
        print(f"Pre-processing: reusing component {run_id} of trial {source_trial} (same data, config and code)")
        for line in record.get("warnings", []):  # none kept by a record from before they were
            print(f"{line} (from the reused pre-processing of trial {source_trial})", file=sys.stderr, flush=True)

    def publish(
        self, cfg: DictConfig, trial: Trial, component: str, metrics: dict[str, float], warnings: list[str]
    ) -> None:
        """Keep the outputs of this trial's Pre-processing `component` (with its metrics and the warning lines it
        printed) for the trials after it."""
        run_id = trial.writer.run_id(component)  # the store's id: later trials link to it
        partial = self.folder.with_name(self.folder.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        for folder, relative in self.outputs:
            source = Path(cfg.paths[folder]) / relative
            if source.exists():
                _copy(source, partial / folder / relative)
        for file in partial.rglob("*"):
            if file.is_file():
                # trials' hard links share these files: a stage writing one in place fails instead of corrupting it
                file.chmod(file.stat().st_mode & ~0o222)
        record = {"run_id": run_id, "key": self.key, "store": trial.writer.store.uri, "trial": trial.run_id}
        (partial / "component.json").write_text(json.dumps({**record, "metrics": metrics, "warnings": warnings}) + "\n")
        shutil.rmtree(self.folder, ignore_errors=True)
        partial.replace(self.folder)
        trial.tracker.set_tags({SHARED_TAG: run_id, tags.SHARED_KEY: self.key})
        self._link_dataset(trial)

    def _link_dataset(self, trial: Trial) -> None:
        source = str(self.folder.resolve())
        trial.writer.log_dataset(trial.run, "preprocessed data", self.key, source, "shared pre-processing")


@contextmanager
def shared_preprocessing(cfg: DictConfig, task: tasks.Task) -> Iterator[SharedPreprocessing | None]:
    """Hold the lock of this Pre-processing's key while a trial reuses or produces it; None: not shared."""
    if cfg.stage is not None or cfg.params_file or SHARED_STAGE not in task.stages:
        yield None  # DVC stage runs: DVC's own cache decides what re-runs
        return
    key = share_key(cfg, task)
    outputs = _outputs(cfg, task) if key else []
    if key is None or not outputs:
        yield None
        return
    folder = Path(cfg.paths.root) / ".mlexp" / "shared" / task.name / key[:20]
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock", timeout=-1):
        yield SharedPreprocessing(folder, key, outputs)
