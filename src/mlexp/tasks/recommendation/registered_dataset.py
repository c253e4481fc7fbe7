"""deploy=registry across datasets: a model is ranked against the champion only when both learnt the same catalogue.

NDCG@10 on MovieLens says nothing about NDCG@10 on the video platform, and a champion swapped for a model of another
catalogue has the service answer with another catalogue's item IDs. So each registered version is tagged with its
dataset (`mlexp.dataset`), and a model of another dataset than the champion's is not registered under its name, as
text_classification refuses a model of other classes: a registry entry per dataset (`deploy.model_name=...`) keeps
each its own champion.

A dataset is told apart by what identifies it: the dataset option, with your folder for dataset=personalize_csv
(its path, not where a symlink leads; not a hash of its item IDs: your catalogue grows between retrainings and
stays yours) and the sizes of the generated platform (its users, videos and interactions: a platform of other sizes
is other data, its NDCG does not compare; the seed redraws the same platform, as a sweep over seeds compares it).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from mlflow.entities import Run
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from mlexp.errors import MlexpError
from mlexp.serving.registered_name import registered_name
from mlexp.tasks.recommendation.dataset_rules import FILES, OPTIONS, PULSELIVE
from mlexp.tracking import Tracker, TrackingStore
from mlexp.tracking.store import sqlite_path
from mlexp.tracking.tags import quoted

DATASET_TAG = "mlexp.dataset"
# the trial a version came from (mlexp.serving.registry tags each version with it)
TRIAL_TAG = "mlexp.trial_run_id"
# a generated platform's tag before its users and interactions were part of it: its trial's parameters tell them
SIZED_BY_VIDEOS_ALONE = re.compile(r"pulselive_videos \(\d+ videos\)")
# how long a trial waits for another's registration (an upload of a large model to a remote artifact store)
REGISTRATION_WAIT_S = 600


@dataclass(frozen=True)
class GeneratedSizes:
    """dataset.n_users, n_videos and n_interactions: what the generated platform draws besides its seed."""

    users: int
    videos: int
    interactions: int

    @classmethod
    def of(cls, dataset: Mapping[str, Any]) -> GeneratedSizes:
        """From the dataset's config, or its trial's parameters (strings)."""
        return cls(*(int(dataset.get(f"n_{size}", 0)) for size in ("users", "videos", "interactions")))


def catalogue(source: str, path: str | None, sizes: GeneratedSizes, root: str) -> str:
    """The dataset a model learnt, in words: `movielens_100k`,
    `pulselive_videos (2000 users, 1500 videos, 100000 interactions)`, `personalize_csv (data/shop)`."""
    option = OPTIONS.get(source, source)
    if source == PULSELIVE:
        return f"{option} ({sizes.users} users, {sizes.videos} videos, {sizes.interactions} interactions)"
    if source == FILES:
        return f"{option} ({_folder(path or '', root)})"
    return option


def _folder(path: str, root: str) -> str:
    """dataset.path as the prepare stage reads it (relative to paths.root), named from the project when inside it,
    so a relative and an absolute path to the same folder are one dataset. A symlink is not followed: a `latest`
    link moved to each new export names one catalogue that grows, and a project's `data/shop` names the same
    dataset on every teammate's machine, wherever its link leads there."""
    given = Path(path).expanduser()
    folder = Path(os.path.normpath(given if given.is_absolute() else Path(root) / given))
    try:
        return folder.relative_to(Path(os.path.normpath(root))).as_posix()
    except ValueError:
        return folder.as_posix()


def of_trial(cfg: DictConfig) -> str:
    source = str(getattr(cfg.dataset.source, "value", cfg.dataset.source))
    return catalogue(source, cfg.dataset.path, GeneratedSizes.of(cfg.dataset), str(cfg.paths.root))


