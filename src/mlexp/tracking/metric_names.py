"""Metric names made from data (a column's name): MLflow refuses a name with other characters than letters, digits,
`_ - . /`, spaces and colons, and with it the whole batch it came in, so a trial would lose its records over one
column called `tip (%)`."""

from __future__ import annotations

import hashlib
import re

# what MLflow takes on every platform, less `/` (a name is a path in its file store: `a/../b` is refused)
_REFUSED = re.compile(r"[^\w.\- ]")


def data_metric_name(prefix: str, data_name: str) -> str:
    """`prefix` + `data_name`, each character MLflow would refuse replaced by `_` and, when any was, a short digest
    of the name as given: `tip (%)` and `tip ($)` are two columns, so two metrics (`tip ____3f9a1c`)."""
    taken = _REFUSED.sub("_", data_name)
    if taken == data_name:
        return prefix + data_name
    return f"{prefix}{taken}_{hashlib.blake2b(data_name.encode(), digest_size=3).hexdigest()}"
