"""A trial whose tracking writer process is killed mid-trial keeps every record: `mlexp sync` stores the trial whole."""

from __future__ import annotations

import json
import time

import psutil
import pytest

from conftest import private_writer_env, run_cli, start_cli, store_client, trials_of
from mlexp.tracking.journal import journals_root

pytestmark = pytest.mark.slow

EPOCHS = 100


def _journal_ops(project) -> list[dict]:
    ops = []
    for path in journals_root(project).glob("*/ops.jsonl"):
        text = path.read_text()
        ops += [json.loads(line) for line in text[: text.rfind("\n") + 1].splitlines()]  # a torn last line left out
    return ops


def test_a_trial_whose_writer_is_killed_mid_trial_is_stored_whole_by_mlexp_sync(tmp_project):
    env = private_writer_env(tmp_project)  # the writer to kill is this test's own, not one other tests share
    trial = start_cli(tmp_project, "task=tabular_regression", "dataset.n_rows=300", f"model.epochs={EPOCHS}", env=env)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any(
            op.get("run_name") == "Training" for op in _journal_ops(tmp_project)
        ):
            time.sleep(0.05)
        [writer] = [
            child
            for child in psutil.Process(trial.pid).children()
            if "mlexp.tracking.writer_process" in " ".join(child.cmdline())
        ]
        writer.kill()
        assert not any(op["op"] == "end" for op in _journal_ops(tmp_project)), "the trial ended before the kill"
        _, err = trial.communicate(timeout=120)
    finally:
        if trial.poll() is None:
            trial.kill()

    # the trial's work succeeded: it says where its records are and how to store them; nothing is lost meanwhile
    assert trial.returncode == 0, err
    assert "the tracking writer process stopped" in err and "run `mlexp sync` to store them" in err
    assert any(op["op"] == "end" for op in _journal_ops(tmp_project)), "the trial did not journal to its end"

    synced = run_cli(tmp_project, "sync")
    assert "1 trial journal stored" in synced.stdout
    [stored] = trials_of(tmp_project)
    assert stored.status == "FINISHED" and stored.params["model.epochs"] == str(EPOCHS)
    assert {"test_msle", "test_mae"} <= set(stored.metrics)
    client = store_client(tmp_project)
    assert client.get_run(stored.components["Training"]).info.status == "FINISHED"
    history = client.get_metric_history(stored.components["Training"], "train_loss")
    assert sorted(m.step for m in history) == list(range(1, EPOCHS + 1))  # every epoch, none lost
    assert not list(journals_root(tmp_project).glob("*/ops.jsonl"))
