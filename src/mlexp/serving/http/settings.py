"""The `deploy=local` settings a service runs with (conf/deploy/local.yaml)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlexp.paths import project_root, resolve

DEFAULT_KEYS_DB = "serving/keys.sqlite"


@dataclass(frozen=True)
class ServiceSettings:
    """Where a service listens and the limits every request is held to."""

    host: str = "127.0.0.1"
    port: int = 8080
    source: str = "champion"
    max_request_bytes: int = 1_048_576
    request_timeout_s: float = 30.0
    max_pixels: int = 40_000_000
    require_api_key: bool = True
    keys_db: Path = Path(DEFAULT_KEYS_DB)
    reload_interval_s: float = 5.0
    max_seconds: float | None = None

    @classmethod
    def from_config(cls, deploy: Any) -> ServiceSettings:
        """Settings from `cfg.deploy`; a null keys_db is <project root>/serving/keys.sqlite."""
        keys_db = deploy.get("keys_db")
        return cls(
            host=str(deploy.get("host", cls.host)),
            port=int(deploy.get("port", cls.port)),
            source=str(deploy.get("source", cls.source)),
            max_request_bytes=int(deploy.get("max_request_bytes", cls.max_request_bytes)),
            request_timeout_s=float(deploy.get("request_timeout_s", cls.request_timeout_s)),
            max_pixels=int(deploy.get("max_pixels", cls.max_pixels)),
            require_api_key=bool(deploy.get("require_api_key", cls.require_api_key)),
            keys_db=resolve(keys_db) if keys_db else project_root() / DEFAULT_KEYS_DB,
            reload_interval_s=float(deploy.get("reload_interval_s", cls.reload_interval_s)),
            max_seconds=None if deploy.get("max_seconds") is None else float(deploy.get("max_seconds")),
        )