def of_version(client: MlflowClient, version: ModelVersion, root: str = "") -> str | None:
    """The dataset a registered version learnt: its tag, else read from its trial's parameters (a version
    registered before the tag existed, or whose trial has not tagged it yet); None when neither tells. `root`: the
    project a relative dataset.path of the trial is read from."""
    tags = version.tags or {}
    tagged = tags.get(DATASET_TAG)
    if tagged and not SIZED_BY_VIDEOS_ALONE.fullmatch(tagged):
        return tagged
    # no tag, or one naming the videos alone: a trial deleted since (or in another store) leaves it unknown, which
    # compares with any dataset, rather than a mismatch that would refuse every later model
    try:
        trial = client.get_run(tags[TRIAL_TAG])
    except (KeyError, MlflowException):
        return None
    return of_run(trial, root)


def of_run(trial: Run, root: str = "") -> str | None:
    """The dataset a trial learnt, from its parameters; None when they do not tell. `root`: the project a relative
    dataset.path is read from, when the trial's tags do not say."""
    params = trial.data.params
    if "dataset.source" not in params:
        return None
    path = params.get("dataset.path")
    return catalogue(
        params["dataset.source"],
        None if path in (None, "None", "") else path,
        GeneratedSizes.of(
            {key.removeprefix("dataset."): value for key, value in params.items() if key.startswith("dataset.")}
        ),
        trial.data.tags.get("paths.root") or root,
    )


def model_name(cfg: DictConfig) -> str:
    return registered_name(cfg)[0]


def alias(cfg: DictConfig) -> str:
    return registered_name(cfg)[1]


def another_datasets_champion(cfg: DictConfig, tracker: Tracker) -> bool:
    """True, with the line saying why and what to do, when the alias holder learnt another dataset than this
    trial: the model is then not registered (compared with nothing, it would take the alias from a model whose
    figures do not compare)."""
    name, ours, client = model_name(cfg), of_trial(cfg), tracker.client
    tracker.set_tags({DATASET_TAG: ours})
    try:
        holder = client.get_model_version_by_alias(name, alias(cfg))
    except MlflowException:
        return False  # no champion yet
    theirs = of_version(client, holder, str(cfg.paths.root))
    if theirs is None or theirs == ours:
        return False
    tracker.set_tags({"mlexp.promoted": "false"})
    print(
        f"selection: not registered: this model learnt {ours}, champion {name} v{holder.version} learnt {theirs}, so "
        "their scores do not compare (and the service would answer with another catalogue's items); register it "
        f"under a name of its own: deploy.model_name={name}_{_slug(ours)}",
        flush=True,
    )
    return True


def _slug(dataset: str) -> str:
    """A dataset in words as part of a model name: `pulselive_videos (300 videos)` → `pulselive_videos_300_videos`."""
    return re.sub(r"[^A-Za-z0-9]+", "_", dataset).strip("_")


def tag_the_version(cfg: DictConfig, tracker: Tracker) -> None:
    """Tag the version this trial registered with its dataset, which the next trial's check reads."""
    name, client = model_name(cfg), tracker.client
    for version in client.search_model_versions(f"name = {quoted(name)} and run_id = '{tracker.run_id}'"):
        client.set_model_version_tag(name, str(version.version), DATASET_TAG, of_trial(cfg))


@contextmanager
def one_registration_at_a_time(cfg: DictConfig) -> Iterator[None]:
    """Held from the dataset check to the version's tag: two trials of different datasets registering at once (a
    parallel sweep over `dataset=`) would each find no champion and both register, the better score taking the alias.
    A lock beside a local SQLite store; a tracking server has none (as the registry's own alias lock). A trial that
    has to wait says so: a trial standing still for minutes without a word looks hung."""
    db = sqlite_path(TrackingStore.resolve(cfg.tracking.uri, Path(cfg.paths.root)).uri)
    if db is None:
        yield
        return
    lock = FileLock(str(db) + ".datasets.lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        print(f"selection: waiting for another trial's registration to finish ({lock.lock_file})", flush=True)
        try:
            lock.acquire(timeout=REGISTRATION_WAIT_S)
        except Timeout:
            raise MlexpError(
                f"waited {REGISTRATION_WAIT_S // 60} minutes for another trial's registration to finish (it holds "
                f"{lock.lock_file}); this trial's model was not registered: let that one finish, then run this "
                "trial again"
            ) from None
    try:
        yield
    finally:
        lock.release()
