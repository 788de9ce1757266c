"""Cancel: stop a job that has been run, through its scheduler.

    SUBMITTED, never claimed by a dispatch → CANCELLED at once (nothing reached a simulator)
    claimed, QUEUED, RUNNING, FINALIZING  → CANCELLING, then the scheduler's cancel over SSH (scancel, qdel, or a
                                             SIGTERM to the process group), then CANCELLED once the scheduler no
                                             longer runs it (asked at once; else the job's last report or the
                                             reconciler settles it)

The HTTP route only records CANCELLING and queues the work: the SSH call runs in the dispatch queue's function,
with the host's retries. Every step is idempotent: cancelling a cancelled job changes nothing; a finished one is 409.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from core.auth import Principal
from core.errors import Conflict, Unavailable
from core.job_operations import change_job
from core.records import Job, advanced, status_view
from core.states import JobState

log = logging.getLogger(__name__)

STILL_THERE = ("PENDING", "RUNNING")  # RemoteState values: the scheduler still has the job
CONFIRM_TRIES = 10
CONFIRM_PAUSE = 1.0  # seconds between the scheduler's answers while it finishes a cancelled job


def cancel_job(caller: Principal, job_id: str) -> dict[str, Any]:
    """Ask for a job to stop; its status view (CANCELLING or CANCELLED)."""
    from core.storage.queues import enqueue_dispatch

    job = change_job(job_id, lambda j: _cancelling(j, caller.name), caller)
    if job.status is JobState.CANCELLING:
        enqueue_dispatch(job.job_id, action="cancel")  # again on a repeat: harmless, and heals a lost message
    return status_view(job)


def _cancelling(job: Job, by: str) -> Job | None:
    if job.status in (JobState.CANCELLING, JobState.CANCELLED):
        return None
    if job.status is JobState.DRAFT or job.status.terminal:
        what = "has not been run: delete it instead" if job.status is JobState.DRAFT else "has ended"
        raise Conflict(f"job {job.job_id} is {job.status.value}: it {what}")
    if job.status is JobState.SUBMITTED and job.dispatch_message is None:
        return advanced(job, JobState.CANCELLED, by, "cancelled before it reached a simulator")
    return advanced(job, JobState.CANCELLING, by)


async def stop(job_id: str) -> None:
    """The worker's half: run the scheduler's cancel for a CANCELLING job, and settle it if the scheduler agrees.

    A job still being dispatched (no scheduler id yet) is left to the dispatcher, which stops it once submitted.
    """
    from core.dispatch import plan_for, remote_states, store
    from core.job_operations import read_job
    from core.ssh import pool

    job = await store(read_job, job_id)
    if job.status is not JobState.CANCELLING or job.scheduler_id is None:
        return
    plan = plan_for(job)
    result = await pool().run(plan.target, plan.scheduler.cancel_argv(job.scheduler_id))
    if result.exit_status != 0:
        log.warning("cancel %s: %s exited %s: %s", job_id, plan.scheduler.name, result.exit_status,
                    result.stderr.strip()[-300:])
    for _ in range(CONFIRM_TRIES):  # a cancelled job lingers a moment (Slurm's COMPLETING) before it is gone
        states = await remote_states(plan.target, plan.scheduler, [job.scheduler_id])
        if states[job.scheduler_id].value not in STILL_THERE:
            await store(change_job, job_id, cancelled)
            return
        await asyncio.sleep(CONFIRM_PAUSE)
    # Still there: ask again later. The queue retries the message; the job's own last report may settle it first.
    raise Unavailable(f"{plan.scheduler.name} still runs job {job.scheduler_id} after its cancel")


def cancelled(job: Job) -> Job | None:
    """A CANCELLING job, confirmed stopped."""
    if job.status is not JobState.CANCELLING:
        return None
    return advanced(job, JobState.CANCELLED, "scheduler")


def settle_reported_end(job: Job, to: JobState) -> JobState:
    """The state a job's own final report moves it to: CANCELLED while it is being cancelled (a job that was
    stopped reports FAILED with a signal's exit code; one that beat the cancel to the end is cancelled anyway)."""
    if job.status is JobState.CANCELLING and to in (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED):
        return JobState.CANCELLED
    return to
