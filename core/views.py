"""What the API answers: one pydantic model per response shape, and the builders that make them from records.

The services return these models and the blueprints serialise them (`blueprints._contract.plain`); the OpenAPI
document (`blueprints.openapi`) takes its response schemas from the same classes, so a shape is written once.
Request bodies are the models the routes parse (`core.bodies`, re-exported here for the document); the
schema-fuzzing tests check the answers against the document.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, field_serializer

from core.bodies import JobCopy, JobCreate, JobPatch, StatusReport, StudyCreate
from core.cases import Case, Node, Resources
from core.ports import Grant
from core.records import Change, Job, Output, Study, iso_time
from core.states import JobState

__all__ = [
    "JobCopy",
    "JobCreate",
    "JobPatch",
    "StatusReport",
    "StudyCreate",
]  # the request bodies, for the document


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

    # Only what the case sets or defaults to: an unset memory limit is left out, not shown as null. No return
    # annotation: pydantic would take it for the field's schema in the document, which is `Resources`'s.
    @field_serializer("resources", mode="wrap")
    def _resources(self, resources: Resources, dump: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]
        return {k: v for k, v in dump(resources).items() if v is not None}


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
    study_id: str | None = Field(
        default=None, exclude_if=lambda v: v is None
    )  # a study's run: which
    study_index: int | None = Field(default=None, exclude_if=lambda v: v is None)  # and its place


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


class MetricView(_View):
    """One of the case's metrics as the job's run reported it."""

    name: str
    label: str
    units: str | None
    value: float


class JobDetail(JobHeader):
    """Everything about a job; `metrics` are those its run reported, in the case's order."""

    values: list[ValueView]
    history: list[HistoryEntry]
    reason: str | None
    progress: float | None
    message: str | None
    scheduler_id: str | None
    outputs: list[OutputRecord]
    metrics: list[MetricView]


class JobStatusView(_View):
    """The cheap polling view of a job."""

    job_id: str
    status: JobState
    updated_at: str
    # Left out when unset (a poll carries only what there is), where the detail view shows them as null.
    reason: str | None = Field(default=None, exclude_if=lambda v: v is None)
    progress: float | None = Field(default=None, exclude_if=lambda v: v is None)
    message: str | None = Field(default=None, exclude_if=lambda v: v is None)


class UploadGrant(_View):
    """Where and with what a simulator uploads a job's outputs: `url`/<file>?`sas`, create and write only."""

    url: str
    sas: str
    expires_on: str


class ReportReply(JobStatusView):
    """The answer to a status report; at FINALIZING it carries the upload grant."""

    upload: UploadGrant | None = Field(default=None, exclude_if=lambda v: v is None)


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


# -- builders: the views of the records ------------------------------------------------------------------------


def header(job: Job) -> JobHeader:
    """What `GET /job` lists of a job."""
    return JobHeader(
        job_id=job.job_id,
        job_title=job.title,
        description=job.description,
        case_id=job.case_id,
        status=job.status,
        user=job.owner_name,
        created_at=job.created_at,
        updated_at=job.updated_at,
        links={
            "self": f"/job/{job.job_id}",
            "status": f"/job/{job.job_id}/status",
            "case": f"/case/{job.case_id}",
        },
        study_id=job.study_id,
        study_index=job.study_index,
    )


def detail(job: Job, case: Case) -> JobDetail:
    """The whole job: its header, every field's value with units (defaults filled), and its history."""
    values = [
        ValueView(
            name=f.name,
            label=f.label,
            value=job.values.get(f.name, f.default),
            units=f.units,
            is_default=f.name not in job.values,
        )
        for f in case.leaves()
    ]
    return JobDetail(
        **dict(header(job)),
        values=values,
        history=[_entry(c) for c in job.history],
        reason=job.reason,
        progress=job.progress,
        message=job.message,
        scheduler_id=job.scheduler_id,
        outputs=[_record(o) for o in job.outputs],
        metrics=[
            MetricView(name=m.name, label=m.label, units=m.units, value=job.metrics[m.name])
            for m in case.metrics
            if m.name in job.metrics
        ],
    )


def _entry(change: Change) -> HistoryEntry:
    return HistoryEntry(status=change.status, at=change.at, by=change.by, reason=change.reason)


def _record(output: Output) -> OutputRecord:
    return OutputRecord(**output.view())


def status_view(job: Job) -> JobStatusView:
    """The cheap polling view of `GET /job/{id}/status`: reason, progress and message only when there are any."""
    return JobStatusView(
        job_id=job.job_id,
        status=job.status,
        updated_at=job.updated_at,
        reason=job.reason or None,
        progress=job.progress,
        message=job.message or None,
    )


def report_reply(job: Job, upload: Grant | None = None) -> ReportReply:
    """The answer to a status report: the status view, with the upload grant when one is given."""
    grant = (
        None
        if upload is None
        else UploadGrant(url=upload.uri, sas=upload.token, expires_on=iso_time(upload.expires_on))
    )
    return ReportReply(**dict(status_view(job)), upload=grant)


def output_entry(job_id: str, output: Output, uri: str) -> OutputEntry:
    """An output as `GET /job/{id}/output` lists it: its record, its storage URI and its download link."""
    return OutputEntry(
        **output.view(), uri=uri, links={"download": f"/job/{job_id}/output/{output.output_id}"}
    )


