"""The generic `deploy=local` serving layer: a task's routes behind API keys, usage plans, limits and JSON errors.

A task builds its routes and models, then calls `serve(cfg, tracker, create_app(...), ...)`; see
/work/notes/serving_contract.md (and the README's "Serving" section) for the whole contract.
"""

from mlexp.serving.http.api_keys import ApiKeyError, ApiKeys, KeyRecord
from mlexp.serving.http.app import create_app, open_api_keys
from mlexp.serving.http.champion_probe import champion_from_config, champion_loader, champion_probe
from mlexp.serving.http.images import check_image_pixels
from mlexp.serving.http.json_api import ServiceError, json_response, read_json, standard_json
from mlexp.serving.http.model_slot import ModelSlot
from mlexp.serving.http.server import RunningService, serve, start_in_thread
from mlexp.serving.http.settings import ServiceSettings

__all__ = [
    "ApiKeyError",
    "ApiKeys",
    "KeyRecord",
    "ModelSlot",
    "RunningService",
    "ServiceError",
    "ServiceSettings",
    "champion_from_config",
    "champion_loader",
    "champion_probe",
    "check_image_pixels",
    "create_app",
    "json_response",
    "open_api_keys",
    "read_json",
    "serve",
    "standard_json",
    "start_in_thread",
]
