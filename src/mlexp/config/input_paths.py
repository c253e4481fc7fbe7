"""The files and folders a task's stages read, named by config keys (`dataset.path=/data/abalone.data`): one that is
not there is refused in one line before a trial opens, not by the stage that reads it after the trial began.

A task declares them in its Task (`inputs=(InputPath("dataset.path", ...),)`), with what the key may name and how its
loader finds a relative path. Each is judged as a rule across keys (mlexp.config.constraints): the runner checks a
trial's config, and the sweep check the config every job shares and each value listed for the key. Not judged here
(the stage reading it is): a null value (the task's own data), a URI its loader reads itself (`uris`: runs:/ for
model.init_from), a run with compute=sagemaker (the training job reads its own channels) and a run of stages that do
not read it (`stage=train` after `dvc repro`'s prepare). Any other URI is refused: on this machine the loaders read
local paths only.
"""

from __future__ import annotations

import glob
import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from mlexp.config.constraints import Constraint
from mlexp.paths import relative_if_under, resolve

# what decides whether the stages read the path on this machine: keys every composed config has
CONTEXT = ("compute.target", "stage", "paths.root")
# `s3://bucket/key`, `runs:/<run id>/...` (one letter would be a Windows drive)
URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]+:/")


class Accepts(Enum):
    """What a key may name."""

    FILES = "a file, a folder of files or a glob"  # mlexp.data.sources.expand
    FILE_OR_FOLDER = "a file or a folder"  # no glob: Path(value) as given
    FILE = "a file"
    FOLDER = "a folder"


class RelativeTo(Enum):
    """Where the loader starts a relative path."""

    PROJECT_ROOT = "the project root"  # mlexp.paths.resolve: $MLEXP_ROOT, or the folder holding conf/
    PATHS_ROOT = "paths.root"
    WORKING_DIRECTORY = "the working directory"  # Path(value) as given


