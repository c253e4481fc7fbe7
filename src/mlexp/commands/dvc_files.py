"""`mlexp params` and `mlexp pipelines`: the files DVC reads, generated from conf/ and the tasks' declarations."""

from __future__ import annotations

import sys

from mlexp import tasks
from mlexp.config import params
from mlexp.errors import MlexpError
from mlexp.paths import project_root

USAGE = {
    "params": "mlexp params [--check]",
    "pipelines": "mlexp pipelines [--check]",
}

# the two ways back to a params.yaml that matches conf/, and when each is the one
PARAMS_FIXES = (
    "run `mlexp params` to regenerate it from conf/ (you changed conf/), or `git checkout params.yaml` to drop the "
    "values `dvc exp run -S` left in the workspace (conf/ is as you want it)"
)


def run_params(argv: list[str]) -> int:
    """Write params.yaml, the parameters the DVC stages read, from conf/ (--check: only say whether it is current)."""
    if any(arg != "--check" for arg in argv):
        raise MlexpError(f"usage: {USAGE['params']}")
    root = project_root()
    sections = params.compile_params(root / "conf", sorted(tasks.load_all()))
    target = root / "params.yaml"
    if "--check" in argv:
        # values, not text: `dvc exp run -S` rewrites the file in its own YAML style
        difference = params.check(target, sections)
        if difference:
            print(f"params.yaml is out of date with conf/: {difference}; {PARAMS_FIXES}", file=sys.stderr)
            return 1
        print("params.yaml is in sync with conf/")
        return 0
    target.write_text(params.render(sections))
    print(f"wrote {target} ({len(sections)} tasks)")
    return 0


def run_pipelines(argv: list[str]) -> int:
    """Write pipelines/<task>/dvc.yaml from the tasks' stage declarations (--check: say whether they are current)."""
    from mlexp import dvc_lock, dvc_stages

    if any(arg != "--check" for arg in argv):
        raise MlexpError(f"usage: {USAGE['pipelines']}")
    root = project_root()
    generated = dvc_stages.writer(root).files()
    if "--check" in argv:
        drifted = dvc_stages.drift(root, generated)
        stale = dvc_lock.stale_entries(root)
        for problem in drifted:
            print(f"{problem}: run `mlexp pipelines`", file=sys.stderr)
        for problem in stale:
            print(f"stale committed lock: {problem}; run `dvc repro` and commit, or untrack the lock", file=sys.stderr)
        if drifted or stale:
            return 1
        print(f"{len(generated)} dvc.yaml files are in sync with the tasks' stage declarations")
        return 0
    for path, text in generated.items():
        target = root / path
        if not target.exists() or target.read_text() != text:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            print(f"wrote {path}")
    for problem in dvc_stages.drift(root, generated):
        print(f"{problem}: delete it", file=sys.stderr)
    print(f"{len(generated)} dvc.yaml files in sync with the tasks' stage declarations")
    return 0
