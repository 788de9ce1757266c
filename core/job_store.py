"""The one way jobs are read for a caller and the one way they change: read, apply an event, write conditionally.

Every job route checks ownership: a job that is not the caller's is answered exactly as one that does not exist
(404). Admins may read everyone's jobs (`readable_job`), but change only their own (`owned_job`, `change_job`
with a caller).

`change_job` applies one event of `core.transitions` to a fresh read and writes the result conditional on the
ETag read; a conflict is retried from a fresh read, and refused as busy (503) if it keeps happening: never lost.
A job that ends here after its upload grant was given loses its upload container, whatever ended it (a report,
the reconciler, a cancel).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from core.auth import Principal
from core.errors import ConcurrencyConflict, NotFound, Unavailable
from core.records import Job, split_job_id
from core.services import services

log = logging.getLogger(__name__)

ATTEMPTS = 8  # conditional writes tried before a conflict is refused (as busy: try again)
T = TypeVar("T")
Event = Callable[[Job], Job | None]


def read_job(job_id: str) -> Job:
    """The job as stored (one point read), whoever owns it: for the gateway's own workers, not for callers."""
    return services().jobs.get(job_id)


def owned_job(caller: Principal, job_id: str) -> Job:
    """The caller's own job (one point read); another user's job is `NotFound`, as if it did not exist."""
    return owned(caller, read_job(job_id))


def readable_job(caller: Principal, job_id: str) -> Job:
    """A job the caller may see (one point read): their own, or anyone's for an admin; else `NotFound`."""
    job = read_job(job_id)
    return job if caller.is_admin else owned(caller, job)


def owned(caller: Principal, job: Job) -> Job:
    """`job` if it is the caller's; `NotFound` otherwise."""
    if job.owner != caller.user_id:
        raise NotFound(f"there is no job {job.job_id!r}")
    return job


def change_job(
    job_id: str, event: Event, caller: Principal | None = None, job: Job | None = None
) -> Job:
    """Read, apply `event` and conditionally write a job, from a fresh read after each conflict.

    `event` returns the changed job, or None when there is nothing to write (the job is returned as read). With a
    `caller`, a job that is not theirs is `NotFound`. A `job` the caller has just read saves the first read.
    """
    split_job_id(job_id)
    first = job

    def attempt(number: int) -> Job:
        current = first if first is not None and number == 0 else read_job(job_id)
        if caller is not None:
            owned(caller, current)
        changed = event(current)
        if changed is None:
            return current
        written = services().jobs.replace(changed)
        if current.status.active and written.status.terminal and written.upload_expires:
            _close_uploads(written.job_id)
        return written

    return retrying(attempt)


def _close_uploads(job_id: str) -> None:
    """A job that has ended keeps no place its upload grant can write to (best effort: the grant expires anyway,
    and nothing users download is in that place)."""
    try:
        services().outputs.close_uploads(job_id)
    except Unavailable as exc:
        log.warning(
            "job %s ended, but its upload container was not deleted: %s", job_id, exc.detail
        )


def retrying(attempt: Callable[[int], T]) -> T:
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


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    """Run a blocking storage call (`change_job`, a read, a queue send) off the event loop the SSH connections share."""
    return await asyncio.to_thread(fn, *args)
