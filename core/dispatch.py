"""Dispatch: put a SUBMITTED job on its simulator over SSH and record it QUEUED.

Called by the queue-triggered function with the message's id. Delivery is at least once, so every step is safe to
repeat: a job no longer SUBMITTED, or claimed by another message, is left alone; on the target, a marker written
by the same shell command that submits makes a retried submit print the first submission's id instead of submitting
again. Transient failures (a target that cannot be reached) raise, so the host retries, and after the last try the
poison handler fails the job with the last error; permanent ones (host key, authentication, a failing submit)
fail the job at once with the reason.
"""

from __future__ import annotations

import asyncio
import functools
import io
import json
import logging
import secrets
import shlex
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from ipaddress import ip_address
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from core.catalog import get_catalog
from core.config import APP_ROOT, get_settings
from core.errors import CatalogError, DispatchRefused, GatewayError, Unavailable
from core.job_operations import change_job, read_job
from core.records import Job, advanced, hash_token, split_job_id
from core.render import render_case
from core.schedulers import get_scheduler
from core.schedulers.base import RemoteState, Scheduler, Submission
from core.ssh import pool
from core.states import JobState
from core.targets import Target, get_target
from core.values import effective_values

log = logging.getLogger(__name__)

WRAPPER = APP_ROOT / "simulator" / "wrapper.py"
CA_FILE = "simgate_ca.pem"
# One remote command per job: unpack the job's files from the archive on stdin into a folder of its own, private
# to the job's user, and submit once. The marker is written by the same command that submits, so a retried dispatch
# finds it and only refreshes the token file (the claim gave the job a new token) instead of submitting again.
# Values are positional parameters ("$1"...), never pasted into the command text.
SUBMIT_ONCE = (  # one line (a csh-family login shell refuses newlines inside quotes), and few processes: it is
    # most of a dispatch's time on the target
    'umask 077; mkdir -p "$1" && cd "$1" && shift || exit; '
    "if [ -s .simgate-submitted ]; then tar -xf - simgate_job.json && chmod go= simgate_job.json "
    '&& read -r id < .simgate-submitted && printf "%s\\n" "$id"; '
    # tar run by root keeps the archive's modes: make everything private
    'else tar -xf - && chmod -R go= . && id=$("$@") && printf "%s\\n" "$id" > .simgate-submitted '
    '&& printf "%s\\n" "$id"; fi'
)
# "$1" the job's folder: gone, with everything in it (the folder is made from the target's base and the job id).
REMOVE_FOLDER = 'rm -rf -- "$1"'


@dataclass(frozen=True)
class JobFile:
    """A file of the job's folder (path relative to it) and its mode."""

    path: str
    data: bytes
    mode: int = 0o644


@dataclass(frozen=True)
class Plan:
    """Where and how one job is submitted."""

    job: Job
    target: Target
    scheduler: Scheduler
    job_dir: str


async def dispatch(job_id: str, message_id: str) -> None:
    """Submit `job_id` if it is still waiting to be; see the module's docstring for the failure rules."""
    job = await store(read_job, job_id)
    if not _ours(job, message_id):
        log.info("dispatch %s: %s, nothing to do", job_id, job.status.value)
        return
    try:
        plan = plan_for(job)
        submitted = await _submit(plan, message_id)
    except (DispatchRefused, CatalogError, ValueError) as exc:
        # ValueError: a scheduler adapter refused the target's options or paths; retrying won't change them.
        reason = f"dispatch: {exc.detail if isinstance(exc, GatewayError) else exc}"
        await store(change_job, job_id, lambda j: advanced(j, JobState.FAILED, "dispatcher", reason))
        log.warning("dispatch %s refused: %s", job_id, reason)
        return
    except Unavailable as exc:
        error = exc.detail
        await store(change_job, job_id, lambda j: _noted(j, error))
        raise
    if submitted is not None:
        scheduler_id, claimed = submitted
        recorded = await store(change_job, job_id, lambda j: _queued(j, scheduler_id), None, claimed)
        log.info("dispatch %s: queued as %s on %s", job_id, scheduler_id, plan.target.name)
        if recorded.status is JobState.CANCELLING:  # cancelled while it was being submitted: stop it now
            from core.storage.queues import enqueue_dispatch

            await store(enqueue_dispatch, job_id, "cancel")


