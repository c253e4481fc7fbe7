"""A sweep's search space: the overrides its jobs apply (the command's sweeps and the sweep file's
`hydra.sweeper.params`), and whether its sweeper can run them.

Each refusal comes before the sweep's record opens; past it, the sweeper would stop with a traceback.
"""

from __future__ import annotations

import re
import warnings
from typing import NamedTuple

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, Glob, IntervalSweep, Override, OverrideType, RangeSweep
from hydra.errors import HydraException, OverrideParseException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from mlexp import tasks
from mlexp.config.bounds import as_written, endless_integer_choice, endless_integer_range, interval_out_of_bounds
from mlexp.config.group_options import config_groups
from mlexp.config.known_keys import schema_field
from mlexp.config.overrides import command_overrides, sweeper_params
from mlexp.errors import ConfigError
from mlexp.paths import NoProject, project_root
from mlexp.sweeps.sweep_size import MAX_LISTED_VALUES, endless_range, grid_too_large, range_length, too_many_choices

# how each kind of value override is written: a check applies each value the way the command gives it
VALUE_PREFIXES = {OverrideType.CHANGE: "", OverrideType.ADD: "+", OverrideType.FORCE_ADD: "++"}


def plain_key(override: Override, groups: set[str], *, adding: bool = False) -> bool:
    """A value change of a config key, or with `adding` also `+key`/`++key` (not a group choice, `~`, a package or
    Hydra's own settings)."""
    key = override.key_or_group
    plain = override.type in (VALUE_PREFIXES if adding else (OverrideType.CHANGE,)) and override.package is None
    return plain and not key.startswith("hydra") and key not in groups and "/" not in key


class Swept(NamedTuple):
    """One override each job applies on top of the config they share, and the sweep file it comes from, if any."""

    override: Override
    sweep_file: str | None  # None: the command line; else the sweep file whose hydra.sweeper.params gives it

    def where(self) -> str:
        return f"hydra.sweeper.params of sweep={self.sweep_file}: " if self.sweep_file else ""

    def line(self) -> str:
        """The override as the user wrote it, after where it was written."""
        return f"{self.where()}{self.override.input_line or self.override.key_or_group}"

    def source(self) -> str:
        """The override as the user wrote it, then the sweep file it is in, if any."""
        written = self.override.input_line or self.override.key_or_group
        return f"{written} in sweep={self.sweep_file}" if self.sweep_file else written


def sweeper_kind(config: DictConfig) -> str:
    """`optuna` (random and Bayesian searches), `grid` (Hydra's basic sweeper), else the sweeper's target."""
    target = str(config.hydra.sweeper.get("_target_", ""))
    if "optuna" in target.lower():
        return "optuna"
    return "grid" if target.endswith("BasicSweeper") else target


def swept_overrides(config: DictConfig, parser: OverridesParser) -> list[Swept]:
    """The command's sweep overrides, then the sweeper's own search space (`hydra.sweeper.params`) less the keys the
    command also gives: Hydra applies neither to the config the sweep callback sees. A key given in both takes the
    command's values, as in Hydra's basic sweeper; Optuna's keeps a fixed value from the file instead, and then the
    command's values, which it ignores, are the ones checked."""
    command = parser.parse_overrides(command_overrides(config.hydra))
    swept = [Swept(o, None) for o in command if o.is_sweep_override()]
    sweep_file = str(config.hydra.runtime.choices.get("sweep"))
    try:
        from_params = parser.parse_overrides(sweeper_params(config.hydra))
    except (HydraException, OmegaConfBaseException) as error:
        unread = error.override if isinstance(error, OverrideParseException) else None  # Hydra's grammar failed on it
        endless = endless_whole_search(unread, sweep_file)
        if endless is not None:  # Hydra's sweeper would fail on it after the sweep's record opened
            raise ConfigError(f"hydra.sweeper.params of sweep={sweep_file}: {endless}") from None
        return swept  # the sweeper reports its own search space
    given = {o.get_key_element() for o in command}  # the sweepers' key: with its +/++/~ and package
    return swept + [Swept(o, sweep_file) for o in from_params if o.get_key_element() not in given]


