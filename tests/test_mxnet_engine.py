"""MXNet's synchronous engine for a task of small operators on one thread: chosen before MXNet loads, same results."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from conftest import composed_with_hydra
from mlexp.mxnet_engine import ENGINE_VARIABLE, SYNCHRONOUS_ENGINE
from mlexp.sweeps import workers

# trains the abalone network for 3 epochs on fixed data and prints the engine MXNet read and the epoch losses
TRAIN = """
import json, os, sys
import numpy as np
from mlexp.seeding import seed_everything
seed_everything(7, int(sys.argv[1]), mxnet=True, small_operators=True)
from mlexp.tasks.tabular_regression import network
from mlexp.tasks.tabular_regression.config import MLPRegressor
rng = np.random.default_rng(0)
features = rng.normal(size=(500, 10)).astype("float32")
target = np.abs(rng.normal(10, 3, size=500)).astype("float32")
losses = []
network.train(MLPRegressor(epochs=3), features, target, 7, lambda epoch, loss: losses.append(loss))
print(json.dumps({"engine": os.environ.get("MXNET_ENGINE_TYPE"), "losses": losses}))
"""


def _train(threads: int, **environment: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != ENGINE_VARIABLE} | environment
    done = subprocess.run(
        [sys.executable, "-c", TRAIN, str(threads)], env=env, capture_output=True, text=True, check=True, timeout=300
    )
    # MXNet says which engine it started only when it is not its default
    started = re.findall(r"MXNet start using engine: (\w+)", done.stderr)
    return {**json.loads(done.stdout.splitlines()[-1]), "started": started}


def test_one_thread_trains_on_the_synchronous_engine_to_the_same_losses():
    synchronous = _train(1)
    threaded = _train(1, MXNET_ENGINE_TYPE="ThreadedEnginePerDevice")  # the user's own choice is kept
    assert synchronous["engine"] == SYNCHRONOUS_ENGINE and synchronous["started"] == [SYNCHRONOUS_ENGINE]
    assert threaded["engine"] == "ThreadedEnginePerDevice" and threaded["started"] == ["ThreadedEnginePerDevice"]
    assert synchronous["losses"] == threaded["losses"]  # the same operators in the same order: bit for bit
    more_threads = _train(2)
    assert more_threads["engine"] is None and more_threads["started"] == []  # MXNet's default engine uses them


def test_a_parallel_sweep_gives_one_thread_trials_of_small_operators_the_synchronous_engine(tmp_project, monkeypatch):
    monkeypatch.setattr(workers, "cores", lambda: 2)
    environ = {k: v for k, v in os.environ.items() if k != ENGINE_VARIABLE}
    monkeypatch.setattr(workers.os, "environ", environ)
    monkeypatch.setattr("mlexp.mxnet_engine.os.environ", environ)
    two_at_once = composed_with_hydra(tmp_project, "sweep=grid", "task=tabular_regression", "sweep.max_parallel_jobs=2")
    assert workers.thread_variables(two_at_once)[ENGINE_VARIABLE] == SYNCHRONOUS_ENGINE
    # a detection network's convolutions keep the engine's thread, which overlaps Python with them
    detection = composed_with_hydra(tmp_project, "sweep=grid", "task=object_detection", "sweep.max_parallel_jobs=2")
    assert ENGINE_VARIABLE not in workers.thread_variables(detection)
    one_at_a_time = composed_with_hydra(
        tmp_project, "sweep=grid", "task=tabular_regression", "sweep.max_parallel_jobs=1"
    )
    assert ENGINE_VARIABLE not in workers.thread_variables(one_at_a_time)  # every core for the one trial
    environ[ENGINE_VARIABLE] = "ThreadedEngine"
    assert ENGINE_VARIABLE not in workers.thread_variables(two_at_once)  # the user's own setting stays
