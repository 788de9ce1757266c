"""Job operations: create, edit, list, show, poll and delete, each for an authenticated caller.

Every job route checks ownership: a job that is not the caller's is answered exactly as one that does not exist
(404). Admins may read everyone's jobs (show, poll, list outputs, download), but change only their own: editing,
running, copying, cancelling and deleting are the owner's alone.

Every change is a read followed by a write conditional on the ETag read; a conflict is retried from a fresh read,
and refused with 409 if it keeps happening: never lost.

Heavy modules (the storage SDK, pydantic models, the catalog) are imported where used, so that importing this module
stays cheap for the Function App's cold start.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

from core.auth import Principal
from core.errors import (
    ConcurrencyConflict,
    Conflict,
    FieldProblem,
    Forbidden,
    InvalidInput,
    InvalidValues,
    NotFound,
    Unavailable,
)
from core.records import Change, Job, advanced, header, new_job_id, now_iso, owner_key, split_job_id, status_view
from core.states import JobState

if TYPE_CHECKING:
    from core.cases import Case
    from core.storage.jobs_table import JobsTable
    from core.storage.outputs import JobOutputs

log = logging.getLogger(__name__)

ATTEMPTS = 8  # conditional writes tried before a conflict is refused (as busy: try again)
T = TypeVar("T")


def _table() -> JobsTable:
    from core.storage.jobs_table import jobs_table

    return jobs_table()


def _outputs() -> JobOutputs:
    from core.storage.outputs import job_outputs

    return job_outputs()


def _case(case_id: int) -> Case:
    from core.catalog import get_catalog

    return get_catalog().get(case_id)


def create_job(caller: Principal, body: Any) -> dict[str, Any]:
    """A new DRAFT job owned by the caller, of an existing case."""
    from core.bodies import JobCreate, parse_body

    request = parse_body(JobCreate, body)
    if request.user is not None and request.user not in (caller.name, caller.user_id):
        raise Forbidden("a job can only be made for yourself: 'user' must be you or left out")
    try:
        case = _case(request.case_id)
    except NotFound:
        raise InvalidInput.field("case_id", f"names no case: {request.case_id}", "body") from None
    now = now_iso()
    job = Job(
        job_id=new_job_id(caller.user_id), owner=caller.user_id, owner_name=caller.name, case_id=case.id,
        title=request.job_title, description=request.description, status=JobState.DRAFT, created_at=now,
        updated_at=now, history=(Change(JobState.DRAFT, now, caller.name),),
    )
    return detail(_table().insert(job), case)


def copy_job(caller: Principal, job_id: str, body: Any) -> dict[str, Any]:
    """A new DRAFT of the caller's with the same case and values as `job_id` (any state): the rerun."""
    from core.bodies import JobCopy, parse_body

    request = parse_body(JobCopy, body)
    source = owned_job(caller, job_id)
    now = now_iso()
    copy = Job(
        job_id=new_job_id(caller.user_id), owner=caller.user_id, owner_name=caller.name, case_id=source.case_id,
        title=request.job_title or _copy_title(source.title), description=source.description,
        status=JobState.DRAFT, created_at=now, updated_at=now, values=dict(source.values),
        history=(Change(JobState.DRAFT, now, caller.name, f"copied from job {source.job_id}"),),
    )
    return detail(_table().insert(copy), _case(copy.case_id))


def _copy_title(title: str) -> str:
    return f"{title[:193]} (copy)"  # within a title's 200 characters


def update_job(caller: Principal, job_id: str, body: Any) -> dict[str, Any]:
    """Set the title, description or values of a DRAFT job; values are checked against the case's specs."""
    from core.bodies import JobPatch, parse_body
    from core.values import check_values

    request = parse_body(JobPatch, body)

    def edit(job: Job) -> Job:
        if job.status is not JobState.DRAFT:
            raise Conflict(f"job {job.job_id} is {job.status.value}: only a DRAFT can be edited")
        values = dict(job.values)
        if request.fields:
            sets = [f.model_dump() for f in request.fields if f.value is not None]
            values.update(check_values(_case(job.case_id), sets))
            for cleared in (f.name for f in request.fields if f.value is None):
                values.pop(cleared, None)
        return replace(
            job, title=request.job_title or job.title, updated_at=now_iso(), values=values,
            description=job.description if request.description is None else request.description,
        )

    job = change_job(job_id, edit, caller)
    return detail(job, _case(job.case_id))


