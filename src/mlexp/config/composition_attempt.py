"""A composition of the command's overrides that the explanation of its failure can start from.

Most of a Hydra composition's cost (a tenth to a third of a second) is the defaults list, every YAML file and the
schemas; the command's values come last. A value Hydra cannot apply (`model.nope=1`, `model.epochs=abc`) fails the
composition, and the checks that explain it in one line need the config those same group choices compose without the
values: kept here from the failed composition instead of composed again.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator

from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra.core.override_parser.types import Override
from omegaconf import DictConfig, open_dict


class CompositionAttempt:
    """A RUN-mode composition of `overrides` (Hydra's compose API, or hydra.main's for one run) made in `watching()`:
    the config before Hydra applied the values, and which overrides Hydra took for values."""

    def __init__(self, overrides: list[str]) -> None:
        self.overrides = overrides
        self.before_values: DictConfig | None = None  # None: the composition failed before it reached the values
        self.values: list[Override] = []

    @contextlib.contextmanager
    def watching(self) -> Iterator[CompositionAttempt]:
        """Hydra's composition in this block keeps a copy of its config before the values (a few ms): Hydra applies
        them through its loader's class (ConfigLoaderImpl._apply_overrides_to_config), not the instance."""
        apply = ConfigLoaderImpl._apply_overrides_to_config

        def applying(overrides: list[Override], cfg: DictConfig) -> None:
            self.before_values, self.values = copy.deepcopy(cfg), list(overrides)
            apply(overrides, cfg)

        ConfigLoaderImpl._apply_overrides_to_config = staticmethod(applying)  # type: ignore[method-assign]
        try:
            yield self
        finally:
            ConfigLoaderImpl._apply_overrides_to_config = staticmethod(apply)  # type: ignore[method-assign]

    def composed(self, overrides: list[str]) -> DictConfig | None:
        """The config Hydra's compose API gives for `overrides` (without Hydra's node), from this attempt: None when
        they choose otherwise than it did (other group choices, a sweep's values), or its composition never reached
        the values. A value that does not apply raises Hydra's own exception, as compose does."""
        if self.before_values is None:
            return None
        values = {override.input_line for override in self.values}
        choices = [line for line in overrides if line not in values]
        if choices != [line for line in self.overrides if line not in values]:
            return None
        cfg = copy.deepcopy(self.before_values)
        ConfigLoaderImpl._apply_overrides_to_config([o for o in self.values if o.input_line in overrides], cfg)
        with open_dict(cfg):
            del cfg["hydra"]
        return cfg
