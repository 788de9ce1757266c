"""Settings, read once per worker from the environment (app settings in Azure, local.settings.json locally)."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

APP_ROOT = Path(__file__).resolve().parent.parent
DISPATCH_QUEUE = "dispatch"  # its poison queue is "dispatch-poison", as the Functions host names it


@dataclass(frozen=True)
class Settings:
    """Everything the core reads from its environment."""

    storage_connection: str
    storage_account: str
    storage_ca: str | None
    jobs_table: str
    auth_issuer: str
    auth_audience: str
    auth_jwks: str
    auth_admin_role: str
    auth_leeway_seconds: int
    callback_url: str


def _path_or_url(value: str) -> str:
    """Paths in settings are relative to the app root; URLs are kept as they are."""
    if not value or "://" in value:
        return value
    return str((APP_ROOT / value).resolve())


@functools.cache
def get_settings() -> Settings:
    """The worker's settings (cached; tests call `get_settings.cache_clear()` after changing the environment)."""
    env = os.environ.get
    return Settings(
        storage_connection=env("AzureWebJobsStorage", ""),
        storage_account=env("AzureWebJobsStorage__accountName", ""),
        storage_ca=_path_or_url(env("SIMGATE_STORAGE_CA", "")) or None,
        jobs_table=env("SIMGATE_JOBS_TABLE", "jobs"),
        auth_issuer=env("AUTH_ISSUER", ""),
        auth_audience=env("AUTH_AUDIENCE", ""),
        auth_jwks=_path_or_url(env("AUTH_JWKS", "")),
        auth_admin_role=env("AUTH_ADMIN_ROLE", "simgate.admin"),
        auth_leeway_seconds=int(env("AUTH_LEEWAY_SECONDS", "30")),
        callback_url=env("SIMGATE_CALLBACK_URL", "").rstrip("/"),
    )
