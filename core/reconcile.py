"""The reconciler: settle active jobs whose simulator has gone silent, and send again the queue message of a job
whose message was lost, so that no job stays active forever.

Run by a timer. One query finds (a) the jobs that are QUEUED, RUNNING, FINALIZING or CANCELLING and have not changed
for `SIMGATE_LOST_AFTER_MINUTES`, and (b) the SUBMITTED and CANCELLING jobs older than
`SIMGATE_RESEND_AFTER_SECONDS` (five minutes unless set).

(a) Lost jobs: each target's scheduler is asked about all of its jobs in one query. A job the scheduler still has
is left alone (the check is noted on it). A job it no longer runs, without a final report, FAILS with the reason
`lost by scheduler` and the exit code from the wrapper's exit-code file when there is one; a CANCELLING job it no
longer runs is CANCELLED. A target that cannot be reached is skipped until the next run.

(b) Lost messages. A state and its queue message are two writes, and the process can die between them: run writes
SUBMITTED and then sends the dispatch; cancel writes CANCELLING and then sends the cancel; the dispatcher records
the scheduler's id of a job cancelled while it was being submitted and then sends the cancel. The job's record is
the outbox, and this pass is its relay: a SUBMITTED job that no dispatcher has claimed (`dispatch_message` unset)
still wants its dispatch, and a CANCELLING job with a scheduler id still wants its cancel.

- An unclaimed SUBMITTED job gets its dispatch again once it has waited RESEND_AFTER since it was submitted, with
  its outputs container (`core.job_operations.queue_dispatch`, the run's own two steps). The re-send is noted on the job
  (`checked_at`, a conditional write made before the message, so a job claimed meanwhile gets none), and the next
  one waits at least as long as the job had already waited: gaps of R, R, 2R, 4R... A queue with a long backlog
  thus gets a few extra messages per job, not one per job per pass.
- A CANCELLING job with a scheduler id, unchanged for RESEND_AFTER, gets its cancel again, at most once per pass: it
  is one idempotent SSH call, and it is also what stops a job whose cancel was poisoned after the host's retries.

A second message is harmless. The dispatcher claims a job with a conditional write (`core.dispatch._claimed`), so of
two dispatch messages, whichever comes first, only one submits and the other finds the job claimed or no longer
SUBMITTED; the submit on the target is itself once-only (a marker). A cancel of a job that is no longer CANCELLING
does nothing. A claimed job is never re-sent: its message stays in the queue until its dispatch ends (the host
deletes it only then); if its worker died, the message comes back when its lease runs out and, being the claim's
own, it dispatches; after the host's last retry it is poisoned and the job FAILS. A CANCELLING job with no
scheduler id is its dispatcher's to stop once submitted; if that dispatcher died, the job is settled as lost
(CANCELLED) after SIMGATE_LOST_AFTER_MINUTES.

Why this and not an outbox table written with the state: the job's state already says which message it wants, the
relay would need a timer and a sweep anyway, and this one runs already, with one query per pass. An outbox would add
an entity and a write to every run and cancel and say nothing the job does not.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from core.config import get_settings
from core.errors import GatewayError
from core.job_operations import change_job, queue_dispatch
from core.records import Job, advanced, iso_time, now_iso
from core.schedulers.base import RemoteState
from core.states import JobState

if TYPE_CHECKING:
    from core.targets import Target

log = logging.getLogger(__name__)

SWEPT = (JobState.QUEUED, JobState.RUNNING, JobState.FINALIZING, JobState.CANCELLING)
WAITING = (JobState.SUBMITTED, JobState.CANCELLING)  # the states a queue message goes with
STILL_THERE = (RemoteState.PENDING, RemoteState.RUNNING)
MAX_JOBS = 1000  # per run; the rest wait for the next one
REPORTER = "reconciler"
# "$@" the job folders: prints "<folder> <exit code>" for each, the code empty when the wrapper left none.
EXIT_CODES = (
    'for d do code=""; read -r code 2>/dev/null < "$d/.simgate-exit-code"; printf "%s %s\\n" "$d" "$code"; done'
)


@dataclass
class Sweep:
    """What one run found and did, by job id."""

    alive: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # their target could not be asked
    redispatched: list[str] = field(default_factory=list)  # SUBMITTED, unclaimed: their dispatch was sent again
    recancelled: list[str] = field(default_factory=list)  # CANCELLING: their cancel was sent again


async def reconcile(now: datetime | None = None) -> Sweep:
    """One pass over silent active jobs and jobs whose message may be lost; see the module's docstring."""
    from core.dispatch import store

    now = now or datetime.now(UTC)
    settings = get_settings()
    lost = iso_time(now - timedelta(minutes=settings.lost_after_minutes))
    resend_after = timedelta(seconds=settings.resend_after_seconds)
    found = await store(due_jobs, lost, iso_time(now - resend_after))
    sweep = Sweep()
    by_target: dict[str, list[Job]] = defaultdict(list)
    for job in (j for j in found if j.status in SWEPT and j.updated_at < lost):
        by_target[_target_of(job)].append(job)
    for jobs in by_target.values():
        await _settle_target(jobs, sweep)
    settled = {*sweep.failed, *sweep.cancelled}
    for job in (j for j in found if j.job_id not in settled):
        await _resend(job, resend_due(job, now, resend_after), now, sweep)
    log.info("reconciler: %d alive, %d failed as lost, %d cancelled, %d skipped, %d dispatches and %d cancels "
             "sent again", len(sweep.alive), len(sweep.failed), len(sweep.cancelled), len(sweep.skipped),
             len(sweep.redispatched), len(sweep.recancelled))
    return sweep


