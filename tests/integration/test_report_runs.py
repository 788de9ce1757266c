"""Jobs that report back for real: the shipped wrapper on a real simulator calls the gateway and uploads to Azurite.

A smoothie job runs on devhost's embedded simulator and on OpenSSH's sshd with a one-node Slurm, reaches
COMPLETED on its own, and its CSV downloads through the SAS URL with a plain HTTP client. A job whose model exits 3
ends FAILED with `exit code 3: model crashed` (what it said on stderr), its logs still downloadable.
"""

from __future__ import annotations

import csv
import io
import ssl
import time
import urllib.request
from typing import Any

import pytest

from tests.conftest import AzuriteFixture
from tests.integration.conftest import Gateway
from tests.integration.test_dispatch import run

pytestmark = [pytest.mark.azurite, pytest.mark.ssh]

MIXING_COLUMNS = ["time_s", "mixing_index", "coefficient_of_variation", "mean_concentration"]
# A python3 that crashes for the model and is the real one otherwise: the job's own failure, on a real simulator.
CRASHING_MODEL = [
    "mkdir -p fakebin",
    'printf \'#!/bin/sh\\nif [ "$1" = model.py ]; then echo model crashed >&2; exit 3; fi\\n'
    'exec /usr/bin/python3 "$@"\\n\' > fakebin/python3',
    "chmod 755 fakebin/python3",
    'PATH="$PWD/fakebin:$PATH"',
]


def finished(
    gateway: Gateway, job_id: str, user: str = "runner", timeout: float = 120
) -> dict[str, Any]:
    """The job once it has ended, polled as a frontend would; every status seen on the way."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = gateway.call("GET", f"/job/{job_id}/status", user=user).body
        if not seen or seen[-1] != job["status"]:
            seen.append(job["status"])
        if job["status"] in ("COMPLETED", "FAILED", "CANCELLED"):
            shown = gateway.call("GET", f"/job/{job_id}", user=user).body
            return {**shown, "seen": seen}
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not end within {timeout} s; seen {seen}")


def download(
    gateway: Gateway, azurite: AzuriteFixture, job_id: str, output_id: str, user: str = "runner"
) -> bytes:
    """An output's bytes, fetched from its SAS URL with urllib (no Azure SDK)."""
    grant = gateway.call("GET", f"/job/{job_id}/output/{output_id}", user=user)
    assert grant.status == 200, grant.body
    context = ssl.create_default_context(cafile=str(azurite.ca_path))
    with urllib.request.urlopen(grant.body["url"], context=context, timeout=30) as resp:
        return bytes(resp.read())


def check_completed_smoothie(gateway: Gateway, azurite: AzuriteFixture, job_id: str) -> None:
    job = finished(gateway, job_id)
    assert job["status"] == "COMPLETED", job
    history = [h["status"] for h in job["history"]]
    assert history == [
        "DRAFT",
        "SUBMITTED",
        "QUEUED",
        "RUNNING",
        "FINALIZING",
        "COMPLETED",
    ] or history == [
        "DRAFT",
        "SUBMITTED",
        "RUNNING",
        "FINALIZING",
        "COMPLETED",
    ]  # a fast job may report before QUEUED lands
    outputs = {
        o["output_id"]: o for o in gateway.call("GET", f"/job/{job_id}/output", user="runner").body
    }
    assert set(outputs) == {
        "mixing_index.csv",
        "concentration.csv",
        "simgate-stdout.log",
        "simgate-stderr.log",
    }
    assert outputs["mixing_index.csv"]["content_type"] == "text/csv"
    rows = list(
        csv.DictReader(io.StringIO(download(gateway, azurite, job_id, "mixing_index.csv").decode()))
    )
    assert rows
    assert list(rows[0]) == MIXING_COLUMNS
    assert float(rows[0]["mixing_index"]) == pytest.approx(0, abs=1e-9)
    assert 0 < float(rows[-1]["mixing_index"]) <= 1
    # The case's metrics, read by the wrapper from metrics.json and the CSV's last row, recorded with the job.
    mixed = next(float(r["time_s"]) for r in rows if float(r["mixing_index"]) >= 0.95)
    assert job["metrics"] == [
        {
            "name": "time_to_95_mixed",
            "label": "Time to 95 % mixed",
            "units": "s",
            "value": pytest.approx(mixed, abs=1e-6),
        },
        {
            "name": "final_mixing_index",
            "label": "Final mixing index",
            "units": None,
            "value": float(rows[-1]["mixing_index"]),
        },
    ]
    assert (
        len(download(gateway, azurite, job_id, "concentration.csv"))
        == outputs["concentration.csv"]["size"]
    )
    assert b"run label: hello" in download(gateway, azurite, job_id, "simgate-stdout.log")


def test_a_smoothie_job_completes_on_the_embedded_simulator(
    gateway: Gateway, azurite: AzuriteFixture, embedded_simulator: Any, use_targets: Any
) -> None:
    use_targets({"local": embedded_simulator.target("local")})
    check_completed_smoothie(
        gateway, azurite, run(gateway, label="hello", mesh="coarse", blend_duration=2.0)
    )


@pytest.mark.slurm
def test_a_smoothie_job_completes_on_real_slurm(
    gateway: Gateway, azurite: AzuriteFixture, sshd: Any, slurm: Any, use_targets: Any
) -> None:
    use_targets({"local": sshd.target("local", scheduler="slurm")})
    check_completed_smoothie(
        gateway, azurite, run(gateway, label="hello", mesh="coarse", blend_duration=2.0)
    )


def test_a_model_that_exits_3_fails_the_job_with_its_logs(
    gateway: Gateway, azurite: AzuriteFixture, sshd: Any, use_targets: Any
) -> None:
    use_targets({"local": sshd.target("local", scheduler="direct", setup=CRASHING_MODEL)})
    job_id = run(gateway, mesh="coarse")
    job = finished(gateway, job_id)
    assert job["status"] == "FAILED", job
    assert job["reason"] == "exit code 3: model crashed"
    assert "RUNNING" in job["seen"] or "RUNNING" in [h["status"] for h in job["history"]]
    outputs = {
        o["output_id"] for o in gateway.call("GET", f"/job/{job_id}/output", user="runner").body
    }
    assert outputs == {"simgate-stdout.log", "simgate-stderr.log"}
    assert b"model crashed" in download(gateway, azurite, job_id, "simgate-stderr.log")
    job_dir = f"{sshd.home}/simgate-jobs/{job_id}"
    assert sshd.read(f"{job_dir}/.simgate-exit-code").strip() == "3"
