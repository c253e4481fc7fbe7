"""A tracking server's refusal of the address a client uses: MLflow 3's check of the Host header.

`mlflow server` answers 403 to a request whose Host header it does not allow. Without `--allowed-hosts` it allows
localhost and private IPs; with it, only the names listed (localhost and private IPs no longer). The fix is on the
server, not in the client's account, so the refusal is told apart from a 403 of MLflow's basic-auth.
"""

from __future__ import annotations

from urllib.parse import urlsplit

# the body of MLflow's 403 (mlflow.server.security_utils.INVALID_HOST_MSG), kept in the client's error text
_REFUSED_HOST = "Invalid Host header"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def host_header(uri: str) -> str:
    """The Host header a client sends to `uri`: requests lowercases the name and leaves out the scheme's default
    port; that exact text is what `--allowed-hosts` must list."""
    parts = urlsplit(uri)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is None or parts.port == _DEFAULT_PORTS.get(parts.scheme):
        return host
    return f"{host}:{parts.port}"


def refused_host(error: BaseException, uri: str) -> str | None:
    """The one-line reason and fix when the server at `uri` refused the Host header of `error`'s request, else None."""
    if _REFUSED_HOST not in str(error):
        return None
    host = host_header(uri)
    return (
        f"the tracking server {uri} refused the request: its host check does not allow {host} ('{_REFUSED_HOST}'); "
        f"on the server, add {host} to `mlflow server --allowed-hosts` (or reach the server by a name listed there)"
    )
