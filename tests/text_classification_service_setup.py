"""A small real text classifier (the task's TF-IDF + calibrated linear model, fitted on a 20 Newsgroups slice) and a
running text_classification service around it, for the service, crash and browser tests and the benchmark."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlexp.serving.http import ApiKeys, ModelSlot, RunningService, ServiceSettings, start_in_thread
from mlexp.tasks.text_classification.classifier import TextClassifier
from mlexp.tasks.text_classification.corpora import clean, read_newsgroups, sample
from mlexp.tasks.text_classification.service.app import build_app
from mlexp.tasks.text_classification.service.classify_api import Classifier
from mlexp.tasks.text_classification.service.config import ServiceConfig
from mlexp.tasks.text_classification.service.store import FeedbackStore

LABELS = ["World", "Sports", "Business", "Sci/Tech"]
# the task's documented approximation of AG News' four classes by newsgroups
NEWSGROUPS = {"comp.": "Sci/Tech", "sci.": "Sci/Tech", "rec.sport.": "Sports", "talk.politics.": "World"}
NEWSGROUPS["misc.forsale"] = "Business"
MODEL_SETTINGS: dict[str, Any] = {
    "word_ngrams": [1, 2],
    "char_ngrams": [2, 4],
    "max_word_features": 20000,
    "max_char_features": 20000,
    "min_df": 2,
    "learner": "linear_svm",
    "C": 0.5,
    "calibration": "sigmoid",
    "calibration_folds": 3,
    "max_chars": 600,
}
CLASSIFIER = "news-classifier-demo"


def train_model(folder: Path, n_rows: int = 600, seed: int = 0) -> Path:
    """Fit the task's classifier on `n_rows` training documents and save it in `folder`."""
    frame = sample(clean(read_newsgroups("train", NEWSGROUPS), 600), n_rows, seed)
    model = TextClassifier.fit(list(frame.text), list(frame.label), MODEL_SETTINGS, LABELS, seed)
    return model.save(folder)


_SHARED: dict[str, Path] = {}


def shared_model(tmp_path_factory: Any) -> Path:
    """One model folder for every service test file in a pytest session (fitting takes a few seconds)."""
    if "model" not in _SHARED:
        _SHARED["model"] = train_model(tmp_path_factory.mktemp("text-classifier") / "model")
    return _SHARED["model"]


@dataclass
class Service:
    running: RunningService
    store: FeedbackStore
    slot: ModelSlot
    keys: ApiKeys | None
    key: str | None

    @property
    def url(self) -> str:
        return self.running.url

    def stop(self) -> None:
        self.running.stop()
        self.store.close()
        if self.keys is not None:
            self.keys.close()


def start_service(
    model_folder: Path,
    store: str | Path,
    keys_db: Path | None,
    *,
    limit: int = 2000,
    threshold: float = 0.5,
    max_request_bytes: int = 1_048_576,
    slot: ModelSlot | None = None,
    review_lease_minutes: float = 10.0,
) -> Service:
    """The service app on a free loopback port: a key with `limit` requests a month when keys_db is given."""
    slot = slot or ModelSlot(lambda: (TextClassifier.load(model_folder), f"trial {model_folder.name}"))
    feedback = FeedbackStore(store)
    config = ServiceConfig(
        classifier=CLASSIFIER, threshold=threshold, store=str(store), review_lease_minutes=review_lease_minutes
    )
    settings = ServiceSettings(
        port=0, max_request_bytes=max_request_bytes, require_api_key=keys_db is not None, keys_db=keys_db or Path()
    )
    keys = ApiKeys(keys_db) if keys_db is not None else None
    key = keys.create("tester", limit=limit) if keys is not None else None
    app = build_app(Classifier(slot, feedback, config), settings, keys)
    return Service(start_in_thread(app), feedback, slot, keys, key)


def _serve_forever(model_folder: str, store: str) -> None:
    """Run the service in this process until killed; print its URL first (the crash test's server)."""
    import threading

    service = start_service(Path(model_folder), store, None)
    print(service.url, flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    import sys

    _serve_forever(sys.argv[1], sys.argv[2])
