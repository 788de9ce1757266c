"""Status reports from the simulator: `PATCH /job/{id}/status` with the job's own token.

The token is the one the dispatcher put in the job's 0600 file; only its hash is stored, compared in constant time,
and it is good only for that job and only while the job is active. It is checked before the body is read, so a
caller without it learns nothing of the body's rules. Reports merge in state order (`core.states`): a late or
repeated report changes nothing, and a finished job takes no more (409).

The FINALIZING reply carries the upload grant for the job's upload container; later FINALIZING reports get the same
grant back while it has a while left, and a new one (a renewal) when it is about to end. A final report names the
uploaded outputs: each is checked against the upload container's listing (there, declared by the case, claimed
once, and uploaded rather than copied from elsewhere), then copied as listed into the job's output container, which
no grant covers, and recorded with the size and MD5 storage gives and the content type the case declares. It also
carries the metrics the wrapper found (finite numbers, at most MAX_METRICS); those the case declares are recorded.
Costs: one read and at most one conditional write, plus, for a final report, one listing and one copy per output.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any

from core import transitions
from core.auth import bearer_token
from core.bodies import OutputClaim, StatusReport, parse_body
from core.cases import Case
from core.cases import Output as OutputSpec
from core.catalog import get_catalog
from core.errors import Conflict, FieldProblem, InvalidBody, NotFound, Unauthenticated
from core.job_store import change_job, read_job
from core.ports import Grant, StoredBlob
from core.records import Job, Output, hash_token
from core.services import get_settings, services
from core.states import TERMINAL, JobState, parse_state
from core.views import ReportReply, report_reply

REASON_LENGTH = (
    300  # characters of a reason: one line a user reads in a list; the whole report is the message
)


def report_status(job_id: str, authorization: str | None, body: Callable[[], Any]) -> ReportReply:
    """Apply one report (`body` reads it, once the token is known good); the job's status view, with the upload
    grant when the job is FINALIZING."""
    token = bearer_token(authorization)
    job = _authorised(job_id, token)
    report = parse_body(StatusReport, body())
    to = reported_state(report.status)
    outputs = _recorded_outputs(job, report) if to in TERMINAL and report.outputs else None
    metrics = declared_metrics(job, report) if to in TERMINAL else None
    job = change_job(job_id, lambda j: merged(j, report, to, token, outputs, metrics), None, job)
    if (
        to is JobState.FINALIZING
        and job.status in (JobState.FINALIZING, JobState.CANCELLING)
        and job.upload_expires
    ):
        # While it is being cancelled too: what the job wrote before it stopped (its logs) is still worth keeping.
        return report_reply(job, _upload_grant(job))
    return report_reply(job)


def reported_state(text: str) -> JobState:
    """The state a report's `status` names; `InvalidBody` naming `status` unless a simulator may report it."""
    try:
        state = parse_state(text)
    except ValueError:
        state = JobState.DRAFT
    if not state.reportable:
        reportable = [*(s.value for s in JobState if s.reportable), "clean up", "done"]
        raise InvalidBody(
            f"status {text!r} is not one a simulator reports: one of {reportable}",
            errors=[FieldProblem("status", f"must be one of {reportable}")],
        )
    return state


def _authorised(job_id: str, token: str) -> Job:
    """The job, if `token` is its token and it is still taking reports."""
    try:
        job: Job | None = read_job(job_id)
    except NotFound:
        job = None  # answered like a wrong token: a report must not tell which job ids exist
    _check_token(job, token)
    assert job is not None
    _still_open(job)
    return job


def _check_token(job: Job | None, token: str) -> None:
    if (
        job is None
        or not job.token_hash
        or not hmac.compare_digest(hash_token(token), job.token_hash)
    ):
        raise Unauthenticated("the job token is not valid for this job")


def _still_open(job: Job) -> None:
    if job.status.terminal:
        raise Conflict(f"job {job.job_id} is {job.status.value}: it takes no more reports")


def merged(
    job: Job,
    report: StatusReport,
    to: JobState,
    token: str,
    outputs: tuple[Output, ...] | None,
    metrics: dict[str, float] | None = None,
) -> Job | None:
    """The job with the report merged in (`core.transitions.reported`), or None when it changes nothing."""
    _check_token(job, token)  # a re-dispatch may have replaced it meanwhile
    return transitions.reported(
        job,
        to,
        progress=report.progress,
        message=report.message,
        reason=report_reason(report, to),
        outputs=outputs,
        grant_minutes=get_settings().upload_minutes,
        metrics=metrics,
    )


