"""Loaders for the real published dataset formats, one module per dataset."""

from __future__ import annotations

import importlib
from pathlib import Path

# `mlexp data <name> <out>`: the module whose `export_packaged` writes a real copy, in its published format,
# where DVC tracks it. Imported when used: this package is imported as every command starts (`sources`, to find
# a trial's input files), and the loaders import pandas.
EXPORTS: dict[str, str] = {"abalone": f"{__name__}.abalone", "churn": f"{__name__}.telecom_churn"}


def export_packaged(name: str, out: Path) -> int:
    """Write dataset `name` (a key of EXPORTS) to `out`; returns its rows."""
    rows: int = importlib.import_module(EXPORTS[name]).export_packaged(out)
    return rows
