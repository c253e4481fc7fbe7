"""Runner overhead: a full `mlexp` trial vs a bare script doing the same training.

Goal: config (Hydra) + tracking (MLflow) add < 1.5 s per trial.

Both sides run as whole Python processes, so both pay interpreter start-up and their imports:
  baseline  a bare script doing the task's work: load abalone, split/scale, train the Gluon MLP, score MSLE,
            write the predictions CSV and the predicted-vs-actual chart (no Hydra, no MLflow)
  mlexp     `python -m mlexp.cli task=tabular_regression model.epochs=E` in a throw-away project
One untimed warm-up of each (it also creates the SQLite store and starts the tracking writer, which later
trials reuse), then REPEATS (5) timed runs of each, interleaved; the medians are compared. Then COLD (3)
mlexp runs that each start a writer of their own (the first trial after the writer has been idle 10 min),
against the same baseline median. When the goal is missed, one extra instrumented mlexp run
(`-X importtime` plus wall-clock timers around the runner's phases) shows where the extra time goes.

    .venv/bin/python benchmarks/runner_overhead.py [--repeats 5] [--epochs 10] [--explain]

--explain prints the breakdown even when the goal is met; a broken breakdown run exits 1, like a broken trial.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import yaml

REPO = Path(__file__).resolve().parents[1]
GOAL_OVERHEAD_S = 1.5
EPOCHS = 10
REPEATS = 5
COLD = 3
TIMEOUT_S = 300

# The baseline: the same data, split, scaling, network, seeds and report (CSV + chart) as the task's stages; no
# config, no tracking, which are what the goal is about.
# It prints its own phase times (JSON on the last stdout line) so the report can compare phases.
BARE = """
import time
started = time.perf_counter()
import json
import random
import sys

import mxnet as mx
import numpy as np

from mlexp.data import abalone
from mlexp.tasks.tabular_regression import features, network
from mlexp.tasks.tabular_regression.config import MLPRegressor

imported = time.perf_counter()
spec = json.loads(sys.argv[1])
seed = spec["seed"]
random.seed(seed)
np.random.seed(seed)
mx.random.seed(seed)
frame = abalone.load(None, None, seed)
train, test = features.split(frame, spec["train_test_split"], seed)
preprocessors = features.Preprocessors.fit(train)
x, y = features.arrays(preprocessors.transform(train))
x_test, y_test = features.arrays(preprocessors.transform(test))
prepared = time.perf_counter()
net = network.train(MLPRegressor(**spec["model"]), x, y, seed, lambda epoch, loss: None)
trained = time.perf_counter()
raw = network.predict(net, x_test)
predicted = np.maximum(raw, 0.0)
msle = float(np.mean((np.log1p(predicted) - np.log1p(y_test)) ** 2))
evaluated = time.perf_counter()
# the task's report, as its evaluate stage writes it: the predictions and the predicted-vs-actual chart
import tempfile
from pathlib import Path

import pandas as pd
from mlexp.charts import predicted_vs_actual

plots = Path(tempfile.mkdtemp())
pd.DataFrame({"actual": y_test, "predicted": raw}).to_csv(plots / "predictions.csv", index=False)
predicted_vs_actual(y_test, raw, plots / "predicted_vs_actual.png", "Abalone rings: test split")
done = time.perf_counter()
print(json.dumps({
    "test_msle": msle, "rows": len(frame), "imports": imported - started, "data": prepared - imported,
    "train": trained - prepared, "evaluate": evaluated - trained, "report": done - evaluated,
}))
"""

# The mlexp trial with timers: the same CLI entry point, with the imports it makes lazily done up front
# (each timed) and wall-clock timers around the runner's phases. Results go to the JSON file in argv[1].
INSTRUMENTED = """
import time
started = time.perf_counter()
started_epoch = time.time()
import functools
import json
import sys

out_path = sys.argv.pop(1)
timings = {}
counts = {}
depth = {"client": 0}


def add(label, seconds, calls=1):
    timings[label] = timings.get(label, 0.0) + seconds
    counts[label] = counts.get(label, 0) + calls


