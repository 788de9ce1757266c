"""Storage goes away mid-run and comes back: Azurite (with its data folder) is stopped while jobs are being
dispatched, run and reported, and started again.

The gateway runs as its own process (`python -m devhost serve`), as in `make run`, against a private Azurite that
keeps its data on disk. During the outage the routes that need storage answer 503 with Retry-After (never 500),
the catalog still answers, and afterwards every job reaches a final state: dispatches are retried from the queue,
and the job wrapper retries its reports and uploads.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devhost.azurite import ACCOUNT, AzuriteProcess, Ports, azurite_bin, start_azurite
from devhost.setup import make_self_signed_cert
from devhost.tokens import DEV_AUDIENCE, DEV_ISSUER, make_key_pair, mint
from tests.conftest import ROOT, _missing_component
from tests.infra import free_port

pytestmark = [pytest.mark.azurite, pytest.mark.ssh]

FINAL = {"COMPLETED", "FAILED", "CANCELLED"}
JOBS_TABLE = "jobs"


class Stack:
    """A persistent Azurite and a devhost process serving the app against it."""

    def __init__(self, folder: Path, target: dict[str, Any]) -> None:
        self.folder, self.target = folder, target
        self.cert, self.key = folder / "azurite.pem", folder / "azurite-key.pem"
        make_self_signed_cert(self.cert, self.key, days=2)
        self.ports = Ports(free_port(), free_port(), free_port())
        make_key_pair(folder / "signing.pem", folder / "jwks.json")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.azurite: AzuriteProcess | None = None
        self.host: subprocess.Popen[bytes] | None = None

    def start_azurite(self) -> None:
        data = self.folder / "data"
        data.mkdir(exist_ok=True)
        self.azurite = start_azurite(
            azurite_bin(ROOT),
            self.ports,
            self.cert,
            self.key,
            ["--location", str(data)],
            self.folder / "azurite.log",
        )

    def stop_azurite(self) -> None:
        assert self.azurite is not None
        self.azurite.stop()

    def start_host(
        self, launcher: tuple[str, ...] = ("devhost",), settings: dict[str, str] | None = None
    ) -> None:
        """Serve the app with `python -m <launcher> serve ...` (a crashing launcher takes its own options first)."""
        base = "https://127.0.0.1:{}/" + ACCOUNT
        env = {
            **os.environ,
            "AzureWebJobsStorage": (
                f"DefaultEndpointsProtocol=https;AccountName={ACCOUNT};AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50u"
                "SRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
                f"BlobEndpoint={base.format(self.ports.blob)};QueueEndpoint={base.format(self.ports.queue)};"
                f"TableEndpoint={base.format(self.ports.table)};"
            ),
            "SIMGATE_STORAGE_CA": str(self.cert),
            "SIMGATE_STORAGE_CREDENTIAL": "azurite",
            "AUTH_ISSUER": DEV_ISSUER,
            "AUTH_AUDIENCE": DEV_AUDIENCE,
            "AUTH_JWKS": str(self.folder / "jwks.json"),
            "SIMGATE_TARGETS": json.dumps({"local": self.target}),
            "SIMGATE_CALLBACK_URL": self.url,
            "SIMGATE_RECONCILE_SCHEDULE": "0 0 0 1 1 *",
            "SIMGATE_JOBS_TABLE": JOBS_TABLE,  # not the session's
            **(settings or {}),
        }
        log = (self.folder / "devhost.log").open("ab")
        self.host = subprocess.Popen(
            [
                sys.executable,
                "-m",
                *launcher,
                "serve",
                "--port",
                str(self.port),
                "--no-azurite",
                "--no-simulator",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while call(self, "GET", "/case")[0] != 200:
            assert self.host.poll() is None, (self.folder / "devhost.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "devhost did not start"
            time.sleep(0.3)

    def kill_host(self) -> None:
        """SIGKILL the host process, as an operator's `kill -9`."""
        assert self.host is not None
        self.host.send_signal(signal.SIGKILL)
        self.host.wait(timeout=20)

    def kill_azurite(self) -> None:
        """SIGKILL Azurite: it keeps only what it has saved to its data folder (it saves every few seconds)."""
        assert self.azurite is not None
        self.azurite.process.send_signal(signal.SIGKILL)
        self.azurite.process.wait(timeout=20)

    def stop(self) -> None:
        if self.host is not None:
            self.host.terminate()
            self.host.wait(timeout=20)
        if self.azurite is not None:
            self.azurite.stop()


def call(stack: Stack, method: str, path: str, body: Any = None) -> tuple[int, dict[str, str], Any]:
    headers = {"Authorization": f"Bearer {mint(stack.folder / 'signing.pem', 'martin')}"}
    data = None
    if body is not None:
        data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
    request = urllib.request.Request(stack.url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            raw = resp.read()
            return resp.status, dict(resp.headers.items()), json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers.items()), json.loads(err.read() or b"null")
    except OSError:
        return 0, {}, None


@pytest.fixture
def stack(tmp_path: Path, embedded_simulator: Any) -> Iterator[Stack]:
    if not (ROOT / "node_modules/.bin/azurite").exists():
        _missing_component("node_modules/.bin/azurite is missing: run `npm ci`")
    made = Stack(tmp_path, embedded_simulator.target("local"))
    made.start_azurite()
    try:
        made.start_host()
        yield made
    finally:
        made.stop()


def test_a_storage_outage_mid_run_is_503_and_every_job_still_ends(stack: Stack) -> None:
    jobs = []
    for i in range(3):
        status, _, job = call(
            stack, "POST", "/job", {"case_id": 2, "job_title": f"through the outage {i}"}
        )
        assert status == 201
        fields = [{"name": "mesh", "value": "coarse"}, {"name": "blend_duration", "value": 60.0}]
        assert call(stack, "PATCH", f"/job/{job['job_id']}", {"fields": fields})[0] == 200
        assert call(stack, "POST", f"/job/{job['job_id']}")[0] == 202
        jobs.append(job["job_id"])

    deadline = time.monotonic() + 60
    while (
        call(stack, "GET", f"/job/{jobs[0]}/status")[2]["status"] != "RUNNING"
    ):  # its wrapper reports next
        assert time.monotonic() < deadline, "the first job did not start"
        time.sleep(0.2)
    stack.stop_azurite()  # jobs running, others queued or being dispatched
    during = [
        call(stack, "GET", f"/job/{jobs[0]}/status"),
        call(stack, "GET", "/job"),
        call(stack, "POST", "/job", {"case_id": 2, "job_title": "during"}),
    ]
    assert [status for status, _, _ in during] == [503, 503, 503], during
    assert all(headers.get("Retry-After") for _, headers, _ in during)
    assert all(body["title"] == "Service unavailable" for _, _, body in during)
    assert call(stack, "GET", "/case/2")[0] == 200  # the catalog needs no storage
    time.sleep(3)
    stack.start_azurite()  # the same data folder and ports

    deadline, states = time.monotonic() + 240, {}
    while time.monotonic() < deadline:
        states = {j: (call(stack, "GET", f"/job/{j}/status")[2] or {}).get("status") for j in jobs}
        if set(states.values()) <= FINAL:
            break
        time.sleep(1)
    assert set(states.values()) <= FINAL, states
    assert "COMPLETED" in states.values(), states  # the outage cost retries, not the work
    log = (stack.folder / "devhost.log").read_text()
    assert "-> 503 (report_status" in log  # a wrapper's report met the outage, and was retried
    assert " 500 " not in log
    assert "Internal error" not in log