async def clean(job_id: str, target_name: str) -> None:
    """Remove a deleted job's folder from its target, best effort: what happened is logged, and a target that
    cannot be reached raises (the host retries; the folder stays if it never can)."""
    split_job_id(job_id)  # the folder's name: a job id, never a path
    target = get_target(target_name)
    folder = f"{target.base_dir.rstrip('/')}/{job_id}"
    result = await pool().run(target, ["sh", "-c", REMOVE_FOLDER, "simgate-clean", folder])
    if result.exit_status == 0:
        log.info("job %s deleted: its folder %s on %s is removed", job_id, folder, target.name)
    else:
        log.warning("job %s deleted, but its folder %s on %s was not removed (exit %s): %s", job_id, folder,
                    target.name, result.exit_status, result.stderr.strip()[-300:])


def give_up(job_id: str) -> None:
    """Fail a job whose dispatch kept failing (its message reached the poison queue), with the last error."""

    def fail(job: Job) -> Job | None:
        if job.status is not JobState.SUBMITTED:
            return None
        why = job.dispatch_error or "the dispatcher kept failing"
        return advanced(job, JobState.FAILED, "dispatcher", f"dispatch: {why} (gave up after retries)")

    change_job(job_id, fail)


def _ours(job: Job, message_id: str) -> bool:
    """Whether this message should dispatch the job: still SUBMITTED and not claimed by another message."""
    return job.status is JobState.SUBMITTED and job.dispatch_message in (None, message_id)


def plan_for(job: Job) -> Plan:
    """Where and how `job` runs: its case's target, that target's scheduler, and the job's folder there."""
    case = get_catalog().get(job.case_id)
    try:
        target = get_target(case.target)
    except GatewayError as exc:
        raise DispatchRefused(exc.detail) from exc
    job_dir = f"{target.base_dir.rstrip('/')}/{job.job_id}"
    return Plan(job, target, get_scheduler(target.scheduler, target.options), job_dir)


async def _submit(plan: Plan, message_id: str) -> tuple[str, Job] | None:
    """Claim, upload and submit in one remote command: the scheduler's id and the claimed job, or None when another
    message claimed the job first."""
    token = secrets.token_urlsafe(32)
    claimed = await store(change_job, plan.job.job_id, lambda j: _claimed(j, message_id, token), None, plan.job)
    if claimed.dispatch_message != message_id:
        return None
    archive = _archive([*_files(plan), _job_file(plan, token)])
    script = f"{plan.job_dir}/simgate_batch.sh"
    argv = ["sh", "-c", SUBMIT_ONCE, "simgate", plan.job_dir, *plan.scheduler.submit_argv(script, _submission(plan))]
    result = await pool().run(plan.target, argv, stdin=archive)
    if result.exit_status != 0:
        tail = (result.stderr or result.stdout).strip()[-500:]
        raise DispatchRefused(f"submitting with {plan.scheduler.name} failed (exit {result.exit_status}): {tail}")
    return _scheduler_id(plan, result.stdout), claimed


async def remote_states(target: Target, scheduler: Scheduler, ids: list[str]) -> dict[str, RemoteState]:
    """What the scheduler says of each of `ids`, in one query; `Unavailable` when the query itself fails."""
    result = await pool().run(target, scheduler.status_argv(ids))
    if result.exit_status != 0:
        tail = (result.stderr or result.stdout).strip()[-300:]
        raise Unavailable(f"{scheduler.name} status query on {target.name} failed (exit {result.exit_status}): {tail}")
    return scheduler.parse_status(result.stdout, ids)