def endless_whole_search(written: str | None, sweep_file: str | None = None) -> ConfigError | None:
    """The refusal of an interval to infinity of a key that takes whole numbers (check_search_space) for the same
    search written with int(...) (`model.epochs=int(interval(1, inf))`), which never reaches that check: Hydra's
    grammar makes each end an integer as it reads the override, and fails on int(inf) with an OverflowError; likewise
    for a choice among whole numbers with inf or nan among them (`int(choice(1, inf))`). `sweep_file`: the sweep file
    whose hydra.sweeper.params gives the override, if any. None for any other override."""
    key, _, value = (written or "").partition("=")
    as_fractions = re.sub(r"(?<!\w)int\(", "float(", value)  # which Hydra reads: the ends and tags as given
    if as_fractions == value:
        return None
    try:
        search = OverridesParser.create().parse_override(f"key={as_fractions}").value()
    except HydraException:
        return None
    key = key.lstrip("+~").strip()
    refused = None
    if isinstance(search, IntervalSweep) and search.start is not None and search.end is not None:
        refused = endless_integer_range(key, search.start, search.end, search.tags, sweep_file=sweep_file)
    elif isinstance(search, ChoiceSweep):
        numbers = [value for value in search.list if isinstance(value, (int, float)) and not isinstance(value, bool)]
        if len(numbers) == len(search.list):
            listed = search.simple_form
            refused = endless_integer_choice(key, numbers, search.tags, listed=listed, sweep_file=sweep_file)
    return None if refused is None else ConfigError(f"{written}: {refused}")


def as_typed(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)  # Hydra escapes ${…} and the like in sweep values


def listed(override: Override) -> list[str] | None:
    """The values a discrete sweep lists; None for a glob (only Hydra's config loader can list a group's options),
    and for a range of more than MAX_LISTED_VALUES or none that ends (sweep_size.range_ends judges a long one)."""
    value = override.value()
    length = range_length(value) if isinstance(value, RangeSweep) else 0
    if length is None or length > MAX_LISTED_VALUES:
        return None
    try:
        return list(override.sweep_string_iterator())
    except HydraException:
        return None


