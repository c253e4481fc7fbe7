"""Errors a user can act on: each message names the problem and the fix."""


class MlexpError(Exception):
    """Base class of every error mlexp reports as one line, without a traceback."""


class ConfigError(MlexpError):
    """The composed configuration is not valid for the chosen task."""


class DataError(MlexpError):
    """Input data is missing or not in the expected format."""
