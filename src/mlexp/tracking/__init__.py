"""SageMaker Experiments' model (Experiment → Trial → Trial component → Tracker) stored in MLflow."""

from mlexp.tracking.store import TrackingStore
from mlexp.tracking.tracker import Tracker
from mlexp.tracking.trial import Trial

__all__ = ["TrackingStore", "Trial", "Tracker"]
