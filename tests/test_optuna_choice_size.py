"""Optuna's sweeper makes choice(...) and shuffle(range(...)) a list of every value: a search of more values than
it handles is refused before the sweep's record opens, with the interval that samples the same span."""

from __future__ import annotations

import pytest
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep
from omegaconf import open_dict

from conftest import REPO, composed_with_hydra, one_line_error
from mlexp.errors import ConfigError
from mlexp.sweeps.search_space import check_search_space
from mlexp.sweeps.sweep_size import MAX_CHOICE_VALUES, too_many_choices

HANG_S = 60  # the refusal takes seconds; before it, the sweep opened its record and listed a billion values for hours


def listing(count: int) -> str:
    return (
        f"Optuna's sweeper would make it a choice among {count:,} values, listed one by one, and past "
        f"{MAX_CHOICE_VALUES:,} that takes minutes and gigabytes before the first trial; "
    )


def test_a_shuffled_range_of_a_billion_seeds_is_refused_before_the_sweep_opens(tmp_project):
    search = "seed=shuffle(range(0, 1000000000))"
    line = one_line_error(tmp_project, "-m", "task=tabular_regression", "sweep=tpe", search, timeout=HANG_S)
    assert line == (
        f"{search}: {listing(1_000_000_000)}sample its span as an integer distribution: "
        "'seed=int(interval(0, 999999999))'"
    )


def test_a_sweep_file_searching_a_long_fractional_range_is_told_the_interval_to_write_in_it(tmp_project):
    (tmp_project / "conf" / "sweep" / "fine.yaml").write_text(
        "# @package _global_\ndefaults:\n  - tpe\nsweep:\n  name: fine\nhydra:\n  sweeper:\n    params:\n"
        "      model.learning_rate: tag(log, shuffle(range(0.001, 0.1, 0.0000001)))\n"
    )
    line = one_line_error(tmp_project, "-m", "task=tabular_regression", "sweep=fine", timeout=HANG_S)
    assert line == (
        "hydra.sweeper.params of sweep=fine: model.learning_rate=tag(log, shuffle(range(0.001, 0.1, 0.0000001))): "
        f"{listing(990_001)}sample its span as a number distribution: "
        "`model.learning_rate: tag(log, interval(0.001, 0.1))` in conf/sweep/fine.yaml"
    )


def searched(project, search: str):
    """The config a `mlexp -m task=tabular_regression sweep=tpe <search>` sweep is checked with."""
    config = composed_with_hydra(project, "task=tabular_regression", "sweep=tpe")
    with open_dict(config):
        config.hydra.overrides.task.append(search)
    return config


def test_optuna_takes_a_choice_of_as_many_values_as_it_handles_and_no_more(tmp_project):
    check_search_space(searched(tmp_project, f"seed=shuffle(range(0, {MAX_CHOICE_VALUES}))"))  # the sweep starts
    with pytest.raises(ConfigError, match=f"choice among {MAX_CHOICE_VALUES + 1:,} values"):
        check_search_space(searched(tmp_project, f"seed=shuffle(range(0, {MAX_CHOICE_VALUES + 1}))"))


def test_a_long_choice_is_named_by_its_first_values_and_a_choice_of_words_told_to_list_fewer():
    # as Hydra reads `seed=0,1,...,100000` (parsing so long a line takes seconds: the search is built here)
    numbers = ChoiceSweep(list=list(range(MAX_CHOICE_VALUES + 1)))
    written = "seed=" + ",".join(map(str, numbers.list))
    assert str(too_many_choices(written, "seed", numbers)) == (
        f"seed=0, 1, 2 and {MAX_CHOICE_VALUES - 2} more: {listing(MAX_CHOICE_VALUES + 1)}sample its span as an "
        f"integer distribution: 'seed=int(interval(0, {MAX_CHOICE_VALUES}))'"
    )
    words = ChoiceSweep(list=[f"w{n}" for n in range(MAX_CHOICE_VALUES + 1)])
    assert str(too_many_choices("seed=choice(w0, ...)", "seed", words)).endswith(
        f"; give at most {MAX_CHOICE_VALUES:,} values"
    )
    assert too_many_choices("seed=choice(1, 2)", "seed", ChoiceSweep(list=[1, 2])) is None


def test_the_shipped_sweep_files_searches_are_left_as_they_are():
    parser = OverridesParser.create()
    for sweep_file in sorted((REPO / "conf" / "sweep").glob("*.yaml")):
        params = (yaml.safe_load(sweep_file.read_text()) or {}).get("hydra", {}).get("sweeper", {}).get("params", {})
        for override in parser.parse_overrides([f"{key}={value}" for key, value in params.items()]):
            assert too_many_choices(override.input_line, override.key_or_group, override.value()) is None


def test_a_shuffled_range_with_a_step_is_offered_the_same_values_unshuffled():
    # the interval offered sampled every integer of the span, not every tenth
    written = "seed=shuffle(range(0, 10000000, 10))"
    override = OverridesParser.create().parse_override(written)
    refused = too_many_choices(written, "seed", override.value())
    assert refused is not None and str(refused).endswith(
        "without shuffle(...) Optuna samples it with its step, unlisted: 'seed=range(0, 9999990, 10)'"
    )
    offered = OverridesParser.create().parse_override("seed=range(0, 9999990, 10)")
    assert too_many_choices("seed=range(0, 9999990, 10)", "seed", offered.value()) is None
    from hydra_plugins.hydra_optuna_sweeper._impl import create_optuna_distribution_from_override

    distribution = create_optuna_distribution_from_override(offered)
    assert (distribution.low, distribution.high, distribution.step) == (0, 9_999_990, 10)  # range(0, 10**7, 10)'s
