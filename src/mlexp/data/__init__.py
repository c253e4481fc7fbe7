"""Loaders for the real published dataset formats, one module per dataset."""

from __future__ import annotations

import contextlib
import importlib
from pathlib import Path

from mlexp.errors import DataError
from mlexp.paths import check_output_file

# `mlexp data <name> <out>`: the module whose `export_packaged` writes a real copy, in its published format,
# where DVC tracks it. Imported when used: this package is imported as every command starts (`sources`, to find
# a trial's input files), and the loaders import pandas.
EXPORTS: dict[str, str] = {"abalone": f"{__name__}.abalone", "churn": f"{__name__}.telecom_churn"}


def export_packaged(name: str, out: Path) -> int:
    """Write dataset `name` (a key of EXPORTS) to `out`, whole or not at all; returns its rows."""
    check_output_file(out, f"give the path of the file to write the {name} dataset to")
    # DVC takes whatever is at `out` for the stage's output: a failed write must leave nothing there, nor beside it
    partial = out.with_name(out.name + ".partial")
    _remove(partial)  # a killed earlier export's: what fails now must not be blamed on its bytes
    try:
        rows: int = importlib.import_module(EXPORTS[name]).export_packaged(partial)
        partial.replace(out)
    except OSError as error:
        writing = partial.exists() or (error.filename is not None and partial.is_relative_to(error.filename))
        _remove(partial)
        if not writing:  # reading the packaged copy failed: the installation is broken, not the output path
            raise DataError(
                f"cannot read mlexp's packaged {name} dataset ({_reason(error)}); reinstall mlexp"
            ) from error
        raise DataError(f"cannot write {out} ({_reason(error)}); give a file path you can write to") from error
    except BaseException:
        _remove(partial)
        raise
    return rows


def _remove(partial: Path) -> None:
    with contextlib.suppress(OSError):  # e.g. its folder is a file: nothing was written
        partial.unlink(missing_ok=True)


def _reason(error: OSError) -> str:
    if isinstance(error, (FileExistsError, NotADirectoryError)):
        return "a file is where a folder must be"  # making the output's folder
    return error.strerror or str(error)
