"""The text_classification service: /classify, feedback (implicit, explicit, batch files), the human review page.

Heavy imports (Starlette, the model) happen in `run_service`, so registering the task stays cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from mlexp.tracking import Tracker


def run_service(cfg: DictConfig, tracker: Tracker) -> None:
    """The deploy stage: serve /classify, /feedback and the review page until Ctrl-C (deploy=local)."""
    from mlexp.tasks.text_classification.service.run import run_service as run

    run(cfg, tracker)


def export_reviews(store: Any, out: Path) -> int:
    """Write every human review decision as JSONL for retraining; returns the number of lines."""
    from mlexp.tasks.text_classification.service.store import export_reviews as export

    return export(store, out)


__all__ = ["export_reviews", "run_service"]