def timed_import(label, module):
    start = time.perf_counter()
    __import__(module)
    add(label, time.perf_counter() - start)


def wrap(owner, name, label, guard=None):
    function = getattr(owner, name)

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        if guard is not None and depth[guard]:
            return function(*args, **kwargs)
        if guard is not None:
            depth[guard] += 1
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            add(label, time.perf_counter() - start)
            if guard is not None:
                depth[guard] -= 1

    setattr(owner, name, wrapper)


timed_import("import mlexp.cli (hydra, omegaconf, config schemas)", "mlexp.cli")
timed_import("import Hydra callback mlexp.sweeps.recorder", "mlexp.sweeps.recorder")
timed_import("import mlexp.runner", "mlexp.runner")
timed_import("import mxnet (baseline pays this too)", "mxnet")
timed_import("import task stages (pandas, ...)", "mlexp.tasks.tabular_regression.stages")
timed_import("import task network (baseline pays this too)", "mlexp.tasks.tabular_regression.network")
timed_import("import mlexp.charts (matplotlib: the chart; baseline pays this too)", "mlexp.charts")
imports_done = time.perf_counter()

import hydra._internal.hydra as hydra_internal
import mlexp.charts as charts
import mlexp.cli as cli
import mlexp.config.overrides as overrides
import mlexp.runner as runner
import mlexp.tasks.tabular_regression.network as network
import mlexp.tasks.tabular_regression.stages as stages
import mlexp.tracking.journal_writer as journal_writer
from mlexp.tracking.store import TrackingStore

# a single run: cli.main checks the group options (no composition), cli._run_single composes once, checks the keys
# in that config and starts the tracking writer process; any other path shows up as more compositions here
wrap(cli, "check_override_keys", "override check: group options (no composition on a single run)")
wrap(hydra_internal.Hydra, "compose_config", "Hydra compose (a single run composes once)")
wrap(overrides, "check_keys_in", "override check: keys, in the run's composed config")
wrap(journal_writer, "start_early", "start the tracking writer process (it imports MLflow meanwhile)")
wrap(runner, "run", "runner.run")
# the stages import these lazily (`from ... import network`): wrapping the modules' functions catches those calls
wrap(network, "train", "network.train (the training; baseline does the same)")
wrap(charts, "predicted_vs_actual", "predicted-vs-actual chart (matplotlib PNG)")
wrap(runner, "git_state", "git rev-parse + git status (provenance)")
wrap(runner, "package_versions", "package versions (provenance)")
wrap(TrackingStore, "client", "MlflowClient in the trial's process (reads only)")
wrap(journal_writer.JournalWriter, "sync", "waiting for the tracking writer mid-trial (store ids, reads)")
wrap(journal_writer.JournalWriter, "finish", "waiting for the tracking writer at the trial's end")
for stage in ("prepare", "train", "evaluate"):
    wrap(stages, stage, f"stage {stage}")
sys.argv = ["mlexp", *sys.argv[1:]]
try:
    cli.main()
finally:
    ended = time.perf_counter()
    timings["in-process total"] = ended - started
    timings["imports total"] = imports_done - started
    with open(out_path, "w") as handle:
        json.dump({"timings": timings, "counts": counts, "started": started_epoch, "ended": time.time()}, handle)
"""


def project_copy(base: Path) -> Path:
    """A project folder with the repository's conf/: the trials' store, data and outputs land in it."""
    project = base / "project"
    project.mkdir()
    shutil.copytree(REPO / "conf", project / "conf")
    return project


def cli_env(project: Path, scope: str) -> dict[str, str]:
    """The command's environment, with a tracking writer of the benchmark's own (`scope`): its CPU is counted."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLEXP_"))}
    env["MLEXP_ROOT"] = str(project)
    env["MLEXP_WRITER_SCOPE"] = scope
    return env


def writer_of(env: dict[str, str]) -> psutil.Process | None:
    """The tracking writer that commands run with `env` use, if one runs."""
    script = "from mlexp.tracking.writer_address import socket_path; print(socket_path())"
    path = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True).stdout.strip()
    found = [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] and path in p.info["cmdline"]]
    return found[0] if found else None


