"""Trials and sweeps started in the same second of one project get names of their own."""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor

from mlexp import run_names


def test_a_name_taken_this_second_gets_the_next_number(tmp_path):
    # two sweeps started together were both grid-1205-202002: compare showed one, their charts shared a folder
    with ProcessPoolExecutor(4) as pool:
        names = list(pool.map(run_names.claimed, [tmp_path] * 4, ["sweeps"] * 4, ["grid-1205-202002"] * 4))
    assert sorted(names) == ["grid-1205-202002", "grid-1205-202002-2", "grid-1205-202002-3", "grid-1205-202002-4"]
    assert run_names.claimed(tmp_path, "trials", "grid-1205-202002") == "grid-1205-202002"  # kinds apart


def test_a_claim_long_past_its_second_is_forgotten(tmp_path):
    assert run_names.claimed(tmp_path, "trials", "abalone-20261205-201143") == "abalone-20261205-201143"
    claim = tmp_path / ".mlexp" / "names" / "trials" / "abalone-20261205-201143"
    old = time.time() - run_names.KEPT_S - 1
    os.utime(claim, (old, old))
    assert run_names.claimed(tmp_path, "trials", "other") == "other"
    assert not claim.exists()


def test_two_trials_started_in_the_same_second_are_told_apart_in_the_store(tmp_project_with_store, monkeypatch):
    import datetime as real

    import mlexp
    from conftest import TINY, trials_of
    from mlexp import runner

    class SameSecond(real.datetime):
        @classmethod
        def now(cls, tz=None):
            return real.datetime(2026, 12, 5, 20, 11, 43)

    monkeypatch.setattr(runner, "datetime", SameSecond)
    for key in [k for k in os.environ if k.startswith(("MLEXP_", "MLFLOW_"))]:  # another test's store, left set
        monkeypatch.delenv(key)
    monkeypatch.setenv("MLEXP_TRACKING_WRITER", "inline")
    store = f"tracking.uri=sqlite:///{tmp_project_with_store / 'mlflow.db'}"  # named: whatever the process holds
    for seed in (1, 2):
        mlexp.run("tabular_regression", [*TINY, f"seed={seed}", store], root=tmp_project_with_store)
    names = sorted(trial.name for trial in trials_of(tmp_project_with_store))
    assert names == ["tabular_regression-20261205-201143", "tabular_regression-20261205-201143-2"]
