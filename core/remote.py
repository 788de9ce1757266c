"""Everything that runs on a target: the one module that runs remote programs, and the shell text they are.

Dispatch, cancel and reconcile decide; this module does. It builds a job's `Plan` (its case, target, scheduler and
folder, looked up once), the job folder's files, and runs every remote program through the runner port
(`core.services`, SSH in production): submit once, ask the states of many jobs, cancel one, read exit codes,
remove a folder. Every shell text here is fixed and one line (a csh-family login shell refuses newlines inside
quotes); values reach it only as positional parameters ("$1"...), never pasted into the text.
"""

from __future__ import annotations

import io
import json
import logging
import shlex
import tarfile
import time
from dataclasses import dataclass, field
from ipaddress import ip_address
from pathlib import Path
from urllib.parse import urlsplit

from core import jobfolder
from core.cases import Case
from core.catalog import get_catalog
from core.config import APP_ROOT
from core.errors import DispatchRefused, GatewayError, Unavailable
from core.ports import CommandResult
from core.records import Job, split_job_id
from core.render import render_case
from core.schedulers import get_scheduler
from core.schedulers.base import RemoteState, Scheduler, Submission
from core.services import get_settings, services
from core.targets import Target, get_target
from core.values import effective_values

log = logging.getLogger(__name__)

WRAPPER = APP_ROOT / "simulator" / "wrapper.py"
_MARKER, _JOB_FILE = jobfolder.SUBMITTED_MARKER, jobfolder.JOB_FILE
# "$1" the job's folder, then the scheduler's submit argv. Unpack the job's files from the archive on stdin into a
# folder of its own, private to the job's user, and submit once. The marker is written by the same command that
# submits, so a retried dispatch finds it and only refreshes the job file (the claim gave the job a new token)
# instead of submitting again. Few processes: this is most of a dispatch's time on the target.
SUBMIT_ONCE = (
    'umask 077; mkdir -p "$1" && cd "$1" && shift || exit; '
    f"if [ -s {_MARKER} ]; then tar -xf - {_JOB_FILE} && chmod go= {_JOB_FILE} "
    f'&& read -r id < {_MARKER} && printf "%s\\n" "$id"; '
    # tar run by root keeps the archive's modes: make everything private
    f'else tar -xf - && chmod -R go= . && id=$("$@") && printf "%s\\n" "$id" > {_MARKER} '
    '&& printf "%s\\n" "$id"; fi'
)
# "$1" the job's folder: gone, with everything in it (the folder is made from the target's base and the job id).
REMOVE_FOLDER = 'rm -rf -- "$1"'
# "$@" the job folders: prints "<folder> <exit code>" for each, the code empty when the wrapper left none.
EXIT_CODES = (
    f'for d do code=""; read -r code 2>/dev/null < "$d/{jobfolder.EXIT_CODE_FILE}"; '
    'printf "%s %s\\n" "$d" "$code"; done'
)


@dataclass(frozen=True)
class JobFile:
    """A file of the job's folder (path relative to it) and its mode."""

    path: str
    data: bytes
    mode: int = 0o644


@dataclass(frozen=True)
class Plan:
    """Where and how one job runs: its case, its case's target, that target's scheduler, and the job's folder."""

    job: Job
    case: Case
    target: Target
    scheduler: Scheduler
    job_dir: str
    submission: Submission = field(repr=False)


def plan_for(job: Job) -> Plan:
    """The plan of `job` (one catalog lookup); `DispatchRefused` when its target is not configured."""
    case = get_catalog().get(job.case_id)
    try:
        target = get_target(case.target)
    except GatewayError as exc:
        raise DispatchRefused(exc.detail) from exc
    job_dir = jobfolder.folder_of(target.base_dir, job.job_id)
    scheduler = get_scheduler(target.scheduler, target.options)
    return Plan(job, case, target, scheduler, job_dir, _submission(job, case, target, job_dir))


def _submission(job: Job, case: Case, target: Target, job_dir: str) -> Submission:
    resources = case.resources
    return Submission(
        name=job.job_id,
        job_dir=job_dir,
        command=f"{shlex.quote(target.python)} {jobfolder.WRAPPER_FILE}",
        nodes=resources.nodes,
        cpus=resources.cpus,
        walltime=resources.walltime,
        memory_mb=resources.memory_mb,
        options=dict(target.options),
        setup=target.setup,
    )


async def submit_once(plan: Plan, token: str) -> str:
    """Unpack the job's folder and submit it, once (a repeat prints the first submission's id): the scheduler's id.
    `DispatchRefused` when the submit fails or prints no id."""
    files = archive([*_files(plan), _job_file(plan, token)])
    script = f"{plan.job_dir}/{jobfolder.BATCH_FILE}"
    argv = [
        "sh",
        "-c",
        SUBMIT_ONCE,
        "simgate",
        plan.job_dir,
        *plan.scheduler.submit_argv(script, plan.submission),
    ]
    result = await _run(plan.target, argv, stdin=files)
    if result.exit_status != 0:
        tail = (result.stderr or result.stdout).strip()[-500:]
        raise DispatchRefused(
            f"submitting with {plan.scheduler.name} failed (exit {result.exit_status}): {tail}"
        )
    try:
        return plan.scheduler.parse_submit(result.stdout)
    except (GatewayError, ValueError) as exc:
        raise DispatchRefused(
            f"{plan.scheduler.name} gave no job id: {result.stdout.strip()[-200:]!r}"
        ) from exc


