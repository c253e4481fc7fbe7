"""Task `anomaly_detection`: SQL outlier rules over NYC taxi trips (DuckDB embedded, Athena at scale)."""

from dataclasses import fields

from mlexp.config.bounds import Bound, above, at_least, between
from mlexp.config.input_paths import InputPath
from mlexp.tasks import Plot, StageSpec, Task, register
from mlexp.tasks.anomaly_detection import config  # registers the schemas
from mlexp.tasks.anomaly_detection.config_rules import CONSTRAINTS

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


# nyc_taxi.SUFFIXES, without importing DuckDB here
TRIP_SUFFIXES = (".parquet", ".csv", ".gz")
# engine=athena queries its table: dataset.path is not read
DATASET = InputPath(
    "dataset.path",
    read_by=("prepare",),
    fix="give a TLC trip file (Parquet or CSV), a folder or a glob of them, or leave dataset.path unset for a "
    "generated month",
    suffixes=TRIP_SUFFIXES,
    when=("engine.name", lambda engine: engine != "athena"),
)

BOUNDS: dict[str, Bound] = {
    # 0 writes a file of no rows, which prepare refuses; the anomaly rows must fit too (CONSTRAINTS)
    "dataset.n_rows": at_least(1),
    # shares of the generated rows with each anomaly: a negative share silently meant 0, over 1 asks for more rows
    # than there are
    **{f"dataset.anomalies.{share.name}": between(0, 1) for share in fields(config.GeneratedAnomalies)},
    # 0: one thread per core (a negative count silently meant that too)
    "engine.threads": at_least(0),
    # a maximum of 0 or less flags every trip (too_long, implausible_speed), and a multiplier of 0 puts the
    # fence on the quartiles (half the trips by construction) or the median (all of them)
    "model.max_duration_hours": above(0),
    "model.iqr_k": above(0),
    "model.robust_z_max": above(0),
    "model.max_speed_mph": above(0),
    # 0: every zero-distance trip, however short
    "model.zero_distance_max_minutes": at_least(0),
    # the clocks repeat one hour, so no fall-back artefact is longer; 0 flags nothing (a negative value wrote
    # `>= --600` into the SQL: a comment, and a syntax error)
    "model.dst_fall_back_max_minutes": between(0, 60),
    # 0 writes the tables with no rows; a negative LIMIT is a query error
    "model.top_n": at_least(0),
    "model.flagged_rows_max": at_least(0),
    "model.histogram_bins_per_decade": at_least(1),
    # matplotlib's figsize (inches): width, height
    "model.figure_size.0": above(0),
    "model.figure_size.1": above(0),
}


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
                # its sorted-durations chart draws the enabled rules' thresholds
                params=(*TRIPS, *RULES, "model.top_n", "model.figure_size"),
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
        dataset_suffixes=TRIP_SUFFIXES,
        bounds=BOUNDS,
        constraints=CONSTRAINTS,
        inputs=(DATASET,),
    )
)
