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

A second message is harmless. The dispatcher claims a job with a conditional write (`core.transitions.claimed`), so of
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
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from core import remote, transitions
from core.catalog import get_catalog
from core.errors import GatewayError, internal_error
from core.job_operations import queue_dispatch
from core.job_store import change_job, in_thread
from core.records import Job, iso_time
from core.schedulers.base import RemoteState
from core.services import get_settings, services
from core.states import SWEPT, JobState

log = logging.getLogger(__name__)

MAX_JOBS = 1000  # per run; the rest wait for the next one


@dataclass
class Sweep:
    """What one run found and did, by job id."""

    alive: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # their target could not be asked
    redispatched: list[str] = field(
        default_factory=list
    )  # SUBMITTED, unclaimed: their dispatch was sent again
    recancelled: list[str] = field(default_factory=list)  # CANCELLING: their cancel was sent again


async def reconcile(now: datetime | None = None) -> Sweep:
    """One pass over silent active jobs and jobs whose message may be lost; see the module's docstring."""
    now = now or datetime.now(UTC)
    settings = get_settings()
    lost = iso_time(now - timedelta(minutes=settings.lost_after_minutes))
    resend_after = timedelta(seconds=settings.resend_after_seconds)
    found = await in_thread(services().jobs.due, lost, iso_time(now - resend_after), MAX_JOBS)
    sweep = Sweep()
    by_target: dict[str, list[Job]] = defaultdict(list)
    for job in (j for j in found if j.status in SWEPT and j.updated_at < lost):
        by_target[get_catalog().get(job.case_id).target].append(job)
    for jobs in by_target.values():
        await _settle_target(jobs, sweep)
    settled = {*sweep.failed, *sweep.cancelled}
    for job in (j for j in found if j.job_id not in settled):
        await _resend(job, resend_due(job, now, resend_after), now, sweep)
    log.info(
        "reconciler: %d alive, %d failed as lost, %d cancelled, %d skipped, %d dispatches and %d cancels "
        "sent again",
        len(sweep.alive),
        len(sweep.failed),
        len(sweep.cancelled),
        len(sweep.skipped),
        len(sweep.redispatched),
        len(sweep.recancelled),
    )
    return sweep


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
    try:
        if what == "dispatch":
            stamp = iso_time(now)
            marked = await in_thread(
                change_job, job.job_id, lambda j: transitions.resend_noted(j, job, stamp), None, job
            )
            if marked.checked_at == stamp:  # still unclaimed, as swept: no dispatcher has it
                await in_thread(queue_dispatch, job.job_id)
                sweep.redispatched.append(job.job_id)
        elif what == "cancel":
            await in_thread(services().queue.send, job.job_id, "cancel")
            sweep.recancelled.append(job.job_id)
    except GatewayError as exc:  # storage or the queue is away: the next pass tries again
        log.warning("reconciler: %s of job %s not sent again: %s", what, job.job_id, exc.detail)


async def _settle_target(jobs: list[Job], sweep: Sweep) -> None:
    submitted = [j for j in jobs if j.scheduler_id]
    for job in (
        j for j in jobs if not j.scheduler_id
    ):  # cancelled mid-dispatch, and the dispatch never ended
        await _settle(job, RemoteState.UNKNOWN, None, sweep)
    if not submitted:
        return
    try:
        plan = remote.plan_for(submitted[0])
        found = await remote.states(
            plan.target, plan.scheduler, [str(j.scheduler_id) for j in submitted]
        )
        gone = [j for j in submitted if not found[str(j.scheduler_id)].alive]
        folders = {j.job_id: remote.plan_for(j).job_dir for j in gone}
        codes = await remote.exit_codes(plan.target, folders) if gone else {}
    except GatewayError as exc:
        log.warning("reconciler: target of %d job(s) not asked: %s", len(submitted), exc.detail)
        sweep.skipped.extend(j.job_id for j in submitted)
        return
    except Exception:  # a bug: logged with its traceback; the other targets are still settled
        internal_error(log, f"reconciler: target of {len(submitted)} job(s)")
        sweep.skipped.extend(j.job_id for j in submitted)
        return
    for job in submitted:
        await _settle(job, found[str(job.scheduler_id)], codes.get(job.job_id), sweep)


async def _settle(job: Job, state: RemoteState, exit_code: int | None, sweep: Sweep) -> None:
    if state.alive:
        sweep.alive.append(job.job_id)
        await in_thread(change_job, job.job_id, lambda j: transitions.seen_alive(j, job))
        return
    settled = await in_thread(change_job, job.job_id, lambda j: transitions.lost(j, job, exit_code))
    if settled.status is JobState.CANCELLED:
        sweep.cancelled.append(job.job_id)
    elif settled.status is JobState.FAILED:
        sweep.failed.append(job.job_id)