def _archive(files: list[JobFile]) -> bytes:
    """The job's files as one tar archive (modes kept; the remote umask makes them private)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for file in files:
            info = tarfile.TarInfo(file.path)
            info.size, info.mode, info.mtime = len(file.data), file.mode, int(time.time())
            tar.addfile(info, io.BytesIO(file.data))
    return buffer.getvalue()


def _scheduler_id(plan: Plan, stdout: str) -> str:
    try:
        return plan.scheduler.parse_submit(stdout)
    except ValueError as exc:
        raise DispatchRefused(f"{plan.scheduler.name} gave no job id: {stdout.strip()[-200:]!r}") from exc


def _files(plan: Plan) -> list[JobFile]:
    """The job's files, relative to its folder: the rendered case, the wrapper, the batch script."""
    catalog = get_catalog()
    case = catalog.get(plan.job.case_id)
    values = effective_values(case, plan.job.values)
    rendered = render_case(catalog.folder(case), case, values, {"id": plan.job.job_id, "title": plan.job.title})
    files = [JobFile(f.path, f.text.encode(), 0o755 if f.executable else 0o644) for f in rendered]
    files.append(JobFile("simgate_wrapper.py", WRAPPER.read_bytes(), 0o644))
    ca = get_settings().storage_ca
    if ca:  # a private CA (Azurite's, locally): the wrapper trusts it for its uploads and callbacks
        files.append(JobFile(CA_FILE, _read_ca(ca), 0o644))
    files.append(JobFile("simgate_batch.sh", plan.scheduler.batch_script(_submission(plan)).encode(), 0o755))
    return files


def _job_file(plan: Plan, token: str) -> JobFile:
    """The wrapper's instructions, with the job's token: readable by the job's user only."""
    case = get_catalog().get(plan.job.case_id)
    body = {
        "job_id": plan.job.job_id,
        "token": token,
        "callback_url": f"{callback_base(get_settings().callback_url)}/job/{plan.job.job_id}/status",
        "entry": case.entry,
        "outputs": [o.model_dump(include={"name", "glob", "content_type"}) for o in case.outputs],
        "ca_file": CA_FILE if get_settings().storage_ca else None,
    }
    return JobFile("simgate_job.json", json.dumps(body, indent=2).encode(), 0o600)


def callback_base(url: str) -> str:
    """The gateway's URL that simulators report to: https, or plain http only to this machine (the local stack),
    since the job's token and its upload grant travel on it."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if (parts.scheme == "https" and host) or (parts.scheme == "http" and _loopback(host)):
        return url
    raise DispatchRefused("the gateway's callback URL (SIMGATE_CALLBACK_URL) must be https, or http only to a "
                          "loopback address")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


@functools.cache
def _read_ca(path: str) -> bytes:
    return Path(path).read_bytes()


def _submission(plan: Plan) -> Submission:
    resources = get_catalog().get(plan.job.case_id).resources
    return Submission(
        name=plan.job.job_id, job_dir=plan.job_dir, command=f"{shlex.quote(plan.target.python)} simgate_wrapper.py",
        nodes=resources.nodes, cpus=resources.cpus, walltime=resources.walltime, memory_mb=resources.memory_mb,
        options=dict(plan.target.options), setup=plan.target.setup,
    )



def _claimed(job: Job, message_id: str, token: str) -> Job | None:
    if not _ours(job, message_id):
        return None  # another message claimed it meanwhile; the caller sees the other id and stops
    return replace(job, dispatch_message=message_id, token_hash=hash_token(token))


def _queued(job: Job, scheduler_id: str) -> Job | None:
    # The job may have reported RUNNING (or more) already: keep that, but still note the scheduler's id.
    moved = advanced(job, JobState.QUEUED, "dispatcher", scheduler_id=scheduler_id)
    if moved is None and job.scheduler_id is None:
        return replace(job, scheduler_id=scheduler_id)
    return moved


def _noted(job: Job, error: str) -> Job | None:
    return replace(job, dispatch_error=error) if job.status is JobState.SUBMITTED else None


async def store(fn: Callable[..., Any], *args: Any) -> Any:
    """Run a (blocking) storage call off the event loop, which the SSH connections share."""
    return await asyncio.to_thread(fn, *args)
