"""A task from a package outside mlexp: one package plus its conf files, found through the `mlexp.tasks` entry point."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from textwrap import dedent

import pytest

from conftest import cli_env, run_cli, seed_store, trials_of

PACKAGE = {
    "__init__.py": '''
        """Task `toy`: a throw-away task registered from outside mlexp."""

        from mlexp.tasks import Task, register
        from toy_task import config  # noqa: F401  (registers the schemas)

        TASK = register(Task("toy", "toy_task.stages", ("prepare", "count", "score"), {"count": "Counting"}))
    ''',
    "config.py": '''
        """Schemas of the toy task's options, and `counter`, a config group of its own."""

        from dataclasses import dataclass

        from hydra.core.config_store import ConfigStore

        from mlexp.config import declare_group


        @dataclass
        class ToyRows:
            n_rows: int = 10


        @dataclass
        class ToyScale:
            scale: float = 1.0


        @dataclass
        class ToyOffset:
            offset: float = 0.5


        @dataclass
        class Counter:
            step: int = 1


        store = ConfigStore.instance()
        store.store(group="schema/dataset", name="toy_rows", node=ToyRows)
        store.store(group="schema/preprocessing", name="toy_scale", node=ToyScale)
        store.store(group="schema/model", name="toy_offset", node=ToyOffset)
        declare_group("toy", "counter", {"plain": Counter})
    ''',
    "stages.py": '''
        """prepare → count → score: each a plain function of (cfg, tracker)."""

        import json
        from pathlib import Path


        def prepare(cfg, tracker):
            rows = [i * cfg.preprocessing.scale for i in range(0, cfg.dataset.n_rows, cfg.counter.step)]
            Path(cfg.paths.data).mkdir(parents=True, exist_ok=True)
            (Path(cfg.paths.data) / "rows.json").write_text(json.dumps(rows))
            tracker.log_metric("rows", len(rows))


        def count(cfg, tracker):
            rows = json.loads((Path(cfg.paths.data) / "rows.json").read_text())
            Path(cfg.paths.models).mkdir(parents=True, exist_ok=True)
            (Path(cfg.paths.models) / "mean.json").write_text(json.dumps(sum(rows) / len(rows) + cfg.model.offset))


        def score(cfg, tracker):
            mean = json.loads((Path(cfg.paths.models) / "mean.json").read_text())
            tracker.log_metric("toy_error", abs(mean - 4.0))
    ''',
}

CONF = {
    "task/toy.yaml": """
        # @package _global_
        defaults:
          - /counter: plain
          - override /dataset: toy_rows
          - override /preprocessing: toy_scale
          - override /model: toy_offset

        task:
          name: toy
          description: A throw-away task from a plugin package
          objective:
            metric: toy_error
            direction: minimize
          headline_metrics: [toy_error, rows]
          choices:
            dataset: [toy_rows]
            preprocessing: [toy_scale]
            model: [toy_offset]
            counter: [plain]
    """,
    "dataset/toy_rows.yaml": "defaults:\n  - /schema/dataset/toy_rows@_here_\n  - _self_\n\nn_rows: 10\n",
    "preprocessing/toy_scale.yaml": "defaults:\n  - /schema/preprocessing/toy_scale@_here_\n  - _self_\n\nscale: 1.0\n",
    "model/toy_offset.yaml": "defaults:\n  - /schema/model/toy_offset@_here_\n  - _self_\n\noffset: 0.5\n",
    "counter/plain.yaml": "defaults:\n  - /schema/counter/plain@_here_\n  - _self_\n\nstep: 1\n",
}


# the slip a newcomer made: an __init__.py that never imports config.py, so none of the toy's schemas is stored
WITHOUT_CONFIG_IMPORT = {
    **PACKAGE,
    "__init__.py": PACKAGE["__init__.py"].replace(
        "from toy_task import config  # noqa: F401  (registers the schemas)", ""
    ),
}


@pytest.fixture
def toy_project(tmp_project: Path, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """The temp project with the toy task's conf files, and an environment that has its package installed."""
    return with_toy_task(tmp_project, tmp_path, PACKAGE)


def with_toy_task(tmp_project: Path, tmp_path: Path, package: dict[str, str]) -> tuple[Path, dict[str, str]]:
    plugins = tmp_path / "plugins"
    (plugins / "toy_task").mkdir(parents=True)
    for name, text in package.items():
        (plugins / "toy_task" / name).write_text(dedent(text).lstrip())
    # what `pip install` of a package declaring the entry point leaves on sys.path
    dist_info = plugins / "toy_task-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-task\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text("[mlexp.tasks]\ntoy = toy_task\n")
    for name, text in CONF.items():
        (tmp_project / "conf" / name).parent.mkdir(exist_ok=True)
        (tmp_project / "conf" / name).write_text(dedent(text).lstrip())
    env = cli_env(tmp_project)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(plugins), env.get("PYTHONPATH")]))
    return tmp_project, env


def test_a_task_from_an_installed_package_runs_end_to_end(toy_project):
    project, env = toy_project
    run_cli(project, "task=toy", "model.offset=0.25", "counter.step=2", env=env)
    (trial,) = trials_of(project, experiment="toy")
    assert trial.status == "FINISHED"
    assert trial.component_names == {"Pre-processing", "Counting", "Score"}
    # rows 0, 2, 4, 6, 8: mean 4 + offset 0.25
    assert trial.metrics["toy_error"] == pytest.approx(0.25)
    assert trial.metrics["rows"] == 5
    assert trial.params["counter.step"] == "2"


def test_help_lists_the_plugin_task_with_its_own_stages_and_group(toy_project):
    project, env = toy_project
    out = run_cli(project, "--help", env=env).stdout
    assert "  toy                    prepare → count → score" in out.splitlines()
    assert "A throw-away task from a plugin package" in out
    assert "counter: plain   (task toy only)" in out


def test_the_plugin_group_is_refused_for_another_task(toy_project):
    project, env = toy_project
    done = run_cli(project, "task=tabular_regression", "counter=plain", check=False, env=env)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "mlexp: error: task 'tabular_regression' has no counter group (counter belongs to task toy); "
        "remove counter=plain"
    )


def test_a_task_package_that_does_not_import_its_config_module_is_one_line_naming_the_missing_schema(
    tmp_project, tmp_path, empty_store
):
    assert WITHOUT_CONFIG_IMPORT["__init__.py"] != PACKAGE["__init__.py"]
    project, env = with_toy_task(tmp_project, tmp_path, WITHOUT_CONFIG_IMPORT)
    missing = (
        "conf/counter/plain.yaml asks for the schema schema/counter/plain, which no loaded code stores: store it in "
        'the task\'s config.py with mlexp.config.declare_group("toy", "counter", {"plain": <its '
        "dataclass>}), and import that module in the __init__.py of toy_task (`from toy_task import config`)"
    )
    tuning_job = ["-m", "task=toy", "compute=sagemaker"]  # composed by the tuning job's own Hydra
    for command, prefix in ((["task=toy"], "mlexp"), (["params"], "mlexp params"), (tuning_job, "mlexp")):
        done = run_cli(project, *command, check=False, env=env)
        assert (done.returncode, done.stderr.strip()) == (2, f"{prefix}: error: {missing}"), done.stderr
    # the Python API raises the same line (it raised Hydra's "In 'counter/plain': Could not load ...")
    api = "import mlexp\ntry:\n    mlexp.run('toy')\nexcept mlexp.ConfigError as error:\n    print(error)\n"
    done = subprocess.run(
        [sys.executable, "-c", api], cwd=project, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.stdout.strip() == missing, done.stdout + done.stderr
    assert not (project / "params.yaml").exists()
    assert not (project / "mlflow.db").exists()
    # compare composes the task's config once it has found the store (a traceback ending in Hydra's block)
    seed_store(project, empty_store)
    done = run_cli(project, "compare", "task=toy", check=False, env=env)
    assert (done.returncode, done.stderr.strip()) == (2, f"mlexp compare: error: {missing}"), done.stderr


def test_compare_of_an_experiment_or_a_sweep_names_the_task_whose_config_module_is_not_imported(toy_project, tmp_path):
    # only `compare task=toy` named the task: experiment= and sweep= said declare_group("<task>", ...)
    project, env = toy_project
    run_cli(project, "-m", "task=toy", "model.offset=0.25", "sweep.name=offsets", env=env)
    init = tmp_path / "plugins" / "toy_task" / "__init__.py"
    init.write_text(dedent(WITHOUT_CONFIG_IMPORT["__init__.py"]).lstrip())
    (sweep,) = {t.tags["mlexp.sweep_name"] for t in trials_of(project, experiment="toy")}
    missing = (
        "conf/counter/plain.yaml asks for the schema schema/counter/plain, which no loaded code stores: store it in "
        'the task\'s config.py with mlexp.config.declare_group("toy", "counter", {"plain": <its '
        "dataclass>}), and import that module in the __init__.py of toy_task (`from toy_task import config`)"
    )
    for scope in ("experiment=toy", f"sweep={sweep}"):
        done = run_cli(project, "compare", scope, check=False, env=env)
        assert (done.returncode, done.stderr.strip()) == (2, f"mlexp compare: error: {missing}"), done.stderr
