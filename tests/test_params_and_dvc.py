"""params.yaml stays compiled from conf/, DVC stages run what it says, `dvc repro` is reproducible."""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from dvc.utils.hydra import apply_overrides
from omegaconf import OmegaConf

from conftest import REPO, TINY, one_line_error, run_cli, seed_store, store_client, trials_of
from dvc_copy import copy_project, dvc
from mlexp import tasks
from mlexp.config import params
from mlexp.config.bounds import at_least
from mlexp.errors import ConfigError
from mlexp.experiment_analytics import analytics
from test_reused_stages import by_start, metrics_of

NOT_RECORDED = (
    "kept by DVC; no trial component in this store recorded the outputs dvc.lock records for it (made before "
    "tracking, or the store was reset)"
)


def test_params_yaml_is_in_sync_with_conf():
    fresh = params.render(params.compile_params(REPO / "conf", sorted(tasks.load_all())))
    assert (REPO / "params.yaml").read_text() == fresh, "params.yaml drifted from conf/: run `mlexp params`"


@pytest.fixture(scope="module")
def written_params(tmp_path_factory) -> str:
    """params.yaml as `mlexp params` writes it from the repository's conf/ (run once for the tests below)."""
    project = tmp_path_factory.mktemp("params") / "project"
    shutil.copytree(REPO / "conf", project / "conf")
    run_cli(project, "params")
    return (project / "params.yaml").read_text()


def test_params_check_command_detects_drift_and_names_the_key(tmp_project, written_params):
    (tmp_project / "params.yaml").write_text(written_params)
    assert run_cli(tmp_project, "params", "--check").returncode == 0
    (tmp_project / "conf" / "model" / "mlp_regressor.yaml").write_text(
        (tmp_project / "conf" / "model" / "mlp_regressor.yaml").read_text().replace("l1_size: 32", "l1_size: 33")
    )
    done = run_cli(tmp_project, "params", "--check", check=False)
    assert done.returncode == 1 and "out of date" in done.stderr
    assert "tabular_regression.model.l1_size" in done.stderr and "32" in done.stderr and "33" in done.stderr


def test_params_check_compares_values_not_formatting(tmp_project, written_params):
    (tmp_project / "params.yaml").write_text(written_params)
    path = tmp_project / "params.yaml"
    original = path.read_text()
    # what `dvc exp run -S` does to the file: DVC's own rewrite (ruamel style: `path:` for null, `1e-10`)
    apply_overrides(str(path), ["churn_incentives.optimizer.tolerance=1e-10", "tabular_regression.model.l1_size=32"])
    rewritten = path.read_text()
    assert "tolerance: 1e-10" in rewritten and rewritten != original
    assert run_cli(tmp_project, "params", "--check").returncode == 0

    # another YAML style altogether: flow mappings, sorted keys, no header
    # (values read as YAML 1.2 does, as DVC does: TLC's payment code `NO` is a string, not false)
    path.write_text(yaml.safe_dump(params.load(rewritten), default_flow_style=True, sort_keys=True, width=60))
    assert run_cli(tmp_project, "params", "--check").returncode == 0

    apply_overrides(str(path), ["tabular_regression.model.epochs=3"])
    done = run_cli(tmp_project, "params", "--check", check=False)
    assert done.returncode == 1 and "tabular_regression.model.epochs" in done.stderr
    # an experiment's value left in the workspace: git checkout goes back to the committed file, as the README says
    assert "`git checkout params.yaml` to drop the values `dvc exp run -S` left in the workspace" in done.stderr


