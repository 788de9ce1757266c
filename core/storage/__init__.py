"""Storage adapters: the only package that imports the Azure SDK.

Clients are built once per worker from settings: a connection string locally (Azurite, over HTTPS with the
development certificate), the Function App's managed identity in Azure. Every request passes through
`observe_requests`' observers, so benchmarks can count storage round trips at the HTTP pipeline.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from azure.identity import ManagedIdentityCredential

from core.config import Settings
from core.jobfolder import STORAGE_API_VERSION

# Blob and queue clients pin the service version (the job wrapper pins the same: `core.jobfolder`).
API_VERSION = STORAGE_API_VERSION

RequestObserver = Callable[[str, str], None]
_observers: list[RequestObserver] = []


def observe_requests(observer: RequestObserver) -> Callable[[], None]:
    """Call `observer(method, url)` for every storage request from now on; returns a function that stops it."""
    _observers.append(observer)
    return lambda: _observers.remove(observer)


def _on_request(request: Any) -> None:
    http = request.http_request
    for observer in list(_observers):
        observer(http.method, http.url)


def client_options(settings: Settings) -> dict[str, Any]:
    """Options every storage client takes: trust for a local certificate, the request hook, bounded retries."""
    options: dict[str, Any] = {
        "raw_request_hook": _on_request,
        "retry_total": 3,
        "connection_timeout": 10,
    }
    if settings.storage_ca:
        options["connection_verify"] = settings.storage_ca
    return options


def uses_key(settings: Settings) -> bool:
    """Whether storage is reached by a connection string with a key (Azurite) rather than the managed identity."""
    return (
        "AccountKey=" in settings.storage_connection
        or "UseDevelopmentStorage" in settings.storage_connection
    )


def managed_identity() -> Any:
    """The Function App's managed identity; deterministic, unlike a credential chain that may fall through."""
    return ManagedIdentityCredential(client_id=os.environ.get("AZURE_CLIENT_ID") or None)
