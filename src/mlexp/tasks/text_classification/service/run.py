"""`deploy=local`: serve the classifier, collect feedback and host the review page until Ctrl-C."""

from __future__ import annotations

import contextlib
from pathlib import Path

from omegaconf import DictConfig

from mlexp.serving.http import ModelSlot, ServiceSettings, open_api_keys, serve
from mlexp.tasks.text_classification.service.app import build_app
from mlexp.tasks.text_classification.service.batch_files import WatchedFolder
from mlexp.tasks.text_classification.service.classify_api import Classifier
from mlexp.tasks.text_classification.service.config import service_config
from mlexp.tasks.text_classification.service.store import FeedbackStore
from mlexp.tracking import Tracker


def run_service(cfg: DictConfig, tracker: Tracker) -> None:
    """Load the model named by deploy.source, open the feedback store and serve until stopped."""
    from mlexp.tasks.text_classification.served_model import load_served_model, served_model_probe

    config = service_config(cfg)
    settings = ServiceSettings.from_config(cfg.deploy)
    slot = ModelSlot(lambda: load_served_model(cfg, settings.source))
    assert config.store is not None and config.watch_folder is not None
    with contextlib.ExitStack() as cleanup:
        # a promotion (the registry alias moving) is picked up without a restart; a fixed trial never changes.
        # Its stop is registered before anything else can fail (the store connecting), so no poller outlives an error
        slot.start_polling(served_model_probe(cfg, settings.source), settings.reload_interval_s)
        cleanup.callback(slot.stop_polling)
        store = FeedbackStore(config.store)
        cleanup.callback(store.close)
        service = Classifier(slot, store, config)
        inbox = WatchedFolder(
            Path(config.watch_folder), service.ingest_folder_batch, config.max_batch_sentences, config.watch_interval_s
        )
        inbox.start()
        cleanup.callback(inbox.stop)
        tracker.log_parameters(
            {
                "classifier": config.classifier,
                "threshold": config.threshold,
                "feedback_store": _redacted(config.store),
                "watch_folder": config.watch_folder,
            }
        )
        app = build_app(service, settings, open_api_keys(settings))
        review = f"http://{settings.host}:{settings.port}/review" if settings.port else "<service URL>/review"
        print(f"  human review: {review} (reviewer accounts: mlexp review add <name>)", flush=True)
        print(f"  batch feedback files: drop *.json files in {config.watch_folder}", flush=True)
        serve(
            cfg,
            tracker,
            app,
            description=f"{config.classifier}: {slot.version}",
            endpoints=[
                f'POST /classify {{"classifier": "{config.classifier}", "sentence": "MS Dhoni retires"}}',
                f'POST /feedback {{"classifier": "{config.classifier}", "sentence": "Sachin is Indian Cricketer."}}',
            ],
        )
        progress = store.progress()
        tracker.log_metrics({"review_pending": progress["pending"], "review_decisions": progress["reviewed"]})


def _redacted(location: str) -> str:
    """A store URL without its password, for the trial's parameters."""
    if "://" in location and "@" in location:
        scheme, rest = location.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"
    return location
