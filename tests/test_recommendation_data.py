"""Personalize datasets: Avro schema rules, CSV typing, the 1,000/25 floor, MovieLens conversion, the generator."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from omegaconf import OmegaConf

from conftest import REPO
from mlexp.data import movielens, personalize_datasets, personalize_schema, pulselive_videos
from mlexp.data.personalize_schema import SchemaError
from mlexp.errors import ConfigError
from mlexp.tasks.recommendation import interactions, recipes

SCHEMAS = REPO / "conf" / "recommendation_schemas"
# the interactions schema printed in the post
POST_EXAMPLE = {
    "type": "record",
    "name": "Interactions",
    "namespace": "com.amazonaws.personalize.schema",
    "fields": [
        {"name": "USER_ID", "type": "string"},
        {"name": "ITEM_ID", "type": "string"},
        {"name": "EVENT_TYPE", "type": "string"},
        {"name": "EVENT_VALUE", "type": "float"},
        {"name": "LOCATION", "type": "string", "categorical": True},
        {"name": "DEVICE", "type": "string", "categorical": True},
        {"name": "TIMESTAMP", "type": "long"},
    ],
    "version": "1.0",
}


def _with_field(schema: dict, name: str, **changes) -> dict:
    fields = [dict(f, **changes) if f["name"] == name else f for f in schema["fields"]]
    return {**schema, "fields": fields}


def test_the_posts_example_schema_is_valid():
    schema = personalize_schema.validate(POST_EXAMPLE, "Interactions")
    assert schema.metadata_fields == ["LOCATION", "DEVICE"]
    assert schema.field("LOCATION").categorical


@pytest.mark.parametrize(
    ("document", "kind", "field", "rule"),
    [
        ({**POST_EXAMPLE, "fields": POST_EXAMPLE["fields"][1:]}, "Interactions", "USER_ID", "required in Interactions"),
        (_with_field(POST_EXAMPLE, "TIMESTAMP", type="int"), "Interactions", "TIMESTAMP", "must be 'long'"),
        (_with_field(POST_EXAMPLE, "EVENT_VALUE", type="string"), "Interactions", "EVENT_VALUE", "reserved keyword"),
        (_with_field(POST_EXAMPLE, "DEVICE", type="float"), "Interactions", "DEVICE", "categorical applies to string"),
        (_with_field(POST_EXAMPLE, "LOCATION", type="decimal"), "Interactions", "LOCATION", "not a Personalize type"),
        (_with_field(POST_EXAMPLE, "LOCATION", type=["string", "int"]), "Interactions", "LOCATION", "union"),
        (_with_field(POST_EXAMPLE, "EVENT_TYPE", type=["string", "null"]), "Interactions", "EVENT_TYPE", "reserved"),
        (
            {**POST_EXAMPLE, "fields": [{"name": "USER_ID", "type": "string"}, {"name": "EVENT_TYPE", "type": "string"},
                                        {"name": "AGE", "type": "int"}]},
            "Users", "EVENT_TYPE", "reserved keyword of the Interactions dataset",
        ),
        ({**POST_EXAMPLE, "fields": [{"name": "ITEM_ID", "type": "string"}]}, "Items", "fields", "one metadata field"),
    ],
)  # fmt: skip
def test_each_schema_error_names_the_field_and_the_rule(document, kind, field, rule):
    with pytest.raises(SchemaError) as raised:
        personalize_schema.validate(document, kind, "schema.json")
    message = str(raised.value)
    assert field in message and rule in message and "\n" not in message


def test_nullable_event_value_is_accepted():
    schema = personalize_schema.validate(
        _with_field(POST_EXAMPLE, "EVENT_VALUE", type=["float", "null"]), "Interactions"
    )
    assert schema.field("EVENT_VALUE").nullable


def _write_interactions(folder: Path, rows: int, users: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "interactions.schema.json").write_text(json.dumps(POST_EXAMPLE))
    pd.DataFrame(
        {
            "USER_ID": [f"u{i % users}" for i in range(rows)],
            "ITEM_ID": [f"i{i % 37}" for i in range(rows)],
            "EVENT_TYPE": "click",
            "EVENT_VALUE": 1.0,
            "LOCATION": "uk",
            "DEVICE": "tv",
            "TIMESTAMP": range(rows),
        }
    ).to_csv(folder / "interactions.csv", index=False)


def test_fewer_than_1000_interactions_or_25_users_is_refused_naming_both_counts(tmp_path):
    _write_interactions(tmp_path / "small", 999, 30)
    with pytest.raises(SchemaError, match="999 interactions from 30 users.*at least 1000 interactions.*25 users"):
        personalize_datasets.load(tmp_path / "small")
    _write_interactions(tmp_path / "few_users", 1200, 24)
    with pytest.raises(SchemaError, match="1200 interactions from 24 users"):
        personalize_datasets.load(tmp_path / "few_users")
    _write_interactions(tmp_path / "enough", 1000, 25)
    assert len(personalize_datasets.load(tmp_path / "enough").interactions) == 1000


def _refusal(folder: Path) -> str:
    """The one-line message of a dataset folder the loader refuses."""
    with pytest.raises(SchemaError) as raised:
        personalize_datasets.load(folder)
    return str(raised.value)


def test_a_value_of_the_wrong_type_names_the_field_and_lines(tmp_path):
    _write_interactions(tmp_path, 1000, 25)
    csv = tmp_path / "interactions.csv"
    frame = pd.read_csv(csv, dtype=str)
    frame.loc[3, "TIMESTAMP"] = "yesterday"
    frame.drop(columns=["DEVICE"]).to_csv(csv, index=False)
    with pytest.raises(SchemaError, match="field 'DEVICE': in the schema but not a column"):
        personalize_datasets.load(tmp_path)
    frame.to_csv(csv, index=False)
    must = f"{csv}: field 'TIMESTAMP' must be long (a whole number); not so on"
    fix = "; correct the value, or declare the field a string in its schema"
    assert _refusal(tmp_path) == f"{must} line 5 (the header is line 1): 'yesterday'{fix}"
    frame.loc[5, "TIMESTAMP"] = "1.5"
    frame.to_csv(csv, index=False)
    assert _refusal(tmp_path) == f"{must} lines 5, 7 (the header is line 1): 'yesterday', '1.5'{fix}"
    frame.loc[10:16, "TIMESTAMP"] = "soon"  # beyond five lines: the first five and how many more
    frame.to_csv(csv, index=False)
    assert _refusal(tmp_path) == (
        f"{must} lines 5, 7, 12, 13, 14 and 4 more (the header is line 1): 'yesterday', '1.5', 'soon', 'soon', 'soon'"
        f"{fix}"
    )


def test_an_empty_required_value_names_its_line_in_the_singular_or_its_lines(tmp_path):
    _write_interactions(tmp_path, 1000, 25)
    csv = tmp_path / "interactions.csv"
    frame = pd.read_csv(csv, dtype=str)
    frame.loc[3, "ITEM_ID"] = ""
    frame.to_csv(csv, index=False)
    empty = f"{csv}: field 'ITEM_ID' is not nullable but is empty on"
    assert _refusal(tmp_path) == f"{empty} line 5 (the header is line 1)"
    frame.loc[4, "ITEM_ID"] = ""
    frame.to_csv(csv, index=False)
    assert _refusal(tmp_path) == f"{empty} lines 5, 6 (the header is line 1)"


def test_movielens_converts_to_the_three_personalize_datasets(tmp_path):
    assert movielens.write_personalize(tmp_path, SCHEMAS) == 100_000
    loaded = personalize_datasets.load(tmp_path)
    assert loaded.interactions["USER_ID"].nunique() == 943 and len(loaded.items) == 1682
    assert sorted(loaded.interactions["EVENT_VALUE"].unique()) == [1.0, 2.0, 3.0, 4.0, 5.0]
    # EVENT_TYPE from the rating: watch for a liked movie (4-5), rating otherwise
    liked = loaded.interactions["EVENT_VALUE"] >= 4
    assert set(loaded.interactions.loc[liked, "EVENT_TYPE"]) == {"watch"}
    assert set(loaded.interactions.loc[~liked, "EVENT_TYPE"]) == {"rating"}
    assert loaded.items.set_index("ITEM_ID").loc["1", "GENRES"] == "Animation|Children's|Comedy"
    assert set(loaded.schemas) == {"Interactions", "Users", "Items"}


def test_the_generator_is_deterministic_and_has_cold_users_items_and_noise(tmp_path):
    first = pulselive_videos.write(tmp_path / "a", SCHEMAS, 120, 150, 4000, seed=3)
    pulselive_videos.write(tmp_path / "b", SCHEMAS, 120, 150, 4000, seed=3)
    assert (tmp_path / "a" / "interactions.csv").read_bytes() == (tmp_path / "b" / "interactions.csv").read_bytes()
    loaded = personalize_datasets.load(tmp_path / "a")
    assert len(loaded.interactions) == first and set(loaded.interactions["EVENT_TYPE"]) == {"click", "watch"}
    watches = loaded.interactions[loaded.interactions["EVENT_TYPE"] == "watch"]
    assert watches["EVENT_VALUE"].between(0, 1).all()
    truth = json.loads((tmp_path / "a" / "ground_truth.json").read_text())
    assert "FAVOURITE_PLAYER" in truth["signal"]["users"] and "THUMBNAIL_COLOR" in truth["noise"]["items"]
    late_items = (loaded.items["CREATION_TIMESTAMP"] > pulselive_videos.START + 60 * pulselive_videos.DAY).sum()
    assert late_items > 10


def test_an_event_value_threshold_without_an_event_type_is_refused():
    solution = OmegaConf.create(
        {"event_type": None, "event_value_threshold": 0.5, "history_days": None, "recency_half_life_days": None}
    )
    with pytest.raises(ConfigError, match="event_value_threshold=0.5 needs solution.event_type"):
        interactions.for_training(pd.DataFrame({"TIMESTAMP": [1]}), solution, 2)


def test_event_type_value_filter_history_window_and_recency_weights():
    frame = pd.DataFrame(
        {"EVENT_TYPE": ["click", "watch", "watch", "watch"], "EVENT_VALUE": [None, 0.2, 0.9, 0.8],
         "TIMESTAMP": [0, 0, 10 * 86_400, 19 * 86_400]}
    )  # fmt: skip
    solution = OmegaConf.create(
        {"event_type": "watch", "event_value_threshold": 0.5, "history_days": 15, "recency_half_life_days": 10}
    )
    kept = interactions.for_training(frame, solution, cut_off=20 * 86_400)
    assert kept["TIMESTAMP"].tolist() == [10 * 86_400, 19 * 86_400]
    assert kept["weight"].tolist() == pytest.approx([0.5, 0.5**0.1], rel=1e-5)


def test_an_unknown_feature_field_names_the_valid_ones():
    schemas = {"Items": personalize_schema.load(SCHEMAS / "pulselive_items.json", "Items")}
    features = OmegaConf.create({"users": [], "items": ["COLOUR"], "interactions": []})
    with pytest.raises(ConfigError, match="'COLOUR' is not a metadata field of the Items schema.*PLAYERS"):
        recipes.chosen_fields(features, schemas)
    features.items = None  # null: every metadata field
    assert recipes.chosen_fields(features, schemas)["items"] == [
        "CATEGORY",
        "SUB_CATEGORY",
        "PLAYERS",
        "DURATION_SECONDS",
        "THUMBNAIL_COLOR",
    ]


def test_the_prepare_stage_reruns_when_a_schema_file_changes():
    """prepare reads and validates conf/recommendation_schemas: DVC must list them among its dependencies."""
    import yaml

    from mlexp.tasks.recommendation import datasets

    stages = yaml.safe_load((REPO / "pipelines" / "recommendation" / "dvc.yaml").read_text())["stages"]
    folder = datasets.schema_folder(OmegaConf.create({"paths": {"root": str(REPO)}}))
    assert folder.relative_to(REPO).as_posix() in stages["prepare"]["deps"]
    assert {p.name for p in folder.glob("*.json")} >= {"pulselive_users.json", "movielens_interactions.json"}


def test_a_schema_naming_a_field_the_generator_does_not_write_is_one_line(tmp_path):
    # a project that renamed AGE_GROUP in its pulselive users schema met a bare KeyError in prepare
    schemas = tmp_path / "schemas"
    shutil.copytree(SCHEMAS, schemas)
    users = schemas / "pulselive_users.json"
    users.write_text(users.read_text().replace('"AGE_GROUP"', '"AGE_BAND"'))
    with pytest.raises(SchemaError) as refused:
        pulselive_videos.write(tmp_path / "data", schemas, 30, 20, 500, seed=0)
    said = str(refused.value)
    assert said.startswith(f"{users}: the pulselive data mlexp generates has no field AGE_BAND (it writes ")
    assert said.endswith("or give your own data with dataset=personalize_csv dataset.path=<folder>")
