"""The command line before Hydra reads it: flags as argparse reads them, `-m` anywhere, a misspelt command, a grammar
error, `--cfg --resolve`.

Each mistake is one line naming the fix; Hydra's own parser would answer with argparse's usage block or a traceback.
"""

from __future__ import annotations

import argparse
import difflib
import shlex
from collections import deque
from pathlib import Path
from typing import NoReturn

from hydra._internal.utils import get_args_parser
from hydra.errors import OverrideParseException
from omegaconf import OmegaConf

from mlexp.errors import ConfigError, MlexpError

GRAMMAR_URL = "https://hydra.cc/docs/1.3/advanced/override_grammar/basic/"
MULTIRUN_FLAGS = ("-m", "--multirun")
HELP_FLAGS = ("-h", "--help")
# Hydra's other modes (print a config, print information, run): one mode per command
_OTHER_MODES = ("cfg", "info", "run", "shell_completion")


def spelled_out(argv: list[str]) -> list[str]:
    """Hydra's flags written in full and put before the overrides, each with its value, as its argparse parser reads
    them: `--multi` is `--multirun`, `-cjob` and `-c job` are `--cfg=job`, `-mcjob` is both. The checks here then see
    every way a flag can be typed, and a flag may stand among the overrides (argparse takes overrides after a flag's
    value only when none came before it). An unknown or ambiguous flag, or a value it does not take, is one line, not
    argparse's usage block."""
    parser = get_args_parser()

    def refuse(message: str) -> NoReturn:
        raise MlexpError(f"{message}; the flags: mlexp --help, and Hydra's: mlexp --hydra-help")

    parser.error = refuse  # type: ignore[method-assign]  # argparse prints its usage block and exits
    flags: list[str] = []
    overrides: list[str] = []
    rest = deque(argv)
    while rest:
        arg = rest.popleft()
        if arg == "--":  # argparse's end of the flags: the words after it are overrides, as Hydra's parser reads them
            overrides += [arg, *rest]
            break
        spelled = _spelled_flag(parser, arg)
        if spelled is None:
            overrides.append(arg)
            continue
        action, names = spelled
        # the next word is a flag's value only when argparse would not read it as a flag itself (`--info -cd extra`)
        following = rest[0] if rest and not _is_flag(parser, rest[0]) else None
        if "=" in names[-1] or action.nargs == 0:
            value = None
        elif action.nargs == "?":  # --info takes a value only when one of its choices follows
            value = rest.popleft() if following in (action.choices or ()) else action.const  # not the first override
        elif following is not None:
            value = rest.popleft()
        else:
            choices = f" ({', '.join(map(str, action.choices))})" if action.choices else ""
            parser.error(f"{names[-1]} needs a value{choices}")
        if value is not None:
            names[-1] = f"{names[-1]}={value}"
        _check_choice(parser, action, names[-1])
        flags += names
    return flags + overrides


def _is_flag(parser: argparse.ArgumentParser, arg: str) -> bool:
    """Whether argparse reads `arg` as a flag, not as a value (`-1` and words with a space are values); `--`, its
    end of the flags, is no value either."""
    return arg == "--" or parser._parse_optional(arg) is not None


def _spelled_flag(parser: argparse.ArgumentParser, arg: str) -> tuple[argparse.Action, list[str]] | None:
    """The flag(s) `arg` is, in full (the last one's action with them); None for an override."""
    parsed = parser._parse_optional(arg)  # argparse's own reading: abbreviations, attached values, short flags
    if parsed is None:
        return None
    action, option, attached = parsed
    if action is None:
        flags = sorted({max(a.option_strings, key=len) for a in parser._actions if a.option_strings})
        parser.error(f"{arg} is not a flag of mlexp ({', '.join(flags)})")
    name = max(action.option_strings, key=len)  # the long form
    if attached is None:
        return action, [name]
    if action.nargs != 0:
        return action, [f"{name}={attached}"]
    if option.startswith("--"):
        parser.error(f"{arg}: {name} takes no value")
    together = _spelled_flag(parser, f"-{attached}")  # short flags together: -mc job
    assert together is not None
    return together[0], [name, *together[1]]


def _check_choice(parser: argparse.ArgumentParser, action: argparse.Action, flag: str) -> None:
    name, sep, value = flag.partition("=")
    if sep and action.choices is not None and value not in action.choices:
        parser.error(f"{name}={value}: {name} takes one of {', '.join(map(str, action.choices))}")


