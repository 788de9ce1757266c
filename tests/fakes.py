"""In-memory fakes of the ports (`core.ports`), in the spirit of httpx's `MockTransport`: the rules of jobs,
reports, cancel, dispatch and reconcile run on them without Azurite or SSH. The integration tests run the same
rules on the real adapters.

- `FakeJobs`: a dict of jobs with an ETag counter; writes conditional on the ETag conflict as Table Storage's do.
- `FakeOutputs`: each job's upload and output containers as dicts; `upload()` is the job side's PUT.
- `FakeQueue`: records what is sent; `fail` makes it unreachable.
- `FakeRemote(handler)`: every remote program goes to `handler(target, argv, stdin)`, sync or async.

`fake_services()` wires them, with the real catalog and one target for every case, into a `core.services.Services`.
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from core.catalog import load_catalog
from core.config import read_settings
from core.errors import ConcurrencyConflict, Conflict, NotFound, Unavailable
from core.ports import CommandResult, Grant, JobQuery, StoredBlob
from core.records import Job, Study
from core.services import Services
from core.states import SWEPT, WAITING
from core.targets import Target, parse_targets

TARGET = parse_targets(
    '{"local": {"host": "127.0.0.1", "user": "sim", "key_file": "k", "scheduler": "direct", '
    '"known_hosts": "127.0.0.1 ssh-ed25519 AAAA", "base_dir": "/scratch/jobs"}}'
)["local"]


class FakeJobs:
    """The job repository: point reads, writes conditional on the ETag, pages and the reconciler's sweep."""

    def __init__(self) -> None:
        self.rows: dict[str, Job] = {}
        self.writes = 0
        self.batches = 0
        self._etags = itertools.count(1)
        self._lock = threading.Lock()

    def put(self, job: Job) -> Job:
        """Store `job` as it is, unconditionally (a test's own seeding); the stored job."""
        self.rows[job.job_id] = replace(job, etag=str(next(self._etags)))
        return self.rows[job.job_id]

    def insert(self, job: Job) -> Job:
        with self._lock:
            if job.job_id in self.rows:
                raise Conflict("a job with this id exists already")
            return self.put(job)

    def insert_many(self, jobs: list[Job]) -> list[Job]:
        self.batches += -(
            -len(jobs) // 100
        )  # the requests Table Storage's transactions of a hundred take
        return [self.insert(job) for job in jobs]

    def of_study(self, owner: str, study_id: str) -> list[Job]:
        runs = [j for j in self.rows.values() if j.owner == owner and j.study_id == study_id]
        return sorted(runs, key=lambda j: (j.study_index or 0, j.attempt or 0))

    def get(self, job_id: str) -> Job:
        if job_id not in self.rows:
            raise NotFound(f"there is no job {job_id!r}")
        return self.rows[job_id]

    def replace(self, job: Job) -> Job:
        with self._lock:
            if self.get(job.job_id).etag != job.etag:
                raise ConcurrencyConflict(
                    "the job changed while this request was handled; try again"
                )
            self.writes += 1
            return self.put(job)

    def delete(self, job: Job) -> None:
        with self._lock:
            if self.get(job.job_id).etag != job.etag:
                raise ConcurrencyConflict(
                    "the job changed while this request was handled; try again"
                )
            del self.rows[job.job_id]

    def page(
        self, query: JobQuery, per_page: int, cursor: str | None
    ) -> tuple[list[Job], str | None]:
        found = sorted(
            (j for j in self.rows.values() if _matches(j, query)), key=lambda j: j.job_id
        )
        start = int(cursor or 0)
        rest = found[start + per_page :]
        return found[start : start + per_page], str(start + per_page) if rest else None

    def due(self, lost: str, resend: str, limit: int) -> list[Job]:
        found = [
            j
            for j in self.rows.values()
            if (j.status in SWEPT and j.updated_at < lost)
            or (j.status in WAITING and j.updated_at < resend)
        ]
        return found[:limit]


def _matches(job: Job, query: JobQuery) -> bool:
    return (
        (query.owner is None or job.owner == query.owner)
        and (query.status is None or job.status is query.status)
        and (query.case_id is None or job.case_id == query.case_id)
    )


class FakeStudies:
    """The study repository: a dict with ETags, like `FakeJobs`."""

    def __init__(self) -> None:
        self.rows: dict[str, Study] = {}
        self._etags = itertools.count(1)
        self._lock = threading.Lock()

    def insert(self, study: Study) -> Study:
        with self._lock:
            if study.study_id in self.rows:
                raise Conflict("a study with this id exists already")
            self.rows[study.study_id] = replace(study, etag=str(next(self._etags)))
            return self.rows[study.study_id]

    def get(self, study_id: str) -> Study:
        if study_id not in self.rows:
            raise NotFound(f"there is no study {study_id!r}")
        return self.rows[study_id]

    def replace(self, study: Study) -> Study:
        with self._lock:
            if self.get(study.study_id).etag != study.etag:
                raise ConcurrencyConflict("the study changed while this request was handled")
            self.rows[study.study_id] = replace(study, etag=str(next(self._etags)))
            return self.rows[study.study_id]

    def delete(self, study: Study) -> None:
        with self._lock:
            if self.get(study.study_id).etag != study.etag:
                raise ConcurrencyConflict("the study changed while this request was handled")
            del self.rows[study.study_id]

    def page(self, owner: str, per_page: int, cursor: str | None) -> tuple[list[Study], str | None]:
        found = sorted(
            (s for s in self.rows.values() if s.owner == owner), key=lambda s: s.study_id
        )
        start = int(cursor or 0)
        rest = found[start + per_page :]
        return found[start : start + per_page], str(start + per_page) if rest else None