def run_job(caller: Principal, job_id: str) -> dict[str, Any]:
    """Submit a DRAFT job: check its values are complete, move it to SUBMITTED, and queue its dispatch.

    The move is a conditional write, so of two concurrent calls one wins and the other gets 409: never two runs. A
    crash between the move and the message leaves the job SUBMITTED and unclaimed: the reconciler sends it again.
    """
    job = change_job(job_id, lambda j: _submitted(j, caller), caller)
    try:
        queue_dispatch(job.job_id)
    except Unavailable:
        change_job(job_id, _back_to_draft)  # nothing will dispatch it: let the user try again
        raise
    return status_view(job)


def queue_dispatch(job_id: str) -> None:
    """Make a SUBMITTED job's outputs container and queue its dispatch (both idempotent): what a run does after its
    state write, and what the reconciler does again for a job whose message was lost."""
    from core.storage.queues import enqueue_dispatch

    _outputs().create(job_id)  # the container the job's upload grant will be limited to
    enqueue_dispatch(job_id)


def _submitted(job: Job, caller: Principal) -> Job | None:
    from core.catalog import unavailable_note
    from core.targets import get_target
    from core.values import missing_required

    if job.status is not JobState.DRAFT:
        raise Conflict(f"job {job.job_id} is {job.status.value}: it has been run already")
    case = _case(job.case_id)
    missing = missing_required(case, job.values)
    if missing:
        problems = [FieldProblem(name, "is required before the job can run") for name in missing]
        raise InvalidValues(f"set these fields first: {', '.join(missing)}", errors=problems)
    try:
        target = get_target(case.target)
    except NotFound:
        raise Unavailable(f"case {case.slug!r} runs on simulator {case.target!r}, which is not configured") from None
    note = unavailable_note(case, {case.target: target})
    if note:  # refused here, so no job is made to fail for it on the simulator
        raise Conflict(note)
    return advanced(job, JobState.SUBMITTED, caller.name)


def _back_to_draft(job: Job) -> Job | None:
    if job.status is not JobState.SUBMITTED:
        return None
    now = now_iso()
    return replace(job, status=JobState.DRAFT, updated_at=now,
                   history=(*job.history, Change(JobState.DRAFT, now, "gateway", "the dispatch queue was unavailable")))


