"""What the config alone tells about the generated platform and MovieLens (their event types, schemas, row count) is
refused in one line before a trial opens, where a stage failed the trial before; your own CSVs stay the stages' to
judge. And the filters sweep names its own report's command."""

from __future__ import annotations

import json
import shlex
import shutil

import pandas as pd
import pytest
import yaml

from conftest import REPO, one_line_error, run_cli
from drawn_charts import task_config
from mlexp import tasks
from mlexp.config.constraints import check_constraints
from mlexp.data import movielens, personalize_datasets, personalize_schema, pulselive_videos
from mlexp.errors import ConfigError
from mlexp.tasks.recommendation import dataset_rules, datasets, feature_rules, interactions, metadata_selection, recipes

TASK = "recommendation"
TINY = ("dataset.n_users=300", "dataset.n_videos=300", "dataset.n_interactions=10000", "model.recipe=popularity")

# the command line, and the line it is refused with; what each did before, in a comment
REFUSED = [
    # exit 0: the trial ran on generated data and recorded dataset.path as a parameter
    (
        ["dataset.path=/nonexistent/dir"],
        "dataset.source=pulselive, dataset.path=/nonexistent/dir: dataset=personalize_csv reads your datasets from "
        "dataset.path; dataset.path is read only by it (dataset=pulselive_videos reads no path): add "
        "dataset=personalize_csv, or leave dataset.path out",
    ),
    (
        ["dataset=movielens_100k", "dataset.path=ml"],
        "dataset.source=movielens, dataset.path=ml: dataset=personalize_csv reads your datasets from dataset.path; "
        "dataset.path is read only by it (dataset=movielens_100k reads no path): add dataset=personalize_csv, or "
        "leave dataset.path out",
    ),
    # "stage 'prepare' failed: .../interactions.csv: 542 interactions from 149 users; Personalize needs at least 1000
    # interactions from at least 25 users: add interactions"
    (
        ["dataset.n_interactions=500"],
        "dataset.source=pulselive, dataset.n_interactions=500: the generated platform must write Personalize's floor "
        "of 1000 interactions, which dataset.n_interactions guarantees from 1750 on whatever the seed (a visit per "
        "1.75 asked, each a click, most followed by a watch); raise dataset.n_interactions to 1750 or more (default "
        "100000)",
    ),
    # "stage 'prepare' failed: dataset.relevant_event_type='view' is not an event type of the data (click, watch)"
    (
        ["dataset.relevant_event_type=view"],
        "dataset.source=pulselive, dataset.relevant_event_type=view: dataset.relevant_event_type must be an event "
        "type of the data (a hit is a test interaction of that type); dataset=pulselive_videos has click and watch "
        "events: choose one, or set dataset.relevant_event_type=null",
    ),
    # "stage 'train' failed: solution.event_type='watched' is not an event type of the data: ['click', 'watch']"
    (
        ["solution.event_type=watched"],
        "dataset.source=pulselive, solution.event_type=watched: solution.event_type (CreateSolution's eventType: "
        "train on that type only) must be an event type of the data; did you mean watch? dataset=pulselive_videos "
        "has click and watch events: choose one, or set solution.event_type=null",
    ),
    # "stage 'train' failed: features.users: 'FAVORITE_PLAYER' is not a metadata field of the Users schema; ..."
    (
        ["features.users=[FAVORITE_PLAYER]"],
        "dataset.source=pulselive, features.users=[FAVORITE_PLAYER], features.items=null, "
        "features.interactions=null: features.users, .items and .interactions name metadata fields of the dataset's "
        "schemas (conf/recommendation_schemas); features.users: 'FAVORITE_PLAYER' is not a metadata field of the "
        "Users schema; did you mean FAVOURITE_PLAYER? choose among: AGE_GROUP, FAVOURITE_PLAYER, SHIRT_SIZE, "
        "SIGNUP_WEEKDAY",
    ),
    # the generated platform's feature set on MovieLens: "stage 'train' failed: features.users: 'FAVOURITE_PLAYER' ..."
    (
        ["dataset=movielens_100k", "features=signal_users"],
        "dataset.source=movielens, features.users=[FAVOURITE_PLAYER, AGE_GROUP], features.items=[], "
        "features.interactions=[]: features.users, .items and .interactions name metadata fields of the dataset's "
        "schemas (conf/recommendation_schemas); features.users: 'FAVOURITE_PLAYER' is not a metadata field of the "
        "Users schema; choose among: AGE, GENDER, OCCUPATION, ZIP_REGION",
    ),
    # an outcome of the event is never context: "stage 'train' failed: features.interactions: 'WATCH_SECONDS' ..."
    (
        ["features.interactions=[WATCH_SECONDS]"],
        "dataset.source=pulselive, features.users=null, features.items=null, features.interactions=[WATCH_SECONDS]: "
        "features.users, .items and .interactions name metadata fields of the dataset's schemas "
        "(conf/recommendation_schemas); features.interactions: 'WATCH_SECONDS' is an outcome of the event (known only "
        "after it), not context the service has when asked; choose among: CLICK_SOURCE, DEVICE, LOCATION",
    ),
]


