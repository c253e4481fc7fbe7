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
from typing import Any

from omegaconf import DictConfig

from mlexp.errors import MlexpError

MULTIRUN_MODE = "hydra.mode=MULTIRUN"  # what hydra.main adds to a -m command's overrides when conf/ sets no mode


def runs_here(argv: list[str], overrides: list[str]) -> bool:
    """Whether the command is -m and overrides only: other flags (--cfg, --config-dir, ...) are hydra.main's, and so
    is a command that sets hydra.mode itself (Hydra warns when it says RUN)."""
    flags = [arg for arg in argv if arg.startswith("-")]
    return flags in (["-m"], ["--multirun"]) and not any(o.lstrip("+~").startswith("hydra.mode=") for o in overrides)


def exit_if_explained(conf_dir: Path, overrides: list[str], *, sweep_values: bool) -> None:
    """After a composition failed: its one-line explanation and exit status 2, if the checks have one."""
    from hydra.core.global_hydra import GlobalHydra

    from mlexp.config.failed_composition import explain_failed_composition

    GlobalHydra.instance().clear()  # the checks compose through Hydra's compose API, which starts Hydra anew
    try:
        explain_failed_composition(conf_dir, overrides, sweep_values=sweep_values)
    except MlexpError as error:
        print(f"mlexp: error: {error}", file=sys.stderr)
        sys.exit(2)


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
