"""One `mlexp <overrides>` run composes its config once.

hydra.main composes twice for one run (once to read hydra.mode, once to run) and the override-key check composed a
third time; each composition costs about a second on a loaded 2-core machine. These tests run the real command in a
subprocess whose Hydra config loader counts its compositions (every path to a composition — hydra.main, Hydra's
compose API, the override check — goes through ConfigLoaderImpl.load_configuration).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import TINY, cli_env, run_cli, trials_of

# the command's entry point (mlexp.cli.main), with Hydra's config loader counting its calls; the count and each
# call's run mode go to the JSON file named in argv[1] when the process exits (sys.exit included)
COUNTING = """
import atexit, json, sys
from hydra._internal.config_loader_impl import ConfigLoaderImpl

out, calls = sys.argv.pop(1), []
load = ConfigLoaderImpl.load_configuration


def counted(self, *args, **kwargs):
    calls.append(str(kwargs.get("run_mode")))
    return load(self, *args, **kwargs)


ConfigLoaderImpl.load_configuration = counted
atexit.register(lambda: open(out, "w").write(json.dumps(calls)))
sys.argv[0] = "mlexp"
from mlexp.cli import main

main()
"""


def counted_run(project: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    script, out = project / "counting_mlexp.py", project / "compositions.json"
    script.write_text(COUNTING)
    done = subprocess.run(
        [sys.executable, str(script), str(out), *args],
        cwd=project,
        env=cli_env(project),
        capture_output=True,
        text=True,
        timeout=600,
    )
    return done, json.loads(out.read_text())


def test_a_trial_composes_its_config_once(tmp_project_with_store: Path) -> None:
    # a fresh project: no marker of an earlier override check, so nothing is skipped by a cache
    done, calls = counted_run(tmp_project_with_store, "task=tabular_regression", *TINY)
    assert done.returncode == 0, done.stderr
    assert "trial done" in done.stdout
    assert calls == ["RunMode.RUN"], f"{len(calls)} compositions: {calls}"
    [trial] = trials_of(tmp_project_with_store)
    assert trial.status == "FINISHED"
    # as hydra.main records a run: its mode among the Hydra overrides, the job named after the command's module
    [run_dir] = [p.parent.parent for p in tmp_project_with_store.rglob(".hydra/hydra.yaml")]
    hydra_yaml = (run_dir / ".hydra" / "hydra.yaml").read_text()
    assert "- hydra.mode=RUN" in hydra_yaml
    assert "name: cli" in hydra_yaml
    assert (run_dir / "cli.log").exists()


def test_a_wrong_key_is_one_line_without_a_trial_from_one_composition(tmp_project: Path) -> None:
    done, calls = counted_run(tmp_project, "task=tabular_regression", "model.epoch=2")
    assert done.returncode == 2
    line = done.stderr.strip()
    assert line.startswith("mlexp: error: model.epoch is not a key of model; did you mean model.epochs?"), line
    assert len(line.splitlines()) == 1
    assert not (tmp_project / "mlflow.db").exists() or not trials_of_any(tmp_project)
    # the explanation starts from what the run's failed composition composed: it was composed again to read
    # hydra.mode, and again for the explanation's checks
    assert calls == ["RunMode.RUN"], f"{len(calls)} compositions: {calls}"


def test_a_value_in_place_of_a_section_is_still_refused(tmp_project: Path) -> None:
    # a key below a value: the check's one line, not Hydra's report
    done, _ = counted_run(tmp_project, "task=tabular_regression", "seed.x=1")
    assert done.returncode == 2
    assert "mlexp: error: seed.x: seed is a value, not a section" in done.stderr


def test_hydra_reports_what_it_cannot_compose_and_the_checks_do_not_explain(tmp_project: Path) -> None:
    # a sweep's values without -m: the checks' one line (exit status 2)
    done, calls = counted_run(tmp_project, "task=tabular_regression", "model.epochs=1,2")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "mlexp: error: model.epochs=1,2 gives several values, and a run takes one: to sweep them add -m"
    )
    # one composition without the swept values reads hydra.mode and serves the checks (were three)
    assert calls == ["RunMode.RUN"], f"{len(calls)} compositions: {calls}"
    # an option of Hydra's own groups that does not exist: Hydra's own report, as hydra.main prints it (exit status 1)
    done, _ = counted_run(tmp_project, "task=tabular_regression", "hydra/launcher=nope")
    assert done.returncode == 1
    assert "Could not find 'hydra/launcher/nope'" in done.stderr
    assert "mlexp: error" not in done.stderr


def trials_of_any(project: Path) -> list[object]:
    from conftest import store_client

    client = store_client(project)
    return [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]


def _sweep_master(conf_dir: Path, overrides: list[str]):
    """Hydra and the sweep's master config, as `mlexp -m <overrides>` composes them (cli_in_process.run_sweep)."""
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_config_search_path
    from hydra.types import RunMode

    from mlexp.config import make_composable

    make_composable()
    hydra = Hydra.create_main_hydra2("cli", create_config_search_path(str(conf_dir)))
    master = hydra.compose_config(
        "config", [*overrides, "hydra.mode=MULTIRUN"], run_mode=RunMode.MULTIRUN, with_log_configuration=False
    )
    return hydra, master


