"""`mlexp -m <overrides>` as hydra.main runs a sweep, with one composition fewer and its failure in one line.

hydra.main composes a sweep's config twice: once only to read hydra.mode (Hydra.get_mode, 0.1-0.2 s, its errors
swallowed), then to run. Here the run's composition is the only one, and when it fails (a fixed value its key cannot
take, `model.epochs=abc` beside `model.l1_size=8,16`) the run's one-line explanation is given, exit status 2, instead
of Hydra's block. The rest is Hydra.multirun's own: callbacks, sweeper, launcher, Hydra's error report.

It records what hydra.main records (tests/test_compose_once.py compares the two), with one difference nobody meets in
this project's conf/: a config that sets hydra.mode itself gets `hydra.mode=MULTIRUN` among its recorded Hydra
overrides all the same (hydra.main adds it only when the config sets no mode), and no warning when it set RUN.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig

from mlexp.errors import MlexpError

if TYPE_CHECKING:
    from hydra._internal.hydra import Hydra

    from mlexp.config.composition_attempt import CompositionAttempt

MULTIRUN_MODE = "hydra.mode=MULTIRUN"  # what hydra.main adds to a -m command's overrides when conf/ sets no mode


def runs_here(argv: list[str], overrides: list[str]) -> bool:
    """Whether the command is -m and overrides only: other flags (--cfg, --config-dir, ...) are hydra.main's, and so
    is a command that sets hydra.mode itself (Hydra warns when it says RUN)."""
    flags = [arg for arg in argv if arg.startswith("-")]
    return flags in (["-m"], ["--multirun"]) and not any(o.lstrip("+~").startswith("hydra.mode=") for o in overrides)


def exit_if_explained(
    conf_dir: Path, overrides: list[str], *, sweep_values: bool, attempt: CompositionAttempt | None = None
) -> None:
    """After a composition failed: its one-line explanation and exit status 2, if the checks have one; `attempt`, the
    failed RUN-mode composition, spares them composing its group choices again."""
    from hydra.core.global_hydra import GlobalHydra

    from mlexp.config.failed_composition import explain_failed_composition

    GlobalHydra.instance().clear()  # the checks compose through Hydra's compose API, which starts Hydra anew
    try:
        explain_failed_composition(conf_dir, overrides, sweep_values=sweep_values, attempt=attempt)
    except MlexpError as error:
        print(f"mlexp: error: {error}", file=sys.stderr)
        sys.exit(2)


def sweep_lines(overrides: list[str]) -> set[str]:
    """The overrides that give a sweep's values (`model.l1_size=8,16`, `model=a,b`, `seed=range(3)`)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    return {str(override.input_line) for override in parsed if override.is_sweep_override()}


def exit_if_run_explained(
    app: Hydra, conf_dir: Path, overrides: list[str], attempt: CompositionAttempt, swept: set[str]
) -> None:
    """After one run's composition failed (`attempt`; not tried with a sweep's values, `swept`, which Hydra refuses in
    a run before composing anything): its one-line explanation and exit status 2, if the checks have one.

    Whether the config asks for a sweep (hydra.mode=MULTIRUN, from conf/ or the command) changes the explanation only
    when the command gives a sweep's values. hydra.main reads it in a composition of its own that skips them
    (Hydra.get_mode); here a run's composition without them reads it, and the checks start from it.
    """
    from hydra.types import RunMode

    from mlexp.config.composition_attempt import CompositionAttempt

    sweep = False
    if swept:
        attempt = CompositionAttempt([line for line in overrides if line not in swept])
        try:
            with attempt.watching():
                cfg = app.compose_config("config", attempt.overrides, run_mode=RunMode.RUN)
            sweep = cfg.hydra.mode == RunMode.MULTIRUN
        except Exception:
            # a value that does not apply fails Hydra's reading too (no mode); what failed before the values may not,
            # as Hydra's reading skips a missing default: its own reading then
            if attempt.before_values is None:
                sweep = app.get_mode("config", overrides) == RunMode.MULTIRUN
    exit_if_explained(conf_dir, overrides, sweep_values=sweep, attempt=attempt)


def run_multirun(conf_dir: Path, overrides: list[str], task_function: Callable[[DictConfig], Any]) -> None:
    from hydra import version
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_config_search_path, run_and_report
    from hydra.core.global_hydra import GlobalHydra

    version.setbase("1.3")
    # hydra.main's job name is its task function's module's: `cli`
    app = run_and_report(lambda: Hydra.create_main_hydra2("cli", create_config_search_path(str(conf_dir))))
    compose = app.compose_config

    def compose_or_explain(*args: Any, **kwargs: Any) -> DictConfig:
        try:
            return compose(*args, **kwargs)
        except Exception:
            exit_if_explained(conf_dir, overrides, sweep_values=True)
            raise  # not one the checks explain: Hydra's own report

    app.compose_config = compose_or_explain  # type: ignore[method-assign]
    try:
        run_and_report(lambda: app.multirun("config", task_function, [*overrides, MULTIRUN_MODE]))
    finally:
        GlobalHydra.instance().clear()