def test_first_difference_names_the_first_differing_key():
    fresh = {"a": {"b": 1.0, "c": [1, 2], "d": True}}
    assert params.first_difference({"a": {"b": 1, "c": [1.0, 2.0], "d": True}}, fresh) is None
    assert "a.c" in (params.first_difference({"a": {"b": 1.0, "c": [1, 3], "d": True}}, fresh) or "")
    # a section written as a list or a number: named by its keys, not printed whole (a task section: 1,000s of chars)
    assert params.first_difference([1, 2], {"t": {"model": {"x": 1}}, "u": {}}) == (
        "the file differs (params.yaml: [1, 2], conf/: a mapping of 2 keys (t, u))"
    )
    three_keys = "a mapping of 3 keys (b, c, d)"
    assert params.first_difference({"a": 3}, fresh) == f"a differs (params.yaml: 3, conf/: {three_keys})"
    assert "a.d" in (params.first_difference({"a": {"b": 1.0, "c": [1, 2], "d": 1}}, fresh) or "")
    assert "a.d is missing" in (params.first_difference({"a": {"b": 1.0, "c": [1, 2]}}, fresh) or "")
    assert "a.e is not in conf/" in (params.first_difference({"a": {**fresh["a"], "e": 0}}, fresh) or "")


@pytest.mark.usefixtures("tmp_project_with_store")  # the store's first set-up is other tests' concern
def test_params_file_decides_what_the_stage_runs_with_and_cli_values_still_win(tmp_project, written_params):
    sections = yaml.safe_load(written_params)
    sections["tabular_regression"]["model"]["l1_size"] = 5
    sections["tabular_regression"]["model"]["epochs"] = 3
    (tmp_project / "params.yaml").write_text(yaml.safe_dump(sections))
    run_cli(tmp_project, "task=tabular_regression", "params_file=params.yaml", "dataset.n_rows=300", "model.epochs=1")
    [trial] = trials_of(tmp_project)
    assert trial.params["model.l1_size"] == "5"
    assert trial.params["model.epochs"] == "1"


def test_a_params_file_that_is_not_there_names_the_one_mlexp_params_writes(tmp_project, written_params):
    # was "params_file=.../params.yml does not exist; create it with `mlexp params`", which writes params.yaml
    (tmp_project / "params.yaml").write_text(written_params)
    message = one_line_error(tmp_project, "task=tabular_regression", "params_file=params.yml")
    assert (
        message
        == f"params_file={tmp_project / 'params.yml'} does not exist; did you mean {tmp_project / 'params.yaml'}?"
    )


@pytest.mark.usefixtures("tmp_project_with_store")
def test_a_params_file_edited_wrong_is_one_line_naming_the_key_and_the_stage_opens_no_trial(
    tmp_project, written_params
):
    path = tmp_project / "params.yaml"
    fix = "or regenerate the file with `mlexp params`"
    dvc = "(`dvc exp run -S tabular_regression.model.epochs=<value>`)"
    cases = {  # what `dvc exp run -S` (DVC's own rewrite) or a hand edit leaves
        ("tabular_regression.model.epochs=lots",): f"{path}: tabular_regression.model.epochs: Value 'lots' of type "
        f"'str' could not be converted to Integer; give it a value it accepts {dvc}, {fix}",
        ("+tabular_regression.model.l1_sise=8",): f"{path}: tabular_regression.model.l1_sise: Key 'l1_sise' not in "
        f"'MLPRegressor'; remove it, {fix}",
        ("tabular_regression.model.epochs=0",): f"{path}: tabular_regression.model.epochs=0 is out of range: it must "
        f"be at least 1; give it a value in that range {dvc}, {fix}",
        # every value at once, not the first of them: `dvc exp run -S` sets several
        (
            "tabular_regression.model.l1_size=wide",
            "tabular_regression.model.epochs=0",
            "tabular_regression.dataset.n_rows=-5",
        ): f"{path} holds 3 values its keys cannot take: tabular_regression.model.l1_size: Value 'wide' of type 'str' "
        "could not be converted to Integer (give it a value it accepts); tabular_regression.dataset.n_rows=-5 is out "
        "of range: it must be at least 2 (give it a value in that range); tabular_regression.model.epochs=0 is out of "
        "range: it must be at least 1 (give it a value in that range); fix them (`dvc exp run -S <key>=<value>` sets "
        f"a value), {fix}",
    }
    for edits, line in cases.items():
        path.write_text(written_params)
        apply_overrides(str(path), list(edits))
        done = run_cli(tmp_project, "task=tabular_regression", "stage=prepare", "params_file=params.yaml", check=False)
        assert done.returncode == 2
        assert done.stderr.strip().splitlines() == [f"mlexp: error: {line}"]
    # values each in range, wrong together (a rule across keys), one of them from the file: the file is named too
    path.write_text(written_params)
    apply_overrides(
        str(path), ["tabular_regression.dataset.n_rows=3", "tabular_regression.preprocessing.train_test_split=0.9"]
    )
    done = run_cli(tmp_project, "task=tabular_regression", "stage=prepare", "params_file=params.yaml", check=False)
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"mlexp: error: {path}: section tabular_regression: dataset.n_rows=3, ") and line.endswith(
        f"; {fix}"
    )
    path.write_text("tabular_regression:\n  model:\n    epochs: [1\n")
    broken = (  # the line that leaves [ open is named
        f"{path} is not valid YAML (expected ',' or ']', but got '<stream end>' at line 4, column 1; the [ opened at "
        "line 3)"
    )
    done = run_cli(tmp_project, "task=tabular_regression", "stage=prepare", "params_file=params.yaml", check=False)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"mlexp: error: {broken}; fix that line, {fix}"]
    done = run_cli(tmp_project, "params", "--check", check=False)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"params.yaml is out of date with conf/: {broken}; run `mlexp params` to regenerate it from conf/ (you "
        "changed conf/), or `git checkout params.yaml` to drop the values `dvc exp run -S` left in the workspace "
        "(conf/ is as you want it)"
    ]
    assert store_client(tmp_project).get_experiment_by_name("tabular_regression") is None  # no trial opened


