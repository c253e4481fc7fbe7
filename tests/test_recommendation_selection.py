"""The metadata-selection experiment at a small size: the generator's signal fields beat its noise fields."""

from __future__ import annotations

import matplotlib.colors
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


def _ndcgs(seed: int, fields: dict[str, list[str]] | None) -> dict[str, float]:
    """Validation and test NDCG@10 of the metadata model with `fields` (None: the popularity count) on generated
    data. Fixed epochs: no choice is made on either period."""
    frames, _ = pulselive_videos.generate(n_users=300, n_videos=250, n_interactions=7000, seed=seed)
    frame = interactions.time_split(frames["Interactions"], 0.15, 0.1)
    catalog = Catalog.build(frame, frames["Users"], frames["Items"])
    train = frame[frame["split"] == "train"]
    cut = int(frame.loc[frame["split"] == "validation", "TIMESTAMP"].min())
    test_cut = int(frame.loc[frame["split"] == "test", "TIMESTAMP"].min())
    rows = interactions.for_training(train, SOLUTION, cut)
    if fields is None:
        model = Popularity.fit(rows, catalog)
    else:
        model, _ = metadata_hybrid.fit(rows, catalog, fields, Hybrid(epochs=3, batch_size=256), seed)
    context = fields["interactions"] if fields else []
    out = {}
    before_test = frame[frame["split"] != "test"]
    for metric, (period, history, seen, end) in {
        metadata_selection.OBJECTIVE: ("validation", rows, train, test_cut - 1),
        # the test period: the model has not changed, but users' histories now include the validation period
        metadata_selection.TEST_METRIC: (
            "test", interactions.for_training(before_test, SOLUTION, test_cut), before_test, int(frame.TIMESTAMP.max())
        ),
    }.items():  # fmt: skip
        relevant = interactions.relevant(frame[frame["split"] == period], RELEVANT)
        scores = evaluation.evaluate(model, history, seen, relevant, end, [10], context)
        out[metric] = scores["normalized_discounted_cumulative_gain_at_10"]
    return out


def test_signal_fields_come_out_ahead_of_noise_fields(tmp_path):
    runs = pd.DataFrame(
        [
            {"variant": name, "seed": seed, **_ndcgs(seed, fields)}
            for seed in (1, 2)
            for name, fields in VARIANTS.items()
        ]
    )
    table = metadata_selection.write_report(runs, tmp_path).set_index("variant")
    print(table.to_string())
    # the headline is the held-out test period, validation beside it
    assert list(table.columns[:3]) == ["seeds", "test", "test_delta"] and "val_delta" in table
    assert table["test_delta"].is_monotonic_decreasing and (table["seeds"] == 2).all()
    # validation (fixed epochs, no choice made on it; the larger period): each kind of signal on its own gives a
    # clear gain in every seed (a bug that drops user or item metadata fails); noise no more than a fifth of it
    for name in SIGNAL:
        signal = table.loc[name]
        assert signal["val_delta"] > 0.01 and signal["val_delta"] - signal["val_delta_std"] > 0, name
    weaker = min(table.loc[name, "val_delta"] for name in SIGNAL)
    for name in NOISE:
        assert table.loc[name, "val_delta"] < 0.2 * weaker, name
    # the test period (fewer users at this size, so noisier): every signal set still ahead of every noise set
    for name in SIGNAL:
        assert table.loc[name, "test_delta"] > max(0.0, *(table.loc[n, "test_delta"] for n in NOISE)), name
    # IDs and history alone already beat the popularity count (the recipe is worth having without metadata)
    assert table.loc["popularity", "val_delta"] < 0
    assert (tmp_path / "metadata_selection.png").stat().st_size > 5000
    markdown = (tmp_path / "metadata_selection.md").read_text()
    assert "signal_users" in markdown and "test_delta" in markdown and "val_delta" in markdown


