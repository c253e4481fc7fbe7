"""The MLflow UI opens where the comparison is: a real `mlflow server`, its real UI, in headless chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

from conftest import TINY, cli_env, run_cli, trials_of
from mlexp.tracking import ui_link

OBJECTIVE = "test_msle"
COMPONENTS = ("Pre-processing", "Training", "Evaluation")
# MLflow's assistant panel opens itself on a first visit and covers a third of the page
CLOSE_ASSISTANT = """
localStorage.setItem('mlflow.assistant.fab.autoOpenedOnFirstLoad_v1', 'true');
localStorage.setItem('mlflow.assistant.panelOpen_v1', 'false');
"""


@dataclass
class Row:
    run_id: str
    name: str
    objective: float


def as_the_ui_shows(value: float) -> str:
    """A metric as MLflow's runs table prints it: JavaScript's shortest round-trip text of the number."""
    # Python's repr is the same shortest round-trip text for 1e-6 <= |x| < 1e16 (JS uses exponents outside 1e-7..1e21)
    assert 1e-6 <= abs(value) < 1e16, f"{value!r}: JavaScript and Python print it differently"
    text = repr(value)
    return text[:-2] if text.endswith(".0") else text


def open_runs_table(browser, url: str, expected_rows: int):
    """Open `url` in a fresh browser context and wait until the runs table holds `expected_rows` rows."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1600, "height": 560})
    context.add_init_script(CLOSE_ASSISTANT)
    page = context.new_page()
    page.goto(url)
    expect(page.locator(".ag-center-cols-container .ag-row")).to_have_count(expected_rows, timeout=30_000)
    return page


def assert_shows_the_comparison(page, rows: list[Row]) -> None:
    """The runs table lists exactly `rows`, best first by the objective, each with its objective value."""
    from playwright.sync_api import expect

    expect(page).to_have_url(re.compile(r"/#/experiments/\d+/runs\?"))
    # the model-training UI ("Runs"), not the GenAI one ("Training runs", its traces overview one click away)
    expect(page.get_by_role("heading", name="Runs", exact=True)).to_be_visible()
    assert page.get_by_role("link", name="Overview", exact=True).count() == 0
    grid = page.locator(".ag-root")
    for row in rows:
        expect(grid.get_by_text(row.name, exact=True)).to_be_visible()
        cell = grid.locator(f'.ag-row[row-id="{row.run_id}"] [col-id="metrics.`{OBJECTIVE}`"]')
        expect(cell).to_have_text(as_the_ui_shows(row.objective))
        expect(cell).to_be_visible()
    for component in COMPONENTS:
        assert grid.get_by_text(component, exact=True).count() == 0, f"component run {component!r} is a row"
    shown = page.locator(".ag-center-cols-container .ag-row")
    order = sorted(range(shown.count()), key=lambda i: int(shown.nth(i).get_attribute("row-index") or 0))
    assert [shown.nth(i).get_attribute("row-id") for i in order] == [
        r.run_id for r in sorted(rows, key=lambda r: r.objective)
    ]
    expect(page.get_by_text(f"{len(rows)} matching runs")).to_be_visible()


def screenshot(page, tmp_path: Path, name: str) -> Path:
    """The page as a test artifact in tmp_path, taken before any assertion so a failure leaves it to look at."""
    shot = tmp_path / name
    page.screenshot(path=str(shot))
    return shot


def keep_screenshot(shot: Path) -> None:
    """Copy a passing test's screenshot to MLEXP_SCREENSHOT_DIR when set (`make screenshot`: the README's image)."""
    if folder := os.environ.get("MLEXP_SCREENSHOT_DIR"):
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(folder) / shot.name)


def test_sweep_link_opens_the_trials_best_first_in_the_mlflow_ui(tmp_project, tmp_path, mlflow_server, browser):
    env = cli_env(tmp_project)
    env["MLFLOW_TRACKING_URI"] = mlflow_server
    done = run_cli(
        tmp_project,
        "-m",
        "task=tabular_regression",
        "model.l1_size=4,8",
        "model.l1_activation=relu,tanh",
        *TINY,
        env=env,
    )
    links = re.findall(r"^MLflow UI: (\S+)$", done.stdout, flags=re.MULTILINE)
    assert links, f"no `MLflow UI: <url>` line in:\n{done.stdout}"
    trials = trials_of(tmp_project, client=MlflowClient(mlflow_server))
    assert len(trials) == 4
    rows = [Row(t.run_id, t.name, t.metrics[OBJECTIVE]) for t in trials]

    page = open_runs_table(browser, links[-1], expected_rows=4)
    shot = screenshot(page, tmp_path, "mlflow_comparison.png")
    assert_shows_the_comparison(page, rows)
    page.context.close()
    keep_screenshot(shot)