def cpu_of(process: psutil.Process | None) -> float:
    if process is None:
        return 0.0
    try:
        times = process.cpu_times()
    except psutil.NoSuchProcess:
        return 0.0
    return times.user + times.system


def children_cpu() -> float:
    """CPU seconds (user + system) of this process's ended children, theirs included (the tracking writer's)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_timed(
    args: list[str],
    cwd: Path,
    env: dict[str, str],
    cpu: list[float] | None = None,
    writer: psutil.Process | None = None,
) -> tuple[float, str]:
    """Wall-clock seconds of one whole process, and its stdout; raises if it fails. Appends its CPU seconds to cpu,
    with what the running tracking `writer` spent meanwhile (it is not the command's child to be counted)."""
    cpu_before, writer_before = children_cpu(), cpu_of(writer)
    start = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    elapsed = time.perf_counter() - start
    if cpu is not None:
        cpu.append(children_cpu() - cpu_before + cpu_of(writer) - writer_before)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr[-3000:]}")
    return elapsed, done.stdout


def trial_spec(project: Path, epochs: int) -> dict:
    """Seed, split and model settings from the project's conf/, as the mlexp trial composes them."""
    conf = project / "conf"
    model = yaml.safe_load((conf / "model" / "mlp_regressor.yaml").read_text())
    model = {k: v for k, v in model.items() if k != "defaults"}
    model["epochs"] = epochs
    split = yaml.safe_load((conf / "preprocessing" / "abalone.yaml").read_text())["train_test_split"]
    seed = yaml.safe_load((conf / "config.yaml").read_text())["seed"]
    return {"seed": seed, "train_test_split": split, "model": model}


def seconds_list(values: list[float]) -> str:
    return ", ".join(f"{value:.2f}" for value in values) + " s"


def mlexp_msle(stdout: str) -> float:
    for line in stdout.splitlines():
        if line.startswith("trial done:"):
            return float(line.split("=")[1].split()[0])
    return float("nan")


def finished_trials(project: Path) -> tuple[int, int]:
    """(FINISHED trials, all trials) in the project's store."""
    with sqlite3.connect(project / "mlflow.db") as db:
        rows = db.execute(
            "SELECT r.status FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid "
            "WHERE t.key = 'mlexp.kind' AND t.value = 'trial'"
        ).fetchall()
    return sum(1 for (status,) in rows if status == "FINISHED"), len(rows)


def import_costs(stderr: str, names: tuple[str, ...]) -> dict[str, float]:
    """Cumulative `-X importtime` seconds of the first import of each named module."""
    found: dict[str, float] = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, module = line[len("import time:") :].split("|")
        module = module.strip()
        if module in names and module not in found:
            found[module] = int(cumulative) / 1e6
    return found


# the instrumented driver's labels of work done before runner.run, in the command and the Hydra app
APP_LABELS = ("override check", "Hydra compose", "start the tracking writer")


