"""The job wrapper as the cluster runs it: `python3 simgate_wrapper.py` in a job folder (on Python 3.8 when this
machine has it), reporting to a stand-in gateway (a stdlib HTTP server that records every PATCH and answers
FINALIZING with a real upload grant) and uploading to the session's Azurite (HTTPS, user-delegation SAS).

The end-to-end path through the real gateway is in test_report_runs.py; here each behaviour of the wrapper can be
forced: failing callbacks, a refreshed token, a 409, a signal, a 300 MiB output.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from core.storage.azurite import AzuriteCredential
from devhost.azurite import ACCOUNT
from tests.conftest import AzuriteFixture
from tests.infra import load_wrapper

ROOT = Path(__file__).resolve().parents[2]
WRAPPER = ROOT / "simulator" / "wrapper.py"
TOKEN = "job-token-" + "A1b2C3d4" * 5
SECOND = "second-token-" + "x" * 30
THIRD = "third-token-" + "y" * 30
FAST_RETRY = {"attempts": 4, "first_delay": 0.05, "max_delay": 0.2}
BIG_MIB = 300

Answer = tuple[int, dict[str, Any]]


def oldest_python() -> str:
    """Python 3.8 when this machine has it (pyenv's or on PATH), so the tests prove the wrapper runs there; else this
    interpreter."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    for path in [
        *sorted(str(p) for p in pyenv.glob("3.8.*/bin/python3")),
        shutil.which("python3.8"),
    ]:
        check = "import sys; sys.exit(sys.version_info[:2] != (3, 8))"
        if (
            path
            and subprocess.run([path, "-c", check], capture_output=True, timeout=30).returncode == 0
        ):
            return path
    return sys.executable


PYTHON = oldest_python()


# ---------------------------------------------------------------------------------------------- the stand-in gateway


@dataclass
class Report:
    """One PATCH as received: the bearer token, the body, and the status answered."""

    token: str
    body: dict[str, Any]
    answered: int = 0

    @property
    def status(self) -> str:
        return str(self.body.get("status"))


@dataclass
class FakeGateway:
    """Answers `PATCH /job/<id>/status` like the gateway: 401 for a token it does not hold, 200 with the upload grant
    at FINALIZING. `script[status]` lists answers to give first for that status; `hooks[status]` run on each
    arrival (before answering) and may return an answer of their own."""

    job_dir: Path
    grant: dict[str, Any] | None = None
    tokens: set[str] = field(default_factory=lambda: {TOKEN})
    script: dict[str, list[Answer]] = field(default_factory=dict)
    hooks: dict[str, Callable[[Report], Answer | None]] = field(default_factory=dict)
    reports: list[Report] = field(default_factory=list)
    url: str = ""
    cert: Path | None = None

    def answer(self, report: Report) -> Answer:
        hook = self.hooks.get(report.status)
        given = hook(report) if hook else None
        if given is not None:
            return given
        if self.script.get(report.status):
            return self.script[report.status].pop(0)
        if report.token not in self.tokens:
            return 401, {
                "title": "Unauthorized",
                "detail": "the job token is not valid for this job",
            }
        reply: dict[str, Any] = {"job_id": "j1", "status": report.status}
        if report.status == "FINALIZING" and self.grant is not None:
            reply["upload"] = self.grant
        return 200, reply

    def set_token(self, token: str) -> None:
        """What a retried dispatch does: a new token in the job file, the old one no longer valid."""
        self.tokens = {token}
        job_file = self.job_dir / "simgate_job.json"
        job = json.loads(job_file.read_text())
        job["token"] = token
        job_file.write_text(json.dumps(job))

    def accepted(self) -> list[Report]:
        return [r for r in self.reports if r.answered == 200]


