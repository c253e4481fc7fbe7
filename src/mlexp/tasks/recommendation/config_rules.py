"""The rules across recommendation's config keys: the task's `constraints`, checked before a trial opens, in the
order their refusals are given. The predicates and fixes they use live beside the settings they judge
(dataset_rules, feature_rules, solution_rules), which the stages import to check again.

This module no stage imports: a stage's DVC dependencies are the modules it imports, and a rule's words edited
here must not re-run the stages.
"""

from mlexp.config.constraints import Constraint, leave_a_training_share
from mlexp.tasks.recommendation.dataset_rules import (
    MIN_GENERATED_INTERACTIONS,
    MIN_GENERATED_USERS,
    MIN_INTERACTIONS,
    MIN_USERS,
    choose_a_valued_type,
    choose_an_event_type,
    event_type_is_in_the_data,
    generates_the_floor,
    give_or_drop_the_path,
    path_is_read,
    platform_can_be_generated,
    raise_the_platform,
    threshold_has_values,
)
from mlexp.tasks.recommendation.feature_rules import features_are_fields, name_fields_of_the_data
from mlexp.tasks.recommendation.solution_rules import (
    add_objective_k,
    ks_at_least_one,
    ks_hold_objective_k,
    threshold_has_event_type,
)

CONSTRAINTS = (
    Constraint(
        ("preprocessing.validation_fraction", "preprocessing.test_fraction"),
        leave_a_training_share,
        "preprocessing.validation_fraction + preprocessing.test_fraction must be below 1, to leave a training period",
        "lower one of them (defaults 0.1 + 0.1)",
    ),
    Constraint(
        ("solution.event_value_threshold", "solution.event_type"),
        threshold_has_event_type,
        "an event value threshold needs solution.event_type (CreateSolution accepts an eventType, an eventType with "
        "an eventValueThreshold, or neither)",
        "add solution.event_type=<type>, or set solution.event_value_threshold=null",
    ),
    Constraint(
        ("model.ks", "task.objective.metric"),
        ks_hold_objective_k,
        "model.ks must hold the k of the objective metric (its _at_<k>), which is computed at those ks only",
        add_objective_k,
    ),
    Constraint(("model.ks",), ks_at_least_one, "each k of model.ks must be at least 1", "drop the others"),
    Constraint(
        ("service.default_results", "service.max_results"),
        lambda default, most: default <= most,
        "service.default_results (numResults when a request gives none) must not be above service.max_results, "
        "or every such request is refused",
        "lower service.default_results or raise service.max_results",
    ),
    Constraint(
        ("dataset.source", "dataset.path", "params_file"),
        path_is_read,
        "dataset=personalize_csv reads your datasets from dataset.path",
        give_or_drop_the_path,
        context=("params_file",),
    ),
    Constraint(
        ("dataset.source", "dataset.n_users", "dataset.n_videos"),
        platform_can_be_generated,
        f"the generated platform needs at least {MIN_GENERATED_USERS} users (Personalize's floor is {MIN_USERS} users "
        f"with interactions, and below {MIN_GENERATED_USERS} some seeds leave a late sign-up without a visit) and a "
        "video",
        raise_the_platform,
    ),
    Constraint(
        ("dataset.source", "dataset.n_interactions"),
        generates_the_floor,
        f"the generated platform must write Personalize's floor of {MIN_INTERACTIONS} interactions, which "
        f"dataset.n_interactions guarantees from {MIN_GENERATED_INTERACTIONS} on whatever the seed (a visit per 1.75 "
        "asked, each a click, most followed by a watch)",
        f"raise dataset.n_interactions to {MIN_GENERATED_INTERACTIONS} or more (default 100000)",
    ),
    Constraint(
        ("dataset.source", "dataset.relevant_event_type"),
        event_type_is_in_the_data,
        "dataset.relevant_event_type must be an event type of the data (a hit is a test interaction of that type)",
        choose_an_event_type("dataset.relevant_event_type"),
    ),
    Constraint(
        ("dataset.source", "solution.event_type"),
        event_type_is_in_the_data,
        "solution.event_type (CreateSolution's eventType: train on that type only) must be an event type of the data",
        choose_an_event_type("solution.event_type"),
    ),
    Constraint(
        ("dataset.source", "solution.event_type", "solution.event_value_threshold"),
        threshold_has_values,
        "solution.event_value_threshold keeps the events of solution.event_type whose EVENT_VALUE reaches it",
        choose_a_valued_type("solution.event_type", "solution.event_value_threshold"),
    ),
    Constraint(
        ("dataset.source", "dataset.relevant_event_type", "dataset.relevant_min_value"),
        threshold_has_values,
        "a hit is a test interaction of dataset.relevant_event_type whose EVENT_VALUE reaches "
        "dataset.relevant_min_value",
        choose_a_valued_type("dataset.relevant_event_type", "dataset.relevant_min_value"),
    ),
    Constraint(
        ("dataset.source", "features.users", "features.items", "features.interactions", "paths.root"),
        features_are_fields,
        "features.users, .items and .interactions name metadata fields of the dataset's schemas "
        "(conf/recommendation_schemas)",
        name_fields_of_the_data,
        context=("paths.root",),
    ),
)