def _log_run(client: MlflowClient, experiment_id: str, name: str, tags: dict, params: dict, msle: float) -> str:
    run = client.create_run(experiment_id, run_name=name, tags=tags)
    client.log_batch(
        run.info.run_id,
        metrics=[Metric(OBJECTIVE, msle, 0, 0), Metric("test_mae", msle * 10, 0, 0)],
        params=[Param(k, str(v)) for k, v in params.items()],
    )
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def test_saved_view_shows_one_sweeps_trials_with_their_objective(tmp_path, mlflow_server, browser):
    """The layout the runner writes, built with MlflowClient: trials of two sweeps, components nested under each."""
    from playwright.sync_api import expect

    client = MlflowClient(mlflow_server)
    experiment_id = client.create_experiment("ui-layout", tags={"mlflow.experimentKind": "custom_model_development"})
    rows = []
    for sweep_id, sizes in (("sweep-a", (8, 32, 4, 16)), ("sweep-b", (64,))):
        for number, size in enumerate(sizes):
            name = f"{sweep_id}-trial-{number}"
            msle = 0.5 / size + 0.0123456789 * number  # neither creation order nor its reverse
            trial_tags = {"mlexp.kind": "trial", "mlexp.sweep_id": sweep_id, "mlexp.sweep_name": sweep_id}
            run_id = _log_run(client, experiment_id, name, trial_tags, {"model.l1_size": size}, msle)
            for component in COMPONENTS:
                # components carry the same metric, with better values: they must still never show up
                nested = {"mlexp.kind": "component", "mlflow.parentRunId": run_id}
                _log_run(client, experiment_id, component, nested, {}, msle / 10)
            if sweep_id == "sweep-a":
                rows.append(Row(run_id, name, msle))

    link = ui_link.publish_comparison(
        mlflow_server,
        experiment_id,
        objective=OBJECTIVE,
        direction="minimize",
        sweep_id="sweep-a",
        sweep_name="sweep-a",
        metric_columns=("test_mae",),
        param_columns=("model.l1_size",),
    )
    assert link.start_command is None  # a server is its own UI

    page = open_runs_table(browser, link.url, expected_rows=4)
    shot = screenshot(page, tmp_path, "mlflow_comparison_layout.png")
    assert_shows_the_comparison(page, rows)
    expect(page.get_by_text("mlexp sweep sweep-a")).to_be_visible()  # the saved view, in the "Views" menu
    page.context.close()
    keep_screenshot(shot)

    # after a single trial: every trial of the experiment, each with its sweep
    everything = ui_link.publish_comparison(mlflow_server, experiment_id, objective=OBJECTIVE, direction="minimize")
    page = open_runs_table(browser, everything.url, expected_rows=5)
    expect(page.locator(".ag-root").get_by_text("sweep-b", exact=True)).to_be_visible()
    page.context.close()

    # a store that refuses the view (here: no such experiment) still gets a link that filters and sorts
    refused = ui_link.publish_comparison(mlflow_server, "987654321", objective=OBJECTIVE, direction="maximize")
    assert "viewStateShareKey" not in refused.url and "orderByAsc=false" in refused.url


def test_url_alone_filters_and_sorts_but_a_local_store_needs_mlflow_ui():
    sweep_filter = ui_link.trials_filter("abc")
    url = ui_link.runs_view_url(
        "http://127.0.0.1:5000/", "7", search_filter=sweep_filter, order_by_metric=OBJECTIVE, ascending=False
    )
    assert url == (
        "http://127.0.0.1:5000/#/experiments/7/runs?workflowType=machine_learning"
        "&searchFilter=tags.%60mlexp.kind%60+%3D+%27trial%27+and+tags.%60mlexp.sweep_id%60+%3D+%27abc%27"
        "+and+tags.%60mlexp.stage%60+%21%3D+%27deploy%27"
        "&orderByKey=metrics.%60test_msle%60&orderByAsc=false"
    )
    assert ui_link.ui_base_url("https://mlflow.example.org/") == ("https://mlflow.example.org", None)
    assert ui_link.ui_base_url("sqlite:////tmp/my project/mlflow.db") == (
        "http://127.0.0.1:5000",
        "mlflow ui --backend-store-uri 'sqlite:////tmp/my project/mlflow.db'",
    )
    with pytest.raises(ui_link.NoUiAddress):
        ui_link.ui_base_url("arn:aws:sagemaker:eu-west-1:123456789012:mlflow-tracking-server/mlexp")


def test_the_trials_view_lists_the_trials_compare_lists_and_hides_none(tmp_project_with_store):
    # a run of `stage=deploy` alone, which compare leaves out, was listed among the trials; MLflow's `!=` would also
    # leave out a trial without the stage tag (a SageMaker tuning job's), which compare lists: never hidden
    from mlexp.experiment_analytics.trials import ExperimentAnalytics

    uri = f"sqlite:///{tmp_project_with_store / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment_id = client.create_experiment("served")
    _log_run(client, experiment_id, "trial", {"mlexp.kind": "trial", "mlexp.stage": "all"}, {}, 0.5)
    client.create_run(experiment_id, run_name="serving", tags={"mlexp.kind": "trial", "mlexp.stage": "deploy"})

    def listed() -> list[str]:
        ui_link.publish_comparison(uri, experiment_id, objective=OBJECTIVE, direction="minimize")
        view = json.loads(client.get_experiment(experiment_id).tags["mlflow.sharedViewState.mlexp-trials"])
        return sorted(
            r.info.run_name for r in client.search_runs([experiment_id], json.loads(view["state"])["searchFilter"])
        )

    def compared() -> list[str]:
        return sorted(run.info.run_name for run in ExperimentAnalytics("served", tracking_uri=uri).trials)

    assert listed() == compared() == ["trial"]
    _log_run(client, experiment_id, "tuned", {"mlexp.kind": "trial", "mlexp.compute": "sagemaker"}, {}, 0.4)
    assert set(compared()) <= set(listed()) == {"trial", "tuned", "serving"}