@contextlib.contextmanager
def serving(fake: FakeGateway, tls: tuple[Path, Path] | None = None) -> Iterator[FakeGateway]:
    """Serve `fake` on a free loopback port, over HTTPS with `tls` (cert, key) when given."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the Functions host does

        def do_PATCH(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            auth = self.headers.get("Authorization", "")
            report = Report(auth.removeprefix("Bearer "), json.loads(raw))
            assert self.path == "/job/j1/status"
            assert self.headers.get("Content-Type") == "application/json"
            fake.reports.append(report)
            status, body = fake.answer(report)
            report.answered = status
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.url = f"{'https' if tls else 'http'}://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[FakeGateway]:
    """The stand-in gateway over plain HTTP (as devhost serves the app locally)."""
    with serving(FakeGateway(tmp_path / "job")) as fake:
        yield fake


@pytest.fixture
def tls_gateway(tmp_path: Path) -> Iterator[FakeGateway]:
    """The stand-in gateway over HTTPS with a certificate of its own (`tls_gateway.cert`), as in Azure."""
    from devhost.setup import make_self_signed_cert

    cert, key = tmp_path / "gateway.pem", tmp_path / "gateway-key.pem"
    make_self_signed_cert(cert, key, days=1)
    with serving(FakeGateway(tmp_path / "job"), (cert, key)) as fake:
        fake.cert = cert
        yield fake


# ---------------------------------------------------------------------------------------------- storage


@dataclass
class JobContainer:
    """A job's container: the grant the gateway would hand out (create+write SAS) and a reader with the account key."""

    name: str
    grant: dict[str, Any]
    reader: Any  # ContainerClient


@pytest.fixture(scope="module")
def delegation(azurite: AzuriteFixture) -> tuple[Any, Any]:
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient(
        azurite.blob_url, credential=AzuriteCredential(), **azurite.client_kwargs
    )
    start = datetime.now(UTC) - timedelta(minutes=5)
    return service, service.get_user_delegation_key(start, start + timedelta(hours=2))


@pytest.fixture
def container(azurite: AzuriteFixture, delegation: tuple[Any, Any]) -> Iterator[JobContainer]:
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    service, key = delegation
    name = azurite.unique_name("job")
    service.create_container(name)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    expiry = start + timedelta(minutes=65)
    sas = generate_container_sas(
        ACCOUNT,
        name,
        user_delegation_key=key,
        start=start,
        expiry=expiry,
        permission=ContainerSasPermissions(create=True, write=True),
        protocol="https",
    )
    grant = {
        "url": f"{azurite.blob_url}/{name}",
        "sas": sas,
        "expires_on": expiry.isoformat().replace("+00:00", "Z"),
    }
    reader = azurite.blob_service().get_container_client(name)
    try:
        yield JobContainer(name, grant, reader)
    finally:
        reader.delete_container()  # Azurite keeps blobs in memory


# ---------------------------------------------------------------------------------------------- jobs


OUTPUTS = [
    {"name": "mixing_index", "glob": "mixing_index.csv", "content_type": "text/csv"},
    {"name": "logs", "glob": "log.*", "content_type": "text/plain"},
]


def make_job(
    gateway: FakeGateway,
    script: str,
    *,
    ca: Path | None = None,
    outputs: list[dict[str, str]] = OUTPUTS,
    retry: dict[str, float] | None = None,
) -> Path:
    """A job folder as dispatch leaves it: the entry, the wrapper, the CA, the 0600 job file."""
    job_dir = gateway.job_dir
    job_dir.mkdir(parents=True, exist_ok=True)
    (job_dir / "run.sh").write_text(script)
    shutil.copy(WRAPPER, job_dir / "simgate_wrapper.py")
    body: dict[str, Any] = {
        "job_id": "j1",
        "token": TOKEN,
        "callback_url": f"{gateway.url}/job/j1/status",
        "entry": "run.sh",
        "outputs": outputs,
        "ca_file": None,
        "retry": FAST_RETRY if retry is None else retry,
    }
    if ca is not None:
        shutil.copy(ca, job_dir / "simgate_ca.pem")
        body["ca_file"] = "simgate_ca.pem"
    job_file = job_dir / "simgate_job.json"
    job_file.write_text(json.dumps(body, indent=2))
    job_file.chmod(0o600)
    return job_dir


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    max_rss_kib: int


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without proxy settings (a proxy would not reach loopback), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    return {**env, **extra}


# Starts the wrapper from a small process and writes the wrapper's peak memory to argv[1]. Measured from the test
# process itself, a child's peak would count the pages it shares with this (large) process between fork and exec.
MEASURED = (
    "import resource, subprocess, sys; code = subprocess.call(sys.argv[2:]); "
    "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)); sys.exit(code)"
)