def declared_metrics(job: Job, report: StatusReport) -> dict[str, float]:
    """The report's metrics that the job's case declares; others are left out rather than refused. The wrapper
    sends only those its job file names, so another one means the case changed while the job ran, and refusing a
    COMPLETED report over it would end a good run FAILED over a number nobody asks for any more."""
    if not report.metrics:
        return {}
    declared = {m.name for m in get_catalog().get(job.case_id).metrics}
    return {name: value for name, value in report.metrics.items() if name in declared}


def report_reason(report: StatusReport, to: JobState) -> str | None:
    """The history's reason for a final report: `exit code N: what went wrong` for a failure, on one bounded line."""
    if to is JobState.CANCELLED:
        return bounded(report.message)
    if to is not JobState.FAILED:
        return None
    message = " ".join((report.message or "").split())
    if report.exit_code is not None:
        code = f"exit code {report.exit_code}"
        # The wrapper starts its message with the code (`exit code 1: blockMesh: ...`): not said twice.
        said = message == code or message.startswith((f"{code}:", f"{code};"))
        message = message if said else f"{code}: {message}" if message else code
    return bounded(message) or "the simulator reported a failure"


def bounded(text: str | None) -> str | None:
    """A reason on one line of at most REASON_LENGTH characters."""
    if not text:
        return text
    line = " ".join(text.split())
    return line if len(line) <= REASON_LENGTH else line[: REASON_LENGTH - 1] + "…"


def _recorded_outputs(job: Job, report: StatusReport) -> tuple[Output, ...]:
    """The claimed outputs, checked against the upload container and copied from it into the output container.

    A COMPLETED report with any bad claim is refused whole, so no job completes with a missing or forged output;
    a FAILED or CANCELLED one records only the good claims."""
    case = get_catalog().get(job.case_id)
    uploaded = services().outputs.uploaded(job.job_id)
    good: list[tuple[OutputClaim, OutputSpec, StoredBlob]] = []
    problems: list[FieldProblem] = []
    seen: set[str] = set()
    for index, claim in enumerate(report.outputs or []):
        spec, problem = _claim_problem(case, claim, uploaded, seen)
        seen.add(claim.file)
        if problem or spec is None:
            problems.append(FieldProblem(f"outputs[{index}].file", problem or "is not valid"))
        else:
            good.append((claim, spec, uploaded[claim.file]))
    if problems and parse_state(report.status) is JobState.COMPLETED:
        raise InvalidBody(
            "outputs were claimed that are not in storage, not declared by the case, or forged",
            errors=problems,
        )
    # A prefix of this report's own: a concurrent report's copies (of other bytes) cannot replace these.
    prefix = f"r{secrets.token_hex(6)}"
    services().outputs.promote(
        job.job_id, {f"{prefix}/{claim.file}": blob for claim, _, blob in good}
    )
    return tuple(_output(claim, spec, blob, f"{prefix}/{claim.file}") for claim, spec, blob in good)


def _claim_problem(
    case: Case, claim: OutputClaim, uploaded: dict[str, StoredBlob], seen: set[str]
) -> tuple[OutputSpec | None, str | None]:
    spec = next((o for o in case.output_specs() if o.name == claim.name), None)
    if spec is None:
        return None, f"{claim.name!r} is not an output of case {case.slug!r}"
    if not fnmatchcase(claim.file, spec.glob):
        return spec, f"{claim.file!r} does not match output {claim.name!r} ({spec.glob})"
    if claim.file in seen:
        return spec, f"{claim.file!r} is claimed more than once"
    if claim.file not in uploaded:
        return spec, f"{claim.file!r} was not uploaded"
    if uploaded[claim.file].copied:
        return spec, f"{claim.file!r} was copied from elsewhere in storage, not uploaded"
    return spec, None


def _output(claim: OutputClaim, spec: OutputSpec, blob: StoredBlob, name: str) -> Output:
    return Output(
        output_id=output_id(claim.file),
        name=claim.name,
        file=claim.file,
        label=spec.label,
        content_type=spec.content_type,
        size=blob.size,
        md5=blob.md5,
        blob=name,
    )


def output_id(file: str) -> str:
    """The id of an output in URLs: its file name, with `~` for the folder separator."""
    return file.replace("/", "~")


def _upload_grant(job: Job) -> Grant:
    assert job.upload_expires is not None
    return services().outputs.upload_grant(job.job_id, datetime.fromisoformat(job.upload_expires))