def test_the_chart_of_another_metric_names_that_metric_and_its_key_says_which_bar_is_which(tmp_path, monkeypatch):
    # metric=precision_at_10 drew an axis labelled "Δ NDCG@10", a title about the held-out period, and a key whose
    # patch took the colour of the first bar (red for a metric whose first variant fell behind)
    closed = []
    monkeypatch.setattr(metadata_selection.plt, "close", closed.append)
    table = pd.DataFrame(
        [
            {"variant": "interactions_only", "precision_at_10_delta": 0.0, "precision_at_10_delta_std": 0.0},
            {"variant": "signal_users", "precision_at_10_delta": -0.01, "precision_at_10_delta_std": 0.002},
            {"variant": "noise_users", "precision_at_10_delta": 0.02, "precision_at_10_delta_std": 0.002},
        ]
    )
    metadata_selection.delta_chart(table, tmp_path / "chart.png", ("precision_at_10",), "interactions_only")
    [figure] = closed
    [axis] = figure.axes
    assert axis.get_xlabel().startswith("Δ precision_at_10 vs the baseline")
    assert axis.get_title().splitlines() == [
        "Which fields and filters help (solid: precision_at_10)",
        "baseline: interactions_only",
    ]
    [key] = figure.legends[0].get_patches()
    assert key.get_label() == "precision_at_10" and key.get_facecolor()[:3] == pytest.approx((0.5, 0.5, 0.5), abs=0.01)
    assert [bar.get_facecolor()[:3] for bar in axis.patches[:2]] == [
        pytest.approx(matplotlib.colors.to_rgb(colour)) for colour in ("tab:green", "tab:red")
    ]  # bottom-up: the last variant first


def test_the_sweep_config_names_every_feature_set_and_three_seeds():
    sweep = OmegaConf.load(REPO / "conf" / "sweep" / "recommendation_metadata.yaml")
    params = sweep.hydra.sweeper.params
    assert params["features"].split(",")[0] == "interactions_only" and params.seed == "1,2,3"
    assert all((REPO / "conf" / "features" / f"{name}.yaml").exists() for name in params["features"].split(","))


def _analytics(rows: list[tuple[str, str, str, int, float]]) -> pd.DataFrame:
    """Rows as mlexp.analytics(all_params=True) gives them: (features, recipe, source, seed, objective); the test
    period's figure (a metric logged once: no " - Last" column) is the objective's minus 0.01."""
    return pd.DataFrame(
        [
            {"Status": "FINISHED", "features.name": f, "model.recipe": r, "dataset.source": d, "seed": s,
             f"{metadata_selection.OBJECTIVE} - Last": v, metadata_selection.TEST_METRIC: v - 0.01}
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
    # both periods are read: the test period's (the headline) and validation's
    table = metadata_selection.delta_table(picked).set_index("variant")
    assert table.loc["signal_all", "test"] == pytest.approx(0.13)
    assert table.loc["signal_all", "test_delta"] == pytest.approx(0.04) == table.loc["signal_all", "val_delta"]
    with pytest.raises(metadata_selection.SelectionError) as unlogged:
        metadata_selection.from_analytics(frame, ("recall_at_10",), recipe="metadata_hybrid")
    assert str(unlogged.value) == (
        "no trial logged 'recall_at_10'; pass metric=<a logged metric>: val_normalized_discounted_cumulative_gain_at_10"
    )
    frame.attrs["metrics"] = ["precision_at_10", "recall_at_25"]  # as mlexp.analytics lists them
    with pytest.raises(metadata_selection.SelectionError, match="did you mean precision_at_10\\? pass metric="):
        metadata_selection.from_analytics(frame, ("precision_at_1",), recipe="metadata_hybrid")
    with pytest.raises(metadata_selection.SelectionError, match="mix dataset.source"):
        metadata_selection.from_analytics(
            _analytics([("a", "popularity", "pulselive", 1, 0.1), ("a", "popularity", "movielens", 1, 0.2)])
        )
    # no baseline trials: one line naming the variants there are
    with pytest.raises(metadata_selection.SelectionError, match="no 'interactions_only' trials.*baseline=<one of: "):
        metadata_selection.write_report(picked[picked["variant"] == "signal_all"], tmp_path)
    assert metadata_selection.main(["--help"]) == 0 and "recipe=<name>" in capsys.readouterr().out
    assert metadata_selection.main(["nonsense"]) == 2
