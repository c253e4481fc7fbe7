"""The recommendation workflow: Pre-processing (import + schema checks + time split), Training (CreateSolution),
Evaluation (the held-out test period) and Deployment (PutEvents + GetRecommendations on loopback)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig

from mlexp.data import personalize_datasets, personalize_schema
from mlexp.errors import ConfigError, DataError
from mlexp.tasks.recommendation import charts, datasets, evaluation, interactions, popularity, recipes
from mlexp.tasks.recommendation.catalog import Catalog
from mlexp.tasks.recommendation.config import Recipe
from mlexp.tracking import Tracker

SPLIT_FILE = "split.json"
NDCG = "normalized_discounted_cumulative_gain"
HISTORY_KEPT = 50  # latest interactions per user kept with the model for serving


def _read(cfg: DictConfig, name: str) -> Path:
    path = Path(cfg.paths.data) / name
    if not path.exists():
        raise DataError(f"{path} is missing: run the prepare stage first (mlexp task={cfg.task.name} stage=prepare)")
    return path


def _prepared(cfg: DictConfig):
    frame = pd.read_parquet(_read(cfg, "interactions.parquet"))
    users = Path(cfg.paths.data) / "users.parquet"
    items = Path(cfg.paths.data) / "items.parquet"
    schemas = {
        kind: personalize_schema.load(Path(cfg.paths.data) / "personalize" / f"{name}.schema.json", kind)
        for kind, name in personalize_datasets.FILES.items()
        if (Path(cfg.paths.data) / "personalize" / f"{name}.schema.json").exists()
    }
    cuts = json.loads(_read(cfg, SPLIT_FILE).read_text())
    return (
        frame,
        pd.read_parquet(users) if users.exists() else None,
        pd.read_parquet(items) if items.exists() else None,
        schemas,
        cuts,
    )


def prepare(cfg: DictConfig, tracker: Tracker) -> None:
    """Import the three datasets as Personalize would (schemas, types, 1,000/25 floor); split them by time."""
    interactions.check_solution(cfg.solution)
    out = Path(cfg.paths.data)
    out.mkdir(parents=True, exist_ok=True)
    folder = out / "personalize"
    source = datasets.materialize(cfg, folder)
    loaded = personalize_datasets.load(folder)
    interactions.check_settings(cfg, loaded.interactions)
    frame = interactions.time_split(
        loaded.interactions, cfg.preprocessing.validation_fraction, cfg.preprocessing.test_fraction
    )
    frame.to_parquet(out / "interactions.parquet", index=False)
    for name, table in (("users", loaded.users), ("items", loaded.items)):
        if table is not None:
            table.to_parquet(out / f"{name}.parquet", index=False)
    times = {s: frame.loc[frame["split"] == s, "TIMESTAMP"] for s in ("train", "validation", "test")}
    cuts = {
        "validation_start": int(times["validation"].min()),
        "test_start": int(times["test"].min()),
        "end": int(frame["TIMESTAMP"].max()),
    }
    (out / SPLIT_FILE).write_text(json.dumps(cuts, indent=2) + "\n")
    before_test = set(frame.loc[frame["split"] != "test", "USER_ID"])
    tracker.log_parameters({"source": str(source), **cuts})
    tracker.log_input("raw data", "text/csv", source)
    tracker.log_output("preprocessed data", "application/x-parquet", out / "interactions.parquet")
    for name in personalize_datasets.FILES.values():
        schema = folder / f"{name}.schema.json"
        if schema.exists():
            tracker.log_artifact(schema, name="schemas", media_type="application/json")
    tracker.log_metrics(
        {
            "interactions": len(frame),
            "users": frame["USER_ID"].nunique(),
            "items": frame["ITEM_ID"].nunique(),
            **{f"interactions_{s}": len(t) for s, t in times.items()},
            "test_cold_users": len(set(frame.loc[frame["split"] == "test", "USER_ID"]) - before_test),
        }
    )


def _validation_metrics(cfg, model, train_rows, solution_rows, validation_rows, cuts, context) -> dict[str, float]:
    return evaluation.evaluate(
        model,
        solution_rows,
        train_rows,
        interactions.relevant(validation_rows, cfg.dataset),
        cuts["test_start"] - 1,
        list(cfg.model.ks),
        context,
        interactions.relevance_rule(cfg.dataset),
    )


def train(cfg: DictConfig, tracker: Tracker) -> None:
    """CreateSolution: fit on the training period, pick epochs on the validation period, refit on both."""
    frame, users, items, schemas, cuts = _prepared(cfg)
    interactions.check_settings(cfg, frame)
    fields = recipes.chosen_fields(cfg.features, schemas)
    recipe = str(getattr(cfg.model.recipe, "value", cfg.model.recipe))
    used = fields if recipe in recipes.USES_METADATA else {side: [] for side in fields}
    catalog = Catalog.build(frame, users, items)
    train_rows = frame[frame["split"] == "train"]
    validation_rows = frame[frame["split"] == "validation"]
    solution_rows = interactions.for_training(train_rows, cfg.solution, cuts["validation_start"])
    if solution_rows.empty:
        raise ConfigError("the solution's filters leave no training interactions: relax solution.* settings")
    tracker.log_parameters(
        {
            "recipe": recipe,
            **{f"features_{side}": ",".join(names) or "-" for side, names in used.items()},
            "training_interactions": len(solution_rows),
        }
    )
    curve: list[dict[str, float]] = []

    def on_epoch(epoch: int, loss: float, model) -> float:
        score = _validation_metrics(cfg, model, train_rows, solution_rows, validation_rows, cuts, used["interactions"])
        ndcg = score[str(cfg.task.objective.metric).removeprefix("val_")]
        tracker.log_metrics({"train_loss": loss, "val_ndcg_at_10": ndcg}, step=epoch)
        curve.append({"epoch": epoch, "train_loss": loss, "val_ndcg_at_10": ndcg})
        return ndcg

    model, epochs = recipes.fit(cfg, solution_rows, catalog, used, on_epoch=on_epoch)
    validation = _validation_metrics(cfg, model, train_rows, solution_rows, validation_rows, cuts, used["interactions"])
    tracker.log_metrics({f"val_{name}": value for name, value in validation.items()})

    # the model evaluated on the test period learns from everything before it, with the epochs chosen above
    history = frame[frame["split"] != "test"]
    full_rows = interactions.for_training(history, cfg.solution, cuts["test_start"])
    started = time.perf_counter()
    final, _ = recipes.fit(cfg, full_rows, catalog, used, epochs=epochs)
    tracker.log_metrics({"train_seconds": time.perf_counter() - started, "best_epoch": epochs})
    folder = Path(cfg.paths.models)
    recipes.save(final, folder, used, cfg.solution)
    # the service starts each known user from their latest training interactions; their type and value give its
    # example event the data's own (service_examples)
    kept_fields = [f for f in ("EVENT_TYPE", "EVENT_VALUE", *used["interactions"]) if f in full_rows]
    keep = ["USER_ID", "ITEM_ID", "TIMESTAMP", "weight", *dict.fromkeys(kept_fields)]
    full_rows.sort_values("TIMESTAMP", kind="stable").groupby("USER_ID").tail(HISTORY_KEPT)[keep].to_parquet(
        folder / recipes.HISTORY_FILE, index=False
    )
    tracker.log_output("model", "application/x-recommender", folder / "recipe.json")
    for file in sorted(folder.iterdir()):
        tracker.log_artifact(file, name="model")
    plots = Path(cfg.paths.reports) / "plots"
    if curve:
        plots.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(curve).to_csv(plots / "training.csv", index=False)
        chart = charts.training_curve(curve, epochs, "val_ndcg_at_10", "NDCG@10", plots / "training_curve.png")
        tracker.log_artifact(chart, name="plots", media_type="image/png")
    else:  # a recipe without epochs: an earlier recipe's curve in a shared reports folder (DVC's) is not this model's
        for stale in ("training.csv", "training_curve.png"):
            (plots / stale).unlink(missing_ok=True)


def evaluate(cfg: DictConfig, tracker: Tracker) -> None:
    """Score the held-out test period (never used for a choice): Personalize's metrics, cold users and items."""
    frame, _, _, _, cuts = _prepared(cfg)
    model = recipes.load(Path(cfg.paths.models))
    fields = recipes.settings(Path(cfg.paths.models))["features"]
    history = frame[frame["split"] != "test"]
    rows = interactions.for_training(history, cfg.solution, cuts["test_start"])
    relevant = interactions.relevant(frame[frame["split"] == "test"], cfg.dataset)
    rule = interactions.relevance_rule(cfg.dataset)
    ks = list(cfg.model.ks)
    metrics = evaluation.evaluate(model, rows, history, relevant, cuts["end"], ks, fields["interactions"], rule)
    # the bar every recipe must clear: the popularity count of the same history, as model.recipe=popularity refits it
    if model.recipe != popularity.Popularity.recipe:
        counted = popularity.Popularity.fit(rows, model.catalog)
        scored = evaluation.evaluate(counted, rows, history, relevant, cuts["end"], ks, fields["interactions"], rule)
        metrics.update({f"popularity_{NDCG}_at_{k}": scored[f"{NDCG}_at_{k}"] for k in ks})
    # the generated platform's ground truth: does a cold user's top 10 feature their favourite player?
    test_users = frame.loc[frame["split"] == "test", "USER_ID"].unique()
    cold = sorted(set(test_users) - set(history["USER_ID"]))
    metrics.update(evaluation.favourite_share(model, rows, cold, cuts["end"]))
    tracker.log_input("test data", "application/x-parquet", Path(cfg.paths.data) / "interactions.parquet")
    tracker.log_metrics(metrics)
    plots = Path(cfg.paths.reports) / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    # cold users' columns when the period has users with no earlier interaction, the popularity count's NDCG
    names = [f"{prefix}{m}" for prefix in ("", "cold_users_") for m in charts.AT_K] + [f"popularity_{NDCG}"]
    rows = [{"k": k, **{n: metrics[f"{n}_at_{k}"] for n in names if f"{n}_at_{k}" in metrics}} for k in ks]
    pd.DataFrame(rows).to_csv(plots / "metrics_at_k.csv", index=False)
    cold_items = f"cold_items_recall_at_{evaluation.MRR_K}"
    chart = charts.metrics_at_k(
        rows,
        plots / "metrics_at_k.png",
        "held-out test period",
        evaluated_model(cfg.task.name, model.recipe, cfg.features.name),
        (evaluation.MRR_K, metrics[cold_items]) if cold_items in metrics else None,
    )
    tracker.log_artifact(chart, name="plots", media_type="image/png")


def evaluated_model(task: str, recipe: str, features: str) -> str:
    """The chart's line naming what was evaluated: the recipe, and the features only for the recipe that reads
    metadata (the others learn from interactions alone, whatever features= says)."""
    reads_metadata = recipe == Recipe.metadata_hybrid.value
    return f"{task}: {recipe}" + (f", features={features}" if reads_metadata else "")


def deploy(cfg: DictConfig, tracker: Tracker) -> None:
    """deploy=local: POST /events and GET /recommendations on loopback; deploy=registry: register the model, unless
    the champion learnt another dataset (registered_dataset)."""
    if cfg.deploy.target == "registry":
        from mlexp.serving import registry
        from mlexp.tasks.recommendation import registered_dataset

        with registered_dataset.one_registration_at_a_time(cfg):
            if registered_dataset.another_datasets_champion(cfg, tracker):
                return
            registry.deploy_trial(cfg, tracker)
            registered_dataset.tag_the_version(cfg, tracker)
        return
    if cfg.deploy.target != "local":
        raise ConfigError(
            f"deploy={cfg.deploy.target!r} is not available for task {cfg.task.name!r}; use local or registry"
        )
    from mlexp.tasks.recommendation import service

    service.serve(cfg, tracker)