@pytest.fixture
def cache_cleared():
    """Hydra and the cache as they were: the test's compositions do not outlive it."""
    from hydra.core.global_hydra import GlobalHydra

    from mlexp.sweeps import compose_cache

    yield
    compose_cache._COMPOSED.clear()
    GlobalHydra.instance().clear()


def test_a_sweeps_jobs_that_differ_in_values_get_hydras_config_with_one_composition(
    tmp_project, monkeypatch, cache_cleared
):
    from hydra.errors import ConfigCompositionException
    from omegaconf import OmegaConf

    from mlexp.sweeps import compose_cache

    monkeypatch.chdir(tmp_project)
    base = ["task=tabular_regression", "sweep=random", "model.epochs=1"]
    hydra, master = _sweep_master(tmp_project / "conf", base)
    loader = hydra.config_loader
    cache = compose_cache.SweepConfigCache(loader)
    compositions = _counting_compositions(monkeypatch, "overrides")
    jobs = [
        [*base, "model.learning_rate=0.0123", "seed=3"],
        [*base, "model.learning_rate=0.0456", "seed=7"],
        [*base, "model.learning_rate=0.0789", "seed=11"],
        [*base, "tracking=server", "model.learning_rate=0.0123", "seed=3"],  # a group choice: a shape of its own
    ]
    cached = [cache.load_sweep_config(master, job) for job in jobs]
    assert len(compositions) == 2, compositions  # one per shape, not one per job
    for job, config in zip(jobs, cached, strict=True):
        expected = loader.load_sweep_config(master, job)
        assert OmegaConf.to_container(config) == OmegaConf.to_container(expected), job
    assert cached[1].model.learning_rate == 0.0456 and cached[1].seed == 7
    assert cached[1].hydra.job.override_dirname != cached[0].hydra.job.override_dirname
    assert cached[0].model.learning_rate == 0.0123  # the jobs' configs are copies, not one shared config
    # a wrong value fails as in Hydra's own composition
    with pytest.raises(ConfigCompositionException):
        cache.load_sweep_config(master, [*base, "model.learning_rate=fast", "seed=3"])


def test_a_group_only_some_jobs_choose_is_composed_as_a_group_and_a_second_sweep_composes_anew(
    tmp_project, monkeypatch, cache_cleared
):
    from omegaconf import OmegaConf

    from mlexp.sweeps import compose_cache

    monkeypatch.chdir(tmp_project)
    # the sweep's first config has no engine group: only anomaly_detection's jobs bring it in
    hydra, master = _sweep_master(tmp_project / "conf", ["task=tabular_regression", "sweep=random"])
    loader = hydra.config_loader
    cache = compose_cache.SweepConfigCache(loader)
    jobs = [["task=anomaly_detection", f"engine={engine}"] for engine in ("duckdb", "athena")]
    for job in jobs:
        config = cache.load_sweep_config(master, job)
        assert OmegaConf.to_container(config) == OmegaConf.to_container(loader.load_sweep_config(master, job))
    assert config.engine.name == "athena" and config.hydra.runtime.choices.engine == "athena"

    # conf/ edited between two sweeps of one process (mlexp.run in a notebook): the second sees the edit
    job = ["task=tabular_regression", "model.l1_size=8"]
    assert cache.load_sweep_config(master, job).model.l2_size == 16
    model = tmp_project / "conf" / "model" / "mlp_regressor.yaml"
    model.write_text(model.read_text().replace("l2_size: 16", "l2_size: 4"))
    assert compose_cache.SweepConfigCache(loader).load_sweep_config(master, job).model.l2_size == 4


