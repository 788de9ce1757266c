"""The job state machine: one pure function per event, and nothing else moves a job.

Each event is a function `Job -> Job | None`: the job as it is after the event, or None when the event changes
nothing (a repeat, a late report, a message for a job that has moved on). `core.job_store.change_job` applies one
to a fresh read and writes the result conditionally on the ETag read, so an event is decided on the job as it is
stored, never on a stale copy. Events that the state forbids for a user's request raise `Conflict` (409).

    event              DRAFT       SUBMITTED      QUEUED  RUNNING  FINALIZING  CANCELLING   ended
    edited             DRAFT       409            409     409      409         409          409
    submitted          SUBMITTED   409            409     409      409         409          409
    back_to_draft      -           DRAFT ←        -       -        -           -            -
    claimed            -           (claim)        -       -        -           -            -
    dispatch_noted     -           (note)         -       -        -           -            -
    queued             -           QUEUED         (id)    (id)     (id)        (id)         -
    dispatch_refused   -           FAILED         FAILED  FAILED   FAILED      FAILED       -
    gave_up            -           FAILED         -       -        -           -            -
    cancel_requested   409         CANCELLING¹    CANCELLING ...               -            409 (CANCELLED: -)
    cancel_confirmed   -           -              -       -        -           CANCELLED    -
    reported RUNNING   -           RUNNING        RUNNING -        -           -            409
    reported FINALIZING-           FINALIZING     ...     ...      (grant)     (grant)      409
    reported end²      -           end            end     end      end         CANCELLED    409
    seen_alive³        -           -              (check) (check)  (check)     (check)      -
    lost³              -           -              FAILED  FAILED   FAILED      CANCELLED    -
    resend_noted³      -           (check)        -       -        -           -            -

    - nothing changes; (x) the state stays and x is noted on the job; "..." as the column to its left.
    ¹ CANCELLED at once when no dispatcher has claimed the job: nothing reached a target.
    ² COMPLETED, FAILED or CANCELLED, with the report's outputs and metrics. While CANCELLING, any end is CANCELLED.
    ³ Only if the job is unchanged since the reconciler read it: a report since then says more.

States only advance along `core.states` (DRAFT → SUBMITTED → QUEUED → RUNNING → FINALIZING → COMPLETED, any active
state to FAILED or through CANCELLING to CANCELLED), so a late or repeated event is a no-op. The one move backwards
is `back_to_draft`: a run whose dispatch message could not be queued gives the user the DRAFT back, to run again.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from core.errors import Conflict
from core.records import Change, Job, Output, Study, iso_time, now_iso
from core.states import TERMINAL, JobState, advances

DISPATCHER = "dispatcher"
RECONCILER = "reconciler"
SCHEDULER = "scheduler"
SIMULATOR = "simulator"
GATEWAY = "gateway"
# A grant with less than this left is renewed rather than given again. The wrapper asks again when less than
# five minutes are left (simulator/wrapper.py GRANT_MARGIN), so its renewal always gets a fresh one.
RENEW_WITHIN = timedelta(minutes=6)


def advanced(
    job: Job, to: JobState, by: str, reason: str | None = None, **changes: Any
) -> Job | None:
    """`job` moved to `to`, stamped and in its history; None when that is no progress (a repeat or a late report)."""
    if not advances(job.status, to):
        return None
    now = now_iso()
    return replace(
        job,
        status=to,
        updated_at=now,
        history=(*job.history, Change(to, now, by, reason)),
        reason=reason if to is JobState.FAILED else job.reason,
        **changes,
    )


def edited(job: Job, **changes: Any) -> Job:
    """A DRAFT with new title, description or values; `Conflict` once it has been run."""
    if job.status is not JobState.DRAFT:
        raise Conflict(f"job {job.job_id} is {job.status.value}: only a DRAFT can be edited")
    return replace(job, updated_at=now_iso(), **changes)


def submitted(job: Job, by: str) -> Job:
    """A DRAFT sent to run; `Conflict` if it has been run already (of two concurrent runs, one wins)."""
    if job.status is not JobState.DRAFT:
        raise Conflict(f"job {job.job_id} is {job.status.value}: it has been run already")
    moved = advanced(job, JobState.SUBMITTED, by)
    assert moved is not None  # DRAFT → SUBMITTED always advances
    return moved


def back_to_draft(job: Job) -> Job | None:
    """The one move backwards: a SUBMITTED job whose dispatch could not be queued is a DRAFT again."""
    if job.status is not JobState.SUBMITTED:
        return None
    now = now_iso()
    change = Change(JobState.DRAFT, now, GATEWAY, "the dispatch queue was unavailable")
    return replace(job, status=JobState.DRAFT, updated_at=now, history=(*job.history, change))


def dispatch_due(job: Job, message_id: str) -> bool:
    """Whether this dispatch message should submit the job: still SUBMITTED and not claimed by another message."""
    return job.status is JobState.SUBMITTED and job.dispatch_message in (None, message_id)


def claimed(job: Job, message_id: str, token_hash: str) -> Job | None:
    """The job claimed by one dispatch message, with the hash of its new token; None if another claimed it."""
    if not dispatch_due(job, message_id):
        return None
    return replace(job, dispatch_message=message_id, token_hash=token_hash)


def dispatch_noted(job: Job, error: str) -> Job | None:
    """A transient dispatch failure, noted for the poison handler's reason."""
    return replace(job, dispatch_error=error) if job.status is JobState.SUBMITTED else None


