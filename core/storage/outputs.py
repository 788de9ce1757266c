"""Job outputs in Blob Storage: two containers per job, and the user-delegation SAS grants that reach them.

The simulator uploads into the job's upload container (`upload-<job id>`), which its grant covers: create and
write only, no read, list or delete, for minutes. At the final report the gateway copies each output it records,
server-side and pinned to the ETag it listed, into the job's output container (`job-<job id>`, under a prefix of
its own for that report), which no grant ever covers; users download from there only. So nothing the job side
holds can change or add a blob that users download, during the job or after it; and once the job has ended its
upload container is deleted, which leaves the grant nothing to write to.

Every SAS is signed in-function with a user delegation key, which the service gives to the Function App's identity
(locally, to a token Azurite accepts); no account key signs anything. The key is fetched once and reused until
shortly before it expires, so signing a download costs no storage request.
"""

from __future__ import annotations

import base64
import contextlib
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.storage.blob import (
    BlobBlock,
    BlobClient,
    BlobSasPermissions,
    BlobServiceClient,
    ContainerSasPermissions,
    ContentSettings,
    UserDelegationKey,
    generate_blob_sas,
    generate_container_sas,
)

from core.config import MAX_GRANT_MINUTES, Settings
from core.errors import Unavailable
from core.ports import Grant, StoredBlob
from core.storage import API_VERSION, client_options, managed_identity
from core.storage.azurite import AzuriteCredential

KEY_LIFETIME = timedelta(hours=6)
# A key is replaced once less than this is left: every SAS signed with it must expire before it does.
KEY_MARGIN = timedelta(minutes=MAX_GRANT_MINUTES + 5)
CLOCK_SKEW = timedelta(
    minutes=5
)  # SAS start times are back-dated: the storage service's clock may be ahead
# Copy Blob From URL (one synchronous request) takes sources up to 256 MiB; larger outputs are copied as blocks
# with Put Block From URL, then committed.
SYNC_COPY_LIMIT = 256 * 1024 * 1024
COPY_BLOCK = 100 * 1024 * 1024
COPY_THREADS = 4


def container_of(job_id: str) -> str:
    """The container users download a job's outputs from; no grant covers it (job ids are valid container names)."""
    return f"job-{job_id}"


def uploads_of(job_id: str) -> str:
    """The container the job's upload grant covers; deleted once the job has ended."""
    return f"upload-{job_id}"


