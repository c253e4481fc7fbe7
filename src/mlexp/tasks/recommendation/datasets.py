"""The prepare stage's input: a Personalize dataset folder, generated, converted from MovieLens or yours."""

from __future__ import annotations

import shutil
from pathlib import Path

from omegaconf import DictConfig

from mlexp.data import movielens, personalize_datasets, pulselive_videos
from mlexp.errors import ConfigError
from mlexp.tasks.recommendation.dataset_rules import files_have_a_path
from mlexp.tasks.recommendation.feature_rules import schemas_of


def schema_folder(cfg: DictConfig) -> Path:
    """conf/recommendation_schemas of the project (the repository's when the project has none)."""
    return schemas_of(Path(cfg.paths.root))


def materialize(cfg: DictConfig, folder: Path) -> Path:
    """Write (or copy) the three Personalize CSVs and their schemas into `folder`; returns the source read."""
    source = str(getattr(cfg.dataset.source, "value", cfg.dataset.source))
    if folder.exists():
        shutil.rmtree(folder)
    if source == "pulselive":
        d = cfg.dataset
        pulselive_videos.write(folder, schema_folder(cfg), d.n_users, d.n_videos, d.n_interactions, cfg.seed)
        return folder
    if source == "movielens":
        movielens.write_personalize(folder, schema_folder(cfg))
        return movielens.packaged_file(movielens.DISTRIBUTION, "MovieLens100k_data.parquet.brotli", "MovieLens-100K")
    if not files_have_a_path(source, cfg.dataset.path):
        raise ConfigError("dataset=personalize_csv needs dataset.path=<folder with interactions.csv and its schema>")
    given = Path(cfg.dataset.path).expanduser()
    if not given.is_absolute():
        given = Path(cfg.paths.root) / given
    personalize_datasets.load(given)  # errors name the user's own files
    folder.mkdir(parents=True)
    for name in personalize_datasets.FILES.values():
        for file in (given / f"{name}.csv", given / f"{name}.schema.json"):
            if file.exists():
                shutil.copyfile(file, folder / file.name)
    return given
