"""Outputs: storage requests per download URL and per status report, and the wrapper's upload throughput.

Runs the real app in-process behind devhost (real HTTP) against a private Azurite (HTTPS, basic OAuth), counting
storage requests at the Azure SDK's HTTP pipeline (`core.storage.observe_requests`). Targets (architecture §7,
issue #5): one storage request per `GET /job/{id}/output/{oid}` (the delegation key is cached), at most two per
status report (plus, at COMPLETED, one listing of the upload container, one server-side copy per recorded output
and the upload container's deletion); the job wrapper (standard library only) uploads at least 0.7 times
as fast as azure-storage-blob's `upload_blob` to the same Azurite.

    .venv/bin/python -m bench.outputs [--downloads 50] [--mib 256] [--runs 3]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import statistics
import tempfile
import time
import urllib.request
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.stack import local_stack
from bench.storage_calls import Client
from core.records import Job
from core.states import JobState
from devhost.azurite import ACCOUNT, AzuriteProcess, client_kwargs

ROOT = Path(__file__).resolve().parent.parent
CSV = b"time_s,mixing_index\n" + b"".join(f"{i / 100},{i / 1000}\n".encode() for i in range(1000))


class Simulator:
    """The simulator's side of one job: reports with the job's token, counting storage requests per report."""

    def __init__(self, client: Client, job_id: str, token: str) -> None:
        self.client, self.job_id, self.token = client, job_id, token

    def report(self, status: str, **extra: Any) -> tuple[Any, int]:
        """The reply body and the storage requests the report made."""
        body = json.dumps({"status": status, **extra}).encode()
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        before = self.client.requests
        request = urllib.request.Request(
            f"{self.client.url}/job/{self.job_id}/status", body, headers, method="PATCH"
        )
        with urllib.request.urlopen(request, timeout=60) as resp:
            return json.loads(resp.read()), self.client.requests - before


def queued_job(client: Client) -> Simulator:
    """A smoothie job QUEUED with a token and its container, as the dispatcher leaves it."""
    from core.job_store import change_job
    from core.records import hash_token
    from core.services import services

    _, job, _ = client.call("POST", "/job", "bencher", {"case_id": 2, "job_title": "bench"})
    token = secrets.token_urlsafe(32)

    def dispatched(current: Job) -> Job:
        return replace(current, status=JobState.QUEUED, token_hash=hash_token(token))

    change_job(job["job_id"], dispatched)
    services().outputs.create(job["job_id"])
    return Simulator(client, job["job_id"], token)


def count_reports_and_downloads(client: Client, azurite: AzuriteProcess, downloads: int) -> None:
    """Print storage requests per status report and per download URL."""
    warm_up = queued_job(client)
    warm_up.report("RUNNING")
    _, first_grant = warm_up.report(
        "FINALIZING"
    )  # a worker's first grant also fetches the delegation key
    simulator = queued_job(client)
    _, running = simulator.report("RUNNING")
    grant, finalizing = simulator.report("FINALIZING")
    upload = grant["upload"]
    put = urllib.request.Request(
        f"{upload['url']}/mixing_index.csv?{upload['sas']}",
        CSV,
        method="PUT",
        headers={"x-ms-blob-type": "BlockBlob", "x-ms-blob-content-type": "text/csv"},
    )
    with urllib.request.urlopen(put, context=_tls(azurite), timeout=60):
        pass
    _, completed = simulator.report(
        "COMPLETED", outputs=[{"name": "mixing_index", "file": "mixing_index.csv"}]
    )
    print(
        "storage requests per status report (target: at most 2; at COMPLETED plus 1 listing, 1 copy per output "
        "and 1 deletion):"
    )
    print(
        f"  RUNNING      {running}\n  FINALIZING   {finalizing} (with the upload grant; the worker's first grant: "
        f"{first_grant}, fetching the delegation key it then reuses)\n  COMPLETED    {completed} (one output)"
    )
    path = f"/job/{simulator.job_id}/output/mixing_index.csv"
    client.call("GET", path, "bencher")  # the worker's first signature may fetch the delegation key
    counts, times = [], []
    for _ in range(downloads):
        started = time.perf_counter()
        _, grant, requests = client.call("GET", path, "bencher")
        times.append(time.perf_counter() - started)
        counts.append(requests)
    with urllib.request.urlopen(grant["url"], context=_tls(azurite), timeout=60) as resp:
        assert resp.read() == CSV
    print(
        f"storage requests per download URL (target 1): {statistics.mean(counts):.2f} "
        f"(mean of {downloads}; max {max(counts)}), median {statistics.median(times) * 1000:.1f} ms a request"
    )


def upload_throughput(azurite: AzuriteProcess, mib: int, runs: int) -> None:
    """Print the wrapper's upload throughput against the SDK's `upload_blob`, alternating, medians of `runs`."""
    from azure.storage.blob import (
        BlobServiceClient,
        ContainerSasPermissions,
        generate_container_sas,
    )

    from core.storage.azurite import AzuriteCredential

    kwargs = client_kwargs(azurite.ca_path)
    blob_url = f"https://127.0.0.1:{azurite.ports.blob}/{ACCOUNT}"
    service = BlobServiceClient(blob_url, credential=AzuriteCredential(), **kwargs)
    container = service.create_container(f"bench-{secrets.token_hex(4)}")
    start = datetime.now(UTC) - timedelta(minutes=5)
    key = service.get_user_delegation_key(start, start + timedelta(hours=2))
    sas = generate_container_sas(
        ACCOUNT,
        container.container_name,
        user_delegation_key=key,
        permission=ContainerSasPermissions(create=True, write=True),
        start=start,
        expiry=start + timedelta(hours=1),
        protocol="https",
    )
    from tests.infra import load_wrapper

    job_wrapper = load_wrapper()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.bin"
        digest = _random_file(path, mib)
        wrapper_s, sdk_s, sdk4_s = [], [], []
        for run in range(runs):
            started = time.perf_counter()
            job_wrapper.upload_file(
                container.url,
                sas,
                str(path),
                f"wrapper-{run}.bin",
                "application/octet-stream",
                ca_file=str(azurite.ca_path),
            )
            wrapper_s.append(time.perf_counter() - started)
            started = time.perf_counter()
            with path.open("rb") as handle:
                container.upload_blob(f"sdk-{run}.bin", handle, length=path.stat().st_size)
            sdk_s.append(time.perf_counter() - started)
            started = time.perf_counter()
            with path.open("rb") as handle:  # the SDK with as many blocks in flight as the wrapper
                container.upload_blob(
                    f"sdk4-{run}.bin", handle, length=path.stat().st_size, max_concurrency=4
                )
            sdk4_s.append(time.perf_counter() - started)
        stored = hashlib.sha256()
        for chunk in container.download_blob(f"wrapper-{runs - 1}.bin").chunks():
            stored.update(chunk)
        assert stored.hexdigest() == digest, "the wrapper's upload does not match the file"
    wrapper_rate, sdk_rate = mib / statistics.median(wrapper_s), mib / statistics.median(sdk_s)
    print(f"upload of {mib} MiB to Azurite (medians of {runs}, checksum verified):")
    print(f"  job wrapper (standard library)  {wrapper_rate:7.1f} MiB/s")
    print(f"  azure-storage-blob upload_blob  {sdk_rate:7.1f} MiB/s (its defaults)")
    print(
        f"  the same, max_concurrency=4     {mib / statistics.median(sdk4_s):7.1f} MiB/s (the wrapper's 4 threads)"
    )
    print(f"  ratio wrapper / SDK (target at least 0.7): {wrapper_rate / sdk_rate:.2f}")


def _random_file(path: Path, mib: int) -> str:
    digest = hashlib.sha256()
    block = os.urandom(1 << 20)
    with path.open("wb") as handle:
        for i in range(mib):
            chunk = (
                i.to_bytes(8, "big") + block[8:]
            )  # every MiB differs, so a misplaced block shows
            handle.write(chunk)
            digest.update(chunk)
    return digest.hexdigest()


def _tls(azurite: AzuriteProcess) -> Any:
    import ssl

    return ssl.create_default_context(cafile=str(azurite.ca_path))


def main() -> None:
    """Start the stack, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--downloads", type=int, default=50)
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, local_stack(Path(tmp)) as stack:
        count_reports_and_downloads(
            Client(stack.url, stack.signing_key), stack.azurite, args.downloads
        )
        upload_throughput(stack.azurite, args.mib, args.runs)


if __name__ == "__main__":
    main()
