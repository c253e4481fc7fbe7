"""A journal holding one finished trial, as a trial's process leaves it: the tests of its replay start from it."""

from __future__ import annotations

from pathlib import Path

from mlexp.tracking.journal import Journal, JournalFile, new_ref


def journal_of_one_trial(
    root: Path, uri: str, artifact_root: str | None = None, ref: str | None = None, experiment: str = "exp"
) -> Journal:
    """A finished run (param lr=0.1, metric loss=0.5) of `experiment` for the store `uri`, not yet in it."""
    journal = Journal.create(root, uri, artifact_root)
    records, run = JournalFile(journal), ref or new_ref()
    records.append("create_run", ref=run, experiment=f"@{experiment}", run_name="t", tags=[["mlexp.kind", "trial"]])
    records.append("log_batch", run=run, metrics=[["loss", 0.5, 1000, 0]], params=[["lr", "0.1"]], tags=[])
    records.append("set_status", run=run, status="FINISHED", terminated=True)
    records.append("end")
    records.close()
    journal.release()
    return journal