def run_wrapper(
    job_dir: Path, timeout: float = 120, env: dict[str, str] | None = None, measure: bool = False
) -> Run:
    """Run the wrapper in the job folder as the batch script does; its exit code, output and (with `measure`, from
    a small launcher process) peak memory."""
    out, err = job_dir.parent / "wrapper.out", job_dir.parent / "wrapper.err"
    rss = job_dir.parent / "wrapper.rss"
    argv = [PYTHON, "simgate_wrapper.py"]
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            [PYTHON, "-c", MEASURED, str(rss), *argv] if measure else argv,
            cwd=job_dir,
            stdout=stdout,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            env=clean_env() if env is None else env,
        )
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise AssertionError(
                f"the wrapper did not end within {timeout} s: {err.read_text()[-2000:]}"
            )
        time.sleep(0.02)
    proc.returncode = os.waitstatus_to_exitcode(status)  # so Popen does not wait for it again
    peak = int(rss.read_text()) if measure else usage.ru_maxrss
    return Run(proc.returncode, out.read_text(), err.read_text(), peak)


def assert_no_secrets(run: Run, *secrets: str) -> None:
    assert run.stdout == ""  # the wrapper writes only to its stderr
    for secret in (TOKEN, *secrets):
        assert secret not in run.stderr


def sas_signature(grant: dict[str, Any]) -> str:
    return next(p.split("=", 1)[1] for p in grant["sas"].split("&") if p.startswith("sig="))


def blob_text(container: JobContainer, name: str) -> str:
    return container.reader.download_blob(name).readall().decode()


def content_types(container: JobContainer) -> dict[str, str]:
    return {b.name: b.content_settings.content_type for b in container.reader.list_blobs()}


CSV_JOB = """\
echo "run.sh: starting" ; echo "run.sh: a warning" >&2
printf 'time_s,mixing_index\\n0,0\\n1,0.5\\n' > mixing_index.csv
echo "solver says hi" > log.solver
echo unrelated > notes.txt
ln -s simgate_job.json log.token   # a link to the job file: never uploaded
echo elsewhere > ../outside.txt; ln -s ../outside.txt log.outside  # out of the folder: never uploaded
echo "run.sh: done"
"""


# ---------------------------------------------------------------------------------------------- the tests


@pytest.mark.azurite
def test_a_job_that_writes_a_csv_reports_and_uploads_its_outputs(
    tls_gateway: FakeGateway, container: JobContainer, azurite: AzuriteFixture, tmp_path: Path
) -> None:
    gateway = tls_gateway
    gateway.grant = container.grant
    assert gateway.cert is not None
    both = tmp_path / "both.pem"  # one CA file for the callbacks and the uploads
    both.write_bytes(azurite.ca_path.read_bytes() + gateway.cert.read_bytes())
    job_dir = make_job(gateway, CSV_JOB, ca=both)
    run = run_wrapper(job_dir)
    assert run.code == 0, run.stderr
    assert [r.status for r in gateway.reports] == ["RUNNING", "FINALIZING", "COMPLETED"]
    assert {r.token for r in gateway.reports} == {TOKEN}
    assert gateway.reports[-1].body == {
        "status": "COMPLETED",
        "outputs": [
            {"name": "mixing_index", "file": "mixing_index.csv"},
            {"name": "logs", "file": "log.solver"},
            {"name": "stdout", "file": "simgate-stdout.log"},
            {"name": "stderr", "file": "simgate-stderr.log"},
        ],
        "message": "log.outside not uploaded: not a regular file inside the job folder",
    }
    assert content_types(container) == {
        "mixing_index.csv": "text/csv",
        "log.solver": "text/plain",
        "simgate-stdout.log": "text/plain",
        "simgate-stderr.log": "text/plain",
    }
    assert blob_text(container, "mixing_index.csv") == "time_s,mixing_index\n0,0\n1,0.5\n"
    assert blob_text(container, "log.solver") == "solver says hi\n"
    assert blob_text(container, "simgate-stdout.log") == "run.sh: starting\nrun.sh: done\n"
    assert blob_text(container, "simgate-stderr.log") == "run.sh: a warning\n"
    assert (job_dir / ".simgate-exit-code").read_text() == "0\n"
    assert "log.outside not uploaded" in run.stderr
    assert_no_secrets(run, sas_signature(container.grant))