def list_jobs(
    caller: Principal, *, status: str | None, case_id: int | None, per_page: int, cursor: str | None, everyone: bool
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the caller's jobs (everyone's for an admin who asks), newest first, and the next cursor."""
    if everyone and not caller.is_admin:
        raise Forbidden("only admins may list everyone's jobs")
    clauses: list[str] = []
    parameters: dict[str, Any] = {}
    if not everyone:
        clauses.append("PartitionKey eq @pk and owner eq @owner")
        parameters |= {"pk": owner_key(caller.user_id), "owner": caller.user_id}
    if status is not None:
        clauses.append("status eq @status")
        parameters["status"] = _state_named(status).value
    if case_id is not None:
        clauses.append("case_id eq @case_id")
        parameters["case_id"] = case_id
    jobs, next_cursor = _table().page(" and ".join(clauses), parameters, per_page, cursor)
    return [header(j) for j in jobs], next_cursor


def _state_named(text: str) -> JobState:
    # Exactly a state's name, as the API shows them and the document declares (an enum): the lenient reading
    # (any case, the seed's aliases) is for simulators' reports only.
    try:
        return JobState(text)
    except ValueError:
        raise InvalidInput.field("status", f"must be one of {[s.value for s in JobState]}", "query") from None


def show_job(caller: Principal, job_id: str) -> dict[str, Any]:
    """Everything about one job."""
    job = readable_job(caller, job_id)
    return detail(job, _case(job.case_id))


def job_status(caller: Principal, job_id: str) -> dict[str, Any]:
    """The cheap status view of one job (one point read)."""
    return status_view(readable_job(caller, job_id))


def delete_job(caller: Principal, job_id: str) -> None:
    """Remove a job that is a DRAFT or has ended, with its outputs and (by the dispatch queue's worker) its folder on
    the target; an active job must be cancelled first (409)."""

    def attempt(_: int) -> Job:
        job = owned_job(caller, job_id)
        if job.status.active:
            raise Conflict(f"job {job_id} is {job.status.value}: cancel it before deleting it")
        _table().delete(job)
        return job

    job = _retrying(attempt)
    if job.status is JobState.DRAFT:
        return
    _outputs().delete(job_id)  # after the record: a failure here leaves an orphan, never a job without outputs
    if job.dispatch_message is not None or job.scheduler_id is not None:  # it reached its target: clean up there
        from core.storage.queues import enqueue_dispatch

        try:
            enqueue_dispatch(job_id, action="clean", target=_case(job.case_id).target)
        except (Unavailable, NotFound) as exc:
            log.warning("job %s deleted; its folder on the target stays: %s", job_id, exc.detail)


def read_job(job_id: str) -> Job:
    """The job as stored (one point read), whoever owns it: for the gateway's own workers, not for callers."""
    return _table().get(job_id)


def owned_job(caller: Principal, job_id: str) -> Job:
    """The caller's own job (one point read); another user's job is `NotFound`, as if it did not exist."""
    return _owned(caller, read_job(job_id))


def readable_job(caller: Principal, job_id: str) -> Job:
    """A job the caller may see (one point read): their own, or anyone's for an admin; else `NotFound`."""
    job = read_job(job_id)
    return job if caller.is_admin else _owned(caller, job)


def _owned(caller: Principal, job: Job) -> Job:
    if job.owner != caller.user_id:
        raise NotFound(f"there is no job {job.job_id!r}")
    return job


def change_job(
    job_id: str, edit: Callable[[Job], Job | None], caller: Principal | None = None, job: Job | None = None
) -> Job:
    """Read, edit and conditionally write a job, from a fresh read after each conflict.

    `edit` returns the changed job, or None when there is nothing to write (the job is returned as read). With a
    `caller`, a job that is not theirs is `NotFound`. A `job` the caller has just read saves the first read.
    """
    split_job_id(job_id)
    first = job

    def attempt(number: int) -> Job:
        current = first if first is not None and number == 0 else read_job(job_id)
        if caller is not None:
            _owned(caller, current)
        changed = edit(current)
        if changed is None:
            return current
        written = _table().replace(changed)
        if current.status.active and written.status.terminal and written.upload_expires:
            _close_uploads(written.job_id)
        return written

    return _retrying(attempt)


def _close_uploads(job_id: str) -> None:
    """A job that has ended keeps no place its upload grant can write to (best effort: the grant expires anyway,
    and nothing users download is in that place)."""
    try:
        _outputs().close_uploads(job_id)
    except Unavailable as exc:
        log.warning("job %s ended, but its upload container was not deleted: %s", job_id, exc.detail)


def _retrying(attempt: Callable[[int], T]) -> T:
    """Run a read-then-conditional-write `attempt` again, from a fresh read, after each conflict; at most ATTEMPTS."""
    for number in range(ATTEMPTS):
        try:
            return attempt(number)
        except ConcurrencyConflict:
            if number == ATTEMPTS - 1:
                raise
            # Writers that collided would collide again at once: spread them out, more each time (at most ~1 s).
            time.sleep(random.uniform(0, 0.005 * 2**number))
    raise AssertionError("unreachable")


def detail(job: Job, case: Case) -> dict[str, Any]:
    """The whole job: its header, every field's value with units (defaults filled), and its history."""
    values = [
        {"name": f.name, "label": f.label, "value": job.values.get(f.name, f.default), "units": f.units,
         "is_default": f.name not in job.values}
        for f in case.leaves()
    ]
    return {
        **header(job), "values": values, "history": [c.as_dict() for c in job.history],
        "reason": job.reason, "progress": job.progress, "message": job.message, "scheduler_id": job.scheduler_id,
        "outputs": [o.view() for o in job.outputs],
    }
