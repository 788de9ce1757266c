"""The reconciler: settle active jobs whose simulator has gone silent, so that none stays RUNNING forever.

Run by a timer. It finds the jobs that are QUEUED, RUNNING, FINALIZING or CANCELLING and have not changed for
`SIMGATE_LOST_AFTER_MINUTES`, and asks each target's scheduler about all of its jobs in one query. A job the
scheduler still has is left alone (the check is noted on it). A job it no longer runs, without a final report,
FAILS with the reason `lost by scheduler` and the exit code from the wrapper's exit-code file when there is one;
a CANCELLING job it no longer runs is CANCELLED. A target that cannot be reached is skipped until the next run.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from core.config import get_settings
from core.errors import GatewayError
from core.job import Job, advanced, iso_time, now_iso
from core.jobs import change_job
from core.schedulers.base import RemoteState
from core.states import JobState

if TYPE_CHECKING:
    from core.targets import Target

log = logging.getLogger(__name__)

SWEPT = (JobState.QUEUED, JobState.RUNNING, JobState.FINALIZING, JobState.CANCELLING)
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


async def reconcile(now: datetime | None = None) -> Sweep:
    """One pass over silent active jobs; see the module's docstring."""
    from core.dispatch import store

    cutoff = (now or datetime.now(UTC)) - timedelta(minutes=get_settings().lost_after_minutes)
    sweep = Sweep()
    by_target: dict[str, list[Job]] = defaultdict(list)
    for job in await store(silent_jobs, iso_time(cutoff)):
        by_target[_target_of(job)].append(job)
    for jobs in by_target.values():
        await _settle_target(jobs, sweep)
    log.info("reconciler: %d alive, %d failed as lost, %d cancelled, %d skipped", len(sweep.alive),
             len(sweep.failed), len(sweep.cancelled), len(sweep.skipped))
    return sweep


def silent_jobs(cutoff: str) -> list[Job]:
    """Active jobs unchanged since `cutoff` (one cross-partition query)."""
    from core.storage.jobs_table import jobs_table

    states = " or ".join(f"status eq '{s.value}'" for s in SWEPT)
    return jobs_table().find(f"({states}) and updated_at lt @cutoff", {"cutoff": cutoff}, MAX_JOBS)


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
