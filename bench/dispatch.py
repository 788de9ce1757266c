"""Dispatch 100 jobs to one target reusing the SSH connection, and 100 more with a fresh connection per job.

The original system opened a new SSH connection per command; ours opens one per target and worker and keeps it.
Both runs go through the real dispatcher (`core.dispatch.dispatch`: claim in Table Storage, render, one remote
command that unpacks and submits, record QUEUED) against a private Azurite and a real SSH server: OpenSSH's sshd
with a dedicated `/bin/sh` user when run as root and sshd is installed, else devhost's embedded simulator. The
target's `python` is `true`, so the submitted jobs end at once and do not load the machine while it is measured.

    .venv/bin/python -m bench.dispatch [--jobs 100] [--server sshd|embedded]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from core.records import Change, Job, new_job_id, now_iso
from core.services import reset_services
from core.states import JobState
from devhost.azurite import start_private_azurite

ROOT = Path(__file__).resolve().parent.parent


def seed(count: int) -> list[str]:
    """Store `count` SUBMITTED smoothie jobs; their ids."""
    from core.services import services

    now = now_iso()
    ids = []
    for i in range(count):
        job = Job(
            job_id=new_job_id("bench"),
            owner="bench",
            owner_name="bench",
            case_id=2,
            title=f"bench {i}",
            description="",
            status=JobState.SUBMITTED,
            created_at=now,
            updated_at=now,
            history=(Change(JobState.SUBMITTED, now, "bench"),),
        )
        ids.append(services().jobs.insert(job).job_id)
    return ids


class ConnectionPerCommand:
    """A remote runner that opens a connection for each command and closes it after: the original's way."""

    def __init__(self) -> None:
        self.opened = 0

    async def run(self, target: Any, argv: list[str], stdin: bytes | None = None) -> Any:
        from core.ssh import SshPool

        own = SshPool()
        try:
            return await own.run(target, argv, stdin)
        finally:
            self.opened += own.opened
            await own.close()


async def dispatch_all(ids: list[str], fresh: bool, batch: int) -> tuple[float, int]:
    """Dispatch the jobs `batch` at a time, as the host runs a queue trigger (host.json `batchSize`); seconds taken
    and SSH connections opened."""
    from core.dispatch import dispatch
    from core.services import Services, services, use_services

    now = services()
    runner: Any = ConnectionPerCommand() if fresh else now.remote
    given = {
        "jobs": now.jobs,
        "outputs": now.outputs,
        "queue": now.queue,
        "catalog": now.catalog,
        "targets": now.targets,
        "remote": runner,
    }
    started, opened_before = time.perf_counter(), runner.opened
    with use_services(Services(now.settings, **given)):
        for start in range(0, len(ids), batch):
            await asyncio.gather(*(dispatch(i, f"bench-{i}") for i in ids[start : start + batch]))
    return time.perf_counter() - started, runner.opened - opened_before


def check_queued(ids: list[str]) -> int:
    """How many of `ids` are QUEUED with a scheduler id (every one should be)."""
    from core.job_store import read_job

    return sum(1 for i in ids if (j := read_job(i)).status is JobState.QUEUED and j.scheduler_id)


def server(kind: str, state: Path) -> Any:
    """Start the SSH server to measure against."""
    from tests.infra import SSHD, EmbeddedLogin, Sshd

    if kind == "auto":
        kind = "sshd" if os.geteuid() == 0 and SSHD.exists() else "embedded"
    login = Sshd(state) if kind == "sshd" else EmbeddedLogin(state)
    return login.start()


def main() -> None:
    """Set up, measure both ways in one run, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--server", choices=("auto", "sshd", "embedded"), default="auto")
    parser.add_argument(
        "--batch", type=int, default=host_batch_size(), help="jobs dispatched at once"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        azurite = start_private_azurite(ROOT, Path(tmp) / "azurite")
        login = server(args.server, Path(tmp) / "ssh")
        try:
            target = {**login.target("local"), "python": "true"}
            os.environ.update(
                {
                    "AzureWebJobsStorage": azurite.connection_string,
                    "SIMGATE_STORAGE_CA": str(azurite.ca_path),
                    "SIMGATE_JOBS_TABLE": "benchjobs",
                    "SIMGATE_TARGETS": json.dumps({"local": target}),
                    "SIMGATE_CALLBACK_URL": "http://127.0.0.1:7071",
                }
            )
            reset_services()
            for batch in sorted({1, args.batch}):
                measure(args.jobs, batch, type(login).__name__)
        finally:
            login.stop()
            azurite.stop()


def host_batch_size() -> int:
    """How many queue messages the host hands the dispatcher at once (host.json)."""
    return int(
        json.loads((ROOT / "host.json").read_text())["extensions"]["queues"].get("batchSize", 16)
    )


def measure(jobs: int, batch: int, server_name: str) -> None:
    """Dispatch `jobs` twice over, `batch` at a time, reusing the connection and not; print the figures."""
    reused_ids, fresh_ids = seed(jobs), seed(jobs)

    async def both() -> tuple[tuple[float, int], tuple[float, int]]:
        await dispatch_all(
            seed(2), fresh=False, batch=1
        )  # warm up: imports, templates, the first connection
        return await dispatch_all(reused_ids, False, batch), await dispatch_all(
            fresh_ids, True, batch
        )

    (reused, reused_opened), (fresh, fresh_opened) = asyncio.run(both())
    print(
        f"\n{jobs} jobs to one target over {server_name}, {batch} at a time, each: storage + one remote command"
    )
    print(
        f"  reusing the connection:      {reused:6.2f} s ({reused / jobs * 1000:6.1f} ms a job), "
        f"{reused_opened} connection(s) opened, {check_queued(reused_ids)}/{jobs} QUEUED"
    )
    print(
        f"  a fresh connection per job:  {fresh:6.2f} s ({fresh / jobs * 1000:6.1f} ms a job), "
        f"{fresh_opened} connection(s) opened, {check_queued(fresh_ids)}/{jobs} QUEUED"
    )
    print(f"ratio fresh / reused: {fresh / reused:.1f}x")


if __name__ == "__main__":
    main()
