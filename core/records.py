"""A job: its record and its id scheme (the views the API shows of it are `core.views`).

A job id names its storage place: `<owner key>-<inverted time>-<random>`. The owner key (a hash of the owner's id)
is the Table Storage partition and the rest the row key, so reading a job by id is one point read, and listing a
caller's jobs newest first is one query of one partition in row-key order, whatever the table's size.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from core.errors import InvalidInput
from core.states import JobState

JOB_ID = re.compile(r"^([0-9a-f]{16})-([0-9]{13}-[0-9a-f]{6})$")
_TIME_CEILING_MS = 10**13  # year 2286: inverting against it makes newer jobs sort first


@dataclass(frozen=True)
class Change:
    """One entry of a job's history: the state it moved to, when, by whom, and why."""

    status: JobState
    at: str
    by: str
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The entry as stored and shown."""
        return {"status": self.status.value, "at": self.at, "by": self.by, "reason": self.reason}


@dataclass(frozen=True)
class Output:
    """One file a job produced, as found in storage: `name` is the case's output (or a log) it belongs to."""

    output_id: str
    name: str
    file: str
    label: str
    content_type: str
    size: int
    md5: str | None = None  # base64 MD5 of the bytes, as storage gave it
    blob: str | None = (
        None  # its name in the job's output container (None: `file`, as outputs were once kept)
    )

    @property
    def blob_name(self) -> str:
        """The blob that holds the output's bytes in the job's output container."""
        return self.blob or self.file

    def as_dict(self) -> dict[str, Any]:
        """The output as stored."""
        return {**self.view(), "blob": self.blob}

    def view(self) -> dict[str, Any]:
        """The output as users see it."""
        return {
            "output_id": self.output_id,
            "name": self.name,
            "file": self.file,
            "label": self.label,
            "content_type": self.content_type,
            "size": self.size,
            "md5": self.md5,
        }


@dataclass(frozen=True)
class Job:
    """A job as stored; `etag` is the version it was read at, for conditional writes."""

    job_id: str
    owner: str
    owner_name: str
    case_id: int
    title: str
    description: str
    status: JobState
    created_at: str
    updated_at: str
    values: dict[str, Any] = field(default_factory=dict)
    history: tuple[Change, ...] = ()
    reason: str | None = None
    progress: float | None = None
    message: str | None = None  # the simulator's last word on how the job is going
    outputs: tuple[Output, ...] = ()
    metrics: dict[str, float] = field(
        default_factory=dict
    )  # the case's metrics, as the final report gave them
    scheduler_id: str | None = None
    token_hash: str | None = (
        None  # SHA-256 of the job token the simulator calls back with; the token is never stored
    )
    dispatch_message: str | None = None  # the queue message that claimed the dispatch
    dispatch_error: str | None = (
        None  # the last transient dispatch failure, for the poison handler's reason
    )
    checked_at: str | None = (
        None  # when the reconciler last found it alive, or (SUBMITTED) re-sent its dispatch
    )
    upload_expires: str | None = (
        None  # when the job's upload grant ends (set once one has been given)
    )
    study_id: str | None = None  # the study this job is a run of
    study_index: int | None = None  # its place among the study's runs, from 0
    attempt: int | None = None  # which of the study's attempts made it (1, then one more per rerun)
    etag: str | None = None


@dataclass(frozen=True)
class Study:
    """A case run over axes of values: its runs are jobs of the owner that carry its id and their index."""

    study_id: str  # the same shape as a job id: the owner key, then the row
    owner: str
    owner_name: str
    case_id: int
    title: str
    description: str
    created_at: str
    updated_at: str
    values: dict[str, Any] = field(default_factory=dict)  # the base values, checked
    axes: tuple[dict[str, Any], ...] = ()  # as the request gave them
    combine: str = "grid"
    runs: int = 0
    attempt: int = 1
    etag: str | None = None


def hash_token(token: str) -> str:
    """How a job token is kept: its SHA-256, never the token."""
    return hashlib.sha256(token.encode()).hexdigest()


def now_iso() -> str:
    """The current UTC time as ISO 8601 with milliseconds and a Z."""
    return iso_time(datetime.now(UTC))


def iso_time(moment: datetime) -> str:
    """A UTC time as ISO 8601 with milliseconds and a Z."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def owner_key(user_id: str) -> str:
    """The partition of a user's jobs."""
    return hashlib.sha256(user_id.encode()).hexdigest()[:16]


def new_job_id(user_id: str) -> str:
    """A fresh id for a job of `user_id`, sorting before every older job of theirs."""
    inverted = _TIME_CEILING_MS - int(datetime.now(UTC).timestamp() * 1000)
    return f"{owner_key(user_id)}-{inverted:013d}-{secrets.token_hex(3)}"


def split_job_id(job_id: str, name: str = "job_id") -> tuple[str, str]:
    """The (partition, row) of a job id (or a study id, of the same shape); `InvalidInput` naming `name` when it
    has the wrong shape."""
    match = JOB_ID.fullmatch(job_id)
    if not match:
        raise InvalidInput.field(name, f"is not a {name.removesuffix('_id')} id", "path")
    return match.group(1), match.group(2)