def multirun_first(argv: list[str]) -> list[str]:
    """`-m` anywhere among the overrides, as users type it (`mlexp task=churn_incentives -m model.max_depth=4,6`):
    Hydra's parser takes it only before them or after them all."""
    flags = [arg for arg in argv if arg in MULTIRUN_FLAGS]
    if flags and _given_flags(argv).keys() & set(_OTHER_MODES):
        raise MlexpError(
            "-m runs a sweep; --cfg, --info and --run are other modes, and Hydra takes one: drop -m to print a "
            "config (mlexp --cfg job <overrides>)"
        )
    return flags[:1] + [arg for arg in argv if arg not in MULTIRUN_FLAGS]


def check_modes(argv: list[str]) -> None:
    """Two of Hydra's modes at once (`--cfg job --info`), or --resolve without --cfg: Hydra's ValueError traceback."""
    given = _given_flags(argv)
    modes = [flag for dest, flag in given.items() if dest in _OTHER_MODES]
    if len(modes) > 1:
        raise MlexpError(f"{' and '.join(modes)} are two modes, and Hydra takes one: keep one of them")
    if "resolve" in given and not {"cfg", "help"} & set(given):
        raise MlexpError(
            f"{given['resolve']} resolves the config --cfg prints: use them together (mlexp --cfg job --resolve "
            "<overrides>)"
        )


SHELL_COMPLETION_FLAG = "--shell-completion"
_COMPLETION_SUBCOMMANDS = ("install", "uninstall", "query")


def asks_for_shell_completion(argv: list[str]) -> bool:
    """Whether argv asks for Hydra's tab completion (`eval "$(mlexp -sc install=bash)"`), with its one subcommand
    for a shell Hydra completes (else Hydra raises a ValueError traceback). Its words are not overrides, so mlexp's
    checks of overrides must not judge them."""
    if SHELL_COMPLETION_FLAG not in argv:
        return False
    words = [arg for arg in argv if not arg.startswith("-")]
    usage = 'write one of install=SHELL, uninstall=SHELL, query=SHELL: eval "$(mlexp -sc install=bash)"'
    chosen = [word for word in words if word.partition("=")[0] in _COMPLETION_SUBCOMMANDS]
    if len(chosen) != 1 or len(words) != 1:
        raise MlexpError(
            f"--shell-completion takes one subcommand and nothing else ({' '.join(words) or 'none given'}); {usage}"
        )
    shell = chosen[0].partition("=")[2]
    if shell not in _completion_shells():
        raise MlexpError(f"{chosen[0]}: Hydra completes {', '.join(_completion_shells())}; {usage}")
    return True


def _completion_shells() -> list[str]:
    from hydra.core.plugins import Plugins
    from hydra.plugins.completion_plugin import CompletionPlugin

    plugins = Plugins.instance().discover(CompletionPlugin)
    return sorted(plugin.provides() for plugin in plugins if issubclass(plugin, CompletionPlugin))


def _given_flags(argv: list[str]) -> dict[str, str]:
    """Hydra's flags among `argv`, as {their argparse dest: the flag as typed, without its value}."""
    actions = get_args_parser()._option_string_actions  # Hydra's own flag names, short and long
    flags = (arg.split("=")[0] for arg in argv)
    return {actions[flag].dest: flag for flag in flags if flag in actions}


def check_spaced_equals(argv: list[str]) -> None:
    """`model.l1_size = 8`, `model.l1_size =8`, `model.l1_size= 8`: the shell split one override into words, and
    Hydra's report ('missing EQUAL at <EOF>') names neither the slip nor the fix."""
    words = [arg for arg in argv if not arg.startswith("-")]
    for index, word in enumerate(words):
        before = words[index - 1] if index else ""
        after = words[index + 1] if index + 1 < len(words) else ""
        joined = None
        if word == "=" and before and after:
            joined = (before, after)
        elif word.startswith("=") and len(word) > 1 and before and "=" not in before:
            joined = (before, word[1:])
        elif word.endswith("=") and word.count("=") == 1 and after and "=" not in after:
            joined = (word[:-1], after)
        if joined is not None:
            fixed = shlex.quote(f"{joined[0]}={joined[1]}")
            raise MlexpError(f"spaces around = split an override into words; write it without them: {fixed}")


