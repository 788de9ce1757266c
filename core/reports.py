"""Status reports from the simulator: `PATCH /job/{id}/status` with the job's own token.

The token is the one the dispatcher put in the job's 0600 file; only its hash is stored, compared in constant time,
and it is good only for that job and only while the job is active. Reports merge in state order (`core.states`): a
late or repeated report changes nothing, and a finished job takes no more (409). The FINALIZING reply carries the
upload grant; a final report names the uploaded outputs, which are checked against storage before they are listed.
Costs: one read and at most one conditional write, plus one listing of the job's container for a final report.
"""

from __future__ import annotations

import hmac
from dataclasses import replace
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

from core.auth import bearer_token
from core.cancel import settle_reported_end
from core.config import get_settings
from core.errors import Conflict, FieldProblem, InvalidBody, NotFound, Unauthenticated
from core.job import Job, Output, advanced, hash_token, iso_time, status_view
from core.jobs import change_job, read_job
from core.states import JobState, parse_state

if TYPE_CHECKING:
    from core.cases import Case
    from core.job_requests import OutputClaim, StatusReport
    from core.storage.outputs import JobOutputs, StoredBlob

REPORTER = "simulator"
FINAL = (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED)


def report_status(job_id: str, authorization: str | None, body: Any) -> dict[str, Any]:
    """Apply one report; the job's status view, with the upload grant when the job is FINALIZING."""
    from core.job_requests import StatusReport, parse_body

    token = bearer_token(authorization)
    report = parse_body(StatusReport, body)
    to = _state(report.status)
    job = _authorised(job_id, token)
    outputs = _checked_outputs(job, report) if to in FINAL and report.outputs else None
    job = change_job(job_id, lambda j: _merged(j, report, to, token, outputs), None, job)
    view = status_view(job)
    if to is JobState.FINALIZING and job.status in (JobState.FINALIZING, JobState.CANCELLING):
        # While it is being cancelled too: what the job wrote before it stopped (its logs) is still worth keeping.
        view["upload"] = _upload_grant(job.job_id)
    return view


def _state(text: str) -> JobState:
    try:
        state = parse_state(text)
    except ValueError:
        state = JobState.DRAFT
    if state in (JobState.DRAFT, JobState.SUBMITTED, JobState.QUEUED, JobState.CANCELLING):
        reportable = ["RUNNING", "FINALIZING", "COMPLETED", "FAILED", "CANCELLED", "clean up", "done"]
        raise InvalidBody(f"status {text!r} is not one a simulator reports: one of {reportable}",
                          errors=[FieldProblem("status", f"must be one of {reportable}")])
    return state


def _authorised(job_id: str, token: str) -> Job:
    """The job, if `token` is its token and it is still taking reports."""
    try:
        job = read_job(job_id)
    except NotFound:
        job = None  # answered like a wrong token: a report must not tell which job ids exist
    if job is None or not job.token_hash or not hmac.compare_digest(hash_token(token), job.token_hash):
        raise Unauthenticated("the job token is not valid for this job")
    _still_open(job)
    return job


def _still_open(job: Job) -> None:
    if job.status.terminal:
        raise Conflict(f"job {job.job_id} is {job.status.value}: it takes no more reports")


def _merged(job: Job, report: StatusReport, to: JobState, token: str, outputs: tuple[Output, ...] | None) -> Job | None:
    """The job with the report merged in, or None when the report changes nothing."""
    if not job.token_hash or not hmac.compare_digest(hash_token(token), job.token_hash):
        raise Unauthenticated("the job token is not valid for this job")  # a re-dispatch replaced it meanwhile
    _still_open(job)
    to = settle_reported_end(job, to)
    progress = report.progress if report.progress is not None else job.progress
    message = report.message if report.message is not None else job.message
    final = {"outputs": outputs or ()} if to in FINAL else {}
    moved = advanced(job, to, REPORTER, _reason(report, to), progress=progress, message=message, **final)
    if moved is not None:
        return moved
    if to is job.status and (progress, message) != (job.progress, job.message):
        return replace(job, progress=progress, message=message)
    return None  # a late or repeated report


REASON_MAX = 300  # characters of a reason: one line a user reads in a list; the whole report is the job's message


def _reason(report: StatusReport, to: JobState) -> str | None:
    """The history's reason for a final report: `exit code N: what went wrong` for a failure, on one bounded line."""
    if to is JobState.CANCELLED:
        return report.message
    if to is not JobState.FAILED:
        return None
    message = " ".join((report.message or "").split())
    if report.exit_code is not None:
        code = f"exit code {report.exit_code}"
        # The wrapper starts its message with the code (`exit code 1: blockMesh: ...`): not said twice.
        said = message == code or message.startswith((f"{code}:", f"{code};"))
        message = message if said else f"{code}: {message}" if message else code
    message = message or "the simulator reported a failure"
    return message if len(message) <= REASON_MAX else message[: REASON_MAX - 1] + "…"


def _checked_outputs(job: Job, report: StatusReport) -> tuple[Output, ...]:
    """The claimed outputs as found in storage. A COMPLETED report claiming one that is not there is refused
    whole, so no job completes with a missing output; a FAILED one lists only what is there."""
    from core.catalog import get_catalog

    claims = report.outputs or []
    stored = _store().stored(job.job_id)
    case = get_catalog().get(job.case_id)
    outputs, problems = [], []
    for index, claim in enumerate(claims):
        problem = _claim_problem(case, claim, stored)
        if problem:
            problems.append(FieldProblem(f"outputs[{index}].file", problem))
        else:
            outputs.append(_output(case, claim, stored[claim.file]))
    if problems and parse_state(report.status) is JobState.COMPLETED:
        raise InvalidBody("outputs were claimed that are not in storage or not declared by the case",
                          errors=problems)
    return tuple(outputs)


def _claim_problem(case: Case, claim: OutputClaim, stored: dict[str, StoredBlob]) -> str | None:
    spec = next((o for o in case.output_specs() if o.name == claim.name), None)
    if spec is None:
        return f"{claim.name!r} is not an output of case {case.slug!r}"
    if not fnmatchcase(claim.file, spec.glob):
        return f"{claim.file!r} does not match output {claim.name!r} ({spec.glob})"
    if claim.file not in stored:
        return f"{claim.file!r} was not uploaded"
    return None


def _output(case: Case, claim: OutputClaim, blob: StoredBlob) -> Output:
    spec = next(o for o in case.output_specs() if o.name == claim.name)
    return Output(
        output_id=output_id(claim.file), name=claim.name, file=claim.file, label=spec.label,
        content_type=blob.content_type, size=blob.size,
    )


def output_id(file: str) -> str:
    """The id of an output in URLs: its file name, with `~` for the folder separator."""
    return file.replace("/", "~")


def _upload_grant(job_id: str) -> dict[str, Any]:
    grant = _store().upload_grant(job_id, minutes=get_settings().upload_minutes)
    return {"url": grant.uri, "sas": grant.token, "expires_on": iso_time(grant.expires_on)}


def _store() -> JobOutputs:
    from core.storage.outputs import job_outputs

    return job_outputs()

