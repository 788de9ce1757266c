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

from core import remote, transitions
from core.auth import Principal
from core.errors import GatewayError, Unavailable, internal_error
from core.job_store import change_job, in_thread, read_job
from core.services import services
from core.states import JobState
from core.views import JobStatusView, status_view

log = logging.getLogger(__name__)

CONFIRM_TRIES = 10
CONFIRM_PAUSE = 1.0  # seconds between the scheduler's answers while it finishes a cancelled job


def cancel_job(caller: Principal, job_id: str) -> JobStatusView:
    """Ask for a job to stop; its status view (CANCELLING or CANCELLED)."""
    job = change_job(job_id, lambda j: transitions.cancel_requested(j, caller.name), caller)
    if job.status is JobState.CANCELLING:
        services().queue.send(
            job.job_id, action="cancel"
        )  # again on a repeat: harmless, and heals a lost message
    return status_view(job)


async def stop(job_id: str) -> None:
    """The worker's half: run the scheduler's cancel for a CANCELLING job, and settle it if the scheduler agrees.

    A job still being dispatched (no scheduler id yet) is left to the dispatcher, which stops it once submitted. A
    transient failure raises (the host retries; the reconciler sends the cancel again later); a permanent one is
    logged and left to the reconciler, which settles the job once its scheduler no longer runs it.
    """
    job = await in_thread(read_job, job_id)
    if job.status is not JobState.CANCELLING or job.scheduler_id is None:
        return
    try:
        await _stop(remote.plan_for(job), job.scheduler_id)
    except GatewayError as exc:
        if exc.transient:
            raise
        log.warning("cancel %s not sent: %s", job_id, exc.detail)
    except Exception:
        internal_error(log, f"cancel {job_id}")
        raise


async def _stop(plan: remote.Plan, scheduler_id: str) -> None:
    await remote.cancel(plan, scheduler_id)
    for _ in range(
        CONFIRM_TRIES
    ):  # a cancelled job lingers a moment (Slurm's COMPLETING) before it is gone
        found = await remote.states(plan.target, plan.scheduler, [scheduler_id])
        if not found[scheduler_id].alive:
            await in_thread(change_job, plan.job.job_id, transitions.cancel_confirmed)
            return
        await asyncio.sleep(CONFIRM_PAUSE)
    # Still there: ask again later. The queue retries the message; the job's own last report may settle it first.
    raise Unavailable(f"{plan.scheduler.name} still runs job {scheduler_id} after its cancel")
