"""`mlexp --help` lists each task with its own stages, read from the task registry without importing any stage."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import cli_env, run_cli

# --help in a fresh interpreter, then the modules it left loaded
HELP_THEN_MODULES = """
import sys
from mlexp import cli
sys.argv = ["mlexp", "--help", *sys.argv[1:]]
try:
    cli.main()
except SystemExit:
    pass
print("LOADED", sorted(m for m in sys.modules if m.endswith(".stages") or m.split(".")[0] in ("mlflow", "mxnet")))
"""


def _stages(out: str, task: str) -> str:
    """What --help prints after the task's name on its line."""
    return next(line.split(maxsplit=1)[1] for line in out.splitlines() if line.split()[:1] == [task])


def test_help_shows_each_tasks_own_stages(tmp_project):
    out = run_cli(tmp_project, "--help").stdout
    assert _stages(out, "anomaly_detection") == "prepare → query → detect → clean"  # no model to deploy
    assert _stages(out, "churn_incentives") == "prepare → train → evaluate → incentives [→ deploy]"
    assert _stages(out, "tabular_regression") == "prepare → train → evaluate [→ deploy]"
    assert "prepare|train|evaluate|deploy" not in out
    # a task's own config group says whose it is
    assert "optimizer: budget_allocation   (task churn_incentives only)" in out
    assert "engine: athena, duckdb, local_ocr, textract   (tasks anomaly_detection, document_extraction only)" in out


@pytest.mark.parametrize("task", [[], ["task=object_detection"], ["task=text_classification"]])
def test_help_imports_no_stage_module(tmp_project, task):
    done = subprocess.run(
        [sys.executable, "-c", HELP_THEN_MODULES, *task],
        cwd=tmp_project,
        env=cli_env(tmp_project),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "prepare → query → detect → clean" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "LOADED []"


def test_help_alone_is_the_overview_and_names_the_way_to_a_tasks_config(tmp_project):
    # the default task's config, ranges and rules (170 lines) pushed the overview off the screen
    out = run_cli(tmp_project, "--help").stdout
    assert "== Config" not in out and "== Ranges" not in out
    assert out.rstrip().endswith("mlexp --help task=<task> [key=value ...]")
    with_task = run_cli(tmp_project, "--help", "task=churn_incentives").stdout
    assert with_task.startswith(out.rstrip().rsplit("\n", 1)[0])  # the same overview first
    assert "== Config (task=churn_incentives) ==" in with_task and "== Rules across keys" in with_task


def test_help_with_a_mistyped_task_is_one_line(tmp_project):
    done = run_cli(tmp_project, "--help", "task=tabular_regresion", check=False)
    assert done.returncode == 2
    assert "task='tabular_regresion' is not a task; did you mean tabular_regression?" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_help_lists_the_tasks_ranges_with_their_values(tmp_project):
    out = run_cli(tmp_project, "--help", "task=churn_incentives", "model.decision_threshold=0.4").stdout
    ranges = out.split("== Ranges (task=churn_incentives): a value outside one is refused before a trial opens ==")[1]
    assert "  model.decision_threshold: between 0 and 1   (now 0.4)" in ranges.splitlines()
    assert "  model.eta: above 0   (now" in ranges
    out = run_cli(tmp_project, "--help", "task=object_detection").stdout
    assert "  model.anchor_scale: above 0   (now null)" in out.splitlines()  # null: derived from the boxes
    out = run_cli(tmp_project, "--help", "task=churn_incentives", "model.eta=-1").stdout
    assert "  model.eta: above 0   (now -1.0)  <- out of range: refused" in out.splitlines()
