"""Settings, read from the environment (app settings in Azure, local.settings.json locally); `core.services` reads
them once per worker and holds them."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

APP_ROOT = Path(__file__).resolve().parent.parent
DISPATCH_QUEUE = "dispatch"  # its poison queue is "dispatch-poison", as the Functions host names it
# The reconciler's timer: an NCRONTAB setting the host resolves ("%NAME%"), every five minutes unless set.
RECONCILE_SCHEDULE = "%SIMGATE_RECONCILE_SCHEDULE%"


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
    auth_required_scope: (
        str  # a delegated scope user tokens must carry in `scp`; "*" any; "" none (see core.auth)
    )
    public_url: (
        str  # the app's own public base URL, for the links it builds; "" makes them relative
    )
    callback_url: str
    outputs_url: str  # the blob service holding each job's outputs container
    storage_credential: (
        str  # "managed-identity" (Azure) or "azurite" (local: tokens Azurite's basic OAuth takes)
    )
    download_minutes: int  # lifetime of a download URL (read SAS)
    upload_minutes: int  # lifetime of a job's upload grant (renewed while the job finalizes)
    lost_after_minutes: (
        int  # an active job silent this long is checked with its scheduler by the reconciler
    )
    resend_after_seconds: (
        int  # an unclaimed SUBMITTED job (or a CANCELLING one) this old gets its message again
    )
    cases_dir: Path  # the case catalog's folder: SIMGATE_CASES_DIR, or the packaged `cases/`
    studies_table: str  # the studies' table (their runs are in the jobs table)
    study_max_runs: int  # runs a study may have (SIMGATE_STUDY_MAX_RUNS)
    targets: str  # SIMGATE_TARGETS: the targets' JSON text ("@path" reads it from a file below the app root)


def _path_or_url(value: str) -> str:
    """Paths in settings are relative to the app root; URLs are kept as they are."""
    if not value or "://" in value:
        return value
    return str((APP_ROOT / value).resolve())


def read_settings() -> Settings:
    """The settings the environment holds now (`core.services.get_settings` gives the worker's)."""
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
        auth_required_scope=env("AUTH_REQUIRED_SCOPE", "").strip(),
        public_url=_public_url(env("SIMGATE_PUBLIC_URL", "")),
        callback_url=env("SIMGATE_CALLBACK_URL", "").rstrip("/"),
        outputs_url=_blob_service_url(env),
        storage_credential=env("SIMGATE_STORAGE_CREDENTIAL", "managed-identity"),
        download_minutes=_minutes(env("SIMGATE_DOWNLOAD_MINUTES", "10")),
        upload_minutes=_minutes(env("SIMGATE_UPLOAD_MINUTES", "15")),
        lost_after_minutes=max(int(env("SIMGATE_LOST_AFTER_MINUTES", "15")), 0),
        resend_after_seconds=max(int(env("SIMGATE_RESEND_AFTER_SECONDS", "300")), 1),
        cases_dir=Path(env("SIMGATE_CASES_DIR", "") or APP_ROOT / "cases"),
        studies_table=env("SIMGATE_STUDIES_TABLE", "studies"),
        study_max_runs=min(max(int(env("SIMGATE_STUDY_MAX_RUNS", "1000")), 1), 100_000),
        targets=env("SIMGATE_TARGETS", ""),
    )


def _public_url(text: str) -> str:
    """The app's public base URL without a trailing slash; "" when unset. Never taken from a request's Host."""
    url = text.strip().rstrip("/")
    parts = urlsplit(url)
    if url and (
        parts.scheme not in ("https", "http") or not parts.netloc or parts.query or parts.fragment
    ):
        raise ValueError(
            f"SIMGATE_PUBLIC_URL must be an http(s) base URL without query, not {text!r}"
        )
    return url


MAX_GRANT_MINUTES = 60  # no SAS lives longer than an hour


def _minutes(text: str) -> int:
    """A SAS lifetime from settings, kept within 1..60 minutes."""
    return min(max(int(text), 1), MAX_GRANT_MINUTES)


def _blob_service_url(env: Callable[[str, str], str]) -> str:
    """The blob endpoint: set outright, the identity-based connection's, the connection string's, or the account's."""
    explicit = env("SIMGATE_OUTPUTS_URL", "") or env("AzureWebJobsStorage__blobServiceUri", "")
    if explicit:
        return explicit.rstrip("/")
    parts = dict(p.split("=", 1) for p in env("AzureWebJobsStorage", "").split(";") if "=" in p)
    if "BlobEndpoint" in parts:
        return parts["BlobEndpoint"].rstrip("/")
    account = env("AzureWebJobsStorage__accountName", "") or parts.get("AccountName", "")
    return f"https://{account}.blob.core.windows.net" if account else ""