@pytest.fixture
def repo_copy(tmp_path: Path, empty_store: Path) -> Path:
    """The project's tracked files in a fresh git repository, with tiny sizes in params.yaml (and its store)."""
    tiny = {"tabular_regression": {key: int(value) for key, value in (o.split("=") for o in TINY)}}
    repo = copy_project(tmp_path / "repo", tiny)
    seed_store(repo, empty_store)  # git-ignored, as a store is; its first set-up is not what this test is about
    return repo


@pytest.mark.slow
def test_dvc_repro_runs_the_pipeline_as_one_trial_then_nothing_and_later_runs_link_the_stages_dvc_kept(repo_copy):
    # one pipeline run for all of it: each `dvc exp run` costs seconds of DVC's own, each stage an interpreter
    pipeline = "pipelines/tabular_regression/dvc.yaml"  # each task's tests cover its own pipeline
    first = dvc(repo_copy, "repro", pipeline)
    for stage in ("abalone_raw", "prepare", "train", "evaluate"):
        assert "Running stage" in first.stdout and stage in first.stdout
    [trial] = trials_of(repo_copy)
    assert trial.status == "FINISHED"
    assert trial.component_names == {"Pre-processing", "Training", "Evaluation"}
    assert trial.params["model.epochs"] == "2"
    assert (repo_copy / "reports" / "tabular_regression" / "metrics.json").exists()
    assert "tabular_regression" in dvc(repo_copy, "metrics", "show").stdout

    second = dvc(repo_copy, "repro", pipeline)
    assert "Running stage" not in second.stdout
    assert "up to date" in second.stdout
    assert len(trials_of(repo_copy)) == 1

    # an edit to the network module changes exactly the stages whose code reaches it: not prepare
    network = repo_copy / "src" / "mlexp" / "tasks" / "tabular_regression" / "network.py"
    original = network.read_text()
    network.write_text(original + "\n# an edit\n")
    status = yaml.safe_load(dvc(repo_copy, "status", "--json", pipeline).stdout)
    assert set(status) == {f"{pipeline}:train", f"{pipeline}:evaluate"}
    network.write_text(original)
    assert yaml.safe_load(dvc(repo_copy, "status", "--json", pipeline).stdout) == {}

    # a changed model parameter reruns train and evaluate only, as a new trial, which links the kept pre-processing
    # to the component that made its outputs, with that component's metrics, so it compares with full trials
    dvc(repo_copy, "exp", "run", "-S", "tabular_regression.model.l1_size=4", pipeline)
    full, partial = by_start(repo_copy, "tabular_regression")
    assert full.run_id == trial.run_id
    assert partial.params["model.l1_size"] == "4"
    assert partial.component_names == {"Training", "Evaluation"}  # evaluate continued the trial train opened
    assert partial.params["dataset.path"] == "data/raw/abalone.data"
    assert partial.tags["mlexp.shared_component.prepare"] == full.components["Pre-processing"]
    assert partial.tags["mlexp.reused.prepare"].startswith("kept by DVC: the outputs of Pre-processing")
    kept = metrics_of(repo_copy, full.components["Pre-processing"])
    assert {"rows_train", "rows_test"} <= set(kept)
    assert {name: partial.metrics[name] for name in kept} == pytest.approx(kept)
    assert partial.metrics["test_msle"] > 0
    assert partial.metrics["test_msle"] != pytest.approx(full.metrics["test_msle"])  # its own, not copied
    # as SageMaker's ExperimentAnalytics lists a shared component: once, with every trial that uses it
    frame = analytics("tabular_regression", components=True, tracking_uri=f"sqlite:///{repo_copy / 'mlflow.db'}")
    [trials] = frame.loc[frame["DisplayName"] == "Pre-processing", "Trials"].tolist()
    assert sorted(trials) == sorted([full.name, partial.name])

    # the last stage re-run alone: the two stages before it are kept, made by two different trials, and the metrics
    # file keeps the headline metric of the stage DVC kept (train's final_train_loss)
    dvc(repo_copy, "repro", "--force", "--single-item", f"{pipeline}:evaluate")
    alone = by_start(repo_copy, "tabular_regression")[-1]
    assert alone.component_names == {"Evaluation"}
    assert alone.tags["mlexp.shared_component.prepare"] == full.components["Pre-processing"]
    assert alone.tags["mlexp.shared_component.train"] == partial.components["Training"]
    assert alone.metrics["final_train_loss"] == pytest.approx(partial.metrics["final_train_loss"])
    metrics = json.loads((repo_copy / "reports" / "tabular_regression" / "metrics.json").read_text())
    assert set(metrics) == {"test_msle", "test_mae", "final_train_loss"}
    assert metrics["final_train_loss"] == pytest.approx(partial.metrics["final_train_loss"])

    # a plain run with overrides writes only its own run folder: DVC's outputs stay as recorded
    run_cli(repo_copy, "task=tabular_regression", *TINY, "model.l1_size=4", "preprocessing.train_test_split=0.7")
    assert yaml.safe_load(dvc(repo_copy, "status", "--json", pipeline).stdout) == {}
    assert len(trials_of(repo_copy)) == 4

    # an experiment in a temporary copy (`--temp`, as queued ones run) records into the workspace's store, which
    # outlives the copy, and links the stages DVC kept to their components there; an exported $MLEXP_ROOT naming
    # the workspace does not make the copy's stages read the workspace's params.yaml and write its outputs
    temporary = dvc(
        repo_copy,
        *("exp", "run", "--temp", "-n", "wider", "-S", "tabular_regression.model.l1_size=5", pipeline),
        exported_root=repo_copy,
    )
    assert (
        "(reports: in DVC experiment wider; `dvc exp apply wider` brings them into the workspace)" in temporary.stdout
    )
    [copied] = [t for t in trials_of(repo_copy) if t.params["model.l1_size"] == "5"]
    assert copied.status == "FINISHED" and copied.component_names == {"Training", "Evaluation"}
    assert copied.tags["mlexp.shared_component.prepare"] == trial.components["Pre-processing"]

    # a queued one runs the same way, in DVC's queue worker, as the README starts it (`dvc queue start` returns and
    # the worker goes on); the records of the kept pre-processing are gone from the store first (its outputs stay):
    # the stage is named as kept, and nothing is made up for it
    client = store_client(repo_copy)
    for run_id in [*full.components.values(), full.run_id]:
        client.delete_run(run_id)
    dvc(repo_copy, "exp", "run", "--queue", "-n", "queued", "-S", "tabular_regression.model.l1_size=6", pipeline)
    dvc(repo_copy, "queue", "start")  # returns at once; the experiment runs after it
    copies = repo_copy / ".dvc" / "tmp" / "exps"
    try:
        deadline = time.monotonic() + 300
        # the store is read (milliseconds), not `dvc queue status` (a DVC start-up per look). A trial of DVC stages is
        # not running between its stages: it is over once its last stage ran, or it failed, or the worker ended
        while not _queue_worker_ended(repo_copy) and not [
            t
            for t in trials_of(repo_copy)
            if t.params.get("model.l1_size") == "6"
            and (t.status in ("FAILED", "KILLED") or ("Evaluation" in t.component_names and t.status != "RUNNING"))
        ]:
            # looked into while the experiment's temporary copy exists (the worker deletes it after the run)
            assert not [folder for folder, _, files in os.walk(copies) if "mlflow.db" in files]
            assert time.monotonic() < deadline, dvc(repo_copy, "queue", "logs", "queued", check=False).stdout
            time.sleep(1)
    finally:
        # a warm stop: the worker still commits the experiment and deletes its copy, then exits on its own
        dvc(repo_copy, "queue", "stop", check=False)
    [queued] = [t for t in trials_of(repo_copy) if t.params["model.l1_size"] == "6"]
    assert queued.status == "FINISHED", dvc(repo_copy, "queue", "logs", "queued", check=False).stdout
    assert queued.component_names == {"Training", "Evaluation"}
    assert "mlexp.shared_component.prepare" not in queued.tags
    assert queued.tags["mlexp.reused.prepare"] == NOT_RECORDED
    assert not {"rows_train", "rows_test"} & set(queued.metrics)
    assert queued.params["dataset.path"] == "data/raw/abalone.data"


