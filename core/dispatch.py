"""Dispatch: put a SUBMITTED job on its target and record it QUEUED; and the clean-up of a deleted job's folder.

Called by the queue-triggered function with the message's id. Delivery is at least once, so every step is safe to
repeat: a job no longer SUBMITTED, or claimed by another message, is left alone; on the target, the submit is once
only (`core.remote.SUBMIT_ONCE`). What to do with a failure is the error's own say (`GatewayError.transient`):
- transient (a target that cannot be reached, storage busy): noted on the job and raised, so the host retries;
  after its last try the poison handler (`give_up`) fails the job with the last error;
- permanent (host key, authentication, a failing submit, a case or target gone): the job FAILS at once with the
  reason, which the user reads;
- anything else is a bug: it is logged with its traceback under a correlation id and retried like a transient
  failure, and the user reads only "internal error" and that id, never the exception's text.
"""

from __future__ import annotations

import logging
import secrets

from core import remote, transitions
from core.errors import GatewayError, internal_error
from core.job_store import change_job, in_thread, read_job
from core.records import Job, hash_token
from core.services import services
from core.states import JobState

log = logging.getLogger(__name__)


async def dispatch(job_id: str, message_id: str) -> None:
    """Submit `job_id` if it is still waiting to be; see the module's docstring for the failure rules."""
    job = await in_thread(read_job, job_id)
    if not transitions.dispatch_due(job, message_id):
        log.info("dispatch %s: %s, nothing to do", job_id, job.status.value)
        return
    try:
        plan = remote.plan_for(job)
        submitted = await _submit(plan, message_id)
    except GatewayError as exc:
        if exc.transient:
            await _note(job_id, exc.detail)
            raise
        reason = f"dispatch: {exc.detail}"
        await in_thread(change_job, job_id, lambda j: transitions.dispatch_refused(j, reason))
        log.warning("dispatch %s refused: %s", job_id, reason)
        return
    except Exception:
        await _note(job_id, internal_error(log, f"dispatch {job_id}"))
        raise
    if submitted is not None:
        scheduler_id, claimed = submitted
        recorded = await in_thread(
            change_job, job_id, lambda j: transitions.queued(j, scheduler_id), None, claimed
        )
        log.info("dispatch %s: queued as %s on %s", job_id, scheduler_id, plan.target.name)
        if (
            recorded.status is JobState.CANCELLING
        ):  # cancelled while it was being submitted: stop it now
            await in_thread(services().queue.send, job_id, "cancel")


async def _submit(plan: remote.Plan, message_id: str) -> tuple[str, Job] | None:
    """Claim the job (with a new token) and submit it: the scheduler's id and the claimed job, or None when another
    message claimed the job first."""
    token = secrets.token_urlsafe(32)
    token_hash = hash_token(token)
    claimed = await in_thread(
        change_job,
        plan.job.job_id,
        lambda j: transitions.claimed(j, message_id, token_hash),
        None,
        plan.job,
    )
    if claimed.dispatch_message != message_id:
        return None
    return await remote.submit_once(plan, token), claimed


async def _note(job_id: str, error: str) -> None:
    await in_thread(change_job, job_id, lambda j: transitions.dispatch_noted(j, error))


async def clean(job_id: str, target_name: str) -> None:
    """Remove a deleted job's folder from its target (`core.remote.remove_folder`)."""
    await remote.remove_folder(target_name, job_id)


def give_up(job_id: str) -> None:
    """Fail a job whose dispatch kept failing (its message reached the poison queue), with the last error."""
    change_job(job_id, transitions.gave_up)
