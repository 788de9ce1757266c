"""Storage round trips per job route, and the cost of one `GET /job` page with 10,000 jobs against 100.

Runs the real app in-process behind devhost (real HTTP) against a private Azurite, counting every storage request
at the Azure SDK's HTTP pipeline (`core.storage.observe_requests`). Targets (architecture §7): one round trip for
`GET /job/{id}`, `GET /job/{id}/status` and a page of `GET /job`; no more for a page with 10,000 jobs stored than
with 100 (time ratio at most 1.5).

    .venv/bin/python -m bench.storage_calls [--big 10000] [--small 100] [--runs 30]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.stack import local_stack
from core.records import Change, Job, new_job_id, now_iso
from core.states import JobState
from core.storage import observe_requests
from devhost.tokens import mint


class Client:
    """Real HTTP to the in-process gateway, counting the storage requests each call makes."""

    def __init__(self, url: str, key: Path) -> None:
        self.url, self.key, self.requests = url, key, 0
        observe_requests(lambda method, url: self._count())

    def _count(self) -> None:
        self.requests += 1

    def call(self, method: str, path: str, user: str, body: Any = None) -> tuple[int, Any, int]:
        """Status, parsed body, and the storage requests this call made."""
        headers = {
            "Authorization": f"Bearer {mint(self.key, user)}",
            "Content-Type": "application/json",
        }
        data = json.dumps(body).encode() if body is not None else None
        before = self.requests
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        with urllib.request.urlopen(request, timeout=60) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None, self.requests - before


def count_routes(client: Client) -> list[tuple[str, int]]:
    """Storage requests of one call of each route, on a fresh job."""
    status, job, _ = client.call("POST", "/job", "counter", {"case_id": 2, "job_title": "warm-up"})
    assert status == 201
    calls: list[tuple[str, str, Any]] = [
        ("GET", "/case?page=1&per_page=5", None),
        ("GET", "/case/2", None),
        ("POST", "/job", {"case_id": 2, "job_title": "counted"}),
        ("PATCH", "/job/{id}", {"description": "counted"}),
        ("GET", "/job/{id}", None),
        ("GET", "/job/{id}/status", None),
        ("GET", "/job?per_page=20", None),
        ("DELETE", "/job/{id}", None),
    ]
    results = []
    for method, path, body in calls:
        _, _, requests = client.call(method, path.replace("{id}", job["job_id"]), "counter", body)
        results.append((f"{method} {path}", requests))
    return results


def seed(table: Any, user: str, count: int) -> None:
    """Store `count` DRAFT jobs of `user`, in batches of 100 (one partition per user: one transaction each)."""
    from core.storage.jobs_table import to_entity

    now = now_iso()
    entities = [
        to_entity(
            Job(
                job_id=new_job_id(user),
                owner=user,
                owner_name=user,
                case_id=2,
                title=f"seeded {i}",
                description="",
                status=JobState.DRAFT,
                created_at=now,
                updated_at=now,
                history=(Change(JobState.DRAFT, now, user),),
            )
        )
        for i in range(count)
    ]
    for start in range(0, count, 100):
        table.submit_transaction([("create", e) for e in entities[start : start + 100]])


def page_times(client: Client, users: list[str], rounds: int) -> dict[str, tuple[float, int]]:
    """Median seconds of one `GET /job` page of 20 per user, and the storage requests it made.

    Users take turns each round, so drift on a busy machine hits them alike.
    """
    times: dict[str, list[float]] = {u: [] for u in users}
    requests: dict[str, int] = {}
    for _ in range(rounds):
        for user in users:
            start = time.perf_counter()
            _, page, requests[user] = client.call("GET", "/job?per_page=20", user)
            times[user].append(time.perf_counter() - start)
            assert len(page) == 20
    return {u: (statistics.median(times[u]), requests[u]) for u in users}


def main() -> None:
    """Start the stack, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big", type=int, default=10_000)
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, local_stack(Path(tmp)) as stack:
        run(Client(stack.url, stack.signing_key), args)


def run(client: Client, args: argparse.Namespace) -> None:
    """Measure through a running gateway."""
    print("storage requests per call (counted at the SDK's HTTP pipeline):")
    for route, requests in count_routes(client):
        print(f"  {route:<28} {requests}")
    from core.services import services
    from core.storage.jobs_table import JobsTable

    jobs = services().jobs
    assert isinstance(jobs, JobsTable)
    table = jobs._client
    started = time.perf_counter()
    seed(table, "small-user", args.small)
    seed(table, "big-user", args.big)
    print(f"seeded {args.small} + {args.big} jobs in {time.perf_counter() - started:.1f} s")
    figures = page_times(client, ["small-user", "big-user"], args.runs)
    for user, stored in (("small-user", args.small), ("big-user", args.big)):
        seconds, requests = figures[user]
        print(
            f"GET /job page of 20 with {stored:>6} jobs stored: {seconds * 1000:6.1f} ms, {requests} request(s)"
        )
    print(
        f"ratio {args.big} / {args.small} (medians of {args.runs}): "
        f"{figures['big-user'][0] / figures['small-user'][0]:.2f}"
    )


if __name__ == "__main__":
    main()