@pytest.mark.parametrize(("args", "line"), REFUSED, ids=[" ".join(args) for args, _ in REFUSED])
def test_a_mistake_the_config_shows_is_one_line_before_the_trial_opens(tmp_project, args, line):
    given = {arg.split("=", 1)[0] for arg in args}
    tiny = [size for size in TINY if size.split("=", 1)[0] not in given]  # a key given twice is refused on its own
    assert one_line_error(tmp_project, f"task={TASK}", *tiny, *args) == line


def test_a_sweep_below_the_generated_floor_is_refused_before_its_record_opens(tmp_project):
    # each of its 24 jobs failed in prepare
    message = one_line_error(tmp_project, "-m", f"task={TASK}", "sweep=recommendation_metadata",
                             "dataset.n_interactions=500")  # fmt: skip
    assert message.startswith("dataset.source=pulselive, dataset.n_interactions=500: the generated platform must")


def test_a_path_in_the_params_file_is_fixed_in_the_params_file(tmp_project):
    """Under DVC the file's dataset.source wins over a dataset= option: the fix said `add dataset=personalize_csv`."""
    run_cli(tmp_project, "params")
    params = tmp_project / "params.yaml"
    sections = yaml.safe_load(params.read_text())
    sections[TASK]["dataset"]["path"] = "data/shop"
    params.write_text(yaml.safe_dump(sections))
    message = one_line_error(tmp_project, f"task={TASK}", "params_file=params.yaml")
    assert message == (
        f"{params}: section recommendation: dataset.source=pulselive, dataset.path=data/shop: dataset=personalize_csv "
        "reads your datasets from dataset.path; dataset.path is read only by it (dataset=pulselive_videos reads no "
        "path): in params.yaml set recommendation.dataset.source: files (`dvc exp run -S "
        "recommendation.dataset.source=files`) and recommendation.dataset.relevant_event_type and relevant_min_value "
        "for your data (null: every test interaction counts), or set recommendation.dataset.path: null; or regenerate "
        "the file with `mlexp params`"
    )


def test_the_features_rule_reads_the_schemas_prepare_reads(tmp_project, tmp_path):
    """prepare reads paths.root's conf/recommendation_schemas; the rule read the working project's, so a field only
    paths.root's schema has was refused and one only the working project's has passed, to fail in train."""
    other = tmp_path / "other"
    shutil.copytree(REPO / "conf", other / "conf")
    users = other / "conf" / "recommendation_schemas" / "pulselive_users.json"
    users.write_text(users.read_text().replace('"AGE_GROUP"', '"AGE_BAND"'))
    message = one_line_error(tmp_project, f"task={TASK}", *TINY, f"paths.root={other}", "features.users=[AGE_GROUP]")
    assert message.endswith(
        "features.users: 'AGE_GROUP' is not a metadata field of the Users schema; choose among: "
        "AGE_BAND, FAVOURITE_PLAYER, SHIRT_SIZE, SIGNUP_WEEKDAY"
    )
    assert datasets.schema_folder(task_config(TASK, f"paths.root={other}")) == users.parent