def explain(project: Path, base: Path, env: dict[str, str], overrides: list[str], bare: dict[str, float]) -> bool:
    """One instrumented mlexp trial: where its time goes, next to the baseline's phases; False if it broke."""
    driver = base / "instrumented.py"
    driver.write_text(INSTRUMENTED)
    out = base / "instrumented.json"
    launched = time.time()
    done = subprocess.run(
        [sys.executable, "-X", "importtime", str(driver), str(out), *overrides],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    exited = time.time()
    if done.returncode != 0 or not out.exists():
        print(f"broken: the instrumented run failed (exit {done.returncode})\n{done.stderr[-2000:]}")
        return False
    result = json.loads(out.read_text())
    timings: dict[str, float] = result["timings"]
    counts: dict[str, int] = result["counts"]
    print()
    print("where the time goes: one instrumented mlexp trial (wall clock; imports under -X importtime, so ~5-10%")
    print("slower than normal; lazily imported modules are imported up front here so each is timed once):")

    def line(label: str, seconds: float, indent: int = 2) -> None:
        print(f"{' ' * indent}{label:<{94 - indent}} {seconds:6.2f} s")

    line("interpreter start-up (before the first timer)", result["started"] - launched)
    for label, seconds in timings.items():
        if label.startswith("import ") and label != "imports total":
            line(label, seconds)
    runner_s = timings.get("runner.run", 0.0)
    line(
        "command + Hydra app: parse, checks, compose, writer start, run folder, logging (in-process rest)",
        timings["in-process total"] - timings["imports total"] - runner_s,
    )
    for label, seconds in timings.items():
        if label.startswith(APP_LABELS):
            calls = f" ({counts[label]} calls)" if counts.get(label, 1) > 1 else ""
            line(f"of which {label}{calls}", seconds, 4)
    line("runner.run (the trial)", runner_s)
    print("    of which (overlapping: stage times include the client calls, chart and training made in them):")
    skip = ("in-process total", "imports total", "runner.run")
    for label, seconds in timings.items():
        if not label.startswith(("import ", *APP_LABELS)) and label not in skip:
            calls = f" ({counts[label]} calls)" if counts.get(label, 1) > 1 else ""
            line(label + calls, seconds, 4)
    line("interpreter shutdown (module teardown, final garbage collection)", exited - result["ended"])
    line("total (wall clock of the instrumented process)", exited - launched)
    # the tracking writer process imports MLflow: none of these should show here
    names = ("mlflow", "mlflow.store.tracking.sqlalchemy_store", "sqlalchemy", "alembic", "mlexp.compare")
    names += ("matplotlib", "hydra", "mxnet", "pandas")
    costs = import_costs(done.stderr, names)
    listed = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in costs.items())
    print(f"  -X importtime, cumulative per package (first import): {listed}")
    print(
        f"  baseline phases (median): imports {bare['imports']:.2f} s, data {bare['data']:.2f} s, "
        f"train {bare['train']:.2f} s, evaluate {bare['evaluate']:.2f} s, report (CSV + chart) {bare['report']:.2f} s, "
        f"interpreter start-up + shutdown {bare['outside']:.2f} s"
    )
    return True


