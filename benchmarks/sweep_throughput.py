"""Sweep throughput: 8 CPU-bound trials with the joblib launcher at n_jobs=2 vs sequentially.

Goal: the 2-job sweep is at least 1.7x faster than the sequential one (wall clock of the whole command).

Both sweeps run the same 8-trial grid (model.l1_size=8,16,32,64 x model.l1_activation=relu,tanh) in a
throw-away project after one untimed trial (it starts the tracking writer both sweeps then use), one MXNet
thread per trial (compute.num_threads=1 and OMP_NUM_THREADS=1,
MXNET_CPU_WORKER_NTHREADS=1 in the environment); the store is created before either is timed.
The script also checks the store (8 FINISHED trials per sweep) and whether compute.num_threads takes
effect: the trial sets the thread variables (mlexp.thread_limits), which MXNet only reads when it is first imported.

Each kind runs --repeats times (default 3), alternating which goes first; the figures are medians.

It also counts each sweep's CPU seconds (the command, the workers it waited for, the tracking writer) and prints
the ceiling they set: on N cores the parallel sweep cannot take less than its CPU seconds / N, so no launcher
can beat sequential wall time / that. A sequential sweep is not exactly one busy core: the writer works beside
its trial (and, with MXNet's default engine, the engine's thread), and the parallel sweep must fit that work into
the same two cores. The abalone trials here run on one thread, so on MXNet's synchronous engine
(mlexp.mxnet_engine), as every one-thread trial of that task does.

    .venv/bin/python benchmarks/sweep_throughput.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from mlflow.tracking import MlflowClient

from mlexp.tracking import TrackingStore

REPO = Path(__file__).resolve().parents[1]
GOAL_SPEEDUP = 1.7
GOAL_TRIALS_SPEEDUP = 1.85
EPOCHS = 20
TRIALS = 8
GRID = ["model.l1_size=8,16,32,64", "model.l1_activation=relu,tanh"]
THREAD_ENV = {"OMP_NUM_THREADS": "1", "MXNET_CPU_WORKER_NTHREADS": "1"}
TIMEOUT_S = 900

# What a sweep job has imported when its trial starts (the CLI and the Hydra callback), then the
# runner's thread limits and seeding with compute.num_threads=argv[1], then a little MXNet work; reports the OS
# threads.
THREAD_CHECK = """
import json
import os
import sys

import mlexp.cli  # noqa: F401
import mlexp.runner  # noqa: F401
import mlexp.sweeps.recorder  # noqa: F401

imported_before = "mxnet" in sys.modules
from mlexp.seeding import seed_everything
from mlexp.thread_limits import trial_threads

with trial_threads(int(sys.argv[1])):  # as the abalone task's trials: the thread variables, then MXNet
    seed_everything(42, int(sys.argv[1]), mxnet=True, small_operators=True)
    import mxnet as mx
    from mxnet import gluon

    net = gluon.nn.Dense(256)
    net.initialize()
    x = mx.nd.random.uniform(shape=(4096, 256))
    for _ in range(20):
        net(x).wait_to_read()
    mx.nd.waitall()
    print(json.dumps({
        "mxnet_imported_before_seeding": imported_before,
        "os_threads": len(os.listdir("/proc/self/task")),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "MXNET_CPU_WORKER_NTHREADS": os.environ.get("MXNET_CPU_WORKER_NTHREADS"),
        "MXNET_ENGINE_TYPE": os.environ.get("MXNET_ENGINE_TYPE"),
    }))
"""


def project_copy(base: Path) -> Path:
    """A project folder with the repository's conf/: the sweeps' store, data and outputs land in it."""
    project = base / "project"
    project.mkdir()
    shutil.copytree(REPO / "conf", project / "conf")
    return project


def cli_env(project: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLEXP_"))}
    env["MLEXP_ROOT"] = str(project)
    env["MLEXP_WRITER_SCOPE"] = f"bench-sweep-{os.getpid()}"  # a tracking writer of the benchmark's own
    return env


def writer_processes(env: dict[str, str]) -> list[psutil.Process]:
    """The tracking writer the benchmark's commands use (one, once the untimed first command has started it)."""
    script = "from mlexp.tracking.writer_address import socket_path; print(socket_path())"
    path = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True).stdout.strip()
    return [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] and path in p.info["cmdline"]]


