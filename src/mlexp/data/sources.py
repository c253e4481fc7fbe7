"""`dataset.path` as users give it: one file, a folder of files, or a glob."""

from __future__ import annotations

import glob
from pathlib import Path

from mlexp.errors import DataError
from mlexp.paths import resolve


def expand(path: str | Path, suffixes: tuple[str, ...]) -> list[Path]:
    """The data files `path` names, sorted; relative paths start at the project root.

    A folder stands for the files in it with one of `suffixes`.
    """
    text = str(path)
    if glob.has_magic(text):
        pattern = str(resolve(text))
        files = sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file())
        if not files:
            raise DataError(f"dataset.path={text} matches no file; check the pattern")
        return files
    target = resolve(text)
    if target.is_dir():
        files = sorted(p for p in target.iterdir() if p.is_file() and p.suffix in suffixes)
        if not files:
            raise DataError(f"dataset.path={text} is a folder without {'/'.join(suffixes)} files")
        return files
    if not target.exists():
        raise DataError(f"dataset.path={text} does not exist; give a file, a folder or a glob")
    return [target]
