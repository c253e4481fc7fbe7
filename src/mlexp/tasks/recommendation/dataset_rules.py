"""What the data each dataset.source gives can be asked for: its path, the generated platform's sizes against
Personalize's floor, and the event types (and which of them carry values) the settings name.

Their own module, not the package's `__init__` (nor config.py, the schemas and their help): a stage's DVC
dependencies are the modules it imports, and a range or a help text edited there must not re-run the stages.
"""

import math
from collections.abc import Callable

from mlexp.errors import did_you_mean

# Personalize's floor before training (mlexp.data.personalize_datasets.MIN_USERS and MIN_INTERACTIONS, not imported:
# it loads pandas)
MIN_USERS = 25
MIN_INTERACTIONS = 1000
# a generated user signing up late may get no visit: at 1,750 interactions, 83 of 400 seeds leave fewer than 25 of 25
# users with one, 13 of 2,000 of 27, none of 2,000 of 30 (more interactions only help)
MIN_GENERATED_USERS = 30
# the generator makes a visit per 1.75 interactions asked, each a click (mlexp.data.pulselive_videos: a meant click,
# 3 in 4, adds a watch); how many watches follow depends on the seed and the catalogue (with one video, a fifth
# fewer), so only the clicks are sure to reach Personalize's floor
INTERACTIONS_PER_VISIT = 2 - 0.25
MIN_GENERATED_INTERACTIONS = math.ceil(MIN_INTERACTIONS * INTERACTIONS_PER_VISIT)  # 1750
# dataset.source's values these rules read (config.Source, not imported: see above)
FILES = "files"
PULSELIVE = "pulselive"
MOVIELENS = "movielens"
# the option of conf/dataset/ each source is, as a fix names it
OPTIONS = {PULSELIVE: "pulselive_videos", MOVIELENS: "movielens_100k", FILES: "personalize_csv"}
# the event types of the data each source writes (pulselive_videos.generate, movielens.personalize_frames); yours
# are known only once read
EVENT_TYPES = {PULSELIVE: ("click", "watch"), MOVIELENS: ("rating", "watch")}
# the event types whose events carry an EVENT_VALUE, which solution.event_value_threshold compares (a click has none)
VALUED_EVENT_TYPES = {PULSELIVE: ("watch",), MOVIELENS: ("rating", "watch")}


def files_have_a_path(source: str, path: str | None) -> bool:
    return source != FILES or path is not None


def path_is_read(source: str, path: str | None, _params_file: str | None) -> bool:
    """dataset=personalize_csv needs dataset.path; the other datasets read none, so one given them is ignored."""
    return files_have_a_path(source, path) and (source == FILES or path in (None, ""))


def give_or_drop_the_path(source: str, _path: str | None, params_file: str | None) -> str:
    """The fix in the words of where the dataset came from: a params file's keys under DVC (the file's
    dataset.source wins over a dataset= option on the command line), the option otherwise."""
    if source == FILES:
        if params_file:
            return f"set recommendation.dataset.path: <folder with interactions.csv> in {params_file}"
        return "give dataset.path=<folder with interactions.csv and interactions.schema.json>"
    read_by = f"dataset.path is read only by it (dataset={OPTIONS.get(source, source)} reads no path)"
    if params_file:
        return (
            f"{read_by}: in {params_file} set recommendation.dataset.source: {FILES} (`dvc exp run -S "
            f"recommendation.dataset.source={FILES}`) and recommendation.dataset.relevant_event_type and "
            "relevant_min_value for your data (null: every test interaction counts), or set "
            "recommendation.dataset.path: null"
        )
    return f"{read_by}: add dataset=personalize_csv, or leave dataset.path out"


def platform_can_be_generated(source: str, n_users: int, n_videos: int) -> bool:
    """Whether the generated platform has videos to watch and enough users to pass Personalize's floor."""
    return source != PULSELIVE or (n_users >= MIN_GENERATED_USERS and n_videos >= 1)


def raise_the_platform(_source: str, n_users: int, n_videos: int) -> str:
    """The generated platform rule's fix: it names only the sizes that are too small."""
    few_users = n_users < MIN_GENERATED_USERS
    raises = [f"dataset.n_users to {MIN_GENERATED_USERS} or more (default 2000)"] if few_users else []
    raises += ["dataset.n_videos to 1 or more (default 1500)"] if n_videos < 1 else []
    return f"raise {' and '.join(raises)}"


def generates_the_floor(source: str, n_interactions: int) -> bool:
    """Whether the generated platform is sure to write Personalize's 1,000 interactions, whatever the seed."""
    return source != PULSELIVE or int(n_interactions / INTERACTIONS_PER_VISIT) >= MIN_INTERACTIONS


def event_type_is_in_the_data(source: str, event_type: str | None) -> bool:
    """Whether an event type a setting names is one of the data's (yours are checked once read)."""
    return event_type is None or source not in EVENT_TYPES or event_type in EVENT_TYPES[source]


def choose_an_event_type(key: str) -> Callable[[str, str], str]:
    """The fix of `key` naming an event type the data lacks: the closest one, and each the data has."""

    def fix(source: str, event_type: str) -> str:
        types = list(EVENT_TYPES[source])
        return (
            f"{did_you_mean(str(event_type), types)}dataset={OPTIONS[source]} has {' and '.join(types)} events: choose "
            f"one, or set {key}=null"
        )

    return fix


def threshold_has_values(source: str, event_type: str | None, event_value_threshold: float | None) -> bool:
    """Whether the event type a threshold filters has values to compare (yours are checked once read)."""
    valued = VALUED_EVENT_TYPES.get(source)
    return (
        event_value_threshold is None or valued is None or event_type not in EVENT_TYPES[source] or event_type in valued
    )


def choose_a_valued_type(type_key: str, threshold_key: str) -> Callable[[str, str, float], str]:
    """The fix of `threshold_key` set beside `type_key` naming events that carry no value."""

    def fix(source: str, event_type: str, _threshold: float) -> str:
        valued = VALUED_EVENT_TYPES[source]
        return (
            f"{event_type} events carry no EVENT_VALUE, so the threshold would keep none: set {threshold_key}=null, "
            f"or {type_key}={' or '.join(valued)}"
        )

    return fix