@pytest.mark.azurite
def test_an_entry_that_exits_3_fails_the_job_with_its_logs(
    gateway: FakeGateway, container: JobContainer, azurite: AzuriteFixture
) -> None:
    gateway.grant = container.grant
    job_dir = make_job(
        gateway, "echo computing\necho 'model crashed' >&2\nexit 3\n", ca=azurite.ca_path
    )
    run = run_wrapper(job_dir)
    assert run.code == 3
    assert [r.status for r in gateway.reports] == ["RUNNING", "FINALIZING", "FAILED"]
    assert gateway.reports[-1].body == {
        "status": "FAILED",
        "exit_code": 3,
        "message": "exit code 3: model crashed",  # what the entry said last on stderr
        "outputs": [
            {"name": "stdout", "file": "simgate-stdout.log"},
            {"name": "stderr", "file": "simgate-stderr.log"},
        ],
    }
    assert blob_text(container, "simgate-stderr.log") == "model crashed\n"
    assert blob_text(container, "simgate-stdout.log") == "computing\n"
    assert (job_dir / ".simgate-exit-code").read_text() == "3\n"
    assert_no_secrets(run, sas_signature(container.grant))


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str, str]]:
    """A 300 MiB file whose every MiB differs (a misplaced block shows), with its SHA-256 and MD5."""
    path = tmp_path_factory.mktemp("big") / "big.bin"
    sha, md5 = hashlib.sha256(), hashlib.md5()
    noise = os.urandom(1 << 20)
    with path.open("wb") as handle:
        for i in range(BIG_MIB):
            chunk = i.to_bytes(8, "big") + noise[8:]
            handle.write(chunk)
            sha.update(chunk)
            md5.update(chunk)
    yield path, sha.hexdigest(), md5.hexdigest()
    path.unlink()  # pytest keeps the last runs' temporary folders