def test_a_group_from_a_search_path_the_sweep_adds_is_composed_as_a_group(tmp_path, monkeypatch, cache_cleared):
    from omegaconf import OmegaConf

    from mlexp.sweeps import compose_cache

    conf, extra = tmp_path / "conf", tmp_path / "extra"
    files = {
        conf / "config.yaml": f"defaults:\n  - a: one\n  - _self_\nhydra:\n  searchpath:\n    - file://{extra}\n",
        conf / "a" / "one.yaml": "x: 1\n",
        conf / "a" / "two.yaml": "# @package _global_\ndefaults:\n  - /region: eu\nx: 2\n",
        extra / "region" / "eu.yaml": "city: paris\n",
        extra / "region" / "us.yaml": "city: nyc\n",
    }
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    monkeypatch.chdir(tmp_path)
    hydra, master = _sweep_master(conf, [])  # its first config chose a=one: no region group in it
    loader = hydra.config_loader
    cache = compose_cache.SweepConfigCache(loader)
    for region in ("eu", "us"):
        job = ["a=two", f"region={region}"]
        config = cache.load_sweep_config(master, job)
        assert OmegaConf.to_container(config) == OmegaConf.to_container(loader.load_sweep_config(master, job))
    assert config.region.city == "nyc"


def _counting_compositions(monkeypatch, detail: str) -> list:
    """Each composition this process's Hydra makes from now on, by the keyword argument `detail` it was given."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl

    compositions = []
    load = ConfigLoaderImpl.load_configuration

    def counted(self, *args, **kwargs):
        compositions.append(kwargs.get(detail))
        return load(self, *args, **kwargs)

    monkeypatch.setattr(ConfigLoaderImpl, "load_configuration", counted)
    return compositions


def test_a_trial_from_python_composes_its_config_once_on_a_new_project(tmp_project, monkeypatch):

    from mlexp.api import run

    compositions = _counting_compositions(monkeypatch, "run_mode")
    trial = run("tabular_regression", list(TINY), root=tmp_project)
    assert trial.status == "FINISHED"
    assert len(compositions) == 1, compositions  # was 2 on a new project: the key check's, then the run's


@pytest.mark.parametrize(
    "launcher", [[], ["sweep=grid", "sweep.max_parallel_jobs=1"], ["sweep=grid", "sweep.max_parallel_jobs=2"]]
)
def test_a_sweep_composes_once_per_shape_of_overrides_in_its_process(
    tmp_project_with_store: Path, launcher: list[str]
) -> None:
    # Hydra's basic sweeper composes every job to check the batch before the launcher runs it, and in this process
    # (Hydra's basic launcher, or mlexp's joblib launcher at one job) the launcher composes every job again: both
    # reuse the first job's composition (before: 11, 8 and 7 compositions)
    sweep = ["-m", "task=tabular_regression", *launcher, *TINY]
    done, calls = counted_run(tmp_project_with_store, *sweep, "model.l1_size=8,16,32,64")
    assert done.returncode == 0, done.stderr
    assert [t.status for t in trials_of(tmp_project_with_store)] == ["FINISHED"] * 4
    # the override-key check, the sweep's composition, the first job's; Hydra's own reading of hydra.mode (a
    # composition of its own) is skipped (mlexp.multirun)
    assert calls == ["RunMode.RUN", "RunMode.MULTIRUN", "RunMode.RUN"], calls


def test_a_sweep_records_what_hydra_main_records(tmp_project_with_store: Path) -> None:
    # `mlexp -m` runs Hydra's multirun itself (mlexp.multirun); an extra flag leaves the command to hydra.main
    sweep = ["-m", "task=tabular_regression", *TINY, "model.l1_size=8"]
    recorded = []
    for extra in ([], ["--config-name", "config"]):
        before = set(tmp_project_with_store.rglob("multirun/**/0/.hydra/hydra.yaml"))
        run_cli(tmp_project_with_store, *sweep, *extra)
        [path] = set(tmp_project_with_store.rglob("multirun/**/0/.hydra/hydra.yaml")) - before
        hydra = yaml.safe_load(path.read_text())["hydra"]
        for timed in ("run", "sweep"):  # folders named by the time the sweep started
            hydra.pop(timed)
        hydra["runtime"].pop("output_dir")
        recorded.append(hydra)
    assert recorded[0]["overrides"]["hydra"] == ["hydra.mode=MULTIRUN"]
    assert recorded[0]["job"]["name"] == "cli"
    assert recorded[0] == recorded[1]