def test_your_csvs_stay_the_stages_to_judge():
    """Their event types and fields are known only once read: prepare and train check them (with the same hint)."""
    cfg = task_config(TASK, "dataset=personalize_csv", "dataset.path=mine", "dataset.n_interactions=10",
                      "dataset.relevant_event_type=view", "solution.event_type=watched",
                      "features.users=[FAVORITE_PLAYER]")  # fmt: skip
    check_constraints(cfg, tasks.get(TASK).constraints)
    schema = feature_rules.known_schemas(dataset_rules.PULSELIVE, feature_rules.schemas_of(REPO))
    assert schema is not None
    with pytest.raises(ConfigError, match="'FAVORITE_PLAYER' is not a metadata field .* did you mean FAVOURITE_PLAYER"):
        recipes.chosen_fields(cfg.features, schema)
    yours = pd.DataFrame({"USER_ID": ["u", "u"], "ITEM_ID": ["a", "b"], "EVENT_TYPE": ["click", "watch"],
                          "EVENT_VALUE": [None, 0.9], "TIMESTAMP": [1, 2]})  # fmt: skip
    with pytest.raises(ConfigError, match=r"'view' is not an event type of the data \(click, watch\); choose one"):
        interactions.check_settings(cfg, yours)
    with pytest.raises(ConfigError, match=r"'watched' is not an event type .*; did you mean watch\? choose one"):
        interactions.for_training(yours, cfg.solution, 3)
    # a threshold over your data's values: it says why it keeps nothing
    for event_type, why in (("click", "none has an EVENT_VALUE"), ("watch", "the highest EVENT_VALUE is 0.9")):
        threshold = ("solution.event_value_threshold=0.95", f"solution.event_type={event_type}")
        solution = task_config(TASK, *threshold).solution
        with pytest.raises(ConfigError) as refused:
            interactions.for_training(yours, solution, 3)
        assert str(refused.value) == (
            f"solution.event_value_threshold=0.95 keeps none of the {event_type} events it filters (1; {why}); lower "
            "it, or set solution.event_value_threshold=null"
        )
    kept = task_config(TASK, "solution.event_type=watch", "solution.event_value_threshold=0.9").solution
    assert list(interactions.for_training(yours, kept, 3)["ITEM_ID"]) == ["b"]


def test_the_generated_floor_is_the_generators_clicks():
    # the rule repeats the generator's arithmetic (a click per visit, a visit per 1.75 interactions asked)
    assert dataset_rules.MIN_INTERACTIONS == personalize_datasets.MIN_INTERACTIONS
    for n_interactions in (dataset_rules.MIN_GENERATED_INTERACTIONS - 1, dataset_rules.MIN_GENERATED_INTERACTIONS):
        frames, _ = pulselive_videos.generate(30, 1, n_interactions, seed=0)
        clicks = int((frames["Interactions"]["EVENT_TYPE"] == "click").sum())
        holds = dataset_rules.generates_the_floor(dataset_rules.PULSELIVE, n_interactions)
        assert holds == (clicks >= personalize_datasets.MIN_INTERACTIONS), (n_interactions, clicks)


def test_the_known_event_types_are_the_datas():
    frames, _ = pulselive_videos.generate(30, 20, 2000, seed=0)
    assert tuple(sorted(frames["Interactions"]["EVENT_TYPE"].unique())) == dataset_rules.EVENT_TYPES["pulselive"]
    ratings = movielens.personalize_frames()["Interactions"]
    assert tuple(sorted(ratings["EVENT_TYPE"].unique())) == dataset_rules.EVENT_TYPES["movielens"]
    # the types a value threshold can filter: those whose events carry an EVENT_VALUE
    for source, events in (("pulselive", frames["Interactions"]), ("movielens", ratings)):
        valued = sorted(events.loc[events["EVENT_VALUE"].notna(), "EVENT_TYPE"].unique())
        assert tuple(valued) == dataset_rules.VALUED_EVENT_TYPES[source]
        assert events.loc[~events["EVENT_TYPE"].isin(valued), "EVENT_VALUE"].isna().all()


