"""The metadata-selection experiment at a small size: the generator's signal fields beat its noise fields."""

from __future__ import annotations

import pandas as pd
import pytest
from omegaconf import OmegaConf

from conftest import REPO
from mlexp.data import pulselive_videos
from mlexp.tasks.recommendation import evaluation, interactions, metadata_hybrid, metadata_selection
from mlexp.tasks.recommendation.catalog import Catalog
from mlexp.tasks.recommendation.config import Hybrid
from mlexp.tasks.recommendation.popularity import Popularity

SOLUTION = OmegaConf.create(
    {"event_type": None, "event_value_threshold": None, "history_days": None, "recency_half_life_days": None}
)
RELEVANT = OmegaConf.create({"relevant_event_type": "watch", "relevant_min_value": 0.5})
SIGNAL, NOISE = ("signal_users", "signal_items"), ("noise_users", "noise_items", "noise_interactions")


def _fields(name: str) -> dict[str, list[str]]:
    """The feature set conf/features/<name>.yaml names (what the sweep runs)."""
    loaded = OmegaConf.load(REPO / "conf" / "features" / f"{name}.yaml")
    return {side: list(loaded[side]) for side in ("users", "items", "interactions")}


VARIANTS: dict[str, dict[str, list[str]] | None] = {
    "popularity": None,
    **{name: _fields(name) for name in ("interactions_only", *SIGNAL, *NOISE)},
}


def _validation_ndcg(seed: int, fields: dict[str, list[str]] | None) -> float:
    """Validation NDCG@10 of the metadata model with `fields` (None: the popularity count) on generated data."""
    frames, _ = pulselive_videos.generate(n_users=300, n_videos=250, n_interactions=7000, seed=seed)
    frame = interactions.time_split(frames["Interactions"], 0.15, 0.1)
    catalog = Catalog.build(frame, frames["Users"], frames["Items"])
    train = frame[frame["split"] == "train"]
    cut = int(frame.loc[frame["split"] == "validation", "TIMESTAMP"].min())
    end = int(frame.loc[frame["split"] == "validation", "TIMESTAMP"].max())
    rows = interactions.for_training(train, SOLUTION, cut)
    if fields is None:
        model = Popularity.fit(rows, catalog)
    else:
        model, _ = metadata_hybrid.fit(rows, catalog, fields, Hybrid(epochs=3, batch_size=256), seed)
    relevant = interactions.relevant(frame[frame["split"] == "validation"], RELEVANT)
    scores = evaluation.evaluate(model, rows, train, relevant, end, [10], fields["interactions"] if fields else [])
    return scores["normalized_discounted_cumulative_gain_at_10"]


def test_signal_fields_come_out_ahead_of_noise_fields(tmp_path):
    runs = pd.DataFrame(
        [
            {"variant": name, "seed": seed, metadata_selection.OBJECTIVE: _validation_ndcg(seed, fields)}
            for seed in (1, 2)
            for name, fields in VARIANTS.items()
        ]
    )
    table = metadata_selection.write_report(runs, tmp_path).set_index("variant")
    print(table.to_string())
    # each kind of signal on its own: a clear gain in every seed (a bug that drops user or item metadata fails)
    for name in SIGNAL:
        signal = table.loc[name]
        assert signal["delta"] > 0.01 and signal["delta"] - signal["delta_std"] > 0, name
    # noise fields: no gain beyond a fifth of the weaker signal's
    weaker = min(table.loc[name, "delta"] for name in SIGNAL)
    for name in NOISE:
        assert table.loc[name, "delta"] < 0.2 * weaker, name
    # IDs and history alone already beat the popularity count (the recipe is worth having without metadata)
    assert table.loc["popularity", "delta"] < 0
    assert (tmp_path / "metadata_selection.png").stat().st_size > 5000
    assert "signal_users" in (tmp_path / "metadata_selection.md").read_text()


def test_the_sweep_config_names_every_feature_set_and_three_seeds():
    sweep = OmegaConf.load(REPO / "conf" / "sweep" / "recommendation_metadata.yaml")
    params = sweep.hydra.sweeper.params
    assert params["features"].split(",")[0] == "interactions_only" and params.seed == "1,2,3"
    assert all((REPO / "conf" / "features" / f"{name}.yaml").exists() for name in params["features"].split(","))


def _analytics(rows: list[tuple[str, str, str, int, float]]) -> pd.DataFrame:
    """Rows as mlexp.analytics(all_params=True) gives them: (features, recipe, source, seed, objective)."""
    return pd.DataFrame(
        [
            {"Status": "FINISHED", "features.name": f, "model.recipe": r, "dataset.source": d, "seed": s,
             metadata_selection.OBJECTIVE: v}
            for f, r, d, s, v in rows
        ]
    )  # fmt: skip


def test_a_mix_of_recipes_or_datasets_is_refused_unless_one_is_picked(tmp_path, capsys):
    frame = _analytics(
        [("interactions_only", "metadata_hybrid", "pulselive", 1, 0.10),
         ("signal_all", "metadata_hybrid", "pulselive", 1, 0.14),
         ("interactions_only", "popularity", "pulselive", 1, 0.05)]
    )  # fmt: skip
    with pytest.raises(metadata_selection.SelectionError, match=r"mix model.recipe values .*pass recipe="):
        metadata_selection.from_analytics(frame)
    picked = metadata_selection.from_analytics(frame, recipe="metadata_hybrid")
    assert sorted(picked["variant"]) == ["interactions_only", "signal_all"]
    with pytest.raises(metadata_selection.SelectionError, match="mix dataset.source"):
        metadata_selection.from_analytics(
            _analytics([("a", "popularity", "pulselive", 1, 0.1), ("a", "popularity", "movielens", 1, 0.2)])
        )
    # no baseline trials: one line naming the variants there are
    with pytest.raises(metadata_selection.SelectionError, match="no 'interactions_only' trials.*baseline=<one of: "):
        metadata_selection.write_report(picked[picked["variant"] == "signal_all"], tmp_path)
    assert metadata_selection.main(["--help"]) == 0 and "recipe=<name>" in capsys.readouterr().out
    assert metadata_selection.main(["nonsense"]) == 2
