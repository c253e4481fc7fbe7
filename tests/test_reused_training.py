"""A trial of a partial `dvc repro` whose train stage DVC kept has no Training component of its own: it names the one
that trained the kept model (`mlexp.shared_component.train`, linked by mlexp.reused_stages, tested with DVC in
test_params_and_dvc.py and test_churn_incentives_reused_stages.py). Serving it by its run id, or as the best trial,
serves that component's model (mlexp.serving.trained_components), for each task whose service downloads a trial's
model. The records are made here as the runner makes them, in a real store, with real artifacts."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from mlexp.errors import DataError
from mlexp.tracking import tags
from text_classification_service_setup import LABELS, train_model


def _config(task: str, metric: str, root: Path) -> DictConfig:
    return OmegaConf.create(
        {
            "task": {"name": task, "objective": {"metric": metric, "direction": "maximize"}},
            "tracking": {"uri": f"sqlite:///{root / 'mlflow.db'}", "experiment_name": None},
            "paths": {"root": str(root)},
        }
    )


def _trial(client: MlflowClient, experiment_id: str, name: str, score: dict[str, float], **run_tags: str) -> str:
    run = client.create_run(experiment_id, run_name=name, tags={tags.KIND: "trial", **run_tags}).info.run_id
    for metric, value in score.items():
        client.log_metric(run, metric, value)
    client.set_terminated(run, "FINISHED")
    return run


def _trained(client: MlflowClient, experiment_id: str, name: str, score: dict[str, float], model: Path) -> str:
    """A trial that trained: its Training component holds `model` under `model/`; the component's run id."""
    trial = _trial(client, experiment_id, name, score)
    component = client.create_run(
        experiment_id,
        run_name="Training",
        tags={tags.KIND: "component", tags.STAGE: "train", tags.MLFLOW_PARENT_RUN_ID: trial},
    ).info.run_id
    client.log_artifacts(component, str(model), "model")
    client.set_terminated(component, "FINISHED")
    return component


def _kept(client: MlflowClient, experiment_id: str, name: str, score: dict[str, float], component: str) -> str:
    """A trial whose train stage DVC kept: it reuses `component` and ran only its evaluation."""
    trial = _trial(client, experiment_id, name, score, **{f"{tags.SHARED_COMPONENT_PREFIX}train": component})
    evaluation = client.create_run(
        experiment_id,
        run_name="Evaluation",
        tags={tags.KIND: "component", tags.STAGE: "evaluate", tags.MLFLOW_PARENT_RUN_ID: trial},
    ).info.run_id
    client.set_terminated(evaluation, "FINISHED")
    return trial


def _counted(list_artifacts, calls: list[str], empty_first: int = 0):
    """MlflowClient.list_artifacts, recording each run listed; the first `empty_first` listings find nothing."""

    def counted(self, run_id, path=None):
        calls.append(run_id)
        return [] if len(calls) <= empty_first else list_artifacts(self, run_id, path)

    return counted


def _store(root: Path, task: str) -> tuple[MlflowClient, str]:
    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    return client, client.create_experiment(task, artifact_location=(root / "mlartifacts").as_uri())


def test_a_detection_trial_that_reused_its_training_serves_and_starts_from_that_network(tmp_path):
    from mlexp.tasks.object_detection.deployment import model_folder
    from mlexp.tasks.object_detection.init_from_run import NoWeights, locate

    client, experiment = _store(tmp_path, "object_detection")
    network = tmp_path / "network"
    network.mkdir()
    (network / "model.params").write_bytes(b"the weights the first trial trained")
    component = _trained(client, experiment, "object_detection-1", {"map": 0.41}, network)
    kept = _kept(client, experiment, "object_detection-2", {"map": 0.52}, component)
    cfg, tracker = _config("object_detection", "map", tmp_path), SimpleNamespace(client=client)

    folder, label = model_folder(cfg, tracker, kept, tmp_path / "by-id")
    assert label == f"trial {kept}"
    assert (folder / "model.params").read_bytes() == b"the weights the first trial trained"
    # the best trial is the one that reused the network (its evaluation scored higher), not the first that has one
    folder, label = model_folder(cfg, tracker, "best", tmp_path / "best")
    assert label == "best trial object_detection-2 (map = 0.5200)"
    assert (folder / "model.params").read_bytes() == b"the weights the first trial trained"
    weights = locate(f"runs:/{kept}/model/model.params", client)
    assert (weights.run_id, weights.path) == (component, "model/model.params")

    # a trial linked to a component since deleted (or a tag edited by hand) has no model: `best` looks further
    client.delete_run(component)
    _trained(client, experiment, "object_detection-3", {"map": 0.3}, network)
    folder, label = model_folder(cfg, tracker, "best", tmp_path / "best-after-delete")
    assert label == "best trial object_detection-3 (map = 0.3000)"
    with pytest.raises(DataError, match=f"^deploy.source={kept}: no trial run with a trained model has this id"):
        model_folder(cfg, tracker, kept, tmp_path / "deleted")
    # init_from given the trial's name is not offered its run id: that trial's weights were deleted (it said the
    # trial "never trained"), and restoring the component it reused brings them back
    with pytest.raises(
        NoWeights, match="object_detection-2 is a trial's name and it trained, but its Training comp"
    ) as told:
        locate("runs:/object_detection-2/model/model.params", client)
    assert f"mlflow runs restore --run-id {component}`), then give model.init_from=runs:/{kept}/" in str(told.value)