def load_average() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg()) + " (1, 5, 15 min)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=REPEATS, help="timed runs of each side (median; default 5)")
    parser.add_argument("--epochs", type=int, default=EPOCHS, help="training epochs of both sides (default 10)")
    parser.add_argument("--cold", type=int, default=COLD, help="mlexp runs that start their own writer (default 3)")
    parser.add_argument("--explain", action="store_true", help="the instrumented breakdown even when the goal is met")
    args = parser.parse_args()
    epochs, repeats = args.epochs, args.repeats
    print(f"runner overhead: a full mlexp trial vs a bare script, {epochs} epochs, full abalone data")
    print(f"goal: config + tracking add < {GOAL_OVERHEAD_S:g} s per trial; medians of {repeats} runs each")
    print(f"load average before start: {load_average()} ({os.cpu_count()} CPUs); other work skews the figures")
    with tempfile.TemporaryDirectory(prefix="mlexp-bench-overhead-") as tmp:
        base = Path(tmp)
        project = project_copy(base)
        env = cli_env(project, f"bench-overhead-{os.getpid()}")
        bare_script = base / "bare.py"
        bare_script.write_text(BARE)
        spec = trial_spec(project, epochs)
        bare_cmd = [sys.executable, str(bare_script), json.dumps(spec)]
        overrides = ["task=tabular_regression", f"model.epochs={epochs}"]
        mlexp_cmd = [sys.executable, "-m", "mlexp.cli", *overrides]

        first_bare, _ = run_timed(bare_cmd, project, env)
        first_mlexp, _ = run_timed(mlexp_cmd, project, env)  # creates mlflow.db: not part of the medians
        print(
            f"warm-up (untimed in medians): bare {first_bare:.2f} s, mlexp {first_mlexp:.2f} s "
            "(creates the store, starts the tracking writer)"
        )
        writer = writer_of(env)
        if writer is None:
            print("broken: no tracking writer runs after the warm-up trial")
            return 1

        bare_times: list[float] = []
        mlexp_times: list[float] = []
        bare_phases: list[dict[str, float]] = []
        mlexp_msles: list[float] = []
        bare_cpu: list[float] = []
        mlexp_cpu: list[float] = []
        for _ in range(repeats):
            seconds, out = run_timed(bare_cmd, project, env, bare_cpu)
            bare_times.append(seconds)
            bare_phases.append(json.loads(out.strip().splitlines()[-1]))
            seconds, out = run_timed(mlexp_cmd, project, env, mlexp_cpu, writer)
            mlexp_times.append(seconds)
            mlexp_msles.append(mlexp_msle(out))
        if writer_of(env) != writer:
            print("broken: the timed trials did not all use the writer the warm-up started")
            return 1
        cold_times: list[float] = []
        for number in range(args.cold):
            cold_env = cli_env(project, f"bench-overhead-{os.getpid()}-cold-{number}")
            seconds, out = run_timed(mlexp_cmd, project, cold_env, [], None)
            cold_times.append(seconds)
            mlexp_msles.append(mlexp_msle(out))
            cold_writer = writer_of(cold_env)
            if cold_writer is not None:
                cold_writer.kill()
        finished, total = finished_trials(project)
        bare_msle = bare_phases[0]["test_msle"]
        if not all(math.isclose(m, bare_msle, rel_tol=1e-6) for m in mlexp_msles) or finished != total:
            print(f"broken: test_msle bare {bare_msle} vs mlexp {mlexp_msles}; {finished}/{total} trials FINISHED")
            return 1

        bare_median = statistics.median(bare_times)
        mlexp_median = statistics.median(mlexp_times)
        overhead = mlexp_median - bare_median
        print()
        print(f"baseline (bare script) runs: {seconds_list(bare_times)} -> median {bare_median:.2f} s")
        print(f"mlexp trial runs (writer running): {seconds_list(mlexp_times)} -> median {mlexp_median:.2f} s")
        print(
            f"same training: test_msle bare {bare_phases[0]['test_msle']:.6g} vs mlexp "
            f"{', '.join(f'{m:.6g}' for m in mlexp_msles)} ({bare_phases[0]['rows']} rows)"
        )
        print(
            f"store check: {finished}/{total} trials FINISHED in the throw-away store "
            f"(warm-up + {repeats} timed + {args.cold} cold)"
        )
        print("note: the baseline imports mlexp.tasks.tabular_regression, whose config schema module loads")
        print("hydra.core.config_store, so a little of Hydra's import cost is in the baseline too")
        print()
        print(
            f"overhead: {overhead:.2f} s per trial (mlexp {mlexp_median:.2f} s - bare {bare_median:.2f} s); "
            f"mlexp/bare = {mlexp_median / bare_median:.2f}x"
        )
        bare_cpu_median, mlexp_cpu_median = statistics.median(bare_cpu), statistics.median(mlexp_cpu)
        print(
            f"CPU time (user + system, the tracking writer process included): bare {seconds_list(bare_cpu)}, "
            f"mlexp {seconds_list(mlexp_cpu)}; medians {bare_cpu_median:.2f} s vs {mlexp_cpu_median:.2f} s: "
            f"{mlexp_cpu_median - bare_cpu_median:.2f} s more CPU per trial (less sensitive to load than wall clock)"
        )
        if cold_times:
            cold_median = statistics.median(cold_times)
            print(
                f"cold trials (each starts its own tracking writer: the first trial after 10 idle minutes): "
                f"{seconds_list(cold_times)} -> median {cold_median:.2f} s, overhead {cold_median - bare_median:.2f} s"
            )
        print(f"load average at the end: {load_average()}")
        print(f"ratio: overhead / goal = {overhead:.2f} s / {GOAL_OVERHEAD_S:g} s = {overhead / GOAL_OVERHEAD_S:.2f}")
        met = overhead < GOAL_OVERHEAD_S
        print("GOAL MET" if met else "GOAL MISSED")
        if not met or args.explain:
            keys = ("imports", "data", "train", "evaluate", "report")
            medians = {key: statistics.median(p[key] for p in bare_phases) for key in keys}
            outside = [wall - sum(p[key] for key in keys) for wall, p in zip(bare_times, bare_phases)]
            medians["outside"] = statistics.median(outside)
            if not explain(project, base, env, overrides, medians):
                return 1
        writer.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
