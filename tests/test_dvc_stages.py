"""dvc.yaml files generated from the tasks' stage declarations: no drift, code deps found in the code, the task's
order, every stage reached by `dvc repro`, and no stale committed lock."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from conftest import REPO, run_cli
from dvc_copy import copy_project, dvc, fake_outputs, git
from mlexp import dvc_lock, dvc_stages, stage_code, tasks

TABULAR = "pipelines/tabular_regression/dvc.yaml"


def _stages(task: str, module: str) -> set[str]:
    return {str(p) for p in stage_code.stage_files(f"mlexp.tasks.{task}.stages", module, (), REPO)}


def test_committed_dvc_yaml_files_equal_a_fresh_generation():
    generated = dvc_stages.writer(REPO).files()
    assert set(generated) == {Path("dvc.yaml"), *(Path(f"pipelines/{t}/dvc.yaml") for t in tasks.load_all())}
    for path, text in generated.items():
        assert (REPO / path).read_text() == text, f"{path} drifted from the stage declarations: run `mlexp pipelines`"
    assert dvc_stages.drift(REPO, generated) == []


def test_summary_refuses_a_folder_as_its_output(tmp_project):
    folder = tmp_project / "conf"
    done = run_cli(tmp_project, "summary", str(folder), check=False)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"mlexp summary: error: {folder} is a folder; give the path of the file to write, e.g. {folder / 'summary.md'}"
    )


def test_summary_that_cannot_be_written_is_one_line_and_leaves_no_partial_file(tmp_project):
    blocker = tmp_project / "not_a_folder"
    blocker.write_text("a file where the summary's folder would go\n")
    done = run_cli(tmp_project, "summary", str(blocker / "summary.md"), check=False)
    assert done.returncode == 2
    assert done.stderr.strip().startswith(f"mlexp summary: error: cannot write {blocker / 'summary.md'} (")
    assert len(done.stderr.strip().splitlines()) == 1
    assert list(tmp_project.rglob("*.partial")) == []


def test_summary_names_a_broken_metrics_file_and_the_stage_that_writes_it(tmp_project):
    metrics = tmp_project / "reports" / "tabular_regression" / "metrics.json"
    metrics.parent.mkdir(parents=True)
    metrics.write_text("{bad\n")
    done = run_cli(tmp_project, "summary", check=False)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"mlexp summary: error: {metrics} is not valid JSON (Expecting property name enclosed in double quotes: "
        f"line 1 column 2 (char 1)); run the stage that writes it again: dvc repro --force --single-item "
        f"{TABULAR}:evaluate"
    )
    assert not (tmp_project / "reports" / "summary.md").exists()


def test_committed_locks_are_not_stale():
    assert dvc_lock.stale_entries(REPO) == [], "a committed dvc.lock records other code or values than the repository"


def test_stage_code_is_read_per_stage_function():
    prepare, train, evaluate = (_stages("tabular_regression", s) for s in ("prepare", "train", "evaluate"))
    network = "src/mlexp/tasks/tabular_regression/network.py"
    # prepare holds a local variable `train`: not a call of the train stage, so no network code
    assert network not in prepare and network in train and network in evaluate
    assert "src/mlexp/data/abalone.py" in prepare and "src/mlexp/charts.py" in evaluate - train
    assert all("src/mlexp/tasks/tabular_regression/stages.py" in s for s in (prepare, train, evaluate))
    # a module imported inside the stage function, and one imported by an imported module
    assert "src/mlexp/tasks/object_detection/families.py" in _stages("object_detection", "train")
    assert "src/mlexp/tasks/churn_incentives/gekko_solver.py" in _stages("churn_incentives", "incentives")
    # the framework (tracking, errors, paths) is not a stage's code
    assert not any(re.search(r"mlexp/(tracking|errors|paths)", f) for f in prepare | train | evaluate)


def test_declared_outputs_follow_the_composed_config(tmp_path):
    task = tasks.get("tabular_regression")
    folders = {name: str(tmp_path / "run" / name) for name in ("data", "models", "reports")}
    cfg = OmegaConf.create({"paths": {"root": str(tmp_path), **folders}})
    assert tasks.declared_outputs(task, "prepare", cfg) == [tmp_path / "run" / "data"]
    assert tasks.declared_inputs(task, "prepare", cfg) == [tmp_path / "data" / "raw" / "abalone.data"]
    assert tmp_path / "run" / "reports" / "metrics.json" in tasks.declared_outputs(task, "evaluate", cfg)
    assert tasks.declared_inputs(task, "evaluate", cfg) == [tmp_path / "run" / "data", tmp_path / "run" / "models"]


def test_each_stage_lists_only_the_params_it_reads():
    churn = yaml.safe_load((REPO / "pipelines/churn_incentives/dvc.yaml").read_text())["stages"]
    # evaluate draws its confusion matrix at the threshold and at the cost-optimal cutoff: the costs, not the budget
    reads = (
        "decision_threshold",
        "nthread",
        *(f"incentives.{k}" for k in ("cost_fn", "value_tn", "incentive", "n_cutoffs")),
    )
    assert churn["evaluate"]["params"] == [f"churn_incentives.model.{k}" for k in reads]
    assert "churn_incentives.model.incentives" not in churn["train"]["params"]
    for dvc_file in REPO.glob("pipelines/*/dvc.yaml"):
        for stage in yaml.safe_load(dvc_file.read_text())["stages"].values():
            # never a section about the machine or the launch, never the whole model of a task that splits it
            assert not {p.split(".", 1)[1] for p in stage.get("params", [])} & {"compute", "deploy", "tracking"}


def test_plain_repro_reaches_every_stage_and_a_pipeline_runs_in_the_tasks_order(tmp_path):
    copy = copy_project(tmp_path / "repo")
    fake_outputs(copy)  # DVC plans a dry run only when every dependency exists
    planned = re.findall(r"Running stage '([^']+)'", dvc(copy, "repro", "--dry").stdout)
    expected = {
        f"pipelines/{name}/dvc.yaml:{spec.name}" for name, task in tasks.load_all().items()
        for spec in dvc_stages.dvc_specs(task)
    }  # fmt: skip
    assert expected <= set(planned), f"not run by a plain `dvc repro`: {expected - set(planned)}"
    assert planned[-1] == "summary"

    churn = "pipelines/churn_incentives/dvc.yaml"
    targeted = re.findall(r"Running stage '([^']+)'", dvc(copy, "repro", "--dry", churn).stdout)
    assert targeted == ["churn_raw", *(f"{churn}:{s}" for s in ("prepare", "train", "evaluate", "incentives"))]


def test_pipelines_check_reports_drift_and_pipelines_rewrites_the_file_then_a_stale_lock_fails_the_check(tmp_path):
    # one copy (a git repository of the whole project) for both halves: once `mlexp pipelines` has regenerated its
    # dvc.yaml it passes the check as a fresh copy does, and the lock committed next goes stale as in any project
    copy = copy_project(tmp_path / "repo")
    assert run_cli(copy, "pipelines", "--check").returncode == 0  # a fresh copy is in sync
    # a stage's code starts using a module: its generated deps must change
    features = copy / "src/mlexp/tasks/tabular_regression/features.py"
    features.write_text(features.read_text() + "\nfrom mlexp.charts import save_figure  # noqa: E402, F401\n")
    done = run_cli(copy, "pipelines", "--check", check=False)
    assert done.returncode == 1 and f"{TABULAR} is out of date" in done.stderr
    assert "pipelines/churn_incentives" not in done.stderr

    assert TABULAR in run_cli(copy, "pipelines").stdout
    prepare = yaml.safe_load((copy / TABULAR).read_text())["stages"]["prepare"]
    assert "src/mlexp/charts.py" in prepare["deps"]
    assert run_cli(copy, "pipelines", "--check").returncode == 0

    # the lock committed as a `dvc repro` records it goes stale when the stages' code or values change
    fake_outputs(copy)
    dvc(copy, "commit", "--force", "--quiet", TABULAR)  # records the lock as a `dvc repro` would, without running
    git(copy, "add", "-A")
    git(copy, "commit", "-qm", "results")
    assert dvc_lock.stale_entries(copy) == []
    assert yaml.safe_load(dvc(copy, "status", "--json", TABULAR).stdout) == {}

    network = copy / "src/mlexp/tasks/tabular_regression/network.py"
    network.write_text(network.read_text() + "\n# an edit\n")
    status = yaml.safe_load(dvc(copy, "status", "--json", TABULAR).stdout)
    assert set(status) == {f"{TABULAR}:train", f"{TABULAR}:evaluate"}

    sections = yaml.safe_load((copy / "params.yaml").read_text())
    sections["tabular_regression"]["model"]["epochs"] = 3
    (copy / "params.yaml").write_text(yaml.safe_dump(sections, sort_keys=False))
    stale = dvc_lock.stale_entries(copy)
    assert any("stage train: src/mlexp/tasks/tabular_regression/network.py changed" in s for s in stale)
    assert any("stage train: tabular_regression.model in params.yaml" in s for s in stale)
    assert not any("stage prepare" in s for s in stale)
    done = run_cli(copy, "pipelines", "--check", check=False)
    assert done.returncode == 1 and "stale committed lock: pipelines/tabular_regression/dvc.lock" in done.stderr


@pytest.mark.parametrize("declared", [("model.no_such_key",)])
def test_a_param_the_config_lacks_is_refused_at_generation(declared):
    task = tasks.get("tabular_regression")
    spec = tasks.StageSpec("train", reads=("{data}",), params=declared, outs=("{models}",))
    broken = tasks.Task("tabular_regression", task.stages_module, (spec,))
    writer = dvc_stages.PipelineWriter(REPO, {"tabular_regression": broken}, {"tabular_regression": {"model": {}}})
    with pytest.raises(dvc_stages.PipelineError, match="model.no_such_key"):
        writer.pipeline(broken)


def test_a_lock_dvc_wrote_in_yaml_1_2_is_not_stale(tmp_path):
    # DVC writes `1e-10`; YAML 1.1 (PyYAML's safe_load) reads that as the text '1e-10', and params.yaml's 1.0e-10
    # then differed from it: `mlexp pipelines --check` failed right after a `dvc repro` of churn_incentives
    git(tmp_path, "init", "-q")
    (tmp_path / "params.yaml").write_text("churn:\n  optimizer:\n    tolerance: 1.0e-10\n    budget: 5000\n")
    lock = tmp_path / "dvc.lock"
    lock.write_text(
        "schema: '2.0'\nstages:\n  incentives:\n    cmd: mlexp\n    params:\n      params.yaml:\n"
        "        churn.optimizer:\n          tolerance: 1e-10\n          budget: 5000\n"
    )
    git(tmp_path, "add", "-A")
    assert dvc_lock.stale_entries(tmp_path) == []
    lock.write_text(lock.read_text().replace("1e-10", "1e-09"))
    assert len(dvc_lock.stale_entries(tmp_path)) == 1  # a value that really differs still counts


def test_summary_says_which_pipeline_writes_a_tasks_missing_report(tmp_project):
    # a task run with plain `mlexp task=...` (its reports in outputs/) read "(not run)"
    (tmp_project / "pipelines" / "churn_incentives").mkdir(parents=True)
    (tmp_project / "pipelines" / "churn_incentives" / "dvc.yaml").write_text("stages: {}\n")
    done = run_cli(tmp_project, "summary")
    assert (
        "| churn_incentives | (no reports/churn_incentives/metrics.json: dvc repro pipelines/churn_incentives/dvc.yaml)"
        in done.stdout
    )
    # a project without the pipeline file: the command that writes it first
    assert (
        "| recommendation | (no reports/recommendation/metrics.json: mlexp pipelines, then dvc repro) |" in done.stdout
    )
