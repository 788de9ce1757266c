"""Load: many users and simulators on the gateway at once, for a fixed time; throughput, latency, errors, lost jobs.

Runs the real app in-process behind devhost (real HTTP, the dispatch queue, the embedded SSH simulator running the
real job wrapper) against a private Azurite. Users poll their jobs' status, list their jobs and the catalog, and
now and then create, edit and run a smoothie job, which is dispatched and reports back for real. Simulator
threads play a job's simulator from QUEUED on: reports with progress, the upload grant, an upload, COMPLETED,
then a download URL. Afterwards every job run is waited for: each must end (none stuck) and be found (none lost).

    .venv/bin/python -m bench.load [--seconds 30] [--users 8] [--simulators 4]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import secrets
import ssl
import statistics
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench.stack import local_stack
from core.records import Job
from core.states import JobState
from devhost.tokens import mint

ROOT = Path(__file__).resolve().parent.parent
JOB_ID = re.compile(r"[0-9a-f]{16}-[0-9]{13}-[0-9a-f]{6}")
CSV = b"time_s,mixing_index\n0,0\n1,0.5\n"
FINAL = {"COMPLETED", "FAILED", "CANCELLED"}


@dataclass
class Stats:
    """Every request's route, status and latency, from all threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    run_jobs: list[str] = field(default_factory=list)

    def record(self, route: str, status: int, seconds: float) -> None:
        with self.lock:
            self.latencies[route].append(seconds)
            self.statuses[status] += 1


class Client:
    """HTTP to the gateway as one user (or one job's simulator), every call recorded."""

    def __init__(self, url: str, stats: Stats, authorization: str) -> None:
        self.url, self.stats, self.authorization = url, stats, authorization

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": self.authorization}
        data = None
        if body is not None:
            data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        route = f"{method} {JOB_ID.sub('{id}', path.split('?')[0])}"
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(
                urllib.request.Request(self.url + path, data, headers, method=method), timeout=60
            ) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        self.stats.record(route, status, time.perf_counter() - started)
        return status, json.loads(raw) if raw else None


def user_loop(client: Client, stop: threading.Event, rng: random.Random) -> None:
    """A scientist: mostly polling, sometimes listing, now and then running a new job."""
    mine: list[str] = []
    while not stop.is_set():
        roll = rng.random()
        if roll < 0.06 or not mine:
            status, job = client.call("POST", "/job", {"case_id": 2, "job_title": "load"})
            if status != 201:
                continue
            fields = [{"name": "mesh", "value": "coarse"}, {"name": "blend_duration", "value": 1.0}]
            client.call("PATCH", f"/job/{job['job_id']}", {"fields": fields})
            if client.call("POST", f"/job/{job['job_id']}")[0] == 202:
                mine.append(job["job_id"])
                with client.stats.lock:
                    client.stats.run_jobs.append(job["job_id"])
        elif roll < 0.14:
            client.call("GET", "/job?per_page=20")
        elif roll < 0.18:
            client.call("GET", "/case?page=1&per_page=5")
        else:
            client.call("GET", f"/job/{rng.choice(mine)}/status")
        time.sleep(rng.uniform(0.01, 0.05))


def simulator_loop(url: str, stats: Stats, user: Client, stop: threading.Event, ca: Path) -> None:
    """A job's simulator, over and over: the reports of a whole run, an upload, and the download URL after."""
    from core.job_store import change_job
    from core.records import hash_token
    from core.services import services

    context = ssl.create_default_context(cafile=str(ca))
    while not stop.is_set():
        status, job = user.call("POST", "/job", {"case_id": 2, "job_title": "simulated"})
        if status != 201:
            continue
        job_id, token = job["job_id"], secrets.token_urlsafe(32)

        def dispatched(current: Job, token: str = token) -> Job:
            return replace(
                current, status=JobState.QUEUED, token_hash=hash_token(token), scheduler_id="1"
            )

        change_job(job_id, dispatched)  # what the dispatcher does, without a real submission
        services().outputs.create(job_id)
        with stats.lock:
            stats.run_jobs.append(job_id)
        simulator = Client(url, stats, f"Bearer {token}")
        for progress in (0, 25, 50, 75, 100):
            simulator.call(
                "PATCH", f"/job/{job_id}/status", {"status": "RUNNING", "progress": progress}
            )
        _, reply = simulator.call("PATCH", f"/job/{job_id}/status", {"status": "FINALIZING"})
        grant = (reply or {}).get("upload")
        if grant:
            put = urllib.request.Request(
                f"{grant['url']}/mixing_index.csv?{grant['sas']}",
                CSV,
                method="PUT",
                headers={"x-ms-blob-type": "BlockBlob", "x-ms-blob-content-type": "text/csv"},
            )
            with urllib.request.urlopen(put, context=context, timeout=60):
                pass
        claims = [{"name": "mixing_index", "file": "mixing_index.csv"}] if grant else []
        simulator.call("PATCH", f"/job/{job_id}/status", {"status": "COMPLETED", "outputs": claims})
        user.call("GET", f"/job/{job_id}/output/mixing_index.csv")