def _queue_worker_ended(repo: Path) -> bool:
    """Whether DVC's queue worker exited: dvc-task records its exit code in the worker's info file, once it has one."""
    info = repo / ".dvc" / "tmp" / "exps" / "celery" / "dvc-exp-worker-1.json"
    try:
        return json.loads(info.read_text())["returncode"] is not None
    except (OSError, ValueError, KeyError):
        return False


def test_a_params_file_value_out_of_range_is_refused_unless_the_command_line_replaces_it(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("regression:\n  model:\n    epochs: 0\n")
    config = OmegaConf.create({"task": {"name": "regression"}, "model": {"epochs": 5}})
    bounds = {"model.epochs": at_least(1)}
    with pytest.raises(ConfigError, match=r"params.yaml: regression.model.epochs=0 is out of range"):
        params.apply_params_file(config, path, [], bounds)
    assert params.apply_params_file(config, path, ["model.epochs=2"], bounds).model.epochs == 2
    # an item of a list the command line gives is the command line's (the runner names it), not the file's
    path.write_text("regression:\n  model:\n    epochs: 2\n    sizes: [1, 1]\n")
    config = OmegaConf.create({"task": {"name": "regression"}, "model": {"epochs": 5, "sizes": [1, 1]}})
    given = params.apply_params_file(config, path, ["model.sizes=[0,1]"], {"model.sizes.0": at_least(1)})
    assert list(given.model.sizes) == [0, 1]
    # an empty list breaks the bounds of both its items: said once, as the one problem it is
    path.write_text("regression:\n  model:\n    sizes: []\n")
    both = {"model.sizes.0": at_least(1), "model.sizes.1": at_least(1)}
    with pytest.raises(ConfigError) as refused:
        params.apply_params_file(config, path, [], both)
    assert str(refused.value) == (
        f"{path}: regression.model.sizes=[] has no items; it takes 2, each at least 1; give it a value in that "
        "range (`dvc exp run -S regression.model.sizes=<value>`), or regenerate the file with `mlexp params`"
    )


@dataclass
class _Dataset:
    path: str | None = None
    n_rows: int | None = None


def test_a_params_file_value_in_place_of_a_section_names_the_sections_keys(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("regression:\n  dataset: 5\n")
    config = OmegaConf.create(
        {"task": {"name": "regression"}, "dataset": OmegaConf.structured(_Dataset), "levels": {"clean": {}}}
    )
    with pytest.raises(ConfigError) as refused:
        params.apply_params_file(config, path, [])
    assert str(refused.value) == (
        f"{path}: regression.dataset: 5 given where the config has a section of settings (path, n_rows); set its "
        "keys (`dvc exp run -S regression.dataset.path=<value>`), or regenerate the file with `mlexp params`"
    )
    path.write_text("regression:\n  dataset:\n    n_rows: 7\n")
    assert params.apply_params_file(config, path, []).dataset.n_rows == 7
    # a free-form mapping's entries are its own rules' to judge (document_extraction's degradation levels, `{}`
    # among them), as a command-line value over a section is the runner's
    path.write_text("regression:\n  levels:\n    clean: 5\n")
    assert params.apply_params_file(config, path, []).levels.clean == 5
    path.write_text("regression:\n  dataset:\n    n_rows: 7\n")
    assert params.apply_params_file(config, path, ["dataset=5"]).dataset == 5


@pytest.mark.parametrize("task", sorted(p.stem for p in (REPO / "conf" / "task").glob("*.yaml")))
def test_every_tasks_stages_read_the_generated_params_file_back_unchanged(task):
    # what each `dvc repro` stage does first (params_file=params.yaml): the file conf/ generated gives the config
    # conf/ composes (anomaly_detection's typed value_codes failed to merge: its stages could not run)
    from hydra import compose, initialize_config_dir

    from mlexp.config import make_composable

    make_composable()  # the schemas conf/ names
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        composed = compose("config", overrides=[f"task={task}"])
    read_back = params.apply_params_file(composed, REPO / "params.yaml", [], tasks.get(task).bounds)
    assert OmegaConf.to_container(read_back) == OmegaConf.to_container(composed)


def test_a_params_file_section_merges_as_omegaconf_merge_does(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("t:\n  model:\n    codes: {}\n    extra: {x: 1}\n    nested: {b: 3}\n    dotted: {comp.: 2}\n")
    config = OmegaConf.create(
        {"task": {"name": "t"}, "model": {"codes": {"a": 1}, "extra": None, "nested": {"a": 1}, "dotted": {}}}
    )
    merged = params.apply_params_file(config, path, [])
    assert OmegaConf.to_container(merged.model) == OmegaConf.to_container(
        OmegaConf.merge(config, {"model": {"codes": {}, "extra": {"x": 1}, "nested": {"b": 3}, "dotted": {"comp.": 2}}})
    ).get("model")
    assert OmegaConf.to_container(merged.model) == {
        "codes": {"a": 1},  # an empty mapping changes nothing
        "extra": {"x": 1},  # a mapping over null
        "nested": {"a": 1, "b": 3},
        "dotted": {"comp.": 2},  # a key with a dot is a key, not a path
    }


def test_a_params_file_that_is_a_folder_or_not_utf8_is_one_line(tmp_path):
    # an IsADirectoryError or UnicodeDecodeError traceback (and `mlexp params --check` crashed on the second)
    config = OmegaConf.create({"task": {"name": "regression"}, "model": {"epochs": 5}})
    with pytest.raises(ConfigError) as folder:
        params.apply_params_file(config, tmp_path, [], {})
    assert str(folder.value) == (
        f"{tmp_path} is a folder, not a params file; name the file (params_file={tmp_path / 'params.yaml'}), or "
        "regenerate the file with `mlexp params`"
    )
    utf16 = tmp_path / "params.yaml"
    utf16.write_text("regression:\n  model:\n    epochs: 2\n", encoding="utf-16")
    with pytest.raises(ConfigError) as encoded:
        params.apply_params_file(config, utf16, [], {})
    assert str(encoded.value) == (
        f"{utf16} is not UTF-8 text (byte 0: invalid start byte); save it as UTF-8, or regenerate the file with "
        "`mlexp params`"
    )
    assert params.check(utf16, {}) == f"{utf16} is not UTF-8 text (byte 0: invalid start byte)"


def test_a_params_file_is_parsed_by_libyaml_to_the_same_values(monkeypatch):
    # a DVC stage reads params.yaml twice (its checks before the tracking writer starts, then its job): 30 ms each in
    # PyYAML's pure-Python parser, 4 in libyaml, which the pinned PyYAML wheel ships (benchmarks time it, not this)
    assert yaml.__with_libyaml__
    parsed_by: list[type] = []
    pure_load = yaml.load

    def recorded_load(stream, Loader):  # noqa: N803 (PyYAML's own keyword)
        parsed_by.append(Loader)
        return pure_load(stream, Loader=Loader)

    monkeypatch.setattr(params.yaml, "load", recorded_load)
    text = (REPO / "params.yaml").read_text(encoding="utf-8")
    assert params.load(text) == pure_load(text, Loader=params._Loader)
    # YAML 1.2's scalars, as DVC writes them: TLC's payment code `NO` a string, `1e-10` a number
    assert params.load("code: NO\nrate: 1e-10\n") == {"code": "NO", "rate": 1e-10}
    assert params.load("rate:\t0.1\n") == {"rate": 0.1}  # a tab a hand edit left: libyaml reads it, PyYAML did not
    assert parsed_by and all(issubclass(loader, yaml.CSafeLoader) for loader in parsed_by)


@pytest.mark.parametrize(
    ("task", "given", "value"),
    [
        # params_file= put the command line's values back re-read as YAML 1.1 text, which changed these:
        ("tabular_regression", "tracking.experiment_name=${task.name}-x", "tabular_regression-x"),  # escaped: text
        ("tabular_regression", "model.l1_size=${model.l2_size}", 16),  # refused: that escaped text is not a number
        ("tabular_regression", "tracking.experiment_name=NO", "NO"),  # false, stored as the text 'False'
        ("tabular_regression", "++note=str(3)", "3"),  # the number 3
        ("tabular_regression", "+note={sigma: 2}", {"sigma": 2}),  # a key more, "sigma:2" (written back as {sigma:2})
        ("text_classification", "model.word_ngrams.0=2", 2),  # refused: a mapping {"0": 2} over the list
        # and these it kept
        ("tabular_regression", "++seed=7", 7),
        ("anomaly_detection", "model.enabled=[too_long,duration_iqr]", ["too_long", "duration_iqr"]),
        ("anomaly_detection", "+model.rules.fast='trip_distance > 50'", "trip_distance > 50"),
    ],
)
def test_a_command_line_value_over_a_params_file_is_the_value_it_is_without_one(tmp_path, task, given, value):
    from hydra import compose, initialize_config_dir

    from mlexp.cli import _with_params_file
    from mlexp.config import make_composable

    make_composable()
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")  # conf/'s values: the config ends as conf/ composes it
    overrides = [f"task={task}", given]
    staged = [*overrides, f"params_file={tmp_path / 'params.yaml'}"]
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        plain = compose("config", overrides=overrides)
        composed = compose("config", overrides=staged, return_hydra_config=True)
    choices = dict(composed.hydra.runtime.choices)  # the group choices, which are no values
    read_back = _with_params_file(composed, choices, staged)  # what the stage's job runs with
    assert OmegaConf.select(read_back, given.lstrip("+").split("=")[0]) == value
    without_file, with_file = OmegaConf.to_container(plain), OmegaConf.to_container(read_back)
    assert isinstance(without_file, dict) and isinstance(with_file, dict)
    del with_file["hydra"], with_file["params_file"], without_file["params_file"]
    assert with_file == without_file


@pytest.mark.usefixtures("tmp_project_with_store")  # the store's first set-up is other tests' concern
def test_a_stage_records_the_command_lines_values_unchanged_by_its_params_file(tmp_project):
    # its trial went to an experiment named `${task.name}-x`, with note=False
    shutil.copy(REPO / "params.yaml", tmp_project / "params.yaml")
    stage = ("task=tabular_regression", "stage=prepare", "dataset.n_rows=300", "params_file=params.yaml")
    run_cli(tmp_project, *stage, "tracking.experiment_name=${task.name}-x", "++note=NO")
    [trial] = trials_of(tmp_project, experiment="tabular_regression-x")
    assert (trial.params["note"], trial.tags["mlexp.params_file"]) == ("NO", "params.yaml")
