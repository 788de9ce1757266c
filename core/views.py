"""The HTTP contract as data: the shape of every response, and what each function takes and answers.

`core.openapi` turns this, with the app's function metadata (routes, methods, docstrings), into the OpenAPI
document served at `/openapi.json`. Request bodies are the models the routes parse (`core.bodies`); the
response models here are checked against what the routes really answer by the schema-fuzzing tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.bodies import OUTPUT_FILE, JobCopy, JobCreate, JobPatch, StatusReport
from core.cases import Node, Resources
from core.limits import CASE_REF, CURSOR, MAX_CASE_ID, MAX_CURSOR, MAX_PAGE, MAX_PER_PAGE
from core.records import JOB_ID
from core.states import JobState


class _View(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CaseHeader(_View):
    """A case as listed; `available` is false when its simulator lacks what it needs, and `note` then says what."""

    id: int
    name: str
    title: str
    description: str
    thumbnail: str | None
    available: bool
    note: str | None
    links: dict[str, str]


class CaseOutput(_View):
    """An output a case declares."""

    name: str
    label: str
    content_type: str
    description: str


class CaseDetail(CaseHeader):
    """A whole case: its typed field tree (groups nest leaves), resources and outputs."""

    resources: Resources
    outputs: list[CaseOutput]
    fields: list[Node]


class JobHeader(_View):
    """A job as listed."""

    job_id: str
    job_title: str
    description: str
    case_id: int
    status: JobState
    user: str
    created_at: str
    updated_at: str
    links: dict[str, str]


class ValueView(_View):
    """One field's value in a job, with its units; `is_default` when the job has not set it."""

    name: str
    label: str
    value: bool | int | float | str | None
    units: str | None
    is_default: bool


class HistoryEntry(_View):
    """One change of a job's state."""

    status: JobState
    at: str
    by: str
    reason: str | None


class OutputRecord(_View):
    """An output a job produced, as storage found it."""

    output_id: str
    name: str
    file: str
    label: str
    content_type: str
    size: int
    md5: str | None


class JobDetail(JobHeader):
    """Everything about a job."""

    values: list[ValueView]
    history: list[HistoryEntry]
    reason: str | None
    progress: float | None
    message: str | None
    scheduler_id: str | None
    outputs: list[OutputRecord]


class JobStatusView(_View):
    """The cheap polling view of a job."""

    job_id: str
    status: JobState
    updated_at: str
    reason: str | None = None
    progress: float | None = None
    message: str | None = None


class UploadGrant(_View):
    """Where and with what a simulator uploads a job's outputs: `url`/<file>?`sas`, create and write only."""

    url: str
    sas: str
    expires_on: str


class ReportReply(JobStatusView):
    """The answer to a status report; at FINALIZING it carries the upload grant."""

    upload: UploadGrant | None = None


class OutputEntry(OutputRecord):
    """An output as listed, with its storage URI (no token) and its download link."""

    uri: str
    links: dict[str, str]


class DownloadGrant(_View):
    """A read-only SAS for one output: `url` is `uri?token`, valid until `expires_on`."""

    output_id: str
    uri: str
    token: str
    url: str
    expires_on: str


class ProblemField(_View):
    """One bad input."""

    name: str
    in_: str = Field(alias="in")
    detail: str


