"""Settings of the text_classification service (config group `service`): threshold, store, watched folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf


@dataclass
class ServiceConfig:
    """What the feedback loop does; the HTTP settings (host, port, keys, limits) are deploy.*."""

    # the name clients send as "classifier" (the post's custom classifier name); any other is 404
    classifier: str = "news-classifier-demo"
    # the post's ComrehendClassificationScoreThreshold: a prediction scored below it is queued for human review
    threshold: float = 0.5
    # null: <project root>/serving/text_classification_feedback.sqlite; postgresql://... selects PostgreSQL
    store: str | None = None
    # batch feedback files dropped here are ingested (the post's S3 upload trigger); null: <root>/serving/..._inbox
    watch_folder: str | None = None
    watch_interval_s: float = 1.0
    # sentences one batch file may hold
    max_batch_sentences: int = 1000
    # an item shown to one reviewer is hidden from the others this long (or until decided or skipped)
    review_lease_minutes: float = 10.0


def service_config(cfg: Any) -> ServiceConfig:
    """The service settings of a composed config (defaults for any key it lacks), with paths resolved."""
    section = OmegaConf.select(cfg, "service", default=None)
    settings = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(ServiceConfig), section or {}))
    assert isinstance(settings, ServiceConfig)
    root = Path(str(OmegaConf.select(cfg, "paths.root", default=".")))
    if settings.store is None:
        settings.store = str(root / "serving" / "text_classification_feedback.sqlite")
    if settings.watch_folder is None:
        settings.watch_folder = str(root / "serving" / "text_classification_inbox")
    return settings
