"""A seeded video platform like Pulselive's football club site, written as Personalize's three datasets.

Users have an age group, a favourite player and two fields that mean nothing (shirt size, sign-up
weekday); videos have a category, a sub-category, the players they feature, a duration and a
meaningless thumbnail colour. Each visit shows a user a page of videos (mostly recent ones) and the
user clicks the one with the highest utility plus Gumbel noise, where the utility is known:

    2.2·[favourite player features] + 1.0·affinity(age group, category) + 0.8·taste(user, sub-category)
    + 0.6·quality(video)

A quarter of clicks are accidental (a random video, watched briefly); a click the user meant is
followed by a `watch` whose EVENT_VALUE is the fraction watched, higher for a better match. A third
of the users change favourite player part-way (the users file keeps the old one: drift), users keep
signing up and videos keep arriving (cold start). Device, location and click source carry no signal.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from mlexp.data import personalize_datasets

START = 1_700_000_000  # 2023-11-14, seconds
DAY = 86_400
CATEGORIES = {
    "games": ["league", "cup", "friendly"],
    "interviews": ["press_conference", "player_interview", "manager_interview"],
    "training": ["drills", "behind_the_scenes"],
    "highlights": ["goals", "saves", "skills"],
}
AGE_GROUPS = ["under_18", "18_34", "35_54", "55_plus"]
# which fields carry the utility above and which do not: what the metadata-selection sweep must find
SIGNAL = {"users": ["FAVOURITE_PLAYER", "AGE_GROUP"], "items": ["PLAYERS", "CATEGORY", "SUB_CATEGORY"]}
NOISE = {
    "users": ["SHIRT_SIZE", "SIGNUP_WEEKDAY"],
    "items": ["THUMBNAIL_COLOR"],
    "interactions": ["DEVICE", "LOCATION", "CLICK_SOURCE"],
}
PAGE_SIZE = 40  # videos a visit shows
ACCIDENTAL_CLICKS = 0.25
DRIFTING_USERS = 0.33


def _videos(rng: np.random.Generator, n_videos: int, n_players: int, days: int) -> pd.DataFrame:
    categories = list(CATEGORIES)
    category = rng.integers(0, len(categories), n_videos)
    sub = [rng.choice(CATEGORIES[categories[c]]) for c in category]
    n_featured = rng.integers(1, 4, n_videos)
    players = [sorted(rng.choice(n_players, k, replace=False)) for k in n_featured]
    # half the catalogue exists before the first day; the rest arrives evenly (cold items)
    created = np.where(rng.random(n_videos) < 0.5, START - rng.integers(0, 30 * DAY, n_videos),
                       START + rng.integers(0, days * DAY, n_videos))  # fmt: skip
    base_duration = np.array([600, 900, 300, 180])[category]
    frame = pd.DataFrame(
        {
            "CATEGORY": [categories[c] for c in category],
            "SUB_CATEGORY": sub,
            "PLAYERS": ["|".join(f"player_{p:02d}" for p in ps) for ps in players],
            "DURATION_SECONDS": (base_duration * rng.lognormal(0, 0.4, n_videos)).astype(int) + 20,
            "THUMBNAIL_COLOR": rng.choice(["red", "white", "black", "gold", "blue"], n_videos),
            "CREATION_TIMESTAMP": created.astype("int64"),
            "_category": category,
            "_quality": rng.normal(0, 1, n_videos),
        }
    )
    frame["_players"] = players
    frame = frame.sort_values("CREATION_TIMESTAMP", kind="stable").reset_index(drop=True)
    frame.insert(0, "ITEM_ID", [f"video_{i:06d}" for i in range(n_videos)])
    return frame


def _users(rng: np.random.Generator, n_users: int, n_players: int, days: int) -> pd.DataFrame:
    # 70% are members before the first day, the rest sign up over the period (cold users)
    signup = np.where(rng.random(n_users) < 0.7, START, START + rng.integers(0, days * DAY, n_users))
    favourite = rng.integers(0, n_players, n_users)
    drifts = rng.random(n_users) < DRIFTING_USERS
    new_favourite = np.where(drifts, (favourite + rng.integers(1, n_players, n_users)) % n_players, favourite)
    end = START + days * DAY
    switch = (signup + rng.random(n_users) * (end - signup)).astype("int64")
    return pd.DataFrame(
        {
            "USER_ID": [f"user_{i:06d}" for i in range(n_users)],
            "AGE_GROUP": rng.choice(AGE_GROUPS, n_users, p=[0.15, 0.4, 0.3, 0.15]),
            "FAVOURITE_PLAYER": [f"player_{p:02d}" for p in favourite],
            "SHIRT_SIZE": rng.choice(["S", "M", "L", "XL"], n_users),
            "SIGNUP_WEEKDAY": rng.choice(["mon", "tue", "wed", "thu", "fri", "sat", "sun"], n_users),
            "_signup": signup.astype("int64"),
            "_favourite": favourite,
            "_new_favourite": new_favourite,
            "_switch": switch,
            "_activity": rng.lognormal(0, 0.8, n_users),
        }
    )


def generate(n_users: int, n_videos: int, n_interactions: int, seed: int, n_players: int = 30, days: int = 120):
    """The three datasets (keyed Interactions, Users, Items) and the ground truth, deterministic by seed."""
    rng = np.random.default_rng(seed)
    videos = _videos(rng, n_videos, n_players, days)
    users = _users(rng, n_users, n_players, days)
    n_categories, n_subs = len(CATEGORIES), max(len(s) for s in CATEGORIES.values())
    affinity = rng.normal(0, 1, (len(AGE_GROUPS), n_categories))
    taste = rng.normal(0, 1, (n_users, n_categories * n_subs))
    sub_index = np.array([list(CATEGORIES[c]).index(s) for c, s in zip(videos["CATEGORY"], videos["SUB_CATEGORY"])])
    video_sub = videos["_category"].to_numpy() * n_subs + sub_index
    features_player = np.zeros((n_videos, n_players), dtype=bool)
    for i, ps in enumerate(videos["_players"]):
        features_player[i, ps] = True
    age = users["AGE_GROUP"].map({g: i for i, g in enumerate(AGE_GROUPS)}).to_numpy()
    created = videos["CREATION_TIMESTAMP"].to_numpy()
    quality = videos["_quality"].to_numpy()

    # a click the user meant becomes a click and a watch: about 1.75 rows a visit
    n_visits = max(1, int(n_interactions / (2 - ACCIDENTAL_CLICKS)))
    weights = users["_activity"].to_numpy() * (START + days * DAY - users["_signup"].to_numpy())
    user = np.sort(rng.choice(n_users, n_visits, p=weights / weights.sum()))
    signup = users["_signup"].to_numpy()[user]
    t = (signup + rng.random(n_visits) * (START + days * DAY - signup)).astype("int64")
    available = np.maximum(np.searchsorted(created, t, side="right"), 1)
    # a page: half uniform over what exists, half from the newest 10% (what a front page shows)
    uniform = (rng.random((n_visits, PAGE_SIZE)) * available[:, None]).astype(int)
    fresh_from = np.maximum(available - np.maximum(available // 10, 1), 0)
    fresh = fresh_from[:, None] + (rng.random((n_visits, PAGE_SIZE)) * (available - fresh_from)[:, None]).astype(int)
    page = np.where(rng.random((n_visits, PAGE_SIZE)) < 0.5, uniform, fresh)
    favourite = np.where(t >= users["_switch"].to_numpy()[user], users["_new_favourite"].to_numpy()[user],
                         users["_favourite"].to_numpy()[user])  # fmt: skip
    utility = (
        2.2 * features_player[page, favourite[:, None]]
        + 1.0 * affinity[age[user][:, None], videos["_category"].to_numpy()[page]]
        + 0.8 * taste[user[:, None], video_sub[page]]
        + 0.6 * quality[page]
    )
    choice = np.argmax(utility + rng.gumbel(0, 1, utility.shape), axis=1)
    chosen = page[np.arange(n_visits), choice]
    best = utility[np.arange(n_visits), choice]
    accidental = rng.random(n_visits) < ACCIDENTAL_CLICKS
    chosen = np.where(accidental, uniform[:, 0], chosen)
    watched = np.where(accidental, rng.uniform(0.0, 0.2, n_visits),
                       1 / (1 + np.exp(-(best - 2.0 + rng.normal(0, 0.7, n_visits)))))  # fmt: skip
    devices = rng.choice(["mobile", "desktop", "tv", "tablet"], n_visits, p=[0.5, 0.3, 0.1, 0.1])
    locations = rng.choice(["uk", "es", "us", "ng", "in", "cn"], n_visits)
    source = rng.choice(["recommended", "other_link"], n_visits, p=[0.4, 0.6])
    duration = videos["DURATION_SECONDS"].to_numpy()[chosen]
    user_ids, item_ids = users["USER_ID"].to_numpy()[user], videos["ITEM_ID"].to_numpy()[chosen]
    clicks = pd.DataFrame({"USER_ID": user_ids, "ITEM_ID": item_ids, "EVENT_TYPE": "click", "EVENT_VALUE": np.nan,
                           "CLICK_SOURCE": source, "WATCH_SECONDS": np.nan, "DEVICE": devices, "LOCATION": locations,
                           "TIMESTAMP": t})  # fmt: skip
    keep = watched >= 0.05  # a click left at once sends no watch event
    watches = clicks[keep].assign(
        EVENT_TYPE="watch",
        EVENT_VALUE=np.round(watched[keep], 3),
        WATCH_SECONDS=np.round(watched[keep] * duration[keep], 1),
        TIMESTAMP=t[keep] + np.maximum(1, (watched[keep] * duration[keep]).astype("int64")),
    )
    interactions = pd.concat([clicks, watches]).sort_values(["TIMESTAMP", "USER_ID"], kind="stable")
    truth = {
        "signal": SIGNAL,
        "noise": NOISE,
        "drifting_users": int((users["_favourite"] != users["_new_favourite"]).sum()),
    }
    public = {
        "Interactions": interactions.reset_index(drop=True),
        "Users": users[[c for c in users.columns if not c.startswith("_")]],
        "Items": videos[[c for c in videos.columns if not c.startswith("_")]],
    }
    return public, truth


def write(folder: Path, schema_folder: Path, n_users: int, n_videos: int, n_interactions: int, seed: int) -> int:
    """Generate and write the three Personalize CSVs, their schemas and ground_truth.json; returns the row count."""
    frames, truth = generate(n_users, n_videos, n_interactions, seed)
    personalize_datasets.write(folder, frames, schema_folder, "pulselive")
    (folder / "ground_truth.json").write_text(json.dumps(truth, indent=2) + "\n")
    return len(frames["Interactions"])
