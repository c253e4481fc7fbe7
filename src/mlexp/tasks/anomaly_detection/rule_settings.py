"""The trial's rules as its config gives them: cfg.model resolved, and a warning for a rule added but not enabled
(given by the query stage: Pre-processing does not depend on the rules, so another trial's may be reused).

Read by every stage, the prepare stage too (it checks the rules before any data is read), so apart from what
only the stages after it need (stage_rules.py), which reaches the detection SQL.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from mlexp.console import warn
from mlexp.tasks.anomaly_detection.rules import not_enabled
from mlexp.tracking import Tracker


def model_settings(cfg: DictConfig) -> dict[str, Any]:
    """cfg.model resolved, as the rules read it."""
    return OmegaConf.to_container(cfg.model, resolve=True)  # type: ignore[return-value]


def warn_not_enabled(cfg: DictConfig, tracker: Tracker) -> None:
    """A rule added to model.rules but not to model.enabled does not run: say so rather than ignore it."""
    idle = not_enabled(model_settings(cfg))
    if idle:
        listed = ",".join([*cfg.model.enabled, *idle])
        warn(
            f"model.rules.{idle[0]} is not in model.enabled, so it does not run"
            f"{' (nor ' + ', '.join(idle[1:]) + ')' if idle[1:] else ''}; to run it: model.enabled=[{listed}]"
        )
        tracker.log_parameters({"rules_not_enabled": ",".join(idle)})
