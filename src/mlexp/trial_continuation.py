"""Which trial a DVC stage continues: the one opened by an earlier stage of the same `dvc repro`.

The stages of one `dvc repro` are separate processes; they form one trial when each
finds the trial of the stages before it in a marker file. A marker is honoured only
when it was written under the same `dvc repro` process (so a forced single-stage repro
an hour later opens its own trial instead of joining an old one), in the same tracking
store and experiment, and while its trial is still intact (no FAILED component).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from mlexp.paths import DVC_STAGE_ENV

# set it to make stages run by another orchestrator share one trial (one value per pipeline run)
PIPELINE_RUN_ENV = "MLEXP_PIPELINE_RUN"


def _proc_stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, start time in clock ticks) of a process, from Linux's /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces; the fields after it are plain numbers
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[1]), fields[19]


def _is_dvc(pid: int) -> bool:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(Path(arg.decode(errors="replace")).name in ("dvc", "dvc.exe") for arg in argv[:3]) or (
        b"-m" in argv[:3] and b"dvc" in argv[:4]
    )


def pipeline_run_id() -> str | None:
    """An id shared by the stages of one pipeline run, or None outside one.

    $MLEXP_PIPELINE_RUN when set; under DVC, the pid and start time of the `dvc`
    process that runs the stage (DVC starts each stage through a shell).
    """
    if os.environ.get(PIPELINE_RUN_ENV):
        return os.environ[PIPELINE_RUN_ENV]
    found = _dvc_process()
    return f"dvc-{found[0]}-{found[1]}" if found else None


def _dvc_process() -> tuple[int, str] | None:
    """The pid and start time of the `dvc` process running this stage (DVC starts each stage through a shell)."""
    if not os.environ.get(DVC_STAGE_ENV):
        return None
    pid = os.getppid()
    for _ in range(4):
        stat = _proc_stat(pid)
        if stat is None:
            return None
        if _is_dvc(pid):
            return pid, stat[1]
        pid = stat[0]
    return None


def dvc_forces_stages() -> bool:
    """Whether the `dvc` command running this stage runs stages that did not change (`-f`, `--force-downstream`)."""
    found = _dvc_process()
    if found is None:
        return False
    try:
        argv = Path(f"/proc/{found[0]}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return False
    # a cluster of short flags (`-fs`) counts too; a value given in the same word (`-Sa.f=1`) may be taken for
    # one, which only leaves the stages after this one unlinked
    return any(
        arg in ("--force", "--force-downstream") or (arg[:1] == "-" and arg[1:2] != "-" and "f" in arg)
        for arg in argv[1:]
    )


@dataclass(frozen=True)
class Marker:
    """The trial an earlier stage of a pipeline run recorded for the stages after it."""

    run_id: str
    pipeline_run: str


# pipeline runs whose trial keeps a marker of its own: a SageMaker training job's (`sagemaker-<job name>`), which the
# command it prints joins whenever it is run, whatever ran in the project meanwhile
OWN_MARKER_PREFIX = "sagemaker-"


def marker_path(
    root: Path, tracking_uri: str, experiment_name: str, task: str, pipeline_run: str | None = None
) -> Path:
    """By name, not id: a stage finds its marker before anything (MLflow included) has read the store. One per task,
    which each DVC pipeline run takes over, and one per training job (OWN_MARKER_PREFIX)."""
    store_key = hashlib.sha1(f"{tracking_uri}\n{experiment_name}".encode()).hexdigest()[:12]
    own = pipeline_run is not None and pipeline_run.startswith(OWN_MARKER_PREFIX)
    return root / ".mlexp" / "trials" / store_key / (f"{task}.{pipeline_run}.json" if own else f"{task}.json")


def read_marker(path: Path) -> Marker | None:
    try:
        content = json.loads(path.read_text())
        return Marker(str(content["run_id"]), str(content["pipeline_run"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_marker(path: Path, marker: Marker) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(asdict(marker)) + "\n")
    partial.replace(path)
