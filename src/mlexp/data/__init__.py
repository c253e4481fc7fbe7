"""Loaders for the real published dataset formats, one module per dataset."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mlexp.data import abalone, telecom_churn

# `mlexp data <name> <out>`: write a real copy, in its published format, where DVC tracks it
EXPORTS: dict[str, Callable[[Path], int]] = {
    "abalone": abalone.export_packaged,
    "churn": telecom_churn.export_packaged,
}
