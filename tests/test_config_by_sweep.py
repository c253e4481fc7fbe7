"""`${by_sweep:...}`: the value a task's config names for the sweep running, else the default."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from mlexp.config import make_composable
from mlexp.errors import ConfigError, mlexp_error_behind


def _resolved(sweep_name: str | None, per_sweep: str) -> str:
    make_composable()  # registers it, as in every process that composes a config
    cfg = OmegaConf.create({"sweep": {"name": sweep_name}, "value": f"${{by_sweep:${{sweep.name}},{per_sweep},dflt}}"})
    return str(cfg.value)


def test_a_sweep_named_gets_its_value_any_other_or_none_the_default():
    assert _resolved("tables", "{tables:cell_accuracy,budget:report}") == "cell_accuracy"
    assert _resolved("budget", "{tables:cell_accuracy,budget:report}") == "report"
    assert _resolved("other", "{tables:cell_accuracy}") == "dflt"
    assert _resolved(None, "{tables:cell_accuracy}") == "dflt"


def test_a_value_with_a_colon_or_spaces_is_kept_whole():
    assert _resolved("tables", "{tables:a:b}") == "a:b"
    assert _resolved("tables", "{tables:'a, b c'}") == "a, b c"


def test_a_second_argument_not_a_mapping_is_one_line():
    with pytest.raises(Exception) as raised:
        _resolved("tables", "[tables]")
    refusal = mlexp_error_behind(raised.value)  # OmegaConf wraps it; the CLI prints this one line
    assert isinstance(refusal, ConfigError)
    assert "its second argument is ['tables'], not a mapping" in str(refusal)
