"""Task `anomaly_detection`: SQL outlier rules over NYC taxi trips (DuckDB embedded, Athena at scale)."""

from mlexp.tasks import Plot, StageSpec, Task, register
from mlexp.tasks.anomaly_detection import config  # noqa: F401  (registers the schemas)

# every stage after prepare opens its engine over the trips prepare checked
TRIPS = ("engine", "preprocessing.column_aliases", "preprocessing.timestamp_formats", "preprocessing.value_codes")
RULES = tuple(
    f"model.{key}"
    for key in (
        "rules",
        "enabled",
        "min_duration_seconds",
        "max_duration_hours",
        "iqr_k",
        "robust_z_max",
        "max_speed_mph",
        "zero_distance_max_minutes",
        "dst_fall_back_max_minutes",
    )
)


def _sorted_durations(name: str) -> tuple[Plot, str]:
    return Plot(f"{{reports}}/plots/{name}.csv", x="index", y="duration_second", template="scatter"), (
        f"{{reports}}/plots/{name}.png"
    )


TASK = register(
    Task(
        "anomaly_detection",
        f"{__name__}.stages",
        (
            # prepare also checks the rules, to fail before reading data; its output does not depend on them
            StageSpec("prepare", params=("seed", "dataset", "preprocessing", "engine"), outs=("{data}/input",)),
            StageSpec(
                "query",
                reads=("{data}/input",),
                params=(*TRIPS, "model.top_n", "model.figure_size"),
                outs=("{data}/query",),
                plots=_sorted_durations("duration_sorted"),
            ),
            StageSpec(
                "detect",
                reads=("{data}/input",),
                params=(
                    *TRIPS,
                    *RULES,
                    "model.flagged_rows_max",
                    "model.histogram_bins_per_decade",
                    "model.figure_size",
                ),
                outs=("{data}/detection",),
                plots=(
                    Plot("{reports}/plots/duration_histogram.csv", x="seconds_from", y="trips", template="linear"),
                    "{reports}/plots/duration_histogram.png",
                ),
            ),
            StageSpec(
                "clean",
                reads=("{data}/input", "{data}/detection"),
                params=(*TRIPS, *RULES, "model.figure_size"),
                outs=("{data}/cleaned",),
                metrics=("{reports}/metrics.json",),
                plots=_sorted_durations("duration_sorted_clean"),
            ),
        ),
        component_names={"query": "Query", "detect": "Detection", "clean": "Cleaning"},
        dataset_suffixes=(".parquet", ".csv", ".gz"),  # nyc_taxi.SUFFIXES, without importing DuckDB here
    )
)
