"""`mlexp task=recommendation` end to end, CreateSolution's rule at the CLI, and the real-time service."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from types import SimpleNamespace

import pandas as pd
import pytest
from omegaconf import OmegaConf

from conftest import REPO, cli_env, one_line_error, run_cli, seed_store, trials_of
from drawn_charts import Untracked, keep_figures, task_config
from mlexp.errors import DataError
from mlexp.serving.http import ApiKeys, start_in_thread
from mlexp.tasks.recommendation import charts, served_model, service, stages
from mlexp.tasks.recommendation.event_store import EventStore
from postgres_server import require_pgserver
from run_folders import run_folder

TASK = "recommendation"
TINY = ("dataset.n_users=300", "dataset.n_videos=300", "dataset.n_interactions=10000")


@pytest.fixture(scope="module")
def trials(tmp_path_factory, empty_store):
    project = tmp_path_factory.mktemp("rec") / "project"
    import shutil

    shutil.copytree(REPO / "conf", project / "conf")
    seed_store(project, empty_store)  # the store's first set-up is other tests' concern
    # registered too (deploy=registry): the first version becomes the champion the CLI service test serves
    hybrid = run_cli(
        project, f"task={TASK}", *TINY, "model.recipe=metadata_hybrid", "model.metadata_hybrid.epochs=3",
        "deploy=registry",
    )  # fmt: skip
    return project, hybrid


def test_trial_records_personalize_metrics_on_the_held_out_period(trials):
    project, hybrid = trials
    [trial] = trials_of(project, experiment=TASK)
    assert trial.status == "FINISHED" and trial.params["model.recipe"] == "metadata_hybrid"
    assert {"Pre-processing", "Training", "Evaluation"} < trial.component_names
    saved = json.loads((run_folder(hybrid) / "models" / "recipe.json").read_text())
    assert saved["solution"] == {"event_type": None, "event_value_threshold": None}
    metrics = json.loads((run_folder(hybrid) / "reports" / "metrics.json").read_text())
    for name in ("val_normalized_discounted_cumulative_gain_at_10", "precision_at_10", "mean_reciprocal_rank_at_25",
                 "coverage", "cold_items_recall_at_25"):  # fmt: skip
        assert name in metrics
    assert metrics["normalized_discounted_cumulative_gain_at_10"] == pytest.approx(
        trial.metrics["normalized_discounted_cumulative_gain_at_10"]
    )
    # validation (epochs chosen there) and test are different periods, so their figures differ
    assert (
        metrics["val_normalized_discounted_cumulative_gain_at_10"]
        != metrics["normalized_discounted_cumulative_gain_at_10"]
    )
    assert trial.metrics["interactions_test"] > 0 and trial.metrics["users_evaluated"] > 25
    assert 0 < metrics["coverage"] <= 1 and metrics["cold_items_recall_at_25"] > 0
    # cold users (no interaction before the test period) are scored on their own, and against the generator's truth
    logged = trial.metrics
    assert logged["cold_users_evaluated"] > 0 and "cold_users_normalized_discounted_cumulative_gain_at_10" in logged
    assert logged["cold_users_favourite_evaluated"] >= logged["cold_users_evaluated"]
    assert 0.03 < logged["cold_users_favourite_chance_at_10"] < 0.12
    assert 0 <= logged["cold_users_favourite_share_at_10"] <= 1
    assert (run_folder(hybrid) / "reports" / "plots" / "metrics_at_k.png").exists()


def _stage_config(*overrides: str):
    return task_config(TASK, *TINY, "model.recipe=metadata_hybrid", "model.metadata_hybrid.epochs=3", *overrides)


@pytest.mark.parametrize("recipe", ["popularity", "item_similarity", "user_personalization"])
def test_the_chart_of_a_recipe_that_reads_no_metadata_names_no_features(recipe):
    # only metadata_hybrid reads the fields features= chooses: an ALS chart titled "features=all_metadata" would say
    # the model used metadata it never saw
    assert stages.evaluated_model(TASK, recipe, "all_metadata") == f"{TASK}: {recipe}"
    assert (
        stages.evaluated_model(TASK, "metadata_hybrid", "all_metadata")
        == f"{TASK}: metadata_hybrid, features=all_metadata"
    )


def test_metrics_at_k_says_what_where_and_at_which_ks_and_draws_cold_users_and_items(trials, monkeypatch, tmp_path):
    project, hybrid = trials
    [trial] = trials_of(project, experiment=TASK)
    folder = run_folder(hybrid)
    cfg = _stage_config(f"paths.data={folder / 'data'}", f"paths.models={folder / 'models'}",
                        f"paths.reports={tmp_path}")  # fmt: skip
    figures = keep_figures(monkeypatch, charts)
    stages.evaluate(cfg, Untracked())  # type: ignore[arg-type]
    [ax] = figures["metrics_at_k.png"].axes
    assert list(ax.get_xticks()) == [5, 10, 25]
    # what is plotted, on which period, at which ks, then the trial's recipe and features
    assert ax.get_title().splitlines() == [
        "Precision, recall and NDCG at k = 5, 10, 25 on the held-out test period",
        "recommendation: metadata_hybrid, features=all_metadata",
    ]
    lines = {line.get_label(): line for line in ax.lines}
    cold = lines["NDCG, cold users"]
    assert list(cold.get_ydata()) == pytest.approx(
        [trial.metrics[f"cold_users_normalized_discounted_cumulative_gain_at_{k}"] for k in (5, 10, 25)]
    )
    # the bar the recipe must clear, as a model.recipe=popularity trial of the same data scores
    baseline = lines["NDCG, popularity count"]
    assert list(baseline.get_ydata()) == pytest.approx(
        [trial.metrics[f"popularity_normalized_discounted_cumulative_gain_at_{k}"] for k in (5, 10, 25)]
    )
    items = lines["recall@25, cold items"]
    assert (items.get_xdata()[0], items.get_ydata()[0]) == pytest.approx((25, trial.metrics["cold_items_recall_at_25"]))
    table = (tmp_path / "plots" / "metrics_at_k.csv").read_text().splitlines()
    assert table[0].split(",")[:4] == ["k", "precision", "recall", "normalized_discounted_cumulative_gain"]
    assert "cold_users_normalized_discounted_cumulative_gain" in table[0] and len(table) == 4


def test_training_curve_draws_loss_and_validation_ndcg_by_epoch_with_the_best_epoch(trials, monkeypatch, tmp_path):
    _, hybrid = trials
    folder = run_folder(hybrid)
    cfg = _stage_config(f"paths.data={folder / 'data'}", f"paths.models={tmp_path / 'models'}",
                        f"paths.reports={tmp_path}")  # fmt: skip
    figures = keep_figures(monkeypatch, charts)
    stages.train(cfg, Untracked())  # type: ignore[arg-type]
    table = pd.read_csv(tmp_path / "plots" / "training.csv")
    loss_axis, metric_axis = figures["training_curve.png"].axes
    [loss] = [line for line in loss_axis.lines if line.get_label() == "training loss"]
    assert list(loss.get_xdata()) == table["epoch"].tolist()
    assert list(loss.get_ydata()) == pytest.approx(table["train_loss"].tolist())
    [ndcg] = metric_axis.lines
    assert loss_axis.get_title() == "Training loss (training interactions) and NDCG@10 (validation period) by epoch"
    assert ndcg.get_label() == "validation NDCG@10"
    assert list(ndcg.get_ydata()) == pytest.approx(table["val_ndcg_at_10"].tolist())
    best = int(table.loc[table["val_ndcg_at_10"].idxmax(), "epoch"])  # the epoch early stopping keeps
    [marked] = [line for line in loss_axis.lines if line.get_label() == f"best epoch ({best})"]
    assert list(marked.get_xdata()) == [best, best]
    assert (folder / "reports" / "plots" / "training_curve.png").stat().st_size > 0  # the trial drew it too
    # the next model in the same reports folder (DVC's reports/recommendation) has no epochs: no curve is left of the
    # last one to describe it
    als = task_config(TASK, *TINY, f"paths.data={folder / 'data'}", f"paths.models={tmp_path / 'als'}",
                      f"paths.reports={tmp_path}")  # fmt: skip
    stages.train(als, Untracked())  # type: ignore[arg-type]
    assert not (tmp_path / "plots" / "training_curve.png").exists()
    assert not (tmp_path / "plots" / "training.csv").exists()


def test_a_threshold_without_event_type_is_refused_before_the_trial_in_one_line(tmp_project):
    message = one_line_error(tmp_project, f"task={TASK}", *TINY, "solution.event_value_threshold=0.5")
    assert message.startswith(
        "solution.event_value_threshold=0.5, solution.event_type=null: an event value threshold needs "
        "solution.event_type"
    )


def _call(url: str, key: str | None, body: dict | bytes | None = None, method: str = "GET"):
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if key:
        request.add_header("x-api-key", key)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def _service_config(tmp_path, events_url: str):
    return OmegaConf.create(
        {
            "deploy": {"host": "127.0.0.1", "port": 0, "require_api_key": True, "keys_db": str(tmp_path / "keys.db"),
                       "max_request_bytes": 4096},
            "service": {"default_results": 10, "max_results": 500, "events_url": events_url},
        }
    )  # fmt: skip


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_events_change_the_next_recommendation_and_persist(trials, tmp_path, database):
    _, hybrid = trials
    models = run_folder(hybrid) / "models"
    if database == "postgresql":
        pgserver = require_pgserver()
        postgres = pgserver.get_server(str(tmp_path / "pg"), cleanup_mode="stop")
        url = postgres.get_uri()
    else:
        url = str(tmp_path / "events.sqlite")
    cfg = _service_config(tmp_path, url)
    key = ApiKeys(tmp_path / "keys.db").create("tester")
    app = service.build_app(cfg, models, EventStore(url))
    running = start_in_thread(app)
    try:
        base = running.url
        catalog = app.state.slot.current.model.catalog
        player = "player_07"
        of_player = [
            i for i, p in zip(catalog.items["ITEM_ID"], catalog.items["PLAYERS"]) if player in str(p).split("|")
        ]
        status, before = _call(f"{base}/recommendations?userId=new_fan&numResults=50", key)
        assert status == 200 and before["coldStart"] is True
        share_before = sum(r["itemId"] in of_player for r in before["itemList"][:20])
        events = [{"itemId": item, "eventType": "watch", "eventValue": 0.95} for item in of_player[:3]]
        started = time.perf_counter()
        status, recorded = _call(
            f"{base}/events", key, {"userId": "new_fan", "sessionId": "s1", "eventList": events}, "POST"
        )
        status2, after = _call(f"{base}/recommendations?userId=new_fan&numResults=50", key)
        assert time.perf_counter() - started < 1.0
        assert status == 200 and recorded == {"recorded": 3} and status2 == 200 and after["coldStart"] is False
        share_after = sum(r["itemId"] in of_player for r in after["itemList"][:20])
        assert share_after >= max(4, 2 * share_before + 1)
        assert not set(of_player[:3]) & {r["itemId"] for r in after["itemList"]}
        # a known user (training history) who barely saw this player: the just-watched player now leads too
        live = app.state.slot.current
        fan = next(
            user for user, state in sorted(live.users.items())
            if len(state.history) >= 10 and not {catalog.item_ids[i] for i in state.history} & set(of_player)
        )  # fmt: skip
        _, known_before = _call(f"{base}/recommendations?userId={fan}&numResults=20", key)
        unseen = [i for i in of_player if i not in {r["itemId"] for r in known_before["itemList"]}]
        watched = [{"itemId": item, "eventType": "watch", "eventValue": 0.95} for item in unseen[:3]]
        _call(f"{base}/events", key, {"userId": fan, "sessionId": "s2", "eventList": watched}, "POST")
        _, known_after = _call(f"{base}/recommendations?userId={fan}&numResults=20", key)
        known_share = [
            sum(r["itemId"] in of_player for r in answer["itemList"]) for answer in (known_before, known_after)
        ]
        assert known_before["coldStart"] is False and known_share[1] >= known_share[0] + 2, known_share
        # the service's rules: key, size, JSON fields, numResults
        assert _call(f"{base}/recommendations?userId=u", None)[0] == 401
        assert _call(f"{base}/events", key, b"{" + b" " * 5000 + b"}", "POST")[0] == 413
        status, error = _call(
            f"{base}/events", key, {"userId": "u", "sessionId": "s", "eventList": [{"itemId": "x"}]}, "POST"
        )
        assert status == 422 and "eventList[0].eventType" in error["error"]
        assert _call(f"{base}/recommendations?userId=u&numResults=0", key)[0] == 422
        assert _call(f"{base}/recommendations", key)[0] == 422
        running.stop()
        # durable: a new service over the same store (a restart) starts from the recorded events
        again = service.build_app(cfg, models, EventStore(url))
        state = again.state.slot.current.users["new_fan"]
        assert [catalog.item_ids[i] for i in state.history] == of_player[:3]
    finally:
        running.stop()
        if database == "postgresql":
            postgres.cleanup()


def _tracker(project, trial_id: str):
    """What the deploy stage's tracker offers the service: the store's client and the running trial's id."""
    from types import SimpleNamespace

    from conftest import store_client

    return SimpleNamespace(client=store_client(project), trial_run_id=trial_id)