@pytest.mark.azurite
def test_a_300_mib_output_goes_up_in_blocks_streamed_from_disk(
    gateway: FakeGateway,
    container: JobContainer,
    azurite: AzuriteFixture,
    big_file: tuple[Path, str, str],
) -> None:
    path, sha256, md5 = big_file
    gateway.grant = container.grant
    job_dir = make_job(
        gateway,
        "true\n",
        ca=azurite.ca_path,
        outputs=[{"name": "data", "glob": "*.bin", "content_type": "application/octet-stream"}],
    )
    os.link(path, job_dir / "big.bin")  # the entry's output, there before it runs
    started = time.perf_counter()
    try:
        run = run_wrapper(job_dir, measure=True)
    finally:
        (job_dir / "big.bin").unlink()
    took = time.perf_counter() - started
    assert run.code == 0, run.stderr
    assert gateway.reports[-1].body["status"] == "COMPLETED", gateway.reports[-1].body
    assert {"name": "data", "file": "big.bin"} in gateway.reports[-1].body["outputs"]
    blob = container.reader.get_blob_client("big.bin")
    committed, uncommitted = blob.get_block_list("all")
    assert len(committed) == -(-(BIG_MIB << 20) // (8 << 20))  # 8 MiB blocks
    assert not uncommitted
    props = blob.get_blob_properties()
    assert props.size == BIG_MIB << 20
    assert props.content_settings.content_type == "application/octet-stream"
    assert (
        bytes(props.content_settings.content_md5).hex() == md5
    )  # the whole file's MD5, set at commit
    stored = hashlib.sha256()
    for chunk in blob.download_blob(max_concurrency=2).chunks():
        stored.update(chunk)
    assert stored.hexdigest() == sha256
    assert run.max_rss_kib < 150 * 1024, "the wrapper should stream the file, not read it whole"
    assert took < 60, f"the wrapper took {took:.1f} s for {BIG_MIB} MiB"
    assert_no_secrets(run, sas_signature(container.grant))


@pytest.mark.azurite
def test_the_wrapper_uploads_at_least_0_7_times_as_fast_as_the_sdk(
    container: JobContainer,
    azurite: AzuriteFixture,
    big_file: tuple[Path, str, str],
    record_property: Callable[[str, object], None],
    capsys: pytest.CaptureFixture[str],
) -> None:
    rates = upload_rates(container, azurite, big_file[0])
    record_property("upload_mib_per_s", rates)
    with capsys.disabled():
        sys.stderr.write(
            f"\n{BIG_MIB} MiB to Azurite: wrapper {rates['wrapper']:.0f} MiB/s, "
            f"SDK upload_blob {rates['sdk']:.0f} MiB/s\n"
        )
    assert rates["wrapper"] >= 0.7 * rates["sdk"], rates


def upload_rates(container: JobContainer, azurite: AzuriteFixture, path: Path) -> dict[str, float]:
    """MiB/s of the wrapper's `upload_file` and of the SDK's `upload_blob` (default settings, its own SAS client)
    for the same file and container; the best of two runs each, alternating."""
    from azure.storage.blob import ContainerClient

    wrapper = load_wrapper()
    sdk = ContainerClient.from_container_url(
        f"{container.grant['url']}?{container.grant['sas']}", **azurite.client_kwargs
    )
    size_mib = path.stat().st_size / (1 << 20)
    times: dict[str, list[float]] = {"wrapper": [], "sdk": []}
    for run in range(2):
        started = time.perf_counter()
        wrapper.upload_file(
            container.grant["url"],
            container.grant["sas"],
            str(path),
            f"wrapper-{run}.bin",
            "application/octet-stream",
            ca_file=str(azurite.ca_path),
        )
        times["wrapper"].append(time.perf_counter() - started)
        started = time.perf_counter()
        with path.open("rb") as handle:
            sdk.upload_blob(f"sdk-{run}.bin", handle, length=path.stat().st_size)
        times["sdk"].append(time.perf_counter() - started)
    return {name: size_mib / min(seconds) for name, seconds in times.items()}


@pytest.mark.azurite
def test_callbacks_are_retried_and_the_token_is_read_again_before_each(
    gateway: FakeGateway, container: JobContainer, azurite: AzuriteFixture
) -> None:
    gateway.grant = container.grant
    gateway.script["RUNNING"] = [(503, {"title": "busy"}), (503, {"title": "busy"})]

    def after_running(report: Report) -> Answer | None:
        if gateway.script["RUNNING"]:
            return None  # still failing
        gateway.set_token(
            SECOND
        )  # a retried dispatch refreshes the job file once RUNNING is through
        return 200, {"job_id": "j1", "status": "RUNNING"}

    def finalizing(report: Report) -> Answer | None:
        if report.token == SECOND:  # and another one just now
            gateway.set_token(THIRD)
            return 401, {"title": "Unauthorized"}
        return None

    gateway.hooks.update(RUNNING=after_running, FINALIZING=finalizing)
    job_dir = make_job(
        gateway, "sleep 0.3\nprintf 'a,b\\n' > mixing_index.csv\n", ca=azurite.ca_path
    )
    run = run_wrapper(job_dir)
    assert run.code == 0, run.stderr
    sent = [(r.status, r.token[:6], r.answered) for r in gateway.reports]
    assert sent == [
        ("RUNNING", "job-to", 503),
        ("RUNNING", "job-to", 503),
        ("RUNNING", "job-to", 200),
        ("FINALIZING", "second", 401),
        ("FINALIZING", "third-", 200),  # read again after the 401
        ("COMPLETED", "third-", 200),
    ]
    assert gateway.reports[-1].body["outputs"][0] == {
        "name": "mixing_index",
        "file": "mixing_index.csv",
    }
    assert_no_secrets(run, SECOND, THIRD, sas_signature(container.grant))


def test_a_409_stops_all_reporting_and_the_job_keeps_its_exit_code(gateway: FakeGateway) -> None:
    gateway.script["FINALIZING"] = [(409, {"title": "Conflict", "detail": "job j1 is CANCELLED"})]
    job_dir = make_job(gateway, "echo done\n")
    run = run_wrapper(job_dir)
    assert run.code == 0
    assert [(r.status, r.answered) for r in gateway.reports] == [
        ("RUNNING", 200),
        ("FINALIZING", 409),
    ]
    assert "409" in run.stderr
    assert (job_dir / ".simgate-exit-code").read_text() == "0\n"
    assert_no_secrets(run)


def test_a_job_cancelled_before_it_starts_runs_nothing(gateway: FakeGateway) -> None:
    gateway.script["RUNNING"] = [(409, {"title": "Conflict", "detail": "job j1 is CANCELLED"})]
    job_dir = make_job(gateway, "touch ran\n")
    run = run_wrapper(job_dir)
    assert run.code == 0
    assert [(r.status, r.answered) for r in gateway.reports] == [("RUNNING", 409)]
    assert not (job_dir / "ran").exists()
    assert not (job_dir / ".simgate-exit-code").exists()


def test_a_failed_running_report_does_not_stop_the_job_and_no_upload_grant_fails_it(
    gateway: FakeGateway,
) -> None:
    gateway.script["RUNNING"] = [(500, {})] * 4  # every attempt
    gateway.script["FINALIZING"] = [
        (200, {"status": "FINALIZING"})
    ]  # no grant: nothing to upload to
    job_dir = make_job(gateway, "echo ran > ran.txt\n")
    run = run_wrapper(job_dir)
    assert run.code == 0
    assert (job_dir / "ran.txt").exists()
    assert [(r.status, r.answered) for r in gateway.reports] == [("RUNNING", 500)] * 4 + [
        ("FINALIZING", 200),
        ("FAILED", 200),
    ]
    assert gateway.reports[-1].body == {
        "status": "FAILED",
        "exit_code": 0,
        "outputs": [],
        "message": "no upload grant: FINALIZING was answered without one",
    }


@pytest.mark.azurite
def test_a_completed_report_the_gateway_refuses_is_sent_again_as_failed(
    gateway: FakeGateway, container: JobContainer, azurite: AzuriteFixture
) -> None:
    gateway.grant = container.grant
    gateway.script["COMPLETED"] = [
        (422, {"title": "Unprocessable", "detail": "outputs were claimed that are not"})
    ]
    job_dir = make_job(gateway, "echo hi\n", ca=azurite.ca_path)
    run = run_wrapper(job_dir)
    assert run.code == 0
    assert [(r.status, r.answered) for r in gateway.reports][-2:] == [
        ("COMPLETED", 422),
        ("FAILED", 200),
    ]
    assert (
        gateway.reports[-1].body["message"] == "the gateway refused the COMPLETED report (HTTP 422)"
    )
    assert "outputs were claimed" in run.stderr


def test_sigterm_reaches_the_entry_and_the_job_ends_with_143(gateway: FakeGateway) -> None:
    script = "trap 'echo got TERM > got-term; exit 143' TERM\necho started > started\nsleep 30 & wait $!\n"
    job_dir = make_job(gateway, script)
    out = (job_dir.parent / "wrapper.err").open("wb")
    with out:
        proc = subprocess.Popen(
            [PYTHON, "simgate_wrapper.py"],
            cwd=job_dir,
            stdout=subprocess.DEVNULL,
            stderr=out,
            env=clean_env(),
        )
    try:
        deadline = time.monotonic() + 20
        while not ((job_dir / "started").exists() and gateway.accepted()):
            assert time.monotonic() < deadline, "the entry did not start"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)  # as scancel or the direct scheduler's cancel does
        assert proc.wait(timeout=20) == 143
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (job_dir / "got-term").read_text() == "got TERM\n"
    assert (job_dir / ".simgate-exit-code").read_text() == "143\n"
    assert [r.status for r in gateway.reports] == ["RUNNING", "FINALIZING", "FAILED"]
    assert gateway.reports[-1].body["exit_code"] == 143
    assert gateway.reports[-1].body["message"].startswith("exit code 143")