class Problem(_View):
    """An RFC 9457 problem: what went wrong, and for bad input, each bad field."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[ProblemField] | None = None


@dataclass(frozen=True)
class Query:
    """A query parameter."""

    name: str
    schema: dict[str, Any]
    description: str


@dataclass(frozen=True)
class PathParameter:
    """A route's `{name}`: what the code takes there, declared exactly, so that a value the document allows is never
    refused as malformed (400), only perhaps not found (404). `carried_by` names the response fields that hold such
    a value: the document links the operations that answer them to the operations that take it."""

    schema: dict[str, Any]
    description: str
    carried_by: tuple[str, ...]


PATH_PARAMETERS: dict[str, PathParameter] = {
    # `core.records.JOB_ID`: <owner key>-<inverted time>-<random>, 37 characters.
    "job_id": PathParameter({"type": "string", "pattern": JOB_ID.pattern, "minLength": 37, "maxLength": 37},
                            "the job's id, as `POST /job` answered it", ("job_id",)),
    # `id` is a case's own id in CaseHeader and CaseDetail, the only views with an `id`.
    "case_id": PathParameter({"type": "string", "pattern": CASE_REF, "minLength": 1, "maxLength": 63},
                             "the case's id (a whole number) or its name", ("case_id", "id")),
    # `core.reports.output_id`: the output's file name (a claim's `file`), with `~` for the folder separator.
    "output_id": PathParameter({"type": "string", "pattern": OUTPUT_FILE.replace("/", "~"), "minLength": 1,
                                "maxLength": 300}, "an `output_id` from the job's outputs", ("output_id",)),
}


Auth = Literal["user", "job", "none"]
Body = type[BaseModel] | None
Answer = type[BaseModel] | tuple[type[BaseModel]] | None  # a model, a list of one (a 1-tuple), or no body


@dataclass(frozen=True)
class Operation:
    """What one HTTP function takes and answers, beyond its route and methods."""

    auth: Auth
    success: dict[int, Answer]
    errors: tuple[int, ...]
    body: Body = None
    body_required: bool = True
    query: tuple[Query, ...] = ()
    headers: dict[int, tuple[str, ...]] = field(default_factory=dict)  # response headers by status
    documented: bool = True  # False for what is not API (the UI's static files)


PER_PAGE = Query("per_page", {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE}, "items a page")
STORED = (400, 401, 404, 503)  # any route that reads a job: bad id, no token, not yours, storage down
OPERATIONS: dict[str, Operation] = {
    "list_cases": Operation("none", {200: (CaseHeader,)}, (400,), query=(
        Query("page", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE}, "page number, from 1"),
        Query("per_page", {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE}, "cases a page")),
        headers={200: ("Link", "X-Total-Count")}),
    "show_case": Operation("none", {200: CaseDetail}, (400, 404)),
    "create_job": Operation("user", {201: JobDetail}, (400, 401, 403, 413, 415, 422, 503), body=JobCreate,
                            headers={201: ("Location",)}),
    "list_jobs": Operation("user", {200: (JobHeader,)}, (400, 401, 403, 404, 503), query=(
        Query("status", {"type": "string", "enum": [s.value for s in JobState]}, "only jobs in this state"),
        Query("case_id", {"type": "integer", "minimum": 1, "maximum": MAX_CASE_ID}, "only jobs of this case"),
        PER_PAGE, Query("cursor", {"type": "string", "pattern": CURSOR, "maxLength": MAX_CURSOR},
                        "from the previous page's Link; 404 when it is not one this service gave out"),
        Query("all", {"type": "string", "enum": ["true", "false"]}, "admins: everyone's jobs")),
        headers={200: ("Link",)}),
    "show_job": Operation("user", {200: JobDetail}, STORED),
    "run_job": Operation("user", {202: JobStatusView}, (*STORED, 409, 422), headers={202: ("Location",)}),
    "update_job": Operation("user", {200: JobDetail}, (*STORED, 409, 413, 415, 422), body=JobPatch),
    "delete_job": Operation("user", {204: None}, (*STORED, 409)),
    "job_status": Operation("user", {200: JobStatusView}, STORED),
    "report_status": Operation("job", {200: ReportReply}, (400, 401, 409, 413, 415, 422, 503), body=StatusReport),
    "list_outputs": Operation("user", {200: (OutputEntry,)}, STORED),
    "download_output": Operation("user", {200: DownloadGrant, 302: None}, STORED, query=(
        Query("redirect", {"type": "string", "enum": ["true", "false", "1", "0"]}, "answer 302 to the URL"),),
        headers={302: ("Location",)}),
    "cancel_job": Operation("user", {202: JobStatusView}, (*STORED, 409), headers={202: ("Location",)}),
    "copy_job": Operation("user", {201: JobDetail}, (*STORED, 413, 415, 422), body=JobCopy, body_required=False,
                          headers={201: ("Location",)}),
    "openapi": Operation("none", {200: None}, ()),
    "ui_root": Operation("none", {302: None}, (), documented=False),
    "ui_config": Operation("none", {200: None}, (), documented=False),
    "ui_files": Operation("none", {200: None, 304: None}, (404,), documented=False),
}
