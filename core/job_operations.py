"""Job operations for an authenticated caller: create, edit, run, list, show, poll, copy and delete.

Each reads and changes jobs through `core.job_store` (ownership, conditional writes) and moves them only by the
events of `core.transitions`.
"""

from __future__ import annotations

import logging
from typing import Any

from core import transitions
from core.auth import Principal
from core.bodies import JobCopy, JobCreate, JobPatch, parse_body
from core.cases import Case
from core.catalog import get_catalog, unavailable_note
from core.errors import (
    Conflict,
    FieldProblem,
    Forbidden,
    InvalidInput,
    InvalidValues,
    NotFound,
    Unavailable,
)
from core.job_store import change_job, owned_job, readable_job, retrying
from core.ports import JobQuery
from core.records import Change, Job, new_job_id, now_iso
from core.services import services
from core.states import JobState
from core.targets import get_target
from core.values import check_values, missing_required
from core.views import JobDetail, JobHeader, JobStatusView, detail, header, status_view

log = logging.getLogger(__name__)


def _case(case_id: int) -> Case:
    return get_catalog().get(case_id)


def create_job(caller: Principal, body: Any) -> JobDetail:
    """A new DRAFT job owned by the caller, of an existing case."""
    request = parse_body(JobCreate, body)
    if request.user is not None and request.user not in (caller.name, caller.user_id):
        raise Forbidden("a job can only be made for yourself: 'user' must be you or left out")
    try:
        case = _case(request.case_id)
    except NotFound:
        raise InvalidInput.field("case_id", f"names no case: {request.case_id}", "body") from None
    now = now_iso()
    job = Job(
        job_id=new_job_id(caller.user_id),
        owner=caller.user_id,
        owner_name=caller.name,
        case_id=case.id,
        title=request.job_title,
        description=request.description,
        status=JobState.DRAFT,
        created_at=now,
        updated_at=now,
        history=(Change(JobState.DRAFT, now, caller.name),),
    )
    return detail(services().jobs.insert(job), case)


def copy_job(caller: Principal, job_id: str, body: Any) -> JobDetail:
    """A new DRAFT of the caller's with the same case and values as `job_id` (any state): the rerun."""
    request = parse_body(JobCopy, body)
    source = owned_job(caller, job_id)
    now = now_iso()
    copy = Job(
        job_id=new_job_id(caller.user_id),
        owner=caller.user_id,
        owner_name=caller.name,
        case_id=source.case_id,
        title=request.job_title or _copy_title(source.title),
        description=source.description,
        status=JobState.DRAFT,
        created_at=now,
        updated_at=now,
        values=dict(source.values),
        history=(Change(JobState.DRAFT, now, caller.name, f"copied from job {source.job_id}"),),
    )
    return detail(services().jobs.insert(copy), _case(copy.case_id))


def _copy_title(title: str) -> str:
    return f"{title[:193]} (copy)"  # within a title's 200 characters


def update_job(caller: Principal, job_id: str, body: Any) -> JobDetail:
    """Set the title, description or values of a DRAFT job; values are checked against the case's specs."""
    request = parse_body(JobPatch, body)

    def edit(job: Job) -> Job:
        values = dict(job.values)
        if request.fields and job.status is JobState.DRAFT:  # else `edited` refuses it
            sets = [f.model_dump() for f in request.fields if f.value is not None]
            values.update(check_values(_case(job.case_id), sets))
            for cleared in (f.name for f in request.fields if f.value is None):
                values.pop(cleared, None)
        description = job.description if request.description is None else request.description
        return transitions.edited(
            job, title=request.job_title or job.title, values=values, description=description
        )

    job = change_job(job_id, edit, caller)
    return detail(job, _case(job.case_id))


def run_job(caller: Principal, job_id: str) -> JobStatusView:
    """Submit a DRAFT job: check its values are complete, move it to SUBMITTED, and queue its dispatch.

    The move is a conditional write, so of two concurrent calls one wins and the other gets 409: never two runs. A
    crash between the move and the message leaves the job SUBMITTED and unclaimed: the reconciler sends it again.
    """
    job = change_job(job_id, lambda j: transitions.submitted(_runnable(j), caller.name), caller)
    try:
        queue_dispatch(job.job_id)
    except Unavailable:
        change_job(
            job_id, transitions.back_to_draft
        )  # nothing will dispatch it: let the user try again
        _remove_containers(job_id)  # a DRAFT has none: its delete would leave them behind
        raise
    return status_view(job)


