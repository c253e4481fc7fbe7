"""A sweep that would break a task's rule across keys is refused before its record opens, in a line that leads with
the combination a job would get and then says where the swept values come from (mlexp.sweeps.swept_rules)."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir

from conftest import one_line_error
from mlexp.config import make_composable
from mlexp.errors import ConfigError
from mlexp.sweeps import swept_rules
from mlexp.sweeps.swept_rules import check_swept_constraints


def test_a_fixed_value_breaking_a_rule_with_a_sweep_files_values_names_the_file_as_the_source_only(tmp_project):
    # the command line's event_type=null is the cause; the sweep file only gives the thresholds it meets
    message = one_line_error(
        tmp_project, "-m", "task=recommendation", "sweep=recommendation_filters", "solution.event_type=null"
    )
    assert message.startswith(
        "the sweep would run solution.event_value_threshold=0.0, solution.event_type=null (from "
        "solution.event_value_threshold=0.0,0.5,0.75 in sweep=recommendation_filters): an event value threshold "
        "needs solution.event_type"
    )
    assert message.endswith("add solution.event_type=<type>, or set solution.event_value_threshold=null")


def _churn_sweep(tmp_project, *overrides: str):
    make_composable()
    with initialize_config_dir(config_dir=str(tmp_project / "conf"), version_base="1.3"):
        return compose("config", overrides=["task=churn_incentives"], return_hydra_config=True)


def test_combinations_past_the_cap_are_left_to_each_jobs_own_check(tmp_project, monkeypatch):
    config = _churn_sweep(tmp_project)
    # 3 x 2 = 6 combinations; 0.9 with either validation fraction leaves no customer to train on
    fractions = ["preprocessing.test_fraction=0.3,0.5,0.9", "preprocessing.validation_fraction=0.1,0.2"]
    config.hydra.overrides.task = fractions
    with pytest.raises(ConfigError, match=r"^the sweep would run preprocessing.validation_fraction=0.1, "):
        check_swept_constraints(config)
    monkeypatch.setattr(swept_rules, "MAX_COMBINATIONS", 5)
    check_swept_constraints(config)  # 6 > 5: not listed here; the runner refuses the job whose values break it
    monkeypatch.setattr(swept_rules, "MAX_COMBINATIONS", 6)
    with pytest.raises(ConfigError):
        check_swept_constraints(config)
