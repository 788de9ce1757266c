"""The dispatch queue's functions: submit a job to its simulator, and fail it when its message is poisoned."""

from __future__ import annotations

import json
import logging

import azure.functions as func

from core.config import DISPATCH_QUEUE

bp = func.Blueprint()
log = logging.getLogger(__name__)


def _job_id(msg: func.QueueMessage) -> str | None:
    try:
        job_id = json.loads(msg.get_body())["job_id"]
    except (ValueError, KeyError, TypeError):
        job_id = None
    if not isinstance(job_id, str):
        log.error("dispatch message %s is not {\"job_id\": ...}; dropped", msg.id)
        return None
    return job_id


@bp.function_name("dispatch_job")
@bp.queue_trigger(arg_name="msg", queue_name=DISPATCH_QUEUE, connection="AzureWebJobsStorage")
async def dispatch_job(msg: func.QueueMessage) -> None:
    """Submit the job over SSH; a transient failure raises so the host retries, then poisons the message."""
    job_id = _job_id(msg)
    if job_id:
        from core import dispatch  # asyncssh and the template engine load here, not in every cold start

        await dispatch.dispatch(job_id, msg.id or "")


@bp.function_name("dispatch_poisoned")
@bp.queue_trigger(arg_name="msg", queue_name=f"{DISPATCH_QUEUE}-poison", connection="AzureWebJobsStorage")
def dispatch_poisoned(msg: func.QueueMessage) -> None:
    """The dispatch of this job failed every retry: fail the job with the last error."""
    job_id = _job_id(msg)
    if job_id:
        from core import dispatch

        dispatch.give_up(job_id)