def _deploy_config(project, source: str, *sizes: str):
    """The deploy stage's config; `sizes`, the trials' generated platform (TINY) unless given."""
    dataset = {"source": "pulselive", "path": None}
    dataset |= {key.removeprefix("dataset."): int(value) for key, value in (s.split("=") for s in sizes or TINY)}
    return OmegaConf.create(
        {
            "task": {"name": TASK, "objective": {"metric": "val_normalized_discounted_cumulative_gain_at_10",
                                                  "direction": "maximize"}},
            "deploy": {"source": source}, "paths": {"models": str(project / "nowhere"), "root": str(project)},
            "dataset": dataset,
        }
    )  # fmt: skip


def test_deploy_source_best_and_an_unknown_run_id(trials, tmp_path):
    project, _ = trials
    [trial] = trials_of(project, experiment=TASK)
    store = EventStore(str(tmp_path / "events.sqlite"))
    tracker = _tracker(project, trial.run_id)
    slot, probe, description = served_model.model_slot(_deploy_config(project, "best"), tracker, store)
    assert probe is None and trial.run_id in description and slot.current.model.recipe == "metadata_hybrid"
    assert "on pulselive_videos (300 users, 300 videos, 10000 interactions)" in description
    # the best trial of another catalogue was served, answering with its item IDs
    other = _deploy_config(
        project, "best", "dataset.n_users=400", "dataset.n_videos=300", "dataset.n_interactions=10000"
    )
    with pytest.raises(DataError, match=r"^deploy.source=best: no finished recommendation trial that learnt "
                       r"pulselive_videos \(400 users, 300 videos, 10000 interactions\) has .*\(the best scored "
                       rf"trial, {trial.run_id}, learnt pulselive_videos \(300 users, "):  # fmt: skip
        served_model.model_slot(other, tracker, store)
    unscored = _deploy_config(project, "best")
    unscored.task.objective.metric = "never_logged"  # an IndexError, not this line, before any trial had it
    with pytest.raises(DataError, match=r"^deploy.source=best: no finished recommendation trial that learnt .* has "
                       r"never_logged; train one first"):  # fmt: skip
        served_model.model_slot(unscored, tracker, store)
    with pytest.raises(DataError, match=r"^deploy.source=0123abcd: no trial run with a trained model has this id; use"):
        served_model.model_slot(_deploy_config(project, "0123abcd"), tracker, store)
    # the name `mlexp compare` lists said only "no trial has this run id"
    with pytest.raises(DataError) as named:
        served_model.model_slot(_deploy_config(project, trial.name), tracker, store)
    assert str(named.value) == (
        f"deploy.source={trial.name}: {trial.name} is a trial's name, deploy.source takes its run id: "
        f"deploy.source={trial.run_id}"
    )
    store.close()


