"""Task `recommendation`: Amazon Personalize-style datasets, recipes and metadata selection, with real-time events."""

from mlexp.tasks import Plot, StageSpec, Task, register
from mlexp.tasks.recommendation import config  # noqa: F401  (registers the schemas)

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
                params=("model.ks", "solution", "dataset.relevant_event_type", "dataset.relevant_min_value"),
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
    )
)
