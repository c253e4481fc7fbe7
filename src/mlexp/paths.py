"""Where the project lives, independent of the directory Hydra runs a job in."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from mlexp.errors import DataError, MlexpError

ROOT_ENV = "MLEXP_ROOT"
DVC_STAGE_ENV = "DVC_STAGE"  # set by DVC for each stage command it runs
# a run's own folders (cfg.paths.<name>): a stage run alone reads an earlier run's
RUN_FOLDERS = ("data", "models", "reports")


def project_root(start: Path | None = None) -> Path:
    """The project folder: $MLEXP_ROOT, else the nearest folder holding conf/config.yaml.

    Searching from the working directory (not from this file) lets a copy of the
    project, such as a DVC experiment workspace, use its own conf/ and data/. A run inside
    DVC's temporary copy of the project $MLEXP_ROOT names (`dvc exp run --temp` with it exported)
    is the copy's: the workspace's params.yaml and outputs are not the experiment's.
    """
    given = os.environ.get(ROOT_ENV)
    here = (start or Path.cwd()).resolve()
    found = next((f for f in (here, *here.parents) if (f / "conf" / "config.yaml").is_file()), None)
    if given:
        named = Path(given).resolve()
        return found if found is not None and found != named and store_home(found) == named else named
    if found is not None:
        return found
    # not mlexp's own checkout, as before: a command run from elsewhere wrote its store and outputs into the source
    raise NoProject(
        f"no mlexp project here: no conf/config.yaml in {here} or its parents; cd into your project (the folder "
        f"holding conf/), or set {ROOT_ENV}=<project folder>"
    )


class NoProject(MlexpError, FileNotFoundError):
    """No project folder: the command was run outside one."""


# where DVC runs an experiment outside the workspace (`dvc exp run --temp`, queued experiments): a copy of the
# project under <project>/.dvc/tmp/exps/, deleted when the experiment ends
DVC_TEMPORARY_RUNS = (".dvc", "tmp", "exps")


def store_home(root: Path) -> Path:
    """The project whose tracking store (mlflow.db, mlartifacts/) and journal a run at `root` uses: `root`, or for a
    DVC experiment in a temporary copy, the project it copies, so that the trial outlives the copy and sits beside
    the workspace's own trials in the MLflow UI.

    The copy is of the git repository (<dvc root>/.dvc/tmp/exps/[standalone/]<copy>/), and the project may sit in a
    folder of it: that folder is looked for under the DVC root, then under each folder above it (a DVC root inside
    the repository, `dvc init --subdir`)."""
    parts = root.resolve().parts
    width = len(DVC_TEMPORARY_RUNS)
    for start in range(len(parts) - width, 0, -1):
        if parts[start : start + width] != DVC_TEMPORARY_RUNS:
            continue
        copy = start + width + (parts[start + width : start + width + 1] == ("standalone",))
        inside = parts[copy + 1 :]  # the project's place in the copy
        dvc_root = Path(*parts[:start])
        for repository in (dvc_root, *dvc_root.parents):
            project = repository.joinpath(*inside)
            if (project / "conf" / "config.yaml").is_file():
                return project
    return root


def resolve(path: str | os.PathLike[str], root: Path | None = None) -> Path:
    """An absolute path: relative paths are taken from the project root."""
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() else (root or project_root()) / candidate


def command_line_path(path: str | os.PathLike[str]) -> Path:
    """A file a command names on its command line, absolute: a relative path is taken from the working folder, as
    every Unix command takes it. (A config's paths, `dataset.path=`, are the project root's: `resolve`, which keeps
    DVC's stages and Hydra's run folders pointing at the same files.)"""
    return resolve(path, Path.cwd())


def check_output_file(out: Path, fix: str, name_in_folder: str | None = None) -> None:
    """Refuse an output path that is not a file to replace: a folder (`name_in_folder`: the file to suggest in it),
    or a device or pipe (`/dev/full`), which the write beside the target and rename over it would turn into a
    regular file. `fix` ends the message."""
    if out.is_dir():
        raise DataError(f"{out} is a folder; {fix}" + (f", e.g. {out / name_in_folder}" if name_in_folder else ""))
    if out.exists() and not out.is_file():
        raise DataError(f"{out} is not a regular file (a device or a pipe); {fix}")


_HASH_LENGTH = 10
# a folder name is at most 255 bytes on common file systems; a longer name is cut (the hash keeps it distinct)
_LONGEST_NAME = 200


def experiment_folder(name: str) -> str:
    """`name` (an experiment's or a sweep's free-text name) as the name of one folder of its own: the name itself
    when it is one (spaces and non-ASCII are, on Linux and macOS); else a folder-safe form of it and a short hash of
    the whole name, so that two names (`team/a`, `team_a`) never share a folder, which compare empties first."""
    encoded = name.encode("utf-8", "surrogateescape")
    unsafe = not name or name.startswith(".") or any(c in name for c in "/\\\0") or len(encoded) > _LONGEST_NAME
    if not unsafe:
        return name
    safe = re.sub(r"[/\\\0]", "_", name).lstrip(".")[: _LONGEST_NAME // 4]  # a character is at most 4 bytes
    digest = hashlib.sha256(encoded).hexdigest()[:_HASH_LENGTH]
    return f"{safe}-{digest}" if safe else digest


def relative_if_under(path: Path, folder: Path) -> str:
    """`path` relative to `folder` when it lies under it (as a user in `folder` types it), else as it is."""
    return str(path.relative_to(folder)) if path.is_relative_to(folder) else str(path)
