"""Jobs in Azure Table Storage: one entity per job, every write conditional on its ETag.

PartitionKey is the owner key and RowKey the rest of the job id (see `core.records`), so a job read is one point read
and a page of a caller's jobs is one partition query in row-key order (newest first).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import TableClient, TableServiceClient, UpdateMode

from core.config import Settings
from core.errors import ConcurrencyConflict, Conflict, InvalidInput, NotFound, Unavailable
from core.limits import CURSOR
from core.ports import JobQuery
from core.records import Change, Job, Output, owner_key, split_job_id
from core.states import SWEPT, WAITING, JobState
from core.storage import client_options, managed_identity, uses_key

HEADER_FIELDS = [
    "PartitionKey",
    "RowKey",
    "owner",
    "owner_name",
    "case_id",
    "title",
    "description",
    "status",
    "created_at",
    "updated_at",
    "reason",
    "progress",
    "study_id",
    "study_index",
    "attempt",
]
BATCH = 100  # entities in one table transaction (Table Storage's limit), all of one partition


class JobsTable:
    """The job repository on one `TableClient`."""

    def __init__(self, client: TableClient) -> None:
        self._client = client

    def insert(self, job: Job) -> Job:
        """Store a new job."""
        with translated():
            meta = self._client.create_entity(to_entity(job))
        return _with_etag(job, meta)

    def insert_many(self, jobs: list[Job]) -> list[Job]:
        """Store new jobs of one owner, a transaction per hundred (one request each), all or none per transaction."""
        stored: list[Job] = []
        for start in range(0, len(jobs), BATCH):
            chunk = jobs[start : start + BATCH]
            with translated():
                metas = self._client.submit_transaction([("create", to_entity(j)) for j in chunk])
            stored += [_with_etag(job, dict(meta)) for job, meta in zip(chunk, metas, strict=True)]
        return stored

    def of_study(self, owner: str, study_id: str) -> list[Job]:
        """Every run of a study, whole, in index order (one partition query, a request per thousand runs)."""
        query = "PartitionKey eq @pk and owner eq @owner and study_id eq @study"
        parameters = {"pk": owner_key(owner), "owner": owner, "study": study_id}
        runs = self.find(query, parameters, limit=1_000_000)
        return sorted(runs, key=lambda j: (j.study_index or 0, j.attempt or 0))

    def get(self, job_id: str) -> Job:
        """The job with this id (one point read); `NotFound` when there is none."""
        partition, row = split_job_id(job_id)
        with translated(job_id):
            return from_entity(self._client.get_entity(partition, row))

    def replace(self, job: Job) -> Job:
        """Write `job` if it is unchanged since it was read; `ConcurrencyConflict` otherwise."""
        with translated(job.job_id):
            meta = self._client.update_entity(
                to_entity(job),
                mode=UpdateMode.REPLACE,
                etag=job.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        return _with_etag(job, meta)

    def delete(self, job: Job) -> None:
        """Remove `job` if it is unchanged since it was read."""
        partition, row = split_job_id(job.job_id)
        with translated(job.job_id):
            self._client.delete_entity(
                partition, row, etag=job.etag, match_condition=MatchConditions.IfNotModified
            )

    def page(
        self, query: JobQuery, per_page: int, cursor: str | None
    ) -> tuple[list[Job], str | None]:
        """One page of job headers matching `query`, newest first (one request), and the next page's cursor."""
        token: Any = decode_cursor(cursor)  # the SDK's token is a dict, though typed as str
        text, parameters = _filter(query)
        pages: Any = self._client.query_entities(
            text, results_per_page=per_page, select=HEADER_FIELDS, parameters=parameters
        ).by_page(continuation_token=token)
        with translated():
            jobs = [from_entity(e) for e in next(pages)]
        return jobs, encode_cursor(pages.continuation_token)

    def due(self, lost: str, resend: str, limit: int) -> list[Job]:
        """Active jobs unchanged since `lost`, and SUBMITTED or CANCELLING ones unchanged since `resend` (one
        cross-partition query, at most `limit`, whole jobs)."""
        swept = " or ".join(f"status eq '{s.value}'" for s in SWEPT)
        waiting = " or ".join(f"status eq '{s.value}'" for s in WAITING)
        # The SDK finds "@name" between spaces: hence " )".
        text = f"(({swept}) and updated_at lt @lost ) or (({waiting}) and updated_at lt @resend )"
        return self.find(text, {"lost": lost, "resend": resend}, limit)

    def find(self, query: str, parameters: dict[str, Any], limit: int) -> list[Job]:
        """Whole jobs matching an OData filter, across partitions, at most `limit` (the sweep's query; operators'
        and tests' own)."""
        found: list[Job] = []
        with translated():
            for entity in self._client.query_entities(
                query, parameters=parameters, results_per_page=min(limit, 1000)
            ):
                found.append(from_entity(entity))
                if len(found) >= limit:
                    break
        return found


def _filter(query: JobQuery) -> tuple[str, dict[str, Any]]:
    """The OData filter of a page's query, and its parameters."""
    clauses: list[str] = []
    parameters: dict[str, Any] = {}
    if query.owner is not None:
        clauses.append("PartitionKey eq @pk and owner eq @owner")
        parameters |= {"pk": owner_key(query.owner), "owner": query.owner}
    if query.status is not None:
        clauses.append("status eq @status")
        parameters["status"] = query.status.value
    if query.case_id is not None:
        clauses.append("case_id eq @case_id")
        parameters["case_id"] = query.case_id
    if query.study_id is not None:
        clauses.append("study_id eq @study")
        parameters["study"] = query.study_id
    return " and ".join(clauses), parameters