def test_a_text_trial_that_reused_its_training_serves_that_classifier(tmp_path, monkeypatch):
    from mlexp.tasks.text_classification.served_model import load_served_model, served_model_probe

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    client, experiment = _store(tmp_path, "text_classification")
    classifier = train_model(tmp_path / "classifier", n_rows=200)
    component = _trained(client, experiment, "text_classification-1", {"holdout_macro_f1": 0.71}, classifier)
    kept = _kept(client, experiment, "text_classification-2", {"holdout_macro_f1": 0.74}, component)
    cfg = _config("text_classification", "holdout_macro_f1", tmp_path)

    model, label = load_served_model(cfg, kept)
    assert label == "trial text_classification-2" and model.labels == LABELS
    assert model.predict_one("the goalkeeper saved a penalty in the final minute")[0] == "Sports"
    model, label = load_served_model(cfg, "best")
    assert label == "trial text_classification-2" and model.labels == LABELS
    # the service reloads when the probe names another model than the one it serves: it names the best trial that
    # has one, not a better trial without any (here a link no run answers: a tag edited by hand, or a component
    # deleted since)
    assert served_model_probe(cfg, "best")() == label
    _kept(client, experiment, "text_classification-3", {"holdout_macro_f1": 0.9}, "0" * 32)
    assert load_served_model(cfg, "best")[1] == served_model_probe(cfg, "best")() == "trial text_classification-2"
    # polled every few seconds, the probe lists a component's artifacts (S3, say) until it is seen to hold a model,
    # and again after a listing that found none (a folder not mounted yet lists empty)
    listed = []
    monkeypatch.setattr(MlflowClient, "list_artifacts", _counted(MlflowClient.list_artifacts, listed, empty_first=1))
    probe = served_model_probe(cfg, "best")
    assert [probe() for _ in range(3)] == [f"trial text_classification-{n}" for n in (1, 2, 2)]
    assert listed == [component, component]  # text_classification-2's empty listing, then -1's of the same component


def test_a_recommendation_trial_that_reused_its_training_serves_that_model(tmp_path):
    from mlexp.tasks.recommendation.served_model import _trial_folder, best_trial

    client, experiment = _store(tmp_path, "recommendation")
    model = tmp_path / "model"
    model.mkdir()
    (model / "recipe.json").write_text('{"recipe": "the first trial\'s"}')
    component = _trained(client, experiment, "recommendation-1", {"ndcg_at_10": 0.2}, model)
    kept = _kept(client, experiment, "recommendation-2", {"ndcg_at_10": 0.3}, component)
    (model / "recipe.json").write_text('{"recipe": "the third trial\'s"}')
    third = _trained(client, experiment, "recommendation-3", {"ndcg_at_10": 0.1}, model)
    for run in client.search_runs([experiment], f"tags.`{tags.KIND}` = 'trial'"):
        client.log_param(run.info.run_id, "dataset.source", "movielens_100k")  # best serves a model of this catalogue
    serving = _trial(client, experiment, "recommendation-4", {})  # the deploy stage's own trial
    cfg = OmegaConf.merge(
        _config("recommendation", "ndcg_at_10", tmp_path), {"dataset": {"source": "movielens_100k", "path": None}}
    )
    tracker = SimpleNamespace(client=client, trial_run_id=serving)

    folder = _trial_folder(cfg, tracker, kept, tmp_path / "served")
    assert (folder / "recipe.json").read_text() == '{"recipe": "the first trial\'s"}'
    assert best_trial(cfg, tracker) == kept
    # the linked component deleted since: the trial has no model, and best passes it (and the first trial) over
    client.delete_run(component)
    with pytest.raises(DataError, match=r"this run has no Training component \(its own, or one it reused that is"):
        _trial_folder(cfg, tracker, kept, tmp_path / "gone")
    assert best_trial(cfg, tracker) == client.get_run(third).data.tags[tags.MLFLOW_PARENT_RUN_ID]
    # a deleted trial is not served: the line says how to restore it
    client.delete_run(kept)
    with pytest.raises(
        DataError, match=f"^deploy.source={kept}: run {kept} is deleted; restore it and its deleted"
    ) as told:
        _trial_folder(cfg, tracker, kept, tmp_path / "deleted")
    assert f"mlflow runs restore --run-id {kept}`" in str(told.value)
    assert f"mlflow runs restore --run-id {component}`" in str(told.value)  # the one it reused, deleted above
