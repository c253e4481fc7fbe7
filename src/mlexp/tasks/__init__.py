"""The task registry: tasks are found by the name used in `task=<name>`."""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import importlib
import importlib.util
import pkgutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import DictConfig, OmegaConf

from mlexp.data.sources import expand
from mlexp.errors import ConfigError, MlexpError
from mlexp.tracking.digests import prefetch

if TYPE_CHECKING:
    from mlexp.config.bounds import Bound
    from mlexp.config.constraints import Constraint
    from mlexp.config.input_paths import InputPath
    from mlexp.tracking.tracker import Tracker

Stage = Callable[[DictConfig, "Tracker"], None]

# The SageMaker Experiments post names trial components like this.
COMPONENT_NAMES = {
    "prepare": "Pre-processing",
    "train": "Training",
    "evaluate": "Evaluation",
    "deploy": "Deployment",
}


@dataclass(frozen=True)
class Plot:
    """A chart file a stage writes, with DVC's plot options for CSV data (`dvc plots show`)."""

    path: str
    x: str | None = None
    y: str | None = None
    template: str | None = None


@dataclass(frozen=True)
class Out:
    """An output file or folder; `cache=False` keeps a small report out of DVC's cache (git tracks it)."""

    path: str
    cache: bool = True


@dataclass(frozen=True)
class RawData:
    """A real copy of a published dataset, written by `mlexp data <export> <path>` (a stage of the root dvc.yaml)."""

    export: str
    path: str

    @property
    def written_by(self) -> tuple[str, str]:
        """Its path and the command that writes it, given the path (InputPath.written_by)."""
        return self.path, f"mlexp data {self.export}"


@dataclass(frozen=True)
class StageSpec:
    """What one stage reads and writes; `pipelines/<task>/dvc.yaml` is generated from these.

    Paths may hold `{data}`, `{models}` and `{reports}`: the task's folders (`paths.*` of the
    composed config, `data/<task>`… under DVC). `params` are keys of the task's config
    (`model.l1_size`, or a whole section such as `model`). The code a stage runs is found from
    its function in the stages module (`mlexp.stage_code`); `modules` adds modules it reaches
    only by name at run time.
    """

    name: str
    reads: tuple[str | RawData, ...] = ()
    params: tuple[str, ...] = ()
    outs: tuple[str | Out, ...] = ()
    metrics: tuple[str, ...] = ()
    plots: tuple[str | Plot, ...] = ()
    modules: tuple[str, ...] = ()
    # extra `key=value` arguments of the stage's command, e.g. the raw data file it reads
    args: tuple[str, ...] = ()

    @property
    def writes(self) -> tuple[str, ...]:
        """Every path the stage writes (outs, metrics, plots), placeholders unfilled."""
        return (
            *(o if isinstance(o, str) else o.path for o in self.outs),
            *self.metrics,
            *(p if isinstance(p, str) else p.path for p in self.plots),
        )


@dataclass(frozen=True)
class SweepReport:
    """A report that reads one sweep's trials, named at the sweep's end as `<what>: <command>`.

    `command` holds `{sweep}`, filled with the sweep's name (`recommendation_metadata-0412-101500`)."""

    what: str
    command: str


def fill(template: str, folders: Mapping[str, str]) -> str:
    """A declared path with {data}, {models} and {reports} replaced by the task's folders."""
    return template.format_map(folders)


def _folders(cfg: DictConfig) -> dict[str, str]:
    return {name: str(cfg.paths[name]) for name in ("data", "models", "reports")}


def declared_outputs(task: Task, stage: str, cfg: DictConfig) -> list[Path]:
    """What `stage` writes, as paths in the folders of the composed config (`cfg.paths`)."""
    return [Path(fill(path, _folders(cfg))) for path in task.spec(stage).writes]


def declared_inputs(task: Task, stage: str, cfg: DictConfig) -> list[Path]:
    """The data `stage` reads, as paths in the folders of the composed config; raw data under `cfg.paths.root`."""
    return [
        Path(cfg.paths.root) / read.path if isinstance(read, RawData) else Path(fill(read, _folders(cfg)))
        for read in task.spec(stage).reads
    ]


