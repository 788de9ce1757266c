"""The background functions: submit (or cancel) a job on its simulator, fail it when its message is poisoned, and
on a timer reconcile silent jobs with their schedulers and send again the messages a crash lost."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

import azure.functions as func

from blueprints._lazy import lazy_module
from core.config import DISPATCH_QUEUE, RECONCILE_SCHEDULE

if TYPE_CHECKING:
    from core import cancel, dispatch, reconcile
else:  # asyncssh and the template engine load on a dispatch's first use, not in every cold start
    cancel = lazy_module("core.cancel")
    dispatch = lazy_module("core.dispatch")
    reconcile = lazy_module("core.reconcile")

bp = func.Blueprint()
log = logging.getLogger(__name__)


def _parsed(msg: func.QueueMessage) -> tuple[str | None, str | None, str | None]:
    """The message's job id, action (None: submit) and target (for "clean"); Nones for a message that is none."""
    try:
        body = json.loads(msg.get_body())
        job_id, action, target = body["job_id"], body.get("action"), body.get("target")
    except (ValueError, KeyError, TypeError, AttributeError):
        job_id, action, target = None, None, None
    if (
        not isinstance(job_id, str)
        or action not in (None, "cancel", "clean")
        or (action == "clean") != isinstance(target, str)
    ):
        log.error(
            'dispatch message %s is not {"job_id": ..., "action"?: "cancel" | "clean", '
            '"target"?: ...}; dropped',
            msg.id,
        )
        return None, None, None
    return job_id, action, target


@bp.function_name("dispatch_job")
@bp.queue_trigger(arg_name="msg", queue_name=DISPATCH_QUEUE, connection="AzureWebJobsStorage")
async def dispatch_job(msg: func.QueueMessage) -> None:
    """Submit the job over SSH (or cancel it, or remove a deleted job's folder); a transient failure raises so the
    host retries, then poisons it."""
    job_id, action, target = _parsed(msg)
    if job_id and action == "cancel":
        await cancel.stop(job_id)
    elif job_id and action == "clean" and target:
        await dispatch.clean(job_id, target)
    elif job_id:
        await dispatch.dispatch(job_id, msg.id or "")


@bp.function_name("dispatch_poisoned")
@bp.queue_trigger(
    arg_name="msg", queue_name=f"{DISPATCH_QUEUE}-poison", connection="AzureWebJobsStorage"
)
def dispatch_poisoned(msg: func.QueueMessage) -> None:
    """The dispatch of this job failed every retry: fail the job with the last error (a cancel is left to the
    reconciler)."""
    job_id, action, _ = _parsed(msg)
    if job_id and action is None:
        dispatch.give_up(job_id)


@bp.function_name("reconcile_jobs")
@bp.timer_trigger(arg_name="timer", schedule=RECONCILE_SCHEDULE, run_on_startup=False)
async def reconcile_jobs(timer: func.TimerRequest) -> None:
    """Ask the schedulers about active jobs that have gone silent and settle the lost ones; send again the dispatch or
    the cancel of jobs whose message was lost."""
    await reconcile.reconcile()
