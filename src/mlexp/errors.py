"""Errors a user can act on: each message names the problem and the fix."""

import difflib
from collections.abc import Sequence


class MlexpError(Exception):
    """Base class of every error mlexp reports as one line, without a traceback."""


class ConfigError(MlexpError):
    """The composed configuration is not valid for the chosen task."""


class DataError(MlexpError):
    """Input data is missing or not in the expected format."""


def first_few(items: Sequence[object], total: int | None = None, shown: int = 5) -> str:
    """`a, b, c, d, e and 7 more`: the first `shown` of a list a message names; `total`, the list's length when
    only its first items are given (a million bad rows need not all become text)."""
    count = len(items) if total is None else total
    text = ", ".join(str(item) for item in items[:shown])
    return text + (f" and {count - shown} more" if count > shown else "")


def lines_named(lines: Sequence[int], total: int | None = None, shown: int = 5, noun: str = "line") -> str:
    """`line 3` or `lines 3, 7, 9, 12, 15 and 45 more`: a file's lines a message names (a request's: noun="row")."""
    count = len(lines) if total is None else total
    return f"{noun if count == 1 else noun + 's'} {first_few(lines, count, shown)}"


def one_line(error: BaseException) -> str:
    """An error as one short line (its class and first line), for a reply, a log or a run tag."""
    return f"{type(error).__name__}: {error}".splitlines()[0][:500]


def mlexp_error_behind(error: BaseException) -> MlexpError | None:
    """The MlexpError behind `error`, if any: OmegaConf wraps what a resolver raises (as context, not cause)."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, MlexpError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def did_you_mean(typed: str, options: list[str]) -> str:
    """A hint naming the closest option: by spelling, else the one the typed text abbreviates (mlp → mlp_regressor)."""
    if not typed:  # every option starts with nothing: none is closer than another
        return ""
    close = difflib.get_close_matches(typed, options, n=1) or [o for o in options if o.startswith(typed)][:1]
    return f"did you mean {close[0]}? " if close else ""


def a_or_an(word: str) -> str:
    """`a model`, `an engine`: the article a group's name takes in a message."""
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"


# how to give botocore's chain credentials, the same for every command that calls AWS
GIVE_CREDENTIALS = (
    "run `aws configure` (or `aws sso login`), or set AWS_PROFILE=<profile> (or AWS_ACCESS_KEY_ID and "
    "AWS_SECRET_ACCESS_KEY), or run where an IAM role provides them"
)


def no_credentials(needed_by: str, without_aws: str = "") -> str:
    """The one line for a command that calls AWS and finds no credentials: what needs them, how to give them, and
    (`without_aws`) the choice that runs on this machine instead."""
    line = f"{needed_by}: no AWS credentials found; {GIVE_CREDENTIALS}"
    return f"{line}, or use {without_aws}" if without_aws else line