def attachment(filename: str) -> str:
    """A `Content-Disposition` that saves the download as `filename` (RFC 6266, with RFC 8187's `filename*`)."""
    plain = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\;' else "_" for c in filename
    )
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(filename, safe='')}"


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
        return f"{self._container_uri(container_of(job_id))}/{quote(name)}"

    def create(self, job_id: str) -> None:
        """Make the job's two containers (nothing happens for one that exists)."""
        for container in (container_of(job_id), uploads_of(job_id)):
            with _translated(), contextlib.suppress(ResourceExistsError):
                self._service.create_container(container)

    def delete(self, job_id: str) -> None:
        """Remove the job's containers with every blob in them (nothing happens for one that is gone)."""
        self.close_uploads(job_id)
        with _translated(), contextlib.suppress(ResourceNotFoundError):
            self._service.delete_container(container_of(job_id))

    def close_uploads(self, job_id: str) -> None:
        """Delete the job's upload container: its grant has nothing left to write to."""
        with _translated(), contextlib.suppress(ResourceNotFoundError):
            self._service.delete_container(uploads_of(job_id))

    def uploaded(self, job_id: str) -> dict[str, StoredBlob]:
        """Every blob in the job's upload container by name, as storage describes it (one listing)."""
        container = self._service.get_container_client(uploads_of(job_id))
        with _translated(), contextlib.suppress(ResourceNotFoundError):
            return {b.name: _stored(b) for b in container.list_blobs(include=["copy"])}
        return {}

    def promote(self, job_id: str, copies: dict[str, StoredBlob]) -> None:
        """Copy uploaded blobs (value) into the output container under their new names (key), server-side, each
        exactly as listed: one that changed or went since is `Unavailable` (report again)."""
        if not copies:
            return
        with ThreadPoolExecutor(min(COPY_THREADS, max(len(copies), 1))) as pool:
            for done in [
                pool.submit(self._copy, job_id, source, name) for name, source in copies.items()
            ]:
                done.result()

    def _copy(self, job_id: str, source: StoredBlob, name: str) -> None:
        url = self._source_url(job_id, source.name)
        target = self._service.get_blob_client(container_of(job_id), name)
        try:
            with _translated():
                if source.size <= SYNC_COPY_LIMIT:
                    target.start_copy_from_url(
                        url,
                        requires_sync=True,
                        source_etag=source.etag,
                        source_match_condition=MatchConditions.IfNotModified,
                    )
                else:
                    self._copy_blocks(job_id, source, url, target)
        except (
            ResourceModifiedError,
            ResourceNotFoundError,
        ):  # rewritten, or the job ended meanwhile
            raise Unavailable(f"{source.name} changed while it was being recorded") from None

    def _copy_blocks(self, job_id: str, source: StoredBlob, url: str, target: BlobClient) -> None:
        """A large blob, as blocks copied from the source, then committed; the source must not have changed."""
        blocks = []
        for index, offset in enumerate(range(0, source.size, COPY_BLOCK)):
            block = base64.b64encode(f"{index:08d}".encode()).decode()
            target.stage_block_from_url(block, url, offset, min(COPY_BLOCK, source.size - offset))
            blocks.append(BlobBlock(block))
        md5 = bytearray(base64.b64decode(source.md5)) if source.md5 else None
        target.commit_block_list(
            blocks, content_settings=ContentSettings(source.content_type, content_md5=md5)
        )
        now = self._service.get_blob_client(uploads_of(job_id), source.name).get_blob_properties()
        if now.etag.strip('"') != source.etag.strip(
            '"'
        ):  # written meanwhile: the copy may mix two versions
            raise ResourceModifiedError("the source changed during the copy")

    def _source_url(self, job_id: str, name: str) -> str:
        start, expiry = _window(10)
        token = generate_blob_sas(
            self._account,
            uploads_of(job_id),
            name,
            user_delegation_key=self._delegation_key(),
            permission=BlobSasPermissions(read=True),
            start=start,
            expiry=expiry,
            protocol="https",
        )
        return f"{self._container_uri(uploads_of(job_id))}/{quote(name)}?{token}"

    def read_grant(
        self, job_id: str, name: str, *, minutes: int, filename: str, content_type: str
    ) -> Grant:
        """A read-only, HTTPS-only SAS for one output blob that makes a browser save it as `filename` with
        `content_type`, whatever the blob's own properties say."""
        start, expiry = _window(minutes)
        token = generate_blob_sas(
            self._account,
            container_of(job_id),
            name,
            user_delegation_key=self._delegation_key(),
            permission=BlobSasPermissions(read=True),
            start=start,
            expiry=expiry,
            protocol="https",
            content_disposition=attachment(filename),
            content_type=content_type,
        )
        return Grant(self.blob_uri(job_id, name), token, expiry)

    def upload_grant(self, job_id: str, expiry: datetime) -> Grant:
        """A create-and-write-only, HTTPS-only SAS for the job's upload container until `expiry`: no read, list or
        delete. The same `expiry` signs the same grant again (its start is derived from it)."""
        token = generate_container_sas(
            self._account,
            uploads_of(job_id),
            user_delegation_key=self._delegation_key(),
            permission=ContainerSasPermissions(create=True, write=True),
            start=grant_start(expiry),
            expiry=expiry,
            protocol="https",
        )
        return Grant(self._container_uri(uploads_of(job_id)), token, expiry)

    def _container_uri(self, container: str) -> str:
        return f"{self._service.url.rstrip('/')}/{container}"

    def _delegation_key(self) -> UserDelegationKey:
        """The cached user delegation key, fetched again once it is close to expiring."""
        with self._lock:
            now = datetime.now(UTC)
            if self._key is None or self._key_expiry - now < KEY_MARGIN:
                with _translated():
                    self._key = self._service.get_user_delegation_key(
                        now - CLOCK_SKEW, now + KEY_LIFETIME
                    )
                self._key_expiry = now + KEY_LIFETIME
            return self._key


def grant_start(expiry: datetime) -> datetime:
    """The start of the grant that ends at `expiry`: early enough for any clock skew, and a function of `expiry`
    alone, so that a grant signed again for the same window is the same grant."""
    return expiry - timedelta(minutes=MAX_GRANT_MINUTES) - CLOCK_SKEW


def _stored(blob: Any) -> StoredBlob:
    md5 = blob.content_settings.content_md5
    return StoredBlob(
        name=blob.name,
        size=blob.size,
        content_type=blob.content_settings.content_type or "application/octet-stream",
        etag=blob.etag,
        md5=base64.b64encode(md5).decode() if md5 else None,
        copied=bool(blob.copy and (blob.copy.id or blob.copy.source)),
    )


def _window(minutes: int) -> tuple[datetime, datetime]:
    now = datetime.now(UTC).replace(microsecond=0)
    return now - CLOCK_SKEW, now + timedelta(minutes=min(minutes, MAX_GRANT_MINUTES))


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except (ResourceNotFoundError, ResourceExistsError, ResourceModifiedError):
        raise
    except AzureError as exc:
        raise Unavailable(f"output storage failed: {type(exc).__name__}") from exc


def make_service(settings: Settings) -> BlobServiceClient:
    """A blob service client signed in with a token: the managed identity, or locally one Azurite accepts."""
    if not settings.outputs_url:
        raise Unavailable(
            "output storage is not configured (SIMGATE_OUTPUTS_URL or AzureWebJobsStorage)"
        )
    options: dict[str, Any] = {**client_options(settings), "api_version": API_VERSION}
    return BlobServiceClient(settings.outputs_url, credential=_credential(settings), **options)


def _credential(settings: Settings) -> Any:
    if settings.storage_credential == "azurite":
        return AzuriteCredential.for_endpoint(settings.outputs_url)
    if settings.storage_credential != "managed-identity":
        raise Unavailable(
            f"SIMGATE_STORAGE_CREDENTIAL must be managed-identity or azurite, not "
            f"{settings.storage_credential!r}"
        )
    return managed_identity()
