"""Pure-ASGI middleware of a service (no BaseHTTPMiddleware: each layer costs microseconds, not a task + queue)."""

from mlexp.serving.http.middleware.api_key import ApiKeyCheck
from mlexp.serving.http.middleware.errors import CatchAllErrors, ServiceStats, send_json_error
from mlexp.serving.http.middleware.limits import BodySizeLimit, RequestTimeout

__all__ = ["ApiKeyCheck", "BodySizeLimit", "CatchAllErrors", "RequestTimeout", "ServiceStats", "send_json_error"]