def check_search_space(config: DictConfig) -> None:
    """Each swept override must be a search its sweeper can run. A grid runs listed values: a range with a step and
    values, no interval. Optuna's takes the distributions it can make (low <= high, a log scale above 0, no glob)
    and at least one trial. An interval must lie in its key's range (the task's bounds). A range must end, a grid
    must run at most MAX_GRID_JOBS jobs, and a choice of Optuna's at most MAX_CHOICE_VALUES values: listing more would
    seem to hang, before the first trial (sweep_size)."""
    kind = sweeper_kind(config)
    bounds = tasks.get(config.task.name).bounds
    swept = swept_overrides(config, OverridesParser.create())
    for entry in swept:
        override, key, line = entry.override, entry.override.key_or_group, entry.line()
        search = override.value()
        endless = endless_range(key, search, sweep_file=entry.sweep_file) if isinstance(search, RangeSweep) else None
        if endless is not None:
            raise ConfigError(f"{line}: {endless}")
        written = override.input_line or key
        listing = too_many_choices(written, key, search, sweep_file=entry.sweep_file) if kind == "optuna" else None
        if listing is not None:  # before _optuna_distribution, which lists every value too
            raise ConfigError(f"{entry.where()}{listing}")
        if kind == "optuna" and isinstance(override.value(), Glob):
            raise ConfigError(
                f"{line}: Optuna's sweeper searches choice(...), range(...) and interval(...), not glob(...); list "
                "the options: choice(a,b)"
            )
        if kind == "grid" and override.is_interval_sweep():
            give = f"{key}=a,b or {key}=range(start,stop,step)"
            if entry.sweep_file is not None:
                give = f"`{key}: a,b` or `{key}: range(start,stop,step)` in conf/sweep/{entry.sweep_file}.yaml"
            raise ConfigError(
                f"{line}: a grid runs listed values, and an interval lists none; give values ({give}), or search "
                "the interval with sweep=random or sweep=tpe"
            )
        try:
            if kind == "optuna":
                _optuna_distribution(override)
            values = listed(override) if kind == "grid" and override.is_discrete_sweep() else None
        except (ValueError, NotImplementedError) as error:
            reason = str(error).strip().rstrip(".")
            raise ConfigError(f"{line}: {reason}; give a search the sweeper can run") from error
        if values == []:
            raise ConfigError(f"{line} lists no values, so the grid would run no trial; give some")
        interval = override.value()
        if isinstance(interval, IntervalSweep) and interval.start is not None and interval.end is not None:
            whole = _takes_whole_numbers(config, key)
            start, end, tags, sweep_file = interval.start, interval.end, interval.tags, entry.sweep_file
            refused = interval_out_of_bounds(
                key, start, end, bounds.get(key), whole=whole, tags=tags, sweep_file=sweep_file
            )
            if refused is not None:
                raise ConfigError(f"{line}: {refused}")
            if whole and not (isinstance(start, int) and isinstance(end, int)):
                written = (override.input_line or "").partition("=")[2] or f"interval({start}, {end})"
                _refuse_fractions(key, line, written, sweep_file)
    too_large = grid_too_large([(s.source(), _values_count(s.override)) for s in swept]) if kind == "grid" else None
    if too_large is not None:
        raise too_large
    trials = config.hydra.sweeper.get("n_trials") if kind == "optuna" else None
    if trials is not None and int(trials) < 1:
        named = (
            f"sweep.max_jobs={config.sweep.max_jobs}: a search runs sweep.max_jobs trials"
            if trials == config.sweep.max_jobs
            else f"hydra.sweeper.n_trials={trials}: Optuna's sweeper runs that many trials"
        )
        raise ConfigError(f"{named}; give 1 or more")


def _values_count(override: Override) -> int:
    """How many values a grid takes from the override (each of a glob's options: conf/'s files of the group)."""
    search = override.value()
    if isinstance(search, RangeSweep):
        return range_length(search) or 1  # a step that is no number: Hydra's own error
    if isinstance(search, ChoiceSweep):
        return len(search.list)
    if isinstance(search, Glob):
        try:
            return len(search.filter(config_groups(project_root() / "conf").get(override.key_or_group, [])))
        except (NoProject, OSError):
            return 1
    return 1


def _takes_whole_numbers(config: DictConfig, key: str) -> bool:
    setting = schema_field(config, key)
    if setting is not None:  # annotations are text in the schemas (postponed evaluation)
        return str(setting.type).replace(" ", "") in ("int", "int|None", "Optional[int]", "<class'int'>")
    return type(OmegaConf.select(config, key, default=None, throw_on_resolution_failure=False)) is int


def _refuse_fractions(key: str, line: str, text: str, sweep_file: str | None) -> None:
    """A key that takes whole numbers searched by a plain interval, whose samples are floats (24.596...): each trial
    would fail to merge its value after the sweep's record opened. int(interval(...)) samples whole numbers."""
    # the search as written, its interval made whole: a tag(log, ...) around it stays
    fixed = re.sub(r"(?<![\w(])interval\(([^()]*)\)", r"int(interval(\1))", text, count=1)
    raise ConfigError(
        f"{line}: {key} takes whole numbers, and interval(...) samples fractions; write "
        f"{as_written(key, fixed, sweep_file)}"
    )


def _optuna_distribution(override: Override) -> None:
    """What Optuna's sweeper makes of the override; raises as the sweeper would."""
    from hydra_plugins.hydra_optuna_sweeper._impl import create_optuna_distribution_from_override

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the Optuna sweeper's distributions are deprecated ones: not the user's
        create_optuna_distribution_from_override(override)
