"""The ports: what the services need from storage, the dispatch queue and the targets, as Protocols.

The services (`core.job_operations`, `reports`, `cancel`, `dispatch`, `reconcile`) depend on these and nothing
else of the outside world; `core.services` plugs in the real adapters (Table Storage, Blob Storage, Queue Storage,
SSH), and tests plug in the in-memory fakes of `tests/fakes.py`. The value types that cross a port are here too,
so that a service never imports an adapter (and with it the Azure SDK or asyncssh).

Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from core.records import Job, Study
from core.states import JobState
from core.targets import Target


@dataclass(frozen=True)
class JobQuery:
    """Which jobs a page lists: one owner's (None: everyone's), perhaps only one state or one case."""

    owner: str | None
    status: JobState | None = None
    case_id: int | None = None
    study_id: str | None = None


class JobRepo(Protocol):
    """Jobs by id, every write conditional on the ETag the job was read at."""

    def insert(self, job: Job) -> Job:
        """Store a new job; the stored job, with its ETag."""
        ...

    def insert_many(self, jobs: list[Job]) -> list[Job]:
        """Store new jobs of one owner in batched transactions (one request per hundred)."""
        ...

    def of_study(self, owner: str, study_id: str) -> list[Job]:
        """Every run of one of the owner's studies, whole, in index order."""
        ...

    def get(self, job_id: str) -> Job:
        """The job (one point read); `NotFound` when there is none."""
        ...

    def replace(self, job: Job) -> Job:
        """Write `job` if it is unchanged since it was read; `ConcurrencyConflict` otherwise."""
        ...

    def delete(self, job: Job) -> None:
        """Remove `job` if it is unchanged since it was read; `ConcurrencyConflict` otherwise."""
        ...

    def page(
        self, query: JobQuery, per_page: int, cursor: str | None
    ) -> tuple[list[Job], str | None]:
        """One page of job headers, newest first (one request), and the cursor of the next page."""
        ...

    def due(self, lost: str, resend: str, limit: int) -> list[Job]:
        """The reconciler's sweep: active jobs unchanged since `lost`, and SUBMITTED or CANCELLING ones unchanged
        since `resend` (ISO times), whole, at most `limit` (one cross-partition query)."""
        ...


class StudyRepo(Protocol):
    """Studies by id, every write conditional on the ETag the study was read at."""

    def insert(self, study: Study) -> Study:
        """Store a new study."""
        ...

    def get(self, study_id: str) -> Study:
        """The study (one point read); `NotFound` when there is none."""
        ...

    def replace(self, study: Study) -> Study:
        """Write `study` if it is unchanged since it was read; `ConcurrencyConflict` otherwise."""
        ...

    def delete(self, study: Study) -> None:
        """Remove `study` if it is unchanged since it was read."""
        ...

    def page(self, owner: str, per_page: int, cursor: str | None) -> tuple[list[Study], str | None]:
        """One page of the owner's studies, newest first (one request), and the next page's cursor."""
        ...


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
    """What storage says of one uploaded blob: `copied` when a Copy Blob made it (it was not uploaded)."""

    name: str
    size: int
    content_type: str
    etag: str
    md5: str | None = None  # base64, as storage keeps it
    copied: bool = False


class OutputStore(Protocol):
    """Each job's upload container (the job writes there through its grant) and output container (users read)."""

    def create(self, job_id: str) -> None:
        """Make the job's two containers (nothing happens for one that exists)."""
        ...

    def delete(self, job_id: str) -> None:
        """Remove the job's containers with every blob in them."""
        ...

    def close_uploads(self, job_id: str) -> None:
        """Delete the job's upload container: its grant has nothing left to write to."""
        ...

    def uploaded(self, job_id: str) -> dict[str, StoredBlob]:
        """Every blob in the job's upload container by name (one listing)."""
        ...

    def promote(self, job_id: str, copies: dict[str, StoredBlob]) -> None:
        """Copy uploaded blobs (value) into the output container under new names (key), each exactly as listed:
        one that changed or went since is `Unavailable`."""
        ...

    def blob_uri(self, job_id: str, name: str) -> str:
        """The URL of one output blob, without any token."""
        ...

    def read_grant(
        self, job_id: str, name: str, *, minutes: int, filename: str, content_type: str
    ) -> Grant:
        """A read-only SAS for one output blob, saved by a browser as `filename` with `content_type`."""
        ...

    def upload_grant(self, job_id: str, expiry: datetime) -> Grant:
        """A create-and-write-only SAS for the job's upload container until `expiry` (the same for the same expiry)."""
        ...


class DispatchQueue(Protocol):
    """The dispatch worker's queue: submit a job, or with an `action`, cancel it or clean its folder on `target`."""

    def send(self, job_id: str, action: str | None = None, target: str | None = None) -> None:
        """Queue one message; `Unavailable` when the queue cannot be reached."""
        ...


@dataclass(frozen=True)
class CommandResult:
    """What a remote command did."""

    exit_status: int
    stdout: str
    stderr: str


class RemoteRunner(Protocol):
    """Runs a program on a target (over SSH): the one way anything reaches a target, used by `core.remote` only."""

    async def run(
        self, target: Target, argv: list[str], stdin: bytes | None = None
    ) -> CommandResult:
        """Run `argv` (quoted for the remote shell) and collect its output; a non-zero exit is returned."""
        ...