def to_entity(job: Job) -> dict[str, Any]:
    """The table entity of a job (values, history, outputs and metrics as JSON text)."""
    partition, row = split_job_id(job.job_id)
    entity = {
        "PartitionKey": partition,
        "RowKey": row,
        "owner": job.owner,
        "owner_name": job.owner_name,
        "case_id": job.case_id,
        "title": job.title,
        "description": job.description,
        "status": job.status.value,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "values": json.dumps(job.values),
        "history": json.dumps([c.as_dict() for c in job.history]),
        "reason": job.reason,
        "progress": job.progress,
        "message": job.message,
        "outputs": json.dumps([o.as_dict() for o in job.outputs]) if job.outputs else None,
        "metrics": json.dumps(job.metrics) if job.metrics else None,
        "scheduler_id": job.scheduler_id,
        "token_hash": job.token_hash,
        "dispatch_message": job.dispatch_message,
        "dispatch_error": job.dispatch_error,
        "checked_at": job.checked_at,
        "upload_expires": job.upload_expires,
        "study_id": job.study_id,
        "study_index": job.study_index,
        "attempt": job.attempt,
    }
    return {k: v for k, v in entity.items() if v is not None}


def from_entity(entity: Any) -> Job:
    """The job stored in `entity` (a header-only entity gives empty values and history)."""
    changes = json.loads(entity.get("history", "[]"))
    history = tuple(
        Change(JobState(c["status"]), c["at"], c["by"], c.get("reason")) for c in changes
    )
    return Job(
        job_id=f"{entity['PartitionKey']}-{entity['RowKey']}",
        owner=entity["owner"],
        owner_name=entity["owner_name"],
        case_id=int(entity["case_id"]),
        title=entity["title"],
        description=entity.get("description", ""),
        status=JobState(entity["status"]),
        created_at=entity["created_at"],
        updated_at=entity["updated_at"],
        values=json.loads(entity.get("values", "{}")),
        history=history,
        reason=entity.get("reason"),
        progress=entity.get("progress"),
        message=entity.get("message"),
        outputs=tuple(Output(**o) for o in json.loads(entity.get("outputs", "[]"))),
        metrics=json.loads(entity.get("metrics", "{}")),
        scheduler_id=entity.get("scheduler_id"),
        token_hash=entity.get("token_hash"),
        dispatch_message=entity.get("dispatch_message"),
        dispatch_error=entity.get("dispatch_error"),
        checked_at=entity.get("checked_at"),
        upload_expires=entity.get("upload_expires"),
        study_id=entity.get("study_id"),
        study_index=entity.get("study_index"),
        attempt=entity.get("attempt"),
        etag=entity.metadata.get("etag") if hasattr(entity, "metadata") else None,
    )


def _with_etag(job: Job, meta: dict[str, Any]) -> Job:
    return replace(job, etag=meta.get("etag"))


def encode_cursor(token: Any) -> str | None:
    """The service's continuation token as an opaque URL-safe cursor."""
    if not token:
        return None
    return (
        base64.urlsafe_b64encode(json.dumps(token, separators=(",", ":")).encode())
        .decode()
        .rstrip("=")
    )


def decode_cursor(cursor: str | None) -> dict[str, str] | None:
    """The continuation token in a cursor: `InvalidInput` naming `cursor` when it is not even shaped like one
    (`core.limits.CURSOR`), `NotFound` when it is but names no page (it is not one of ours)."""
    if not cursor:
        return None
    if not re.fullmatch(CURSOR, cursor):
        raise InvalidInput.field(
            "cursor", "must be a cursor from a page's Link (base64url)", "query"
        )
    try:
        token = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        token = None
    if not (
        isinstance(token, dict)
        and token
        and all(isinstance(v, str) and len(v) < 300 for v in token.values())
        and set(token) <= {"PartitionKey", "RowKey"}
    ):
        # Well formed, so the document allows it: the page it names (the URL with its query) does not exist.
        raise NotFound("no page of jobs at this cursor: it is not one this service gave out")
    return token


@contextlib.contextmanager
def translated(key: str | None = None, what: str = "job") -> Iterator[None]:
    """Turn SDK errors into the project's own where they enter: missing, conflicting or unreachable."""
    try:
        yield
    except ResourceNotFoundError as exc:
        raise NotFound(f"there is no {what} {key!r}") from exc
    except ResourceModifiedError as exc:
        raise ConcurrencyConflict(
            f"the {what} changed while this request was handled; try again"
        ) from exc
    except ResourceExistsError as exc:
        raise Conflict(f"a {what} with this id exists already") from exc
    except AzureError as exc:
        raise Unavailable(f"{what} storage failed: {type(exc).__name__}") from exc


def make_client(settings: Settings, table: str | None = None) -> TableClient:
    """A table client for the jobs table (or `table`), by key locally and by managed identity in Azure."""
    options = client_options(settings)
    if uses_key(settings):
        service = TableServiceClient.from_connection_string(settings.storage_connection, **options)
    else:
        endpoint = f"https://{settings.storage_account}.table.core.windows.net"
        service = TableServiceClient(endpoint, credential=managed_identity(), **options)
    name = table or settings.jobs_table
    with contextlib.suppress(ResourceExistsError):
        service.create_table(name)
    return service.get_table_client(name)