@dataclass(frozen=True)
class Task:
    """A task's stages, run in order; each is a plain function of (cfg, tracker).

    Stages are named, and imported from `stages_module` only when a trial runs, so
    `mlexp --help` and config validation do not pay for loading MXNet or MLflow.
    A stage given by its name alone declares nothing DVC can use (no deps, outs or params).
    """

    name: str
    stages_module: str
    specs: tuple[StageSpec | str, ...]
    # component names for stages beyond the standard four, e.g. {"incentives": "Incentive analysis"}
    component_names: dict[str, str] = field(default_factory=dict)
    # the runner seeds MXNet's generator (and pays for importing it) only for tasks that use it,
    uses_mxnet: bool = False
    # and only when a stage it runs uses it: a DVC stage process running one of these skips the import (seconds)
    stages_without_mxnet: tuple[str, ...] = ()
    # its networks' operators take microseconds: with one thread per trial it runs them on MXNet's synchronous
    # engine (mlexp.mxnet_engine), which saves the hand-off to the engine's thread, about a fifth of a trial's CPU
    small_mxnet_operators: bool = False
    # the suffixes of the data files dataset.path names (a file, a glob, or a folder of such files), which the
    # first stage reads and records with their MD5: the CLI starts hashing them as a trial's command starts
    dataset_suffixes: tuple[str, ...] = ()
    # the ranges its numeric settings must fall in (mlexp.config.bounds), refused before a trial opens
    bounds: Mapping[str, Bound] = field(default_factory=dict)
    # rules across its settings (mlexp.config.constraints), refused before a trial opens too
    constraints: tuple[Constraint, ...] = ()
    # the files and folders its stages read, named by config keys (mlexp.config.input_paths): one that is not there
    # is refused before a trial opens
    inputs: tuple[InputPath, ...] = ()
    # per sweep file (`sweep=<file>`), the report its trials are read into once the sweep ends (named in its last lines)
    sweep_reports: Mapping[str, SweepReport] = field(default_factory=dict)

    def start_hashing_inputs(self, cfg: DictConfig) -> None:
        """Start hashing the files dataset.path names, on a thread, when this process is to run the first stage,
        which records them with their MD5: a month of trips takes 1.2 CPU s, which then passes while the runner
        and the stages' libraries import. (The CLI calls it for one trial; in a sweep, trials after the first
        reuse the first stage, so they would hash for nothing; the first stage hashes what was not started.)"""
        path = OmegaConf.select(cfg, "dataset.path")
        if not self.dataset_suffixes or not path or cfg.get("stage") not in (None, self.stages[0]):
            return
        if OmegaConf.select(cfg, "compute.target") == "sagemaker":  # a training job runs the stages
            return
        with contextlib.suppress(MlexpError, OSError):  # a wrong path is for the first stage to report
            prefetch(expand(path, self.dataset_suffixes))

    @property
    def input_rules(self) -> tuple[Constraint, ...]:
        """`inputs` as rules across keys, checked where the task's constraints are."""
        return tuple(declared.rule for declared in self.inputs)

    def loads_mxnet(self, stages: Iterable[str]) -> bool:
        """Whether running `stages` needs MXNet (seeded before the first of them)."""
        return self.uses_mxnet and any(stage not in self.stages_without_mxnet for stage in stages)

    @property
    def stages(self) -> tuple[str, ...]:
        """The stage names, in the order a trial runs them."""
        return tuple(spec if isinstance(spec, str) else spec.name for spec in self.specs)

    def spec(self, name: str) -> StageSpec:
        """The declaration of stage `name` (an empty one for a stage given by its name alone)."""
        for spec in self.specs:
            if (spec if isinstance(spec, str) else spec.name) == name:
                return StageSpec(spec) if isinstance(spec, str) else spec
        raise ConfigError(f"stage={name!r} is not a stage of task {self.name!r}; stages: {', '.join(self.stages)}")

    @property
    def model_module(self) -> str:
        """Where the task keeps the MLflow pyfunc model `deploy=registry` registers: `<package>.registered_model`."""
        return f"{self.stages_module.rsplit('.', 1)[0]}.registered_model"

    def has_registered_model(self) -> bool:
        """Whether the task has a predictive model to register (found without importing it)."""
        return importlib.util.find_spec(self.model_module) is not None

    def check_registrable(self) -> None:
        """ConfigError when deploy=registry cannot apply (called before a trial starts; imports no MLflow)."""
        if not self.has_registered_model():
            raise ConfigError(
                f"deploy=registry: task {self.name!r} has no predictive model to register "
                f"(no module {self.model_module}); run it with deploy=none"
            )

    def stage(self, name: str) -> Stage:
        function: Stage = getattr(importlib.import_module(self.stages_module), name)
        return function

    def component_name(self, stage: str) -> str:
        names = {**COMPONENT_NAMES, **self.component_names}
        return names.get(stage, stage.replace("_", " ").capitalize())