@dataclass(frozen=True)
class InputPath:
    """A file, folder or glob that the stages `read_by` read when `key` is set.

    `suffixes`: the files a folder stands for (a folder without one is refused; none: any folder; looked for in its
    subfolders too with `subfolders`, as a loader that walks the tree reads them), `needs`: files a folder must
    hold. `when` (a key and a test of its value) limits the check to configs in which the key is read
    (`("engine.name", <not athena>)`); `may_be_absent`, a value whose path may not exist yet (a default folder that
    the loader reads as empty); `uris`, the URI prefixes its loader reads itself (`("runs:/",)`); `written_by`, a path
    of the project and the command that writes it there (the task's raw copy, `mlexp data <export>`), named when
    that path is missing. `fix` says what to give instead.
    """

    key: str
    read_by: tuple[str, ...]
    fix: str
    accepts: Accepts = Accepts.FILES
    suffixes: tuple[str, ...] = ()
    subfolders: bool = False
    needs: tuple[str, ...] = ()
    relative_to: RelativeTo = RelativeTo.PROJECT_ROOT
    when: tuple[str, Callable[[Any], bool]] | None = None
    may_be_absent: str | None = None
    uris: tuple[str, ...] = ()
    written_by: tuple[str, str] | None = None  # (path, the command that writes the path given to it)

    @property
    def keys(self) -> tuple[str, ...]:
        """The keys whose values judge it: its own, the context, and `when`'s."""
        return (self.key, *CONTEXT, *(() if self.when is None else (self.when[0],)))

    @property
    def rule(self) -> Constraint:
        """The check as a rule across `keys`, for the runner and the sweep check."""
        described = f"{self.key} must name {self.accepts.value} that stage {' or '.join(self.read_by)} reads"
        return ReadInput(self.keys, self.holds, described, self.fix, self, context=self.keys[1:])

    def holds(self, *values: Any) -> bool:
        return self.problem(values) is None

    def problem(self, values: Sequence[Any]) -> str | None:
        """What keeps the value of the key from naming what its stages read, with the path resolved as its loader
        resolves it, and what to give instead; None when it does, or when this run does not read it here."""
        value, target, stage, root, *condition = values
        if not value or target == "sagemaker" or (stage is not None and stage not in self.read_by):
            return None
        if self.when is not None and not self.when[1](condition[0]):
            return None
        text = str(value)
        if URI.match(text):
            return None if text.startswith(self.uris) else self._uri_problem(text)
        problem = self._path_problem(text, root)
        return None if problem is None else f"{problem}; {self.fix}"

    def _path_problem(self, text: str, root: str) -> str | None:
        path = self._resolved(text, root)
        if glob.has_magic(text):
            if self.accepts is Accepts.FILES:
                if any(Path(found).is_file() for found in glob.iglob(str(path), recursive=True)):
                    return None
                return f"matches no file ({path})"
            if not path.exists():  # the loader takes `*` as part of a name
                stages = " or ".join(self.read_by)
                return f"a glob, and stage {stages} reads {self.accepts.value}, not a pattern ({path})"
        if path.is_dir():
            return self._folder_problem(path)
        if path.exists():
            return f"not a folder ({path})" if self.accepts is Accepts.FOLDER else None
        if self.may_be_absent is not None and path == self._resolved(self.may_be_absent, root):
            return None
        if self.written_by is not None and path == self._resolved(self.written_by[0], root):
            # the command writes where it is run, the loader reads from the project root
            here = shlex.quote(relative_if_under(path, Path.cwd()))
            return f"no such {self._named(text)} ({path}) yet: `{self.written_by[1]} {here}` writes it"
        return f"no such {self._named(text)} ({path})"

    def _uri_problem(self, text: str) -> str:
        scheme = text.split(":", 1)[0]
        if scheme.lower() == "s3" and self.key.startswith("dataset."):  # mlexp.sagemaker.packaging.s3_inputs
            return (
                "an s3:// path is read only by a SageMaker training job (compute=sagemaker, which makes it an input "
                "channel); download it and give the local path, or run with compute=sagemaker"
            )
        stages = " or ".join(self.read_by)
        taken = "".join(f" or {prefix}..." for prefix in self.uris)
        return f"a URI, and stage {stages} reads a local path{taken}; download it and give its local path"

    def _folder_problem(self, folder: Path) -> str | None:
        if self.accepts is Accepts.FILE:
            return f"a folder, not a file ({folder})"
        lacking = [name for name in self.needs if not (folder / name).is_file()]
        if lacking:
            return f"a folder without {' and '.join(lacking)} ({folder})"
        if self.suffixes and not self._holds_suffixed(folder):
            *first, last = self.suffixes
            where = " in it or its subfolders" if self.subfolders else ""
            return f"a folder without {', '.join(first) + ' or ' if first else ''}{last} files{where} ({folder})"
        return None

    def _holds_suffixed(self, folder: Path) -> bool:
        """As mlexp.data.sources.expand lists a folder: its own files, by their last suffix; a loader that walks the
        tree (document_files.find) reads any case of it, in any subfolder."""
        if self.subfolders:
            return any(p.suffix.lower() in self.suffixes and p.is_file() for p in folder.rglob("*"))
        return any(p.suffix in self.suffixes and p.is_file() for p in folder.iterdir())

    def _named(self, text: str) -> str:
        """What a missing path was meant to be, in words: a name with one of `suffixes` is a file."""
        if self.accepts is Accepts.FILES:
            return "file" if Path(text).suffix in self.suffixes else "file or folder"
        return {Accepts.FILE: "file", Accepts.FOLDER: "folder"}.get(self.accepts, "file or folder")

    def _resolved(self, text: str, root: str) -> Path:
        if self.relative_to is RelativeTo.PROJECT_ROOT:
            return resolve(text)
        path = Path(text).expanduser()
        if self.relative_to is RelativeTo.PATHS_ROOT and not path.is_absolute():
            return Path(root) / path
        return path.absolute()


@dataclass(frozen=True)
class ReadInput(Constraint):
    """An InputPath as a rule across keys: its refusal names what is wrong with the path. Its keys after the first
    are its `context`: they only judge whether the path is read, so the refusal shows the key's value alone."""

    input: InputPath

    def explanation(self, values: Sequence[Any]) -> str | None:
        try:
            return self.input.problem(values)
        except OSError:
            return None  # a folder it may not list: the stage reading it reports that


def given(value: object) -> bool:
    """Whether a key is set: `when=("dataset.path", given)` for a key read only beside dataset.path."""
    return value not in (None, "")


def from_launch_folder(cfg: DictConfig, inputs: Sequence[InputPath], launch_folder: Path) -> None:
    """Give the inputs whose loader starts a relative path at the working directory (`dataset.path=scans/`) their
    absolute path from `launch_folder`, in `cfg`: with hydra.job.chdir=true the job runs in its run folder, and its
    stages would look for them there, not where the command and its checks found them."""
    for declared in inputs:
        if declared.relative_to is not RelativeTo.WORKING_DIRECTORY:
            continue
        value = OmegaConf.select(cfg, declared.key, default=None)
        if not value or URI.match(str(value)) or Path(str(value)).expanduser().is_absolute():
            continue
        OmegaConf.update(cfg, declared.key, str(launch_folder / str(value)), merge=False)
