"""Names of trials and sweeps, told apart when two start in the same second.

A name carries the second it was given (`grid-1205-202002`, `tabular_regression-20261205-201143`). Two commands
started together in one project got the same one: `mlexp compare sweep=<name>` then showed one of the two, and
their charts went to the same folder. Each name is claimed by creating a file of that name, which only one process
can do; the second takes `<name>-2`. A claim is only needed during its second: older ones are removed.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

KEPT_S = 120  # a name's second is long past: its claim can go


def claimed(root: Path, kind: str, name: str) -> str:
    """`name`, or `name-2`, `name-3`... when a command of this project took it in the same second. Claimed where the
    project's store lives (paths.store_home): DVC's temporary copies of the project record into the workspace's."""
    from mlexp.paths import store_home

    folder = store_home(root) / ".mlexp" / "names" / kind
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _forget_old(folder)
    except OSError:
        return name  # a read-only project: names as before
    for number in range(1, 1000):
        candidate = name if number == 1 else f"{name}-{number}"
        try:
            os.close(os.open(folder / candidate, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            continue  # another command took it this second
        except OSError:
            pass  # cannot claim (a full disk): the name as before
        return candidate
    return name


def _forget_old(folder: Path) -> None:
    cutoff = time.time() - KEPT_S
    for claim in folder.iterdir():
        with contextlib.suppress(OSError):
            if claim.stat().st_mtime < cutoff:
                claim.unlink()
