"""compute.num_threads reaches the BLAS NumPy loaded before the trial began, and only for that trial.

A library reads the thread variables when it loads; NumPy's OpenBLAS is loaded before any trial (by mlexp itself,
the command's libraries, a notebook). A toy task's stage loads SciPy's own OpenBLAS (a pool first loaded during the
trial) and reports the fewest and most threads of every BLAS loaded while it runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from threadpoolctl import threadpool_info

from conftest import run_cli, trials_of
from mlexp.thread_limits import THREAD_VARIABLES, trial_threads
from test_task_plugins import PACKAGE, with_toy_task

REPORTING_PACKAGE = PACKAGE | {
    "stages.py": PACKAGE["stages.py"]
    + """

        _count = count


        def count(cfg, tracker):
            import sys

            tracker.log_metric("scipy_loaded_before", "scipy.linalg" in sys.modules)
            import scipy.linalg  # noqa: F401  (its own OpenBLAS)
            from threadpoolctl import threadpool_info

            blas = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
            tracker.log_metric("blas_pools", len(blas))
            tracker.log_metric("fewest_blas_threads", min(blas))
            tracker.log_metric("most_blas_threads", max(blas))
            _count(cfg, tracker)
    """
}


def _default_threads(env: dict[str, str]) -> int:
    """What NumPy's and SciPy's BLAS take when they load in a process of this environment."""
    report = "import json, numpy, scipy.linalg, threadpoolctl\nprint(json.dumps(threadpoolctl.threadpool_info()))"
    done = subprocess.run([sys.executable, "-c", report], env=env, capture_output=True, text=True, check=True)
    (threads,) = {pool["num_threads"] for pool in json.loads(done.stdout) if pool["user_api"] == "blas"}
    assert threads > 1, "a limit of one thread looks like the default here: run with two cores or more"
    return threads


def test_a_commands_blas_runs_on_compute_num_threads(tmp_project, tmp_path):
    project, env = with_toy_task(tmp_project, tmp_path, REPORTING_PACKAGE)
    default = _default_threads(env)
    run_cli(project, "task=toy", "compute.num_threads=1", env=env)
    run_cli(project, "task=toy", env=env)  # 0: the libraries' own default
    reports = {
        t.params["compute.num_threads"]: [
            t.metrics[m] for m in ("blas_pools", "fewest_blas_threads", "most_blas_threads")
        ]
        for t in trials_of(project, "toy")
    }
    assert reports == {"1": [2, 1, 1], "0": [2, default, default]}


def test_an_in_process_trials_limit_ends_with_it(tmp_project, tmp_path):
    project, env = with_toy_task(tmp_project, tmp_path, REPORTING_PACKAGE)
    default = _default_threads(env)
    # a notebook: NumPy loaded long before, a limited trial that loads SciPy's BLAS, a trial with the default, and
    # the kernel's own BLAS work after them
    notebook = (
        "import json, mlexp, numpy\n"
        "from threadpoolctl import threadpool_info\n"
        "def blas():\n"
        "    return [p['num_threads'] for p in threadpool_info() if p['user_api'] == 'blas']\n"
        "limited = mlexp.run('toy', ['compute.num_threads=1'])\n"
        "after_limited = blas()\n"
        "default = mlexp.run('toy')\n"
        "metrics = ('scipy_loaded_before', 'fewest_blas_threads', 'most_blas_threads')\n"
        "seen = [[limited.metrics[m], default.metrics[m]] for m in metrics]\n"
        "print(json.dumps([seen, after_limited, blas()]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", notebook], cwd=project, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    seen, after_limited, after_both = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == [[False, True], [1, default], [1, default]]  # the limited trial loaded SciPy's
    assert after_limited == after_both == [default, default]  # NumPy's and SciPy's, as if no trial had limited them


def test_an_interrupted_trial_leaves_the_variables_and_pools_as_it_found_them(monkeypatch):
    for name in THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the user's own
    before = {pool["filepath"]: pool["num_threads"] for pool in threadpool_info()}
    with pytest.raises(KeyboardInterrupt), trial_threads(1):
        assert {os.environ[name] for name in THREAD_VARIABLES} == {"1"}
        assert {pool["num_threads"] for pool in threadpool_info()} == {1}
        raise KeyboardInterrupt
    assert {name: os.environ.get(name) for name in THREAD_VARIABLES} == dict.fromkeys(THREAD_VARIABLES) | {
        "OMP_NUM_THREADS": "3"
    }
    assert {pool["filepath"]: pool["num_threads"] for pool in threadpool_info()} == before


@pytest.mark.parametrize(
    ("environment", "expected"),
    [({"OMP_NUM_THREADS": "1"}, [1, 1]), ({"OPENBLAS_NUM_THREADS": "64"}, "cores")],
    ids=["OMP_NUM_THREADS=1", "OPENBLAS_NUM_THREADS above the cores"],
)
def test_a_pool_first_loaded_in_a_trial_gets_what_the_variables_give_it_after(environment, expected):
    # SciPy's OpenBLAS loads during a trial of 2 threads; after it, as if loaded under the user's variables (OpenBLAS
    # takes no more threads than cores when it loads)
    script = (
        "import json, numpy, threadpoolctl\n"
        "from mlexp.thread_limits import cores, trial_threads\n"
        "with trial_threads(2):\n"
        "    import scipy.linalg\n"
        "blas = sorted(p['num_threads'] for p in threadpoolctl.threadpool_info() if p['user_api'] == 'blas')\n"
        "print(json.dumps([blas, cores()]))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in (*THREAD_VARIABLES, "GOTO_NUM_THREADS")} | environment
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    blas, cores = json.loads(done.stdout)
    assert blas == (expected if expected != "cores" else [cores, cores])