TASKS: dict[str, Task] = {}


def common_bounds() -> dict[str, Bound]:
    """The ranges of the keys every task has. NumPy and scikit-learn take seeds in [0, 2**32 - 1], and stages derive
    others from the seed (active learning's seed + repeat): the seed stays below 2**31, which leaves them room.
    joblib reads n_jobs=0 as an error and negative values as 'all cores but some' (say how many trials run at once).
    A metric batch holds 1 to 1,000 values (0 was taken as 1, 5000 as 1000); 0 s sends each step's values as
    they come.
    """
    from mlexp.config.bounds import at_least, between

    return {
        "seed": between(0, 2**31 - 1),
        "sweep.max_parallel_jobs": at_least(1),
        "tracking.metric_buffer": between(1, 1000),  # MLflow's log_batch takes 1,000 metrics per request
        "tracking.metric_flush_s": at_least(0),
    }


def register(task: Task) -> Task:
    if task.name in TASKS:
        raise ValueError(f"task {task.name!r} is registered twice")
    task = dataclasses.replace(task, bounds={**common_bounds(), **task.bounds})
    TASKS[task.name] = task
    return task


# Python's convention for plugins: a package outside mlexp declares its task under this entry point group
ENTRY_POINT_GROUP = "mlexp.tasks"
_loaded = False


def load_all() -> dict[str, Task]:
    """Import every task package so each registers itself: mlexp's own, then the installed plugins."""
    global _loaded
    if not _loaded:
        for module in pkgutil.iter_modules(__path__):
            if module.ispkg:
                importlib.import_module(f"{__name__}.{module.name}")
        for entry in entry_points(group=ENTRY_POINT_GROUP):
            _load_plugin(entry)
        _loaded = True
    return TASKS


def _load_plugin(entry: EntryPoint) -> None:
    """Import a task package named by an entry point `<task> = <package>` (or `<package>:<Task object>`)."""
    try:
        loaded = entry.load()
    except Exception as error:
        raise ConfigError(
            f"task {entry.name!r} (entry point {entry.value!r} in group {ENTRY_POINT_GROUP}) failed to import: "
            f"{type(error).__name__}: {error}; fix or uninstall its package"
        ) from error
    if isinstance(loaded, Task) and loaded.name not in TASKS:
        register(loaded)
    if entry.name not in TASKS:
        raise ConfigError(
            f"entry point {entry.name} = {entry.value} (group {ENTRY_POINT_GROUP}) registered no task {entry.name!r}; "
            f"call mlexp.tasks.register(Task({entry.name!r}, ...)) in it"
        )


def get(name: str) -> Task:
    """The registered task `name`, or an error naming the closest task and every task."""
    tasks = load_all()
    if name not in tasks:
        close = difflib.get_close_matches(name, list(tasks), n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise ConfigError(
            f"task={name!r} is not a registered task; {hint}choose one of: {', '.join(sorted(tasks))} "
            f"(a task outside mlexp registers through the {ENTRY_POINT_GROUP!r} entry point group)"
        )
    return tasks[name]