def due_jobs(lost: str, resend: str) -> list[Job]:
    """Active jobs unchanged since `lost`, and SUBMITTED or CANCELLING ones unchanged since `resend` (one
    cross-partition query, at most MAX_JOBS)."""
    from core.storage.jobs_table import jobs_table

    swept = " or ".join(f"status eq '{s.value}'" for s in SWEPT)
    waiting = " or ".join(f"status eq '{s.value}'" for s in WAITING)
    # The SDK finds "@name" between spaces: hence " )".
    query = f"(({swept}) and updated_at lt @lost ) or (({waiting}) and updated_at lt @resend )"
    return jobs_table().find(query, {"lost": lost, "resend": resend}, MAX_JOBS)


def resend_due(job: Job, now: datetime, after: timedelta) -> str | None:
    """The message `job` should be sent again at `now`: "dispatch", "cancel", or None (see the module's docstring)."""
    if job.status is JobState.SUBMITTED and job.dispatch_message is None:
        submitted = _moment(job.updated_at)
        last = max(submitted, _moment(job.checked_at)) if job.checked_at else submitted
        return "dispatch" if now - last >= max(after, last - submitted) else None
    if job.status is JobState.CANCELLING and job.scheduler_id:
        return "cancel" if now - _moment(job.updated_at) >= after else None
    return None


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def _resend(job: Job, what: str | None, now: datetime, sweep: Sweep) -> None:
    from core.dispatch import store
    from core.storage.queues import enqueue_dispatch

    try:
        if what == "dispatch":
            stamp = iso_time(now)
            marked = await store(change_job, job.job_id, lambda j: _resending(j, job, stamp), None, job)
            if marked.checked_at == stamp:  # still unclaimed, as swept: no dispatcher has it
                await store(queue_dispatch, job.job_id)
                sweep.redispatched.append(job.job_id)
        elif what == "cancel":
            await store(enqueue_dispatch, job.job_id, "cancel")
            sweep.recancelled.append(job.job_id)
    except GatewayError as exc:  # storage or the queue is away: the next pass tries again
        log.warning("reconciler: %s of job %s not sent again: %s", what, job.job_id, exc.detail)


def _resending(current: Job, seen: Job, stamp: str) -> Job | None:
    # Only the job as it was swept: a claim, a cancel or another pass since then decides instead.
    unchanged = (current.status, current.updated_at, current.checked_at) == (seen.status, seen.updated_at,
                                                                             seen.checked_at)
    if not unchanged or current.dispatch_message is not None:
        return None
    return replace(current, checked_at=stamp)


def _target_of(job: Job) -> str:
    from core.catalog import get_catalog

    return get_catalog().get(job.case_id).target


async def _settle_target(jobs: list[Job], sweep: Sweep) -> None:
    from core.dispatch import plan_for, remote_states

    submitted = [j for j in jobs if j.scheduler_id]
    for job in (j for j in jobs if not j.scheduler_id):  # cancelled mid-dispatch, and the dispatch never ended
        await _settle(job, RemoteState.UNKNOWN, None, sweep)
    if not submitted:
        return
    try:
        plan = plan_for(submitted[0])
        states = await remote_states(plan.target, plan.scheduler, [str(j.scheduler_id) for j in submitted])
        gone = [j for j in submitted if states[str(j.scheduler_id)] not in STILL_THERE]
        codes = await _exit_codes(plan.target, {j.job_id: plan_for(j).job_dir for j in gone}) if gone else {}
    except GatewayError as exc:
        log.warning("reconciler: target of %d job(s) not asked: %s", len(submitted), exc.detail)
        sweep.skipped.extend(j.job_id for j in submitted)
        return
    for job in submitted:
        await _settle(job, states[str(job.scheduler_id)], codes.get(job.job_id), sweep)


async def _exit_codes(target: Target, folders: dict[str, str]) -> dict[str, int]:
    """The wrapper's exit code of each job (by id) that left one, read in one remote command."""
    from core.ssh import pool

    result = await pool().run(target, ["sh", "-c", EXIT_CODES, "simgate-exit-codes", *folders.values()])
    by_folder = dict(line.rsplit(" ", 1) for line in result.stdout.splitlines() if " " in line)
    codes = {job_id: by_folder.get(folder, "").strip() for job_id, folder in folders.items()}
    return {job_id: int(code) for job_id, code in codes.items() if code.isdigit() and len(code) < 6}


async def _settle(job: Job, state: RemoteState, exit_code: int | None, sweep: Sweep) -> None:
    from core.dispatch import store

    if state in STILL_THERE:
        sweep.alive.append(job.job_id)
        await store(change_job, job.job_id, lambda j: _noted_alive(j, job))
        return
    settled = await store(change_job, job.job_id, lambda j: _ended(j, job, exit_code))
    if settled.status is JobState.CANCELLED:
        sweep.cancelled.append(job.job_id)
    elif settled.status is JobState.FAILED:
        sweep.failed.append(job.job_id)


def _noted_alive(current: Job, seen: Job) -> Job | None:
    # Only the job as it was swept: if it reported meanwhile, that report says more than this check.
    return replace(current, checked_at=now_iso()) if current.updated_at == seen.updated_at else None


def _ended(current: Job, seen: Job, exit_code: int | None) -> Job | None:
    if current.updated_at != seen.updated_at:
        return None  # it reported after the sweep read it: its own report wins
    if current.status is JobState.CANCELLING:
        return advanced(current, JobState.CANCELLED, REPORTER, "the scheduler no longer runs it")
    reason = "lost by scheduler" + (f" (exit code {exit_code})" if exit_code is not None else "")
    return advanced(current, JobState.FAILED, REPORTER, reason)