def test_deploy_source_when_the_tracking_server_is_down(tmp_path, monkeypatch):
    # MLflow's first line: "API request to http://... failed with exception HTTPConnectionPool(...): Max retries ..."
    import socket

    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # refused at once, not after MLflow's backoff
    with socket.socket() as closed:  # a loopback port nothing listens on
        closed.bind(("127.0.0.1", 0))
        uri = f"http://127.0.0.1:{closed.getsockname()[1]}"
    tracker = SimpleNamespace(client=MlflowClient(uri), trial_run_id=None)
    store = EventStore(str(tmp_path / "events.sqlite"))
    with pytest.raises(DataError) as down:
        served_model.model_slot(_deploy_config(tmp_path, "0123abcd"), tracker, store)
    store.close()
    assert str(down.value) == f"deploy.source=0123abcd: cannot reach the tracking server {uri} (Connection refused)"


def test_the_cli_serves_the_registered_champion(trials):
    """`mlexp task=recommendation stage=deploy deploy=local`: the champion registered by the trial, quietly."""
    project, _ = trials
    key = ApiKeys(project / "serving" / "keys.sqlite").create("cli")
    command = [sys.executable, "-m", "mlexp.cli", f"task={TASK}", "stage=deploy", "deploy=local", "deploy.port=0",
               "deploy.max_seconds=60", "deploy.reload_interval_s=0.5"]  # fmt: skip
    server = subprocess.Popen(
        command, cwd=project, env=cli_env(project), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        assert server.stdout is not None
        lines: list[str] = []
        while not any(line.startswith("service: http://") for line in lines):
            line = server.stdout.readline()
            assert line, "the service exited before it started:\n" + "".join(lines)
            lines.append(line)
        url = lines[-1].split()[1]
        assert "@champion" in lines[-1]
        status, answer = _call(f"{url}/recommendations?userId=user_000001&numResults=5", key)
        assert status == 200 and len(answer["itemList"]) == 5
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=60)
        assert server.returncode == 0
    finally:
        if server.poll() is None:
            server.kill()
    # MLflow's artifact progress bars stay out of the service's output
    assert "Downloading artifacts" not in "".join(lines) + output
