"""Task `recommendation`: Amazon Personalize-style datasets, recipes and metadata selection, with real-time events."""

from mlexp.config.bounds import above, at_least, between
from mlexp.config.input_paths import Accepts, InputPath, RelativeTo
from mlexp.tasks import Plot, StageSpec, SweepReport, Task, register
from mlexp.tasks.recommendation import config  # noqa: F401  (registers the schemas)
from mlexp.tasks.recommendation.config_rules import CONSTRAINTS
from mlexp.tasks.recommendation.dataset_rules import FILES

# sweep=recommendation_filters' baseline as metadata_selection labels it: the default features, watches of any value
FILTERS_BASELINE = "event_type=watch event_value_threshold=0.0"  # whatever features option the sweep ran

# dataset=personalize_csv: the folder datasets.materialize copies, the Interactions dataset and its schema required
DATASET = InputPath(
    "dataset.path",
    read_by=("prepare",),
    fix="give the folder of your Personalize CSVs: interactions.csv and interactions.schema.json (+ users, items)",
    accepts=Accepts.FOLDER,
    needs=("interactions.csv", "interactions.schema.json"),
    relative_to=RelativeTo.PATHS_ROOT,
    when=("dataset.source", lambda source: source == FILES),  # generated and MovieLens datasets read no path
)

TASK = register(
    Task(
        "recommendation",
        f"{__name__}.stages",
        (
            # the generator and MovieLens conversion write the Personalize CSVs + schemas under {data}/personalize
            # the Avro schema files are read and validated here: editing one reruns the stage
            StageSpec(
                "prepare",
                reads=("conf/recommendation_schemas",),
                params=("seed", "dataset", "preprocessing", "solution"),
                outs=("{data}",),
            ),
            StageSpec(
                "train",
                reads=("{data}",),
                params=(
                    "seed",
                    "model",
                    "solution",
                    "features",
                    "dataset.relevant_event_type",
                    "dataset.relevant_min_value",
                    "compute.num_threads",
                ),
                outs=("{models}",),
            ),  # fmt: skip
            StageSpec(
                "evaluate",
                reads=("{data}", "{models}"),
                # features.name: the metrics chart's title
                params=(
                    "model.ks",
                    "solution",
                    "dataset.relevant_event_type",
                    "dataset.relevant_min_value",
                    "features.name",
                ),
                metrics=("{reports}/metrics.json",),
                plots=(
                    Plot("{reports}/plots/metrics_at_k.csv", x="k", y="normalized_discounted_cumulative_gain"),
                    "{reports}/plots/metrics_at_k.png",
                ),
            ),
            # serves on loopback (deploy=local) or registers the model: run by mlexp, not a DVC stage
            "deploy",
        ),
        uses_mxnet=False,
        bounds={
            # sizes of the generated platform (dataset.source=pulselive); 0 is the other sources' value, unused there
            "dataset.n_users": at_least(0),
            "dataset.n_videos": at_least(0),
            "dataset.n_interactions": at_least(0),
            # the last shares of the interactions by time (the prepare stage checks that they leave a training period)
            "preprocessing.validation_fraction": between(0, 1, open_low=True, open_high=True),
            "preprocessing.test_fraction": between(0, 1, open_low=True, open_high=True),
            "solution.history_days": above(0),  # null: all; 0 keeps no training interaction
            "solution.recency_half_life_days": at_least(0),  # null or 0: every interaction counts 1
            "model.similar_items": at_least(1),
            "model.user_personalization.factors": at_least(1),
            "model.user_personalization.iterations": at_least(1),
            "model.user_personalization.regularization": at_least(0),
            "model.user_personalization.alpha": above(0),  # confidence 1 + alpha * weight: 0 ranks by popularity
            "model.metadata_hybrid.embedding_size": at_least(1),
            "model.metadata_hybrid.epochs": at_least(1),
            # each row's sampled softmax takes at most batch_size - 1 negatives: a batch of 1 has none
            "model.metadata_hybrid.batch_size": at_least(2),
            "model.metadata_hybrid.learning_rate": above(0),
            "model.metadata_hybrid.history_length": at_least(1),
            # each older history item weighs this times the next newer one: 1 a plain mean, 0 the latest alone
            "model.metadata_hybrid.history_decay": between(0, 1),
            "model.metadata_hybrid.id_dropout": between(0, 1),  # a probability (1: metadata alone)
            "model.metadata_hybrid.negatives": at_least(1),
            "model.metadata_hybrid.patience": at_least(1),
            # GetRecommendations' numResults: 1 to max_results
            "service.default_results": at_least(1),
            "service.max_results": at_least(1),
        },
        constraints=CONSTRAINTS,
        inputs=(DATASET,),
        sweep_reports={
            # the post's comparison: each metadata set's NDCG@10 against interactions-only of the same seed
            "recommendation_metadata": SweepReport(
                "each feature set vs interactions_only (the post's table and chart)",
                "python -m mlexp.tasks.recommendation.metadata_selection sweep={sweep}",
            ),
            # the same table for CreateSolution's filters, against every watch unweighted over all history (the
            # variant's label holds spaces: quoted)
            "recommendation_filters": SweepReport(
                "each filter vs every watch (the filters table and chart)",
                "python -m mlexp.tasks.recommendation.metadata_selection sweep={sweep} "
                f'"baseline={FILTERS_BASELINE}"',
            ),
        },
    )
)
