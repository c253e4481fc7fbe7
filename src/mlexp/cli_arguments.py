"""The command line before Hydra reads it: flags as argparse reads them, `-m` anywhere, a misspelt command, a grammar
error, `--cfg --resolve`.

Each mistake is one line naming the fix; Hydra's own parser would answer with argparse's usage block or a traceback.
"""

from __future__ import annotations

import argparse
import difflib
from pathlib import Path
from typing import NoReturn

from hydra._internal.utils import get_args_parser
from hydra.errors import OverrideParseException

from mlexp.errors import MlexpError

GRAMMAR_URL = "https://hydra.cc/docs/1.3/advanced/override_grammar/basic/"
MULTIRUN_FLAGS = ("-m", "--multirun")
HELP_FLAGS = ("-h", "--help")
# Hydra's other modes (print a config, print information, run): one mode per command
_OTHER_MODES = ("cfg", "info", "run", "shell_completion")


def spelled_out(argv: list[str]) -> list[str]:
    """Hydra's flags written in full, as its argparse parser reads them: `--multi` is `--multirun`, `-cjob` is
    `--cfg=job`, `-mcjob` is both. The checks here then see every way a flag can be typed. An unknown or ambiguous
    flag is one line, not argparse's usage block."""
    parser = get_args_parser()

    def refuse(message: str) -> NoReturn:
        raise MlexpError(f"{message}; the flags: mlexp --help, and Hydra's: mlexp --hydra-help")

    parser.error = refuse  # type: ignore[method-assign]  # argparse prints its usage block and exits
    return [spelled for arg in argv for spelled in _spelled_flag(parser, arg)]


def _spelled_flag(parser: argparse.ArgumentParser, arg: str) -> list[str]:
    parsed = parser._parse_optional(arg)  # argparse's own reading: abbreviations, attached values, short flags
    if parsed is None:
        return [arg]  # an override (or a flag's value)
    action, option, attached = parsed
    if action is None:
        flags = sorted({max(a.option_strings, key=len) for a in parser._actions if a.option_strings})
        parser.error(f"{arg} is not a flag of mlexp ({', '.join(flags)})")
    name = max(action.option_strings, key=len)  # the long form
    if attached is None:
        return [name]
    if action.nargs != 0:
        return [f"{name}={attached}"]
    if option.startswith("--"):
        parser.error(f"{arg}: {name} takes no value")
    return [name, *_spelled_flag(parser, f"-{attached}")]  # short flags together: -mc job


def multirun_first(argv: list[str]) -> list[str]:
    """`-m` anywhere among the overrides, as users type it (`mlexp task=churn_incentives -m model.max_depth=4,6`):
    Hydra's parser takes it only before them or after them all."""
    flags = [arg for arg in argv if arg in MULTIRUN_FLAGS]
    actions = get_args_parser()._option_string_actions  # Hydra's own flag names, short and long
    modes = {option for option, action in actions.items() if action.dest in _OTHER_MODES}
    if flags and any(arg.split("=")[0] in modes for arg in argv):
        raise MlexpError(
            "-m runs a sweep; --cfg, --info and --run are other modes, and Hydra takes one: drop -m to print a "
            "config (mlexp --cfg job <overrides>)"
        )
    return flags[:1] + [arg for arg in argv if arg not in MULTIRUN_FLAGS]


def check_command_word(argv: list[str], commands: list[str], conf_dir: Path) -> None:
    """A first word that is neither a command nor an override (`mlexp comapre ...`, `mlexp churn_incentives`): say
    which commands exist, or the override the word was meant as."""
    word = argv[0] if argv else ""
    if not word or word.startswith(("-", "+", "~")) or "=" in word:
        return
    if (conf_dir / "task" / f"{word}.yaml").is_file():
        raise MlexpError(f"{word!r} is a task, not a command; run it with: mlexp task={word}")
    close = difflib.get_close_matches(word, commands, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    raise MlexpError(
        f"{word!r} is neither a command nor an override (key=value); {hint}commands: {', '.join(commands)}; "
        "or run a trial: mlexp task=<task> [key=value ...]"
    )


def grammar_error(error: OverrideParseException) -> str:
    """Hydra's reason an override does not parse, in one line with the override and the grammar's page."""
    lines = [line.strip() for line in str(error).splitlines()]
    reason = "; ".join(line for line in lines if line and not line.startswith(("Error parsing", "See http")))
    return f"{error.override}: {reason}; the override grammar: {GRAMMAR_URL}"


def check_printable(conf_dir: Path, overrides: list[str], *, resolve: bool) -> None:
    """`--cfg`/`--info` with an override the config cannot take (`model.l1_size=8,16` without -m) or, with `resolve`,
    a `${...}` that resolves nowhere: the run's one line, not Hydra's block or the traceback its printing of the
    config comes with. (What the run's checks do not explain is left to Hydra's own report.)"""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException

    from mlexp.config import make_composable
    from mlexp.config.overrides import explain_failed_composition
    from mlexp.config.validate import resolved_config

    make_composable()
    try:
        with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
            cfg = compose("config", overrides=overrides)
    except HydraException:
        explain_failed_composition(conf_dir, overrides, sweep_values=False)
        return
    if resolve:
        resolved_config(cfg)