def download_grant(output: Output, grant: Grant) -> DownloadGrant:
    """A read-only grant for one output, as `GET /job/{id}/output/{output_id}` answers it."""
    return DownloadGrant(
        output_id=output.output_id,
        uri=grant.uri,
        token=grant.token,
        url=grant.url,
        expires_on=iso_time(grant.expires_on),
    )


def case_header(case: Case, note: str | None = None) -> CaseHeader:
    """The public summary of a case, as listed by `GET /case`; `note` says why it cannot run (None: it can)."""
    return CaseHeader(
        id=case.id,
        name=case.slug,
        title=case.title,
        description=case.description,
        thumbnail=case.thumbnail,
        available=note is None,
        note=note,
        links={"self": f"/case/{case.id}"},
    )


def case_detail(case: Case, note: str | None = None) -> CaseDetail:
    """The whole public case: header, resources, outputs and the field tree; never scripts or targets."""
    outputs = [
        CaseOutput(
            name=o.name, label=o.label, content_type=o.content_type, description=o.description
        )
        for o in case.outputs
    ]
    return CaseDetail(
        **dict(case_header(case, note)),
        resources=case.resources,
        outputs=outputs,
        fields=list(case.fields),
    )


Value = bool | int | float | str


class StudyHeader(_View):
    """A study as listed: its case, how many runs it has, and which attempt is the latest."""

    study_id: str
    title: str
    description: str
    case_id: int
    user: str
    created_at: str
    updated_at: str
    runs: int
    attempt: int
    links: dict[str, str]


class StudyDetail(StudyHeader):
    """A whole study: its axes, base values, and its runs counted by state (from the runs themselves)."""

    combine: str
    axes: list[dict[str, object]]
    values: dict[str, Value]
    counts: dict[str, int]
    progress: float  # percent of the runs that have ended, and the running ones' own progress
    ended: bool
    ended_at: str | None


class StudyRun(_View):
    """One run of a study: the job, its place, its varied values and where it is."""

    job_id: str
    index: int
    attempt: int
    status: JobState
    values: dict[str, Value]
    progress: float | None = Field(default=None, exclude_if=lambda v: v is None)
    updated_at: str
    links: dict[str, str]


class StudyPlan(_View):
    """What `POST /study?dry_run=true` would make: how many runs, and each run's varied values."""

    case_id: int
    runs: int
    values: list[dict[str, Value]]


def study_header(study: Study) -> StudyHeader:
    """What `GET /study` lists of a study."""
    return StudyHeader(
        study_id=study.study_id,
        title=study.title,
        description=study.description,
        case_id=study.case_id,
        user=study.owner_name,
        created_at=study.created_at,
        updated_at=study.updated_at,
        runs=study.runs,
        attempt=study.attempt,
        links={
            "self": f"/study/{study.study_id}",
            "runs": f"/study/{study.study_id}/runs",
            "case": f"/case/{study.case_id}",
        },
    )


def study_detail(study: Study, runs: list[Job]) -> StudyDetail:
    """The whole study, its counts and progress taken from the latest attempt of each of its runs."""
    latest = latest_runs(runs)
    counts = {state.value: 0 for state in JobState}
    for run in latest:
        counts[run.status.value] += 1
    done = [r for r in latest if r.status.terminal]
    share = sum(100.0 if r.status.terminal else (r.progress or 0.0) for r in latest)
    ended = bool(latest) and len(done) == len(latest)
    return StudyDetail(
        **dict(study_header(study)),
        combine=study.combine,
        axes=list(study.axes),
        values=study.values,
        counts={k: v for k, v in counts.items() if v},
        progress=round(share / len(latest), 1) if latest else 0.0,
        ended=ended,
        ended_at=max(r.updated_at for r in done) if ended else None,
    )


def latest_runs(runs: list[Job]) -> list[Job]:
    """Each index's run of the latest attempt that made one (a rerun replaces a failed run, not the others)."""
    by_index: dict[int, Job] = {}
    for run in runs:
        index = run.study_index or 0
        if index not in by_index or (run.attempt or 1) > (by_index[index].attempt or 1):
            by_index[index] = run
    return [by_index[i] for i in sorted(by_index)]


def study_run(run: Job, varied: list[str]) -> StudyRun:
    """One run of a study, with the values of its study's varied fields."""
    return StudyRun(
        job_id=run.job_id,
        index=run.study_index or 0,
        attempt=run.attempt or 1,
        status=run.status,
        values={name: run.values[name] for name in varied if name in run.values},
        progress=run.progress,
        updated_at=run.updated_at,
        links={"job": f"/job/{run.job_id}", "status": f"/job/{run.job_id}/status"},
    )


class StudyResult(_View):
    """One run's row of a study's results: its place, its varied values and the metrics it reported."""

    index: int
    job_id: str
    status: JobState
    values: dict[str, Value]
    metrics: dict[str, float]


def study_result(run: Job, varied: list[str]) -> StudyResult:
    """One run's row of its study's results."""
    return StudyResult(
        index=run.study_index or 0,
        job_id=run.job_id,
        status=run.status,
        values={name: run.values[name] for name in varied if name in run.values},
        metrics=dict(run.metrics),
    )