def queue_dispatch(job_id: str) -> None:
    """Make a SUBMITTED job's outputs containers and queue its dispatch (both idempotent): what a run does after
    its state write, and what the reconciler does again for a job whose message was lost."""
    services().outputs.create(job_id)  # the container the job's upload grant will be limited to
    services().queue.send(job_id)


def _remove_containers(job_id: str) -> None:
    try:
        services().outputs.delete(job_id)
    except Unavailable as exc:
        log.warning(
            "job %s is a DRAFT again, but its empty containers stay: %s", job_id, exc.detail
        )


def _runnable(job: Job) -> Job:
    """`job`, if it may run: its required values set and its case's target configured and able to run it."""
    if job.status is not JobState.DRAFT:
        return job  # `submitted` says why not
    case = _case(job.case_id)
    missing = missing_required(case, job.values)
    if missing:
        problems = [FieldProblem(name, "is required before the job can run") for name in missing]
        raise InvalidValues(f"set these fields first: {', '.join(missing)}", errors=problems)
    try:
        target = get_target(case.target)
    except NotFound:
        raise Unavailable(
            f"case {case.slug!r} runs on simulator {case.target!r}, which is not configured"
        ) from None
    note = unavailable_note(case, {case.target: target})
    if note:  # refused here, so no job is made to fail for it on the simulator
        raise Conflict(note)
    return job


def list_jobs(
    caller: Principal,
    *,
    status: str | None,
    case_id: int | None,
    per_page: int,
    cursor: str | None,
    everyone: bool,
) -> tuple[list[JobHeader], str | None]:
    """One page of the caller's jobs (everyone's for an admin who asks), newest first, and the next cursor."""
    if everyone and not caller.is_admin:
        raise Forbidden("only admins may list everyone's jobs")
    query = JobQuery(
        owner=None if everyone else caller.user_id,
        case_id=case_id,
        status=None if status is None else _state_named(status),
    )
    jobs, next_cursor = services().jobs.page(query, per_page, cursor)
    return [header(j) for j in jobs], next_cursor


def _state_named(text: str) -> JobState:
    # Exactly a state's name, as the API shows them and the document declares (an enum): the lenient reading
    # (any case, the seed's aliases) is for simulators' reports only.
    try:
        return JobState(text)
    except ValueError:
        raise InvalidInput.field(
            "status", f"must be one of {[s.value for s in JobState]}", "query"
        ) from None


def show_job(caller: Principal, job_id: str) -> JobDetail:
    """Everything about one job."""
    job = readable_job(caller, job_id)
    return detail(job, _case(job.case_id))


def job_status(caller: Principal, job_id: str) -> JobStatusView:
    """The cheap status view of one job (one point read)."""
    return status_view(readable_job(caller, job_id))


def delete_job(caller: Principal, job_id: str) -> None:
    """Remove a job that is a DRAFT or has ended, with its outputs and (by the dispatch queue's worker) its folder on
    the target; an active job must be cancelled first (409)."""

    def attempt(_: int) -> Job:
        job = owned_job(caller, job_id)
        if job.status.active:
            raise Conflict(f"job {job_id} is {job.status.value}: cancel it before deleting it")
        services().jobs.delete(job)
        return job

    job = retrying(attempt)
    if job.status is JobState.DRAFT:
        return
    services().outputs.delete(
        job_id
    )  # after the record: a failure here leaves an orphan, never a job without outputs
    if (
        job.dispatch_message is not None or job.scheduler_id is not None
    ):  # it reached its target: clean up there
        try:
            services().queue.send(job_id, action="clean", target=_case(job.case_id).target)
        except (Unavailable, NotFound) as exc:
            log.warning("job %s deleted; its folder on the target stays: %s", job_id, exc.detail)