def test_the_filters_sweep_names_its_table_command_with_a_baseline_it_runs():
    report = tasks.get(TASK).sweep_reports["recommendation_filters"]
    command = shlex.split(report.command.format(sweep="recommendation_filters-0101-000000"))
    assert command[:4] == ["python", "-m", "mlexp.tasks.recommendation.metadata_selection",
                           "sweep=recommendation_filters-0101-000000"]  # fmt: skip
    [baseline] = [arg.removeprefix("baseline=") for arg in command[4:] if arg.startswith("baseline=")]
    # the label metadata_selection gives the sweep's first combination: its first value of each listed setting
    swept = yaml.safe_load((REPO / "conf" / "sweep" / "recommendation_filters.yaml").read_text())
    first = {key: str(values).split(",")[0] for key, values in swept["hydra"]["sweeper"]["params"].items()}
    assert first["solution.event_value_threshold"] == "0.0"  # every watch: no threshold keeps fewer
    # whatever features option the sweep ran with (it sets none: all_metadata named in the baseline was wrong with
    # features=signal_all), and only when it ran one
    labels = set()
    for features in (task_config(TASK).features.name, "signal_all"):
        params = {"features.name": features, **{k: None if v == "null" else v for k, v in first.items()}}
        label = metadata_selection.variant_label(params)
        assert metadata_selection.resolve_baseline({label, f"{features} history_days=30"}, baseline) == label
        labels.add(label)
    with pytest.raises(metadata_selection.SelectionError, match=r"names 2 variants, one per features option \("):
        metadata_selection.resolve_baseline(labels, baseline)


def test_a_field_personalize_reads_itself_is_no_feature_to_choose():
    """EVENT_VALUE was 'not a metadata field' (true, but it is the event's outcome), and USER_ID the same."""
    schemas = feature_rules.known_schemas(dataset_rules.PULSELIVE, feature_rules.schemas_of(REPO))
    assert schemas is not None
    context = "choose among: CLICK_SOURCE, DEVICE, LOCATION"
    # it was 'an outcome of the event', with no word of what it is for nor how to use it
    assert feature_rules.feature_problem("interactions", ["EVENT_VALUE"], schemas["Interactions"]) == (
        "features.interactions: 'EVENT_VALUE' is the event's outcome, what training keeps events by "
        "(solution.event_value_threshold) and a hit is counted by (dataset.relevant_min_value), not a feature the "
        "service has when asked; to train on the events that reach a value, set solution.event_type=<type> "
        f"solution.event_value_threshold=<value> instead; as context {context}"
    )
    assert feature_rules.feature_problem("interactions", ["EVENT_TYPE"], schemas["Interactions"]) == (
        "features.interactions: 'EVENT_TYPE' is a field Personalize reads on its own (an ID, a time or a reserved "
        f"keyword), not metadata to choose; {context}"
    )
    assert "'USER_ID' is a field Personalize reads on its own" in str(
        feature_rules.feature_problem("users", ["USER_ID"], schemas["Users"])
    )
    assert feature_rules.feature_problem("interactions", ["DEVICE"], schemas["Interactions"]) is None
    # a schema without EVENT_VALUE: no outcome of that name, just no such field
    document = json.loads((feature_rules.schemas_of(REPO) / "pulselive_interactions.json").read_text())
    document["fields"] = [field for field in document["fields"] if field["name"] != "EVENT_VALUE"]
    without_value = personalize_schema.validate(document, "Interactions")
    assert feature_rules.feature_problem("interactions", ["EVENT_VALUE"], without_value) == (
        f"features.interactions: 'EVENT_VALUE' is not a metadata field of the Interactions schema; {context}"
    )


def test_a_rules_words_edited_rerun_no_stage():
    """The stages import the predicates they check again (dataset_rules, feature_rules, solution_rules), not the
    task's list of rules: a rule's words edited there re-ran prepare, train and evaluate under `dvc repro`."""
    pipeline = yaml.safe_load((REPO / "pipelines" / TASK / "dvc.yaml").read_text())["stages"]
    rules = "src/mlexp/tasks/recommendation/config_rules.py"
    assert [name for name, stage in pipeline.items() if rules in stage["deps"]] == []