async def states(target: Target, scheduler: Scheduler, ids: list[str]) -> dict[str, RemoteState]:
    """What the scheduler says of each of `ids`, in one query; `Unavailable` when the query itself fails."""
    result = await _run(target, scheduler.status_argv(ids))
    if result.exit_status != 0:
        tail = (result.stderr or result.stdout).strip()[-300:]
        raise Unavailable(
            f"{scheduler.name} status query on {target.name} failed (exit {result.exit_status}): {tail}"
        )
    return scheduler.parse_status(result.stdout, ids)


async def cancel(plan: Plan, scheduler_id: str) -> None:
    """Ask the scheduler to stop the job (a refusal is logged: the job may have ended; its state says)."""
    result = await _run(plan.target, plan.scheduler.cancel_argv(scheduler_id))
    if result.exit_status != 0:
        log.warning(
            "cancel %s: %s exited %s: %s",
            plan.job.job_id,
            plan.scheduler.name,
            result.exit_status,
            result.stderr.strip()[-300:],
        )


async def exit_codes(target: Target, folders: dict[str, str]) -> dict[str, int]:
    """The wrapper's exit code of each job (by id, its folder the value) that left one, read in one command."""
    result = await _run(target, ["sh", "-c", EXIT_CODES, "simgate-exit-codes", *folders.values()])
    by_folder = dict(line.rsplit(" ", 1) for line in result.stdout.splitlines() if " " in line)
    codes = {job_id: by_folder.get(folder, "").strip() for job_id, folder in folders.items()}
    return {job_id: int(code) for job_id, code in codes.items() if code.isdigit() and len(code) < 6}


async def remove_folder(target_name: str, job_id: str) -> None:
    """Remove a deleted job's folder from its target, best effort: what happened is logged, and a target that
    cannot be reached raises (`Unavailable`)."""
    split_job_id(job_id)  # the folder's name: a job id, never a path
    target = get_target(target_name)
    folder = jobfolder.folder_of(target.base_dir, job_id)
    result = await _run(target, ["sh", "-c", REMOVE_FOLDER, "simgate-clean", folder])
    if result.exit_status == 0:
        log.info("job %s deleted: its folder %s on %s is removed", job_id, folder, target.name)
    else:
        log.warning(
            "job %s deleted, but its folder %s on %s was not removed (exit %s): %s",
            job_id,
            folder,
            target.name,
            result.exit_status,
            result.stderr.strip()[-300:],
        )


async def _run(target: Target, argv: list[str], stdin: bytes | None = None) -> CommandResult:
    return await services().remote.run(target, argv, stdin=stdin)


def archive(files: list[JobFile]) -> bytes:
    """The job's files as one tar archive (modes kept; the remote umask makes them private)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for file in files:
            info = tarfile.TarInfo(file.path)
            info.size, info.mode, info.mtime = len(file.data), file.mode, int(time.time())
            tar.addfile(info, io.BytesIO(file.data))
    return buffer.getvalue()


def _files(plan: Plan) -> list[JobFile]:
    """The job's files, relative to its folder: the rendered case, the wrapper, the batch script."""
    values = effective_values(plan.case, plan.job.values)
    job = {"id": plan.job.job_id, "title": plan.job.title}
    rendered = render_case(get_catalog().folder(plan.case), plan.case, values, job)
    files = [JobFile(f.path, f.text.encode(), 0o755 if f.executable else 0o644) for f in rendered]
    files.append(JobFile(jobfolder.WRAPPER_FILE, WRAPPER.read_bytes(), 0o644))
    ca = get_settings().storage_ca
    if ca:  # a private CA (Azurite's, locally): the wrapper trusts it for its uploads and callbacks
        files.append(JobFile(jobfolder.CA_FILE, Path(ca).read_bytes(), 0o644))
    files.append(
        JobFile(jobfolder.BATCH_FILE, plan.scheduler.batch_script(plan.submission).encode(), 0o755)
    )
    return files


def _job_file(plan: Plan, token: str) -> JobFile:
    """The wrapper's instructions, with the job's token: readable by the job's user only."""
    body = {
        "job_id": plan.job.job_id,
        "token": token,
        "callback_url": f"{callback_base(get_settings().callback_url)}/job/{plan.job.job_id}/status",
        "entry": plan.case.entry,
        "outputs": [
            o.model_dump(include={"name", "glob", "content_type"}) for o in plan.case.outputs
        ],
        # What the wrapper reads after the entry ends: a JSON `key` or the last row's CSV `column` of `file`.
        "metrics": [
            m.model_dump(include={"name", "file", "key", "column"}, exclude_none=True)
            for m in plan.case.metrics
        ],
        "ca_file": jobfolder.CA_FILE if get_settings().storage_ca else None,
    }
    return JobFile(jobfolder.JOB_FILE, json.dumps(body, indent=2).encode(), 0o600)


def callback_base(url: str) -> str:
    """The gateway's URL that simulators report to: https, or plain http only to this machine (the local stack),
    since the job's token and its upload grant travel on it."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if (parts.scheme == "https" and host) or (parts.scheme == "http" and _loopback(host)):
        return url
    raise DispatchRefused(
        "the gateway's callback URL (SIMGATE_CALLBACK_URL) must be https, or http only to a "
        "loopback address"
    )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False
