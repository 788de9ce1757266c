"""Operations around a run, on real parts: cancel (before dispatch, on Slurm, on a workstation), lost jobs found by
the reconciler after a node crash, and rerun by copying a job.

A "slow model" (a python3 that sleeps for the model and is the real one otherwise, put first on PATH by the
target's set-up lines) keeps a job RUNNING for as long as a test needs it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from core.job_store import change_job
from core.reconcile import Sweep, reconcile
from core.records import Job
from core.states import JobState
from tests.integration.conftest import Gateway
from tests.integration.test_dispatch import run, settle, wait_for
from tests.integration.test_report_runs import finished

pytestmark = pytest.mark.azurite

SLOW_MODEL = [
    "mkdir -p fakebin",
    'printf \'#!/bin/sh\\nif [ "$1" = model.py ]; then exec sleep 300; fi\\nexec /usr/bin/python3 "$@"\\n\' '
    "> fakebin/python3",
    "chmod 755 fakebin/python3",
    'PATH="$PWD/fakebin:$PATH"',
]


def status(gateway: Gateway, job_id: str, user: str = "runner") -> str:
    return str(gateway.call("GET", f"/job/{job_id}/status", user=user).body["status"])


def running(gateway: Gateway, job_id: str) -> None:
    wait_for(lambda: status(gateway, job_id) == "RUNNING", "the job to report RUNNING", timeout=60)


def cancel(gateway: Gateway, job_id: str, user: str = "runner") -> Any:
    return gateway.call("POST", f"/job/{job_id}/cancel", user=user)


def processes_in(folder: str) -> list[int]:
    """The local processes whose working folder is `folder` (the simulators of these tests run on this machine)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                # Not Slurm's own step daemon: a crashed node takes the job's processes, and slurmd notices.
                if (
                    os.readlink(entry / "cwd") == folder
                    and (entry / "comm").read_text().strip() != "slurmstepd"
                ):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def sweep_later(minutes: float = 30) -> Sweep:
    """One reconciler pass, as if run `minutes` from now (every job is silent by then)."""
    return asyncio.run(reconcile(datetime.now(UTC) + timedelta(minutes=minutes)))


# --- cancel ----------------------------------------------------------------------------------------------------


def test_a_job_cancelled_before_dispatch_is_cancelled_at_once(gateway: Gateway) -> None:
    job_id = gateway.call(
        "POST", "/job", {"case_id": 2, "job_title": "never sent"}, user="runner"
    ).body["job_id"]
    change_job(
        job_id, lambda j: replace(j, status=JobState.SUBMITTED)
    )  # queued, not yet taken by a dispatcher
    reply = cancel(gateway, job_id)
    assert reply.status == 202
    assert reply.body["status"] == "CANCELLED"
    assert cancel(gateway, job_id).body["status"] == "CANCELLED"  # idempotent
    history = gateway.call("GET", f"/job/{job_id}", user="runner").body["history"]
    assert [h["status"] for h in history][-1] == "CANCELLED"
    assert history[-1]["by"] == "runner"


def test_only_a_run_job_that_has_not_ended_can_be_cancelled(gateway: Gateway) -> None:
    draft = gateway.call("POST", "/job", {"case_id": 2, "job_title": "draft"}, user="runner").body[
        "job_id"
    ]
    assert cancel(gateway, draft).status == 409
    assert cancel(gateway, draft, user="someone-else").status == 404
    change_job(draft, lambda j: replace(j, status=JobState.COMPLETED))
    refused = cancel(gateway, draft)
    assert refused.status == 409
    assert "COMPLETED" in refused.body["detail"]


@pytest.mark.ssh
@pytest.mark.slurm
def test_cancel_on_slurm_stops_the_job_and_ends_cancelled(
    gateway: Gateway, sshd: Any, slurm: Any, use_targets: Any
) -> None:
    use_targets({"local": sshd.target("local", scheduler="slurm", setup=SLOW_MODEL)})
    job_id = run(gateway, mesh="coarse")
    job = settle(gateway, job_id)
    running(gateway, job_id)
    assert cancel(gateway, job_id).body["status"] in ("CANCELLING", "CANCELLED")
    ended = finished(gateway, job_id, timeout=90)
    assert ended["status"] == "CANCELLED", ended
    states = [h["status"] for h in ended["history"]]
    assert states[-2:] == ["CANCELLING", "CANCELLED"]
    assert slurm.wait_done(job["scheduler_id"], timeout=60) == "CANCELLED"
    assert cancel(gateway, job_id).body["status"] == "CANCELLED"  # idempotent once ended too
    wait_for(
        lambda: not processes_in(f"{sshd.home}/simgate-jobs/{job_id}"), "the job's processes to end"
    )


@pytest.mark.ssh
def test_cancel_on_a_workstation_kills_the_process_group(
    gateway: Gateway, sshd: Any, use_targets: Any
) -> None:
    use_targets({"local": sshd.target("local", scheduler="direct", setup=SLOW_MODEL)})
    job_id = run(gateway, mesh="coarse")
    running(gateway, job_id)
    folder = f"{sshd.home}/simgate-jobs/{job_id}"
    assert processes_in(folder)
    assert cancel(gateway, job_id).status == 202
    ended = finished(gateway, job_id, timeout=90)
    assert ended["status"] == "CANCELLED", ended
    wait_for(lambda: not processes_in(folder), "the job's processes to end", timeout=40)
    outputs = {
        o["output_id"] for o in gateway.call("GET", f"/job/{job_id}/output", user="runner").body
    }
    assert outputs <= {"simgate-stdout.log", "simgate-stderr.log"}