def settle(client: Client, job_ids: list[str], timeout: float) -> tuple[int, int]:
    """Wait for every job to end; (stuck: still active, lost: not found) when the time is up."""
    deadline = time.monotonic() + timeout
    while True:
        states = {j: client.call("GET", f"/job/{j}/status") for j in job_ids}
        stuck = [
            j
            for j, (status, body) in states.items()
            if status == 200 and body["status"] not in FINAL
        ]
        lost = [j for j, (status, _) in states.items() if status == 404]
        if not stuck or time.monotonic() > deadline:
            return len(stuck), len(lost)
        time.sleep(1)


def report(stats: Stats, seconds: float, stuck: int, lost: int) -> None:
    """Print the figures."""
    total = sum(len(v) for v in stats.latencies.values())
    print(f"{total} requests in {seconds:.0f} s: {total / seconds:.0f} per second")
    print(f"  {'route':<44} {'count':>6} {'per s':>6} {'p50 ms':>7} {'p99 ms':>7}")
    for route, times in sorted(stats.latencies.items(), key=lambda kv: -len(kv[1])):
        ordered = sorted(times)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        print(
            f"  {route:<44} {len(times):>6} {len(times) / seconds:>6.1f} {statistics.median(times) * 1000:>7.1f}"
            f" {p99 * 1000:>7.1f}"
        )
    server_errors = sum(n for status, n in stats.statuses.items() if status >= 500)
    print(f"status codes: {dict(sorted(stats.statuses.items()))}")
    print(f"5xx answers (target 0): {server_errors}")
    print(f"jobs run: {len(stats.run_jobs)}; stuck (target 0): {stuck}; lost (target 0): {lost}")


def main() -> None:
    """Start the stack, load it, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--simulators", type=int, default=4)
    args = parser.parse_args()
    from tests.infra import EmbeddedLogin

    with tempfile.TemporaryDirectory() as tmp:
        login = EmbeddedLogin(Path(tmp) / "ssh").start()
        try:
            targets = {"SIMGATE_TARGETS": json.dumps({"local": login.target("local")})}
            with local_stack(Path(tmp), queues=True, settings=targets) as stack:
                run_load(stack.url, stack.signing_key, stack.azurite.ca_path, args)
        finally:
            login.stop()


def run_load(url: str, key: Path, ca: Path, args: argparse.Namespace) -> None:
    """Users and simulators for `args.seconds`, then wait for their jobs; print."""
    stats, stop = Stats(), threading.Event()
    users = [
        Client(url, stats, f"Bearer {mint(key, f'user{i}')}")
        for i in range(args.users + args.simulators)
    ]
    threads = [
        threading.Thread(target=user_loop, args=(users[i], stop, random.Random(i)))
        for i in range(args.users)
    ]
    threads += [
        threading.Thread(target=simulator_loop, args=(url, stats, users[args.users + i], stop, ca))
        for i in range(args.simulators)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    time.sleep(args.seconds)
    stop.set()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    checker = Client(url, Stats(), f"Bearer {mint(key, 'admin', admin=True)}")
    stuck, lost = settle(checker, list(stats.run_jobs), timeout=120)
    report(stats, elapsed, stuck, lost)


if __name__ == "__main__":
    main()
