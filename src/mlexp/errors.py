"""Errors a user can act on: each message names the problem and the fix."""


class MlexpError(Exception):
    """Base class of every error mlexp reports as one line, without a traceback."""


class ConfigError(MlexpError):
    """The composed configuration is not valid for the chosen task."""


class DataError(MlexpError):
    """Input data is missing or not in the expected format."""


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
