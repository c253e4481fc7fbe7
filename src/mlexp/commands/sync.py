"""`mlexp sync`: the trials journals kept stored (or, on request, discarded), and failed SageMaker mirrors retried."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from mlexp.errors import MlexpError
from mlexp.paths import project_root

if TYPE_CHECKING:
    from mlexp.tracking.journal_apply import Replayed

USAGE = {"sync": "mlexp sync [--discard <store URI or journal folder> [--force]]"}


def run_sync(argv: list[str]) -> int:
    """Store the trials journals kept (a killed process, a store that refused), then retry failed SageMaker mirrors.

    A journal holds what a trial's process wrote before it was killed, or what its store did not take; a trial
    tagged mlexp.sagemaker_mirror=failed is mirrored again, whole, from the MLflow store."""
    from mlexp.tracking.journal_apply import replay_orphans
    from mlexp.tracking.store import bound_store_retries

    if argv:
        return _discard_journals(argv)
    bound_store_retries()  # a server that is down: one line per journal in seconds, not MLflow's minutes of retries
    root = project_root()
    replayed = replay_orphans(root)
    for entry in replayed:
        if not entry.error:
            ended = f"; ended KILLED: {', '.join(entry.killed)}" if entry.killed else ""
            print(f"{entry.folder.name}: stored{ended}")
    _say_kept([entry for entry in replayed if entry.error])
    if replayed:
        stored = sum(not e.error for e in replayed)
        print(f"{_journals(stored)} stored, {len(replayed) - stored} kept")
    mirrored = _retry_sagemaker_mirrors()
    if not replayed:  # said last: "nothing to sync" only when no SageMaker mirror was retried either
        print(_no_journal_stored(root, nothing_else=not mirrored))
    return 1 if any(e.error for e in replayed) or any(mirrored.values()) else 0


def _journals(count: int) -> str:
    return f"{count} trial journal{'' if count == 1 else 's'}"


def _no_journal_stored(root: Path, *, nothing_else: bool) -> str:
    """Why no journal was stored: none is there (every trial's records reached the store), or each one left is
    held by a live process (its trial still runs, or its writer is storing it now), which stores it itself."""
    from mlexp.tracking.journal import journals_root
    from mlexp.tracking.journal_apply import orphaned

    folder, held = journals_root(root), len(orphaned(root))
    said = "nothing to sync: " if nothing_else else ""
    if not held:
        return f"{said}no trial journals in {folder} (every trial's records are in its store)"
    each = "" if held == 1 else "each "
    return f"{said}{_journals(held)} in {folder}, {each}held by its running trial or by the writer storing it now"


def _say_kept(kept: list[Replayed]) -> None:
    """The kept journals by the store they wait for: why it did not take them, and how to give up on them."""
    import shlex

    from mlexp.database_driver import NOT_INSTALLED
    from mlexp.tracking.store import unreachable

    stores: dict[str, list[Replayed]] = {}
    for entry in kept:
        stores.setdefault(entry.uri, []).append(entry)
    for uri, entries in stores.items():
        reasons = {entry.error for entry in entries}
        them = "it" if len(entries) == 1 else "them"
        count = f"{len(entries)} trial journal{'s' if len(entries) > 1 else ''} kept"
        if len(reasons) == 1 and unreachable(entries[0].error):
            print(f"{count}: {entries[0].error}")  # the reason names the server
        elif len(reasons) == 1 and entries[0].error.startswith(NOT_INSTALLED):  # nothing the store did
            print(f"{count} for {uri}: {entries[0].error}")
        else:
            why = f" ({entries[0].error})" if len(reasons) == 1 else ""
            print(f"{count} for {uri or 'a store its header does not name'}: the store refused {them}{why}")
        for entry in entries:
            print(f"  {entry.folder}" + (f": {entry.error}" if len(reasons) > 1 else ""))
        target = shlex.quote(uri) if uri else "<journal folder>"
        print(f"  `mlexp sync` stores {them} once the store takes {them}; to drop {them} for good: ", end="")
        print(f"mlexp sync --discard {target}")


def _discard_journals(argv: list[str]) -> int:
    """`mlexp sync --discard <store or journal folder> [--force]`: say what goes, confirm on a terminal, delete."""
    from mlexp.console import confirmed_on_terminal
    from mlexp.tracking.journal_apply import discard, orphaned, replay_orphans, store_of
    from mlexp.tracking.store import bound_store_retries

    force = "--force" in argv
    rest = [arg for arg in argv if arg != "--force"]
    if len(rest) != 2 or rest[0] != "--discard" or not rest[1]:
        raise MlexpError(f"usage: {USAGE['sync']}")
    target, root = rest[1], project_root()
    # what a store takes now is stored, not thrown away: only what it still refuses is discarded
    bound_store_retries()
    stored = [entry for entry in replay_orphans(root) if not entry.error]
    for entry in stored:
        print(f"{entry.folder.name}: stored (its store took it; not discarded)")
    kept = {journal.folder: store_of(journal) for journal in orphaned(root)}  # "": a header that cannot be read
    chosen = {folder: uri for folder, uri in kept.items() if _matches(target, folder, uri)}
    if not chosen and stored:
        print("0 trial journals discarded: the store took what was kept")
        return 0
    if not chosen:
        stores = sorted({uri for uri in kept.values() if uri})
        known = f"kept journals wait for: {', '.join(stores)}" if stores else "no journal is kept"
        raise MlexpError(f"no kept trial journal is for {target!r}; {known} (`mlexp sync` lists them)")
    if not force:
        print(f"would discard {_journals(len(chosen))} and the records in them:")
        for folder, uri in chosen.items():
            print(f"  {folder} (for {uri})")
        if not confirmed_on_terminal("mlexp sync", "discard them?", "nothing discarded"):
            return 1
    discarded, busy = discard(root, list(chosen))
    for folder in discarded:
        print(f"{folder.name}: discarded")
    for folder in busy:
        print(f"{folder.name}: kept: its trial still runs, or a writer is storing it now", file=sys.stderr)
    print(f"{_journals(len(discarded))} discarded")
    return 1 if busy else 0


def _matches(target: str, folder: Path, uri: str) -> bool:
    """Whether `target` (a journal folder, or a store as `mlexp sync` names it) picks this journal."""
    from mlexp.tracking.store import absolute_uri

    given = Path(target).expanduser()
    if given.is_dir() and given.resolve() == folder.resolve():
        return True
    return bool(uri) and uri in (target, absolute_uri(target))


def _retry_sagemaker_mirrors() -> dict[str, str | None]:
    """Mirror again the trials whose SageMaker Experiments mirror failed (tagged mlexp.sagemaker_mirror=failed)."""
    from mlexp.tracking.sagemaker_mirror_retry import MirrorsNotRetried, retry_failed_mirrors

    try:
        mirrored = retry_failed_mirrors(project_root())
    except MirrorsNotRetried as missing:
        print(f"mlexp sync: {missing}", file=sys.stderr)
        return {"": str(missing)}
    for run_id, failure in mirrored.items():
        outcome = "done" if failure is None else f"failed again ({failure}); run `mlexp sync` later"
        print(f"trial {run_id}: SageMaker Experiments mirror {outcome}")
    return mirrored