@dataclass
class FakeOutputs:
    """Each job's two containers: `uploads` (what the job side wrote) and `outputs` (what users download)."""

    uploads: dict[str, dict[str, StoredBlob]] = field(default_factory=dict)
    outputs: dict[str, dict[str, StoredBlob]] = field(default_factory=dict)

    def upload(self, job_id: str, name: str, data: bytes, *, copied: bool = False) -> StoredBlob:
        """The job side's upload of `name` into the job's upload container (which must exist)."""
        if job_id not in self.uploads:
            raise NotFound(f"no upload container for job {job_id}")
        md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
        blob = StoredBlob(
            name, len(data), "application/octet-stream", f"0x{len(data):x}{md5[:6]}", md5, copied
        )
        self.uploads[job_id][name] = blob
        return blob

    def create(self, job_id: str) -> None:
        self.uploads.setdefault(job_id, {})
        self.outputs.setdefault(job_id, {})

    def delete(self, job_id: str) -> None:
        self.close_uploads(job_id)
        self.outputs.pop(job_id, None)

    def close_uploads(self, job_id: str) -> None:
        self.uploads.pop(job_id, None)

    def uploaded(self, job_id: str) -> dict[str, StoredBlob]:
        return dict(self.uploads.get(job_id, {}))

    def promote(self, job_id: str, copies: dict[str, StoredBlob]) -> None:
        for name, source in copies.items():
            if self.uploads.get(job_id, {}).get(source.name) != source:
                raise Unavailable(f"{source.name} changed while it was being recorded")
            self.outputs.setdefault(job_id, {})[name] = source

    def blob_uri(self, job_id: str, name: str) -> str:
        return f"https://storage.test/job-{job_id}/{name}"

    def read_grant(
        self, job_id: str, name: str, *, minutes: int, filename: str, content_type: str
    ) -> Grant:
        if name not in self.outputs.get(job_id, {}):
            raise NotFound(f"no output {name}")
        return Grant(
            self.blob_uri(job_id, name), f"sp=r&rsct={content_type}&fake={minutes}", datetime.max
        )

    def upload_grant(self, job_id: str, expiry: datetime) -> Grant:
        return Grant(
            f"https://storage.test/upload-{job_id}", f"sp=cw&se={expiry.isoformat()}", expiry
        )


@dataclass
class FakeQueue:
    """The dispatch queue: what was sent, as (job id, action, target); unreachable while `fail` is set."""

    sent: list[tuple[str, str | None, str | None]] = field(default_factory=list)
    fail: bool = False
    before_send: Callable[[str, str | None], None] | None = (
        None  # called first (a test's crash, say)
    )

    def send(self, job_id: str, action: str | None = None, target: str | None = None) -> None:
        if self.before_send is not None:
            self.before_send(job_id, action)
        if self.fail:
            raise Unavailable("the dispatch queue cannot be reached")
        self.sent.append((job_id, action, target))

    def actions(self, job_id: str) -> list[str | None]:
        """The actions sent for one job, in order (None: a dispatch)."""
        return [action for sent_id, action, _ in self.sent if sent_id == job_id]


Handler = Callable[[Target, list[str], bytes | None], Any]


@dataclass
class FakeRemote:
    """The remote runner: every program goes to `handler`, which answers a `CommandResult` (or awaits one)."""

    handler: Handler
    calls: list[list[str]] = field(default_factory=list)

    async def run(
        self, target: Target, argv: list[str], stdin: bytes | None = None
    ) -> CommandResult:
        self.calls.append(argv)
        result = self.handler(target, argv, stdin)
        if inspect.isawaitable(result):
            result = await result
        assert isinstance(result, CommandResult)
        return result


def fake_services(remote: Handler | None = None, **settings: Any) -> Services:
    """Services on fakes: the real catalog, `TARGET` under every case's target name, settings from the environment
    with `settings` replacing some (a loopback callback URL unless given)."""
    base = replace(read_settings(), **{"callback_url": "http://127.0.0.1:7071", **settings})
    catalog = load_catalog(base.cases_dir)
    targets = {
        case.target: TARGET.model_copy(update={"name": case.target}) for case in catalog.cases
    }
    return Services(
        base,
        jobs=FakeJobs(),
        studies=FakeStudies(),
        outputs=FakeOutputs(),
        queue=FakeQueue(),
        remote=FakeRemote(remote or _nothing_runs),
        catalog=catalog,
        targets=targets,
    )


def _nothing_runs(target: Target, argv: list[str], stdin: bytes | None) -> CommandResult:
    raise AssertionError(f"no remote program was expected: {argv[:3]}")