def check_command_word(argv: list[str], commands: list[str], conf_dir: Path) -> None:
    """A first word that is neither a command nor an override (`mlexp comapre ...`, `mlexp churn_incentives`): say
    which commands exist, or the override the word was meant as."""
    word = next((arg for arg in argv if not arg.startswith("-")), "")  # the flags stand first (spelled_out)
    if not word or word.startswith(("+", "~")) or "=" in word:
        return
    if (conf_dir / "task" / f"{word}.yaml").is_file():
        raise MlexpError(f"{word!r} is a task, not a command; run it with: mlexp task={word}")
    if word == "help":
        raise MlexpError(
            "the help is a flag: mlexp --help (a task's: mlexp --help task=<task>; a command's: mlexp <command> --help)"
        )
    close = difflib.get_close_matches(word, commands, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    raise MlexpError(
        f"{word!r} is neither a command nor an override (key=value); {hint}commands: {', '.join(commands)}; "
        "or run a trial: mlexp task=<task> [key=value ...]"
    )


def grammar_error(error: OverrideParseException) -> str:
    """Hydra's reason an override does not parse, in one line with the override and the grammar's page; for a search
    of whole numbers to infinity, which Hydra's int(...) cannot read, the sweep check's own line."""
    from mlexp.sweeps.search_space import endless_whole_search  # only for an override that does not parse

    endless = endless_whole_search(error.override)
    if endless is not None:
        return str(endless)
    lines = [line.strip() for line in str(error).splitlines()]
    reason = "; ".join(line for line in lines if line and not line.startswith(("Error parsing", "See http")))
    return f"{error.override}: {reason}; {_spacing_hint(error.override, reason)}the override grammar: {GRAMMAR_URL}"


def _spacing_hint(override: str | None, reason: str) -> str:
    """The likely slip behind a refused override: spaces around `=` (quoting them would keep them), a space after a
    comma (the shell split the override in two), else a value that needs quotes."""
    key, equals, value = (override or "").partition("=")
    if equals and (key != key.rstrip() or value != value.lstrip()):
        return f"remove the spaces around =: {shlex.quote(f'{key.strip()}={value.strip()}')}; "
    if equals and value.endswith(","):
        return "a space after a comma split this override in two: write the values without spaces (a,b); "
    return quoted_value_hint(override) if "LexerNoViableAlt" in reason else ""


def quoted_value_hint(override: str | None) -> str:
    """How to pass a value holding what the grammar cannot read unquoted (a space, `>`, `₹`): as a quoted string,
    the whole override in shell quotes around it."""
    key, equals, value = (override or "").partition("=")
    if not equals or not value or value[0] in "'\"":
        return ""
    quoted = f"{key}='{value}'" if '"' in value else f'{key}="{value}"'
    return f"to give the value as text, quote it: {shlex.quote(quoted)}; "


def check_printable(conf_dir: Path, overrides: list[str], *, resolve: bool, job_package: str | None = None) -> None:
    """`--cfg`/`--info` with an override the config cannot take (`model.l1_size=8,16` without -m) or, with `resolve`,
    a `${...}` that resolves nowhere: the run's one line, not Hydra's block or the traceback its printing of the
    config comes with; `--cfg job --package` naming no section of the job's config (Hydra: a bare line, exit 1).
    (What the run's checks do not explain is left to Hydra's own report.)"""
    from hydra.errors import HydraException

    from mlexp.config import make_composable
    from mlexp.config.failed_composition import compose_or_explain
    from mlexp.config.known_keys import check_key
    from mlexp.config.validate import resolved_config

    make_composable()
    try:
        cfg = compose_or_explain(conf_dir, overrides, sweep_values=False)
    except HydraException:
        return
    if resolve:
        resolved_config(cfg)
    if not job_package or job_package == "_global_":  # Hydra's name for the whole config
        return
    try:
        check_key(cfg, job_package, addable=False)
    except ConfigError as error:
        raise MlexpError(f"--package {job_package}: {error}") from None
    if OmegaConf.select(cfg, job_package) is None:  # Hydra: "not found in config"
        raise MlexpError(
            f"--package {job_package}: {job_package} is null in the job's config; there is nothing to print"
        )
