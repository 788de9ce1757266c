"""Job outputs in Blob Storage: a container per job, and the user-delegation SAS grants that reach it.

Each job's outputs live in their own container (`job-<job id>`), so the simulator's upload grant can be a container
SAS limited to that job: create and write only, no read, list or delete. Downloads are read-only SAS for one blob.
Every SAS is signed in-function with a user delegation key, which the service gives to the Function App's identity
(locally, to a token Azurite accepts); no account key signs anything. The key is fetched once and reused until
shortly before it expires, so signing a download costs no storage request.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import (
    BlobSasPermissions,
    BlobServiceClient,
    ContainerSasPermissions,
    UserDelegationKey,
    generate_blob_sas,
    generate_container_sas,
)

from core.config import MAX_GRANT_MINUTES, Settings, get_settings
from core.errors import Unavailable
from core.storage import API_VERSION, client_options, managed_identity

KEY_LIFETIME = timedelta(hours=6)
# A key is replaced once less than this is left: every SAS signed with it must expire before it does.
KEY_MARGIN = timedelta(minutes=MAX_GRANT_MINUTES + 5)
CLOCK_SKEW = timedelta(minutes=5)  # SAS start times are back-dated: the storage service's clock may be ahead


@dataclass(frozen=True)
class Grant:
    """A signed URL: the resource's `uri`, the SAS `token`, both together as `url`, and when it stops working."""

    uri: str
    token: str
    expires_on: datetime

    @property
    def url(self) -> str:
        """The resource URL with its SAS."""
        return f"{self.uri}?{self.token}"


@dataclass(frozen=True)
class StoredBlob:
    """What storage says of an uploaded output."""

    name: str
    size: int
    content_type: str


def container_of(job_id: str) -> str:
    """The container of a job's outputs (job ids are lower-case hex, digits and dashes: valid container names)."""
    return f"job-{job_id}"


class JobOutputs:
    """Output containers and SAS grants on one `BlobServiceClient` signed in with a token credential."""

    def __init__(self, service: BlobServiceClient) -> None:
        self._service = service
        self._account = str(service.account_name)
        self._key: UserDelegationKey | None = None
        self._key_expiry = datetime.min.replace(tzinfo=UTC)
        self._lock = threading.Lock()

    def blob_uri(self, job_id: str, name: str) -> str:
        """The URL of one output blob, without any token."""
        return f"{self._container_uri(job_id)}/{quote(name)}"

    def create(self, job_id: str) -> None:
        """Make the job's container (nothing happens when it exists)."""
        with _translated(), contextlib.suppress(ResourceExistsError):
            self._service.create_container(container_of(job_id))

    def delete(self, job_id: str) -> None:
        """Remove the job's container with every output in it (nothing happens when there is none)."""
        with _translated(), contextlib.suppress(ResourceNotFoundError):
            self._service.delete_container(container_of(job_id))

    def stored(self, job_id: str) -> dict[str, StoredBlob]:
        """Every blob in the job's container by name, with size and content type from storage (one listing)."""
        container = self._service.get_container_client(container_of(job_id))
        with _translated(), contextlib.suppress(ResourceNotFoundError):
            return {
                b.name: StoredBlob(b.name, b.size, b.content_settings.content_type or "application/octet-stream")
                for b in container.list_blobs()
            }
        return {}

    def read_grant(self, job_id: str, name: str, *, minutes: int, filename: str, content_type: str) -> Grant:
        """A read-only, HTTPS-only SAS for one blob that makes a browser save it as `filename`."""
        start, expiry = _window(minutes)
        token = generate_blob_sas(
            self._account, container_of(job_id), name, user_delegation_key=self._delegation_key(),
            permission=BlobSasPermissions(read=True), start=start, expiry=expiry, protocol="https",
            content_disposition=f'attachment; filename="{filename}"', content_type=content_type,
        )
        return Grant(self.blob_uri(job_id, name), token, expiry)

    def upload_grant(self, job_id: str, *, minutes: int) -> Grant:
        """A create-and-write-only, HTTPS-only SAS for the job's container: no read, list or delete."""
        start, expiry = _window(minutes)
        token = generate_container_sas(
            self._account, container_of(job_id), user_delegation_key=self._delegation_key(),
            permission=ContainerSasPermissions(create=True, write=True), start=start, expiry=expiry,
            protocol="https",
        )
        return Grant(self._container_uri(job_id), token, expiry)

    def _container_uri(self, job_id: str) -> str:
        return f"{self._service.url.rstrip('/')}/{container_of(job_id)}"

    def _delegation_key(self) -> UserDelegationKey:
        """The cached user delegation key, fetched again once it is close to expiring."""
        with self._lock:
            now = datetime.now(UTC)
            if self._key is None or self._key_expiry - now < KEY_MARGIN:
                with _translated():
                    self._key = self._service.get_user_delegation_key(now - CLOCK_SKEW, now + KEY_LIFETIME)
                self._key_expiry = now + KEY_LIFETIME
            return self._key


def _window(minutes: int) -> tuple[datetime, datetime]:
    now = datetime.now(UTC).replace(microsecond=0)
    return now - CLOCK_SKEW, now + timedelta(minutes=min(minutes, MAX_GRANT_MINUTES))


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except (ResourceNotFoundError, ResourceExistsError):
        raise
    except AzureError as exc:
        raise Unavailable(f"output storage failed: {type(exc).__name__}") from exc


def make_service(settings: Settings) -> BlobServiceClient:
    """A blob service client signed in with a token: the managed identity, or locally one Azurite accepts."""
    if not settings.outputs_url:
        raise Unavailable("output storage is not configured (SIMGATE_OUTPUTS_URL or AzureWebJobsStorage)")
    options: dict[str, Any] = {**client_options(settings), "api_version": API_VERSION}
    return BlobServiceClient(settings.outputs_url, credential=_credential(settings), **options)


def _credential(settings: Settings) -> Any:
    if settings.storage_credential == "azurite":
        from core.storage.azurite import AzuriteCredential

        return AzuriteCredential.for_endpoint(settings.outputs_url)
    if settings.storage_credential != "managed-identity":
        raise Unavailable(f"SIMGATE_STORAGE_CREDENTIAL must be managed-identity or azurite, not "
                          f"{settings.storage_credential!r}")
    return managed_identity()


@functools.cache
def job_outputs() -> JobOutputs:
    """The worker's output store, built on first use and reused (with its delegation key)."""
    return JobOutputs(make_service(get_settings()))
