"""Sweep overhead: what mlexp adds to each trial of a long in-process random sweep of short trials.

Goal: < 0.3 s per trial for a 100-trial random sweep of 1-epoch abalone trials.

Both sides are one whole Python process running TRIALS trials one after another:
  baseline  a bare script: loads and pre-processes abalone once (as the sweep's shared Pre-processing does),
            then per trial trains the Gluon MLP for 1 epoch with a learning rate drawn log-uniformly from
            [0.001, 0.1] and scores it, calling the task's own stage functions with a tracker that records nothing
  mlexp     `mlexp -m task=tabular_regression sweep=random sweep.max_jobs=TRIALS sweep.max_parallel_jobs=1
            model.epochs=1 'model.learning_rate=tag(log, interval(0.001, 0.1))'`: Optuna's random sampler;
            joblib at one job runs every trial in the launching process, as Hydra's basic launcher does
Per-trial overhead = (mlexp wall clock - baseline wall clock) / TRIALS: Hydra's per-job composition, run
folders, provenance, tracking, the sweep's record and summary, spread over the trials.

    .venv/bin/python benchmarks/sweep_overhead.py [--trials 100]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GOAL_PER_TRIAL_S = 0.3
TIMEOUT_S = 1800

BARE = """
import math
import random
import sys
import tempfile
from pathlib import Path

from hydra import compose, initialize_config_dir

from mlexp.config import make_composable
from mlexp.seeding import seed_everything
from mlexp.tasks.tabular_regression import stages

trials = int(sys.argv[2])
make_composable()
with initialize_config_dir(config_dir=sys.argv[1], version_base="1.3"):
    cfg = compose("config", overrides=["task=tabular_regression", "model.epochs=1"])


class NoTracker:
    # the stages' calls, recording nothing
    def __getattr__(self, name):
        return lambda *args, **kwargs: None


out = Path(tempfile.mkdtemp())
for name in ("data", "models", "reports"):
    cfg.paths[name] = str(out / name)
seed_everything(cfg.seed, 0, mxnet=True)
stages.prepare(cfg, NoTracker())
draw = random.Random(cfg.seed)
for trial in range(trials):
    cfg.model.learning_rate = math.exp(draw.uniform(math.log(0.001), math.log(0.1)))
    seed_everything(cfg.seed, 0, mxnet=True)
    stages.train(cfg, NoTracker())
    stages.evaluate(cfg, NoTracker())
print("done", trials)
"""


def cli_env(project: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLEXP_"))}
    env["MLEXP_ROOT"] = str(project)
    return env


def children_cpu() -> float:
    """CPU seconds (user + system) of this process's ended children, theirs included (tracking writers)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_timed(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall-clock and CPU seconds of one whole process; raises if it fails."""
    cpu = children_cpu()
    start = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return elapsed, children_cpu() - cpu


def finished_trials(project: Path) -> tuple[int, int]:
    with sqlite3.connect(project / "mlflow.db") as db:
        rows = db.execute(
            "SELECT r.status FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid "
            "WHERE t.key = 'mlexp.kind' AND t.value = 'trial'"
        ).fetchall()
    return sum(1 for (status,) in rows if status == "FINISHED"), len(rows)


def load_average() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg()) + " (1, 5, 15 min)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    trials = parser.parse_args().trials
    print(f"sweep overhead: {trials}-trial in-process random sweep of 1-epoch abalone trials vs a bare loop")
    print(f"goal: < {GOAL_PER_TRIAL_S:g} s added per trial")
    print(f"load average before start: {load_average()} ({os.cpu_count()} CPUs); other work skews the figures")
    with tempfile.TemporaryDirectory(prefix="mlexp-bench-sweep-overhead-") as tmp:
        base = Path(tmp)
        project = base / "project"
        project.mkdir()
        shutil.copytree(REPO / "conf", project / "conf")
        env = cli_env(project)
        bare = base / "bare.py"
        bare.write_text(BARE)
        bare_s, bare_cpu = run_timed([sys.executable, str(bare), str(project / "conf"), str(trials)], project, env)
        print(f"baseline (bare loop, {trials} trials): {bare_s:.2f} s (CPU {bare_cpu:.2f} s)")
        sweep = [sys.executable, "-m", "mlexp.cli", "-m", "task=tabular_regression", "sweep=random"]
        sweep += [f"sweep.max_jobs={trials}", "sweep.max_parallel_jobs=1", "model.epochs=1"]
        sweep += ["model.learning_rate=tag(log, interval(0.001, 0.1))"]
        mlexp_s, mlexp_cpu = run_timed(sweep, project, env)
        print(f"mlexp sweep ({trials} trials):          {mlexp_s:.2f} s (CPU {mlexp_cpu:.2f} s)")
        finished, total = finished_trials(project)
    print(f"store check: {finished}/{total} trials FINISHED (expected {trials})")
    per_trial = (mlexp_s - bare_s) / trials
    print(f"load average at the end: {load_average()}")
    print(f"overhead: ({mlexp_s:.2f} s - {bare_s:.2f} s) / {trials} = {per_trial:.3f} s per trial")
    cpu_per_trial = (mlexp_cpu - bare_cpu) / trials
    print(
        f"CPU time added (user + system, tracking writers included; less sensitive to load than wall clock): "
        f"({mlexp_cpu:.2f} s - {bare_cpu:.2f} s) / {trials} = {cpu_per_trial:.3f} s per trial"
    )
    print(f"ratio: overhead / goal = {per_trial:.3f} s / {GOAL_PER_TRIAL_S:g} s = {per_trial / GOAL_PER_TRIAL_S:.2f}")
    print("GOAL MET" if per_trial < GOAL_PER_TRIAL_S else "GOAL MISSED")
    if finished != trials or total != trials:
        print(f"broken: expected {trials} FINISHED trials in the store", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