def queued(job: Job, scheduler_id: str) -> Job | None:
    """Submitted as `scheduler_id`. A job that reported RUNNING (or more) already keeps that, with the id noted."""
    moved = advanced(job, JobState.QUEUED, DISPATCHER, scheduler_id=scheduler_id)
    if moved is None and job.scheduler_id is None:
        return replace(job, scheduler_id=scheduler_id)
    return moved


def dispatch_refused(job: Job, reason: str) -> Job | None:
    """The target refused the job for good: FAILED with the reason."""
    return advanced(job, JobState.FAILED, DISPATCHER, reason)


def gave_up(job: Job) -> Job | None:
    """The dispatch failed every retry (its message was poisoned): FAILED with the last error."""
    if job.status is not JobState.SUBMITTED:
        return None
    why = job.dispatch_error or "the dispatcher kept failing"
    return advanced(job, JobState.FAILED, DISPATCHER, f"dispatch: {why} (gave up after retries)")


def cancel_requested(job: Job, by: str) -> Job | None:
    """Asked to stop: CANCELLING, or CANCELLED at once when nothing reached a target; `Conflict` for a DRAFT or an
    ended job, None when it is being or has been cancelled."""
    if job.status in (JobState.CANCELLING, JobState.CANCELLED):
        return None
    if job.status is JobState.DRAFT or job.status.terminal:
        what = (
            "has not been run: delete it instead" if job.status is JobState.DRAFT else "has ended"
        )
        raise Conflict(f"job {job.job_id} is {job.status.value}: it {what}")
    if job.status is JobState.SUBMITTED and job.dispatch_message is None:
        return advanced(job, JobState.CANCELLED, by, "cancelled before it reached a simulator")
    return advanced(job, JobState.CANCELLING, by)


def cancel_confirmed(job: Job) -> Job | None:
    """A CANCELLING job that its scheduler no longer runs: CANCELLED."""
    if job.status is not JobState.CANCELLING:
        return None
    return advanced(job, JobState.CANCELLED, SCHEDULER)


def reported_end(job: Job, to: JobState) -> JobState:
    """The state a job's own report moves it to: CANCELLED for any end while it is being cancelled (a stopped job
    reports FAILED with a signal's exit code; one that beat the cancel to the end is cancelled anyway)."""
    if job.status is JobState.CANCELLING and to in TERMINAL:
        return JobState.CANCELLED
    return to


def reported(
    job: Job,
    to: JobState,
    *,
    progress: float | None,
    message: str | None,
    reason: str | None,
    outputs: tuple[Output, ...] | None,
    grant_minutes: int,
    metrics: dict[str, float] | None = None,
) -> Job | None:
    """A simulator's report merged in: the state if it advances, else the progress and message within the state;
    a final report records its `outputs` and `metrics`. A FINALIZING report opens the upload grant's window
    (`grant_minutes` long) when there is none or it is about to end (`RENEW_WITHIN`). `Conflict` when the job has
    ended."""
    if job.status.terminal:
        raise Conflict(f"job {job.job_id} is {job.status.value}: it takes no more reports")
    to = reported_end(job, to)
    progress = progress if progress is not None else job.progress
    message = message if message is not None else job.message
    final = {"outputs": outputs or (), "metrics": metrics or {}} if to in TERMINAL else {}
    moved = advanced(job, to, SIMULATOR, reason, progress=progress, message=message, **final)
    if moved is None and to is job.status and (progress, message) != (job.progress, job.message):
        moved = replace(job, progress=progress, message=message)
    if to is JobState.FINALIZING and grant_due(moved or job):
        expiry = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=grant_minutes)
        return replace(moved or job, upload_expires=iso_time(expiry))
    return moved


def grant_due(job: Job) -> bool:
    """Whether a FINALIZING report should get a new grant window: there is none yet, or it is about to end."""
    if job.status not in (JobState.FINALIZING, JobState.CANCELLING):
        return False
    if job.upload_expires is None:
        return True
    return datetime.fromisoformat(job.upload_expires) - datetime.now(UTC) < RENEW_WITHIN


def seen_alive(current: Job, seen: Job) -> Job | None:
    """The reconciler found the job with its scheduler: noted, unless the job changed since it was swept."""
    return replace(current, checked_at=now_iso()) if current.updated_at == seen.updated_at else None


def lost(current: Job, seen: Job, exit_code: int | None) -> Job | None:
    """The scheduler no longer runs a silent job: CANCELLED if it was being cancelled, else FAILED as lost; nothing
    if it reported since it was swept (its own report wins)."""
    if current.updated_at != seen.updated_at:
        return None
    if current.status is JobState.CANCELLING:
        return advanced(current, JobState.CANCELLED, RECONCILER, "the scheduler no longer runs it")
    reason = "lost by scheduler" + (f" (exit code {exit_code})" if exit_code is not None else "")
    return advanced(current, JobState.FAILED, RECONCILER, reason)


def resend_noted(current: Job, seen: Job, stamp: str) -> Job | None:
    """The reconciler is about to send an unclaimed job's dispatch again: noted at `stamp`, only on the job as it
    was swept (a claim, a cancel or another pass since then decides instead)."""
    unchanged = (current.status, current.updated_at, current.checked_at) == (
        seen.status,
        seen.updated_at,
        seen.checked_at,
    )
    if not unchanged or current.dispatch_message is not None:
        return None
    return replace(current, checked_at=stamp)


def next_attempt(study: Study) -> Study:
    """A study whose FAILED and CANCELLED runs are run again: its next attempt."""
    return replace(study, attempt=study.attempt + 1, updated_at=now_iso())