def test_a_cancel_that_signals_every_process_at_once_still_gets_its_reports(
    gateway: FakeGateway,
) -> None:
    """scancel sends SIGTERM to all of a job's processes: the entry may die before the wrapper's copy arrives."""
    job_dir = make_job(gateway, "echo started > started\nexec sleep 30\n")
    out = (job_dir.parent / "wrapper.err").open("wb")
    with out:
        proc = subprocess.Popen(
            [PYTHON, "simgate_wrapper.py"],
            cwd=job_dir,
            stdout=subprocess.DEVNULL,
            stderr=out,
            env=clean_env(),
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 20
        while not ((job_dir / "started").exists() and gateway.accepted()):
            assert time.monotonic() < deadline, "the entry did not start"
            time.sleep(0.05)
        entry = int(
            subprocess.run(
                ["pgrep", "-P", str(proc.pid)], capture_output=True, text=True
            ).stdout.split()[0]
        )
        finalizing = threading.Event()

        def slow(
            report: Report,
        ) -> None:  # the wrapper is busy reporting when its own copy of the signal lands
            finalizing.set()
            time.sleep(1.5)

        gateway.hooks["FINALIZING"] = slow
        os.kill(entry, signal.SIGTERM)  # the entry first...
        assert finalizing.wait(10), "the wrapper did not report FINALIZING"
        proc.send_signal(signal.SIGTERM)  # ...then the wrapper's own copy, once the entry has ended
        assert proc.wait(timeout=20) == 143
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert [r.status for r in gateway.reports] == ["RUNNING", "FINALIZING", "FAILED"]
    assert gateway.reports[-1].body["exit_code"] == 143


def test_progress_written_by_the_entry_is_reported_while_it_runs(gateway: FakeGateway) -> None:
    job_dir = make_job(gateway, "echo 42.5 > .simgate-progress\nsleep 1.6\n")
    run = run_wrapper(job_dir)
    assert run.code == 0
    running = [r.body for r in gateway.reports if r.status == "RUNNING"]
    assert running == [{"status": "RUNNING"}, {"status": "RUNNING", "progress": 42.5}]


def test_an_untrusted_gateway_certificate_is_not_retried(tls_gateway: FakeGateway) -> None:
    job_dir = make_job(
        tls_gateway, "echo ran > ran.txt\nexit 5\n", retry={"attempts": 8, "first_delay": 5}
    )
    started = time.monotonic()
    run = run_wrapper(job_dir)
    assert run.code == 5
    assert (
        time.monotonic() - started < 5
    )  # no retry delays: a certificate does not get trusted by waiting
    assert (job_dir / "ran.txt").exists()
    assert tls_gateway.reports == []
    assert "CERTIFICATE_VERIFY_FAILED" in run.stderr
    assert_no_secrets(run)


@dataclass
class Proxy:
    """A running CONNECT proxy: its URL and every host:port it tunnelled to."""

    url: str
    targets: list[str] = field(default_factory=list)


@contextlib.contextmanager
def connect_proxy() -> Iterator[Proxy]:
    """A tiny HTTP CONNECT proxy on loopback, as HPC sites put between compute nodes and the internet."""
    listener = socket.create_server(("127.0.0.1", 0))
    proxy = Proxy(f"http://127.0.0.1:{listener.getsockname()[1]}")

    def pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(1 << 16):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def tunnel(client: socket.socket) -> None:
        with client:
            head = b""
            while b"\r\n\r\n" not in head:
                head += client.recv(4096)
            method, target, _ = head.split(b"\r\n")[0].decode().split(" ")
            assert method == "CONNECT"
            proxy.targets.append(target)
            host, port = target.rsplit(":", 1)
            with socket.create_connection((host, int(port))) as upstream:
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                back = threading.Thread(target=pipe, args=(upstream, client), daemon=True)
                back.start()
                pipe(client, upstream)
                back.join()

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = listener.accept()
                threading.Thread(target=tunnel, args=(client,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield proxy
    finally:
        listener.close()


@pytest.mark.azurite
def test_uploads_go_through_the_https_proxy_the_environment_names(
    gateway: FakeGateway, container: JobContainer, azurite: AzuriteFixture
) -> None:
    gateway.grant = container.grant
    job_dir = make_job(gateway, "echo through the proxy\n", ca=azurite.ca_path)
    with connect_proxy() as proxy:
        run = run_wrapper(job_dir, env=clean_env(https_proxy=proxy.url))
    assert run.code == 0, run.stderr
    assert (
        gateway.reports[-1].body["status"] == "COMPLETED"
    )  # the plain-HTTP callbacks went straight
    assert proxy.targets
    assert set(proxy.targets) == {f"127.0.0.1:{azurite.ports.blob}"}
    assert blob_text(container, "simgate-stdout.log") == "through the proxy\n"