# --- lost jobs ---------------------------------------------------------------------------------------------------


@pytest.mark.ssh
@pytest.mark.parametrize("scheduler", ["direct", pytest.param("slurm", marks=pytest.mark.slurm)])
def test_a_job_whose_node_crashed_fails_within_one_reconciler_pass(
    gateway: Gateway, sshd: Any, request: pytest.FixtureRequest, use_targets: Any, scheduler: str
) -> None:
    if scheduler == "slurm":
        request.getfixturevalue("slurm")
    use_targets({"local": sshd.target("local", scheduler=scheduler, setup=SLOW_MODEL)})
    job_id = run(gateway, mesh="coarse")
    running(gateway, job_id)
    alive = sweep_later()
    assert job_id in alive.alive  # a job its scheduler still runs is left alone...
    assert gateway.call("GET", f"/job/{job_id}/status", user="runner").body["status"] == "RUNNING"
    folder = f"{sshd.home}/simgate-jobs/{job_id}"
    for pid in processes_in(
        folder
    ):  # ...until its node crashes: the wrapper and the model die at once
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not processes_in(folder), "the crash")
    time.sleep(1)  # Slurm notices its batch script is gone
    swept = sweep_later()
    assert job_id in swept.failed
    job = gateway.call("GET", f"/job/{job_id}", user="runner").body
    assert job["status"] == "FAILED"
    assert job["reason"] == "lost by scheduler"
    assert job["history"][-1]["by"] == "reconciler"


@pytest.mark.ssh
def test_a_lost_job_keeps_the_exit_code_its_wrapper_left(
    gateway: Gateway, sshd: Any, use_targets: Any
) -> None:
    """The wrapper wrote its exit code but its last reports never arrived (the gateway was unreachable)."""
    use_targets({"local": sshd.target("local", scheduler="direct", setup=SLOW_MODEL)})
    job_id = run(gateway, mesh="coarse")
    running(gateway, job_id)
    folder = f"{sshd.home}/simgate-jobs/{job_id}"
    for pid in processes_in(folder):
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not processes_in(folder), "the crash")
    exit_file = (
        Path(folder) / ".simgate-exit-code"
    )  # sshd's user is local: the test writes as the wrapper would
    exit_file.write_text("7\n")
    exit_file.chmod(0o644)
    swept = sweep_later()
    assert job_id in swept.failed
    assert (
        gateway.call("GET", f"/job/{job_id}", user="runner").body["reason"]
        == "lost by scheduler (exit code 7)"
    )


def test_a_job_that_reported_recently_is_not_swept(gateway: Gateway) -> None:
    job_id = gateway.call("POST", "/job", {"case_id": 2, "job_title": "fresh"}, user="runner").body[
        "job_id"
    ]

    def queued(job: Job) -> Job:
        return replace(job, status=JobState.QUEUED, scheduler_id="123")

    change_job(job_id, queued)
    swept = asyncio.run(
        reconcile()
    )  # silent for less than SIMGATE_LOST_AFTER_MINUTES: not asked about
    assert job_id not in swept.alive + swept.failed + swept.skipped
    change_job(
        job_id, lambda j: replace(j, status=JobState.FAILED)
    )  # end it: no test leaves a job active


# --- rerun -------------------------------------------------------------------------------------------------------


def test_copy_makes_a_new_draft_with_the_same_case_and_values(gateway: Gateway) -> None:
    source = gateway.call(
        "POST", "/job", {"case_id": 2, "job_title": "Test 1", "description": "d"}, user="martin"
    ).body["job_id"]
    fields = [{"name": "blade_speed", "value": 15000}, {"name": "mesh", "value": "coarse"}]
    assert gateway.call("PATCH", f"/job/{source}", {"fields": fields}, user="martin").status == 200
    change_job(source, lambda j: replace(j, status=JobState.FAILED, reason="exit code 1"))
    copied = gateway.call("POST", f"/job/{source}/copy", user="martin")
    assert copied.status == 201
    job = copied.body
    assert copied.headers["location"] == f"/job/{job['job_id']}"
    assert job["job_id"] != source
    assert (job["status"], job["job_title"], job["case_id"], job["description"]) == (
        "DRAFT",
        "Test 1 (copy)",
        2,
        "d",
    )
    values = {v["name"]: v["value"] for v in job["values"] if not v["is_default"]}
    assert values == {"blade_speed": 15000, "mesh": "coarse"}
    assert job["history"][0]["reason"] == f"copied from job {source}"
    named = gateway.call("POST", f"/job/{source}/copy", {"job_title": "Test 2"}, user="martin").body
    assert named["job_title"] == "Test 2"


def test_copy_is_the_callers_and_only_of_their_own_jobs(gateway: Gateway) -> None:
    source = gateway.call(
        "POST", "/job", {"case_id": 2, "job_title": "alice's"}, user="alice"
    ).body["job_id"]
    assert gateway.call("POST", f"/job/{source}/copy", user="bob").status == 404
    assert (
        gateway.call("POST", f"/job/{source}/copy", user="root", admin=True).status == 404
    )  # admins see, not copy
    own = gateway.call("POST", f"/job/{source}/copy", user="alice")
    assert own.status == 201
    assert own.body["user"] == "alice"
    bad = gateway.call("POST", f"/job/{source}/copy", {"job_title": ""}, user="alice")
    assert bad.status == 422
    assert bad.body["errors"][0]["name"] == "job_title"