def stop_writer(env: dict[str, str]) -> None:
    """Stop the tracking writer the benchmark's commands used (it would otherwise idle for 10 minutes)."""
    for process in writer_processes(env):
        process.kill()


def cpu_seconds(writers: list[psutil.Process]) -> float:
    """CPU seconds so far of this process's ended children (a sweep command and the workers it waited for) and of
    the tracking writer, which stores both sweeps' trials from a process of its own."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = children.ru_utime + children.ru_stime
    for writer in writers:
        with contextlib.suppress(psutil.Error):
            times = writer.cpu_times()
            total += times.user + times.system
    return total


def run(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    """Wall-clock seconds of one whole command, and its stdout; raises if it fails."""
    start = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr[-3000:]}")
    return elapsed, done.stdout


def sweep_ids(client: MlflowClient) -> set[str]:
    # sweep records are kept out of the trial rows, in the companion experiment
    experiment = client.get_experiment_by_name("tabular_regression-sweeps")
    if experiment is None:
        return set()
    runs = client.search_runs([experiment.experiment_id], "tags.`mlexp.kind` = 'sweep'", max_results=1000)
    return {run.info.run_id for run in runs}


def sweep_record(client: MlflowClient, sweep_id: str, launched: float, exited: float) -> dict:
    """The sweep's trials from the store, and its timeline in seconds from launching the command."""
    experiment = client.get_experiment_by_name("tabular_regression")
    assert experiment is not None
    trials = client.search_runs(
        [experiment.experiment_id],
        f"tags.`mlexp.kind` = 'trial' and tags.`mlexp.sweep_id` = '{sweep_id}'",
        max_results=1000,
    )
    sweep = client.get_run(sweep_id).info
    timed = [t.info for t in trials if t.info.start_time and t.info.end_time]
    first_start = min(t.start_time for t in timed) / 1000 if timed else float("nan")
    last_end = max(t.end_time for t in timed) / 1000 if timed else float("nan")
    return {
        "status": sweep.status,
        "trials": len(trials),
        "finished": sum(1 for t in trials if t.info.status == "FINISHED"),
        "trial_s": sum(t.end_time - t.start_time for t in timed) / 1000 / max(1, len(timed)),
        "span_s": last_end - first_start,
        # the timeline: launch -> sweep run created -> first trial opened -> last trial closed -> sweep run
        # closed (summary table and charts) -> process exited
        "phases": {
            "launch to sweep run (Hydra start-up, imports, callback)": sweep.start_time / 1000 - launched,
            "sweep run to first trial (job start-up, imports, config)": first_start - sweep.start_time / 1000,
            "first trial opened to last trial closed": last_end - first_start,
            "last trial to sweep run closed (summary, charts)": (sweep.end_time or 0) / 1000 - last_end,
            "sweep run closed to process exit (shutdown)": exited - (sweep.end_time or 0) / 1000,
        },
    }


def timed_sweep(
    project: Path, env: dict[str, str], client: MlflowClient, jobs: int, writers: list[psutil.Process]
) -> tuple[float, str, dict]:
    before = sweep_ids(client)
    args = [sys.executable, "-m", "mlexp.cli", "-m", "task=tabular_regression", "sweep=grid"]
    args += [f"sweep.max_parallel_jobs={jobs}", *GRID, f"model.epochs={EPOCHS}", "compute.num_threads=1"]
    launched, cpu_before = time.time(), cpu_seconds(writers)
    seconds, _ = run(args, project, env)
    exited, cpu = time.time(), cpu_seconds(writers) - cpu_before
    new = sweep_ids(client) - before
    if len(new) != 1:
        raise RuntimeError(f"expected one new sweep run in the store, found {len(new)}")
    sweep_id = new.pop()
    return seconds, sweep_id, sweep_record(client, sweep_id, launched, exited) | {"cpu_s": cpu}


def thread_check(base: Path, project: Path) -> dict:
    """Run the seeding as a sweep job does (compute.num_threads=1), without the thread variables preset."""
    script = base / "thread_check.py"
    script.write_text(THREAD_CHECK)
    env = {k: v for k, v in cli_env(project).items() if k not in THREAD_ENV}
    return json.loads(run([sys.executable, str(script), "1"], project, env)[1])


def load_average() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg()) + " (1, 5, 15 min)"


SPIN = "import time\nt = time.process_time()\nfor i in range(20_000_000):\n    pass\nprint(time.process_time() - t)"


