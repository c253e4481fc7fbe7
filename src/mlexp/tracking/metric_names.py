"""Metric names made from data (a column's name): MLflow refuses a name with other characters than letters, digits,
`_ - . /`, spaces and colons, and with it the whole batch it came in, so a trial would lose its records over one
column called `tip (%)`."""

from __future__ import annotations

import re

# what MLflow takes on every platform, less `/` (a name is a path in its file store: `a/../b` is refused)
_REFUSED = re.compile(r"[^\w.\- ]")


def metric_name(prefix: str, data_name: str) -> str:
    """`prefix` + `data_name`, each character MLflow would refuse in it replaced by `_` (`tip (%)` -> `tip ___`)."""
    return prefix + _REFUSED.sub("_", data_name)