def core_speeds() -> str:
    """CPU seconds of one pure-Python loop on each core alone: a virtual machine's cores can differ by a third.

    A sequential sweep runs on whichever core the scheduler keeps it on; a parallel one on both.
    """
    seconds = []
    for core in sorted(os.sched_getaffinity(0)):
        pinned = functools.partial(os.sched_setaffinity, 0, {core})
        done = subprocess.run([sys.executable, "-c", SPIN], capture_output=True, text=True, preexec_fn=pinned)
        seconds.append(float(done.stdout))
    each = ", ".join(f"core {n}: {value:.2f} s" for n, value in enumerate(seconds))
    return f"{each} (slowest/fastest {max(seconds) / min(seconds):.2f})"


def _medians(runs: list[tuple[float, str, dict]]) -> dict:
    """Each figure's median over the runs of one kind (whole command, mean trial, trials' span, each phase)."""
    records = [record for _, _, record in runs]
    return {
        "seconds": statistics.median(seconds for seconds, _, _ in runs),
        "trial_s": statistics.median(r["trial_s"] for r in records),
        "span_s": statistics.median(r["span_s"] for r in records),
        "cpu_s": statistics.median(r["cpu_s"] for r in records),
        "phases": {phase: statistics.median(r["phases"][phase] for r in records) for phase in records[0]["phases"]},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="sequential/parallel pairs, alternating (default 3)")
    repeats = parser.parse_args().repeats
    if repeats < 1:
        parser.error("--repeats must be at least 1")
    print(f"sweep throughput: {TRIALS} trials ({' '.join(GRID)}, {EPOCHS} epochs, full abalone data)")
    print(f"joblib launcher, sweep.max_parallel_jobs=2 vs 1; goal: speed-up >= {GOAL_SPEEDUP:g}x")
    print(f"load average before start: {load_average()} ({os.cpu_count()} CPUs); other work skews the figures")
    print(f"the same loop on each core: {core_speeds()}")
    with tempfile.TemporaryDirectory(prefix="mlexp-bench-sweep-") as tmp:
        base = Path(tmp)
        project = project_copy(base)
        env = {**cli_env(project), **THREAD_ENV}
        print(f"both sweeps: compute.num_threads=1 and {' '.join(f'{k}={v}' for k, v in THREAD_ENV.items())}")

        found = thread_check(base, project)
        print(
            f"thread check, compute.num_threads=1 with the variables unset: mxnet imported before seeding: "
            f"{found['mxnet_imported_before_seeding']}; then OMP_NUM_THREADS={found['OMP_NUM_THREADS']}, "
            f"MXNET_CPU_WORKER_NTHREADS={found['MXNET_CPU_WORKER_NTHREADS']}, "
            f"MXNET_ENGINE_TYPE={found['MXNET_ENGINE_TYPE'] or '(MXNet default)'}, OS threads after MXNet work: "
            f"{found['os_threads']}"
        )
        print(
            "  -> compute.num_threads is set TOO LATE (MXNet already imported)"
            if found["mxnet_imported_before_seeding"]
            else "  -> compute.num_threads is applied before MXNet is imported, so it takes effect"
        )

        # the store and experiment the CLI would create (same paths), made here so neither sweep pays for it
        store = TrackingStore.resolve(f"sqlite:///{(project / 'mlflow.db').resolve()}", project)
        store.experiment_id("tabular_regression")
        client = store.client()

        # the tracking writer every command after the first finds running: started here, so neither sweep pays for
        # it and neither gets it for free (the first command after 10 idle minutes pays ~2 s more, either way)
        run([sys.executable, "-m", "mlexp.cli", "task=tabular_regression", "model.epochs=1"], project, env)
        writers = writer_processes(env)
        # alternating, each kind first in turn: a host whose speed drifts during the run skews both sides alike
        runs: dict[int, list[tuple[float, str, dict]]] = {1: [], 2: []}
        for repeat in range(repeats):
            for jobs in (1, 2) if repeat % 2 == 0 else (2, 1):
                seconds, sweep_id, record = timed_sweep(project, env, client, jobs, writers)
                runs[jobs].append((seconds, sweep_id, record))
                label = "sequential (max_parallel_jobs=1)" if jobs == 1 else "parallel   (max_parallel_jobs=2)"
                print(f"run {repeat + 1}/{repeats} {label}: {seconds:7.2f} s, trials {record['span_s']:6.2f} s")

        stop_writer(env)
    print()
    ok = True
    for jobs, label in ((1, "sequential"), (2, "parallel")):
        for _, sweep_id, record in runs[jobs]:
            good = record["trials"] == TRIALS and record["finished"] == TRIALS
            ok = ok and good
            print(
                f"store check, {label} sweep {sweep_id}: {record['finished']}/{record['trials']} trials FINISHED "
                f"(expected {TRIALS}), sweep run {record['status']}; mean trial {record['trial_s']:.2f} s, "
                f"first trial start to last trial end {record['span_s']:.2f} s -> {'OK' if good else 'WRONG'}"
            )
    sequential, parallel = _medians(runs[1]), _medians(runs[2])
    print(f"timeline of each sweep command, median of {repeats} (seconds; from the store's run start/end times):")
    print(f"  {'':<58} {'sequential':>10} {'parallel':>10}")
    for phase, seconds in sequential["phases"].items():
        print(f"  {phase:<58} {seconds:10.2f} {parallel['phases'][phase]:10.2f}")
    slowdown = parallel["trial_s"] / sequential["trial_s"]
    print(
        f"mean trial time, parallel / sequential: {slowdown:.2f} (1.0: two trials ran side by side without slowing "
        "each other; near 2: they shared one core's worth of CPU)"
    )
    sequential_s, parallel_s = sequential["seconds"], parallel["seconds"]
    speedup = sequential_s / parallel_s
    span_speedup = sequential["span_s"] / parallel["span_s"]
    pairs = ", ".join(f"{s[0] / p[0]:.2f}x" for s, p in zip(runs[1], runs[2], strict=True))
    pair_ratios = [s[0] / p[0] for s, p in zip(runs[1], runs[2], strict=True)]
    print(f"whole command, each run's pair: {pairs} (median {statistics.median(pair_ratios):.2f}x)")
    print(
        f"trials only (first start to last end, from the store), medians: {sequential['span_s']:.2f} s vs "
        f"{parallel['span_s']:.2f} s -> {span_speedup:.2f}x; the rest is start-up, imports and the sweep summary"
    )
    print(f"load average at the end: {load_average()}")
    cores = len(os.sched_getaffinity(0))
    ceiling = cores * sequential_s / parallel["cpu_s"]
    print(
        f"CPU seconds (sweep command, its workers and the tracking writer), medians: sequential "
        f"{sequential['cpu_s']:.2f} s ({sequential['cpu_s'] / sequential_s:.2f} cores busy on average: the tracking "
        f"writer works beside the trial, and waits leave a core idle), parallel {parallel['cpu_s']:.2f} s (+"
        f"{parallel['cpu_s'] - sequential['cpu_s']:.2f} s: the workers' start-up)"
    )
    print(
        f"ceiling: {cores} cores run the parallel sweep's {parallel['cpu_s']:.2f} CPU s in no less than "
        f"{parallel['cpu_s'] / cores:.2f} s, so no schedule beats {sequential_s:.2f} s / that = {ceiling:.2f}x"
    )
    print(
        f"ratio of medians: speed-up {sequential_s:.2f} s / {parallel_s:.2f} s = {speedup:.2f}x; "
        f"goal >= {GOAL_SPEEDUP:g}x -> {speedup / GOAL_SPEEDUP:.2f} of goal"
    )
    print(
        f"trials alone: {span_speedup:.2f}x, goal >= {GOAL_TRIALS_SPEEDUP:g}x -> "
        f"{'met' if span_speedup >= GOAL_TRIALS_SPEEDUP else 'missed'}"
    )
    print(f"the same loop on each core at the end: {core_speeds()}")
    met = speedup >= GOAL_SPEEDUP and span_speedup >= GOAL_TRIALS_SPEEDUP
    if met and slowdown < 0.95:
        # two trials side by side cannot each run faster than one alone on an equal machine: the host skewed it
        print(
            "NOT COUNTED: a parallel trial ran faster than a sequential one "
            f"({slowdown:.2f}); the host's cores or load differed between the sides, which flatters the ratio"
        )
    else:
        print("GOAL MET" if met else "GOAL MISSED")
    if not ok:
        print("broken: a sweep did not leave its trials FINISHED in the store", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
