"""Azurite, the storage emulator: the project's long-lived instance and throw-away instances for tests.

Both run HTTPS with `--oauth basic`, so the user-delegation SAS path runs locally. Azurite 3.37.0 accepts storage
API versions up to 2026-06-06 while the SDKs send a newer one, so every Blob/Queue client must pin
`api_version=API_VERSION` (see `client_kwargs`); azure-data-tables needs no pin.

Azurite's access and debug logs write every request URL whole, SAS signatures (`sig=`) included, and cannot be
told to redact them. So both are off (`--silent`, no `--debug`) unless `DEVHOST_AZURITE_LOG=1` asks for them, and
every log file Azurite writes is made owner-only (0600) before it starts. What the log file holds without them is
Azurite's start-up banner and its errors.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from core.jobfolder import STORAGE_API_VERSION
from devhost.setup import AZURITE_DIR, CERT_FILE, KEY_FILE, make_self_signed_cert

log = logging.getLogger(__name__)

API_VERSION = STORAGE_API_VERSION  # what the gateway and the job wrapper pin
ACCOUNT = "devstoreaccount1"
# Azurite's documented, well-known development key: not a secret.
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
HOST = "127.0.0.1"
DEFAULT_PORTS = (10000, 10001, 10002)
AZURITE_BIN = Path("node_modules/.bin/azurite")
START_TIMEOUT = 30.0
LOG_SETTING = (
    "DEVHOST_AZURITE_LOG"  # "1": keep Azurite's access log and debug log (they hold SAS signatures)
)


class AzuriteError(RuntimeError):
    """Azurite is missing, failed to start or did not open its ports in time."""


@dataclass(frozen=True)
class Ports:
    """Azurite's three service ports."""

    blob: int
    queue: int
    table: int

    def all(self) -> tuple[int, int, int]:
        """The ports in blob, queue, table order."""
        return (self.blob, self.queue, self.table)


def connection_string(ports: Ports, host: str = HOST) -> str:
    """An HTTPS connection string for the well-known dev account on these ports."""
    base = f"https://{host}:{{}}/{ACCOUNT}"
    return (
        f"DefaultEndpointsProtocol=https;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint={base.format(ports.blob)};QueueEndpoint={base.format(ports.queue)};"
        f"TableEndpoint={base.format(ports.table)};"
    )


def client_kwargs(ca_path: Path | str | None) -> dict[str, Any]:
    """Keyword arguments every Blob/Queue client needs against Azurite: the API-version pin and the CA."""
    kwargs: dict[str, Any] = {"api_version": API_VERSION}
    if ca_path is not None:
        kwargs["connection_verify"] = str(ca_path)
    return kwargs


def port_open(port: int, host: str = HOST, timeout: float = 0.2) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_ports(count: int, host: str = HOST) -> list[int]:
    """Ports the OS says are free now (another process could still take them before use)."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for s in socks:
            s.bind((host, 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass
class AzuriteProcess:
    """A running Azurite that this process started; `stop()` ends it (also at interpreter exit)."""

    process: subprocess.Popen[bytes]
    ports: Ports
    ca_path: Path
    log_path: Path
    _stopped: bool = field(default=False, repr=False)

    @property
    def connection_string(self) -> str:
        """HTTPS connection string for this instance."""
        return connection_string(self.ports)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM Azurite (it exits in under a second) and wait; SIGKILL if it does not."""
        if self._stopped:
            return
        self._stopped = True
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("Azurite (pid %s) ignored SIGTERM; killing it", self.process.pid)
                self.process.kill()
                self.process.wait()
        log.info("Azurite (pid %s) stopped", self.process.pid)

    def __enter__(self) -> AzuriteProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def allow_browser_reads(
    connection: str, ca_path: Path | str | None, origins: Sequence[str]
) -> None:
    """Let pages from `origins` read blobs (the UI previews a CSV through its download URL): a CORS rule for GET.

    In Azure the storage account's CORS rule is set by the deployment; locally devhost sets it on Azurite.
    """
    from azure.storage.blob import BlobServiceClient, CorsRule

    rule = CorsRule(
        list(origins),
        ["GET", "HEAD"],
        allowed_headers=["range"],
        exposed_headers=["content-length", "content-type", "content-disposition"],
        max_age_in_seconds=600,
    )
    # No retries: when Azurite is not there, say so at once rather than after the SDK's back-off.
    with BlobServiceClient.from_connection_string(
        connection, retry_total=0, connection_timeout=5, **client_kwargs(ca_path)
    ) as service:
        service.set_service_properties(cors=[rule])


def azurite_bin(root: Path) -> Path:
    """The project's pinned Azurite launcher; raises AzuriteError when `npm ci` has not been run."""
    path = root / AZURITE_BIN
    if not path.exists():
        raise AzuriteError(f"{path} is missing: run `npm ci` in {root}")
    return path


def ensure_azurite(root: Path) -> AzuriteProcess | None:
    """Make sure the project's Azurite listens on 127.0.0.1:10000-10002.

    Returns None when one is already running (it is left alone), else the instance started here, which is stopped
    by `stop()` or at interpreter exit. Data persists in `.local/azurite/`. Run set-up first (it makes the cert).
    """
    if port_open(DEFAULT_PORTS[0]):
        _warn_if_partial(DEFAULT_PORTS)
        log.info("Azurite already listening on %s:%d; using it", HOST, DEFAULT_PORTS[0])
        return None
    return start_project_azurite(root, Ports(*DEFAULT_PORTS), azurite_bin(root))


def start_project_azurite(root: Path, ports: Ports, bin_path: Path) -> AzuriteProcess:
    """Start the project's Azurite: data in `.local/azurite/`, its log in `.local/azurite.log`."""
    args = ["--location", str(root / AZURITE_DIR)]
    return start_azurite(
        bin_path, ports, root / CERT_FILE, root / KEY_FILE, args, root / ".local" / "azurite.log"
    )


def _warn_if_partial(ports: Sequence[int]) -> None:
    closed = [p for p in ports if not port_open(p)]
    if closed:
        log.warning("port %d is in use but %s are not: is that really Azurite?", ports[0], closed)


def start_private_azurite(root: Path, workdir: Path | None = None) -> AzuriteProcess:
    """Start a throw-away in-memory Azurite on free ports with its own certificate, for tests.

    `workdir` (a new temp folder by default) receives the certificate, key and log. Azurite refuses
    `--inMemoryPersistence` together with `--location`, so none is given.
    """
    bin_path = azurite_bin(root)
    workdir = Path(tempfile.mkdtemp(prefix="devhost-azurite-")) if workdir is None else workdir
    cert, key = workdir / "azurite.pem", workdir / "azurite-key.pem"
    make_self_signed_cert(cert, key, days=2)
    ports = Ports(*free_ports(3))
    return start_azurite(
        bin_path, ports, cert, key, ["--inMemoryPersistence"], workdir / "azurite.log"
    )


def access_log_wanted() -> bool:
    """Whether `DEVHOST_AZURITE_LOG` asks for Azurite's access and debug logs."""
    return os.environ.get(LOG_SETTING, "").strip().lower() in ("1", "true", "yes", "on")


def debug_log_path(log_path: Path) -> Path:
    """Where the debug log goes when asked for: beside the log, `<name>-debug.log`."""
    return log_path.with_name(f"{log_path.stem}-debug{log_path.suffix}")


def start_azurite(
    bin_path: Path,
    ports: Ports,
    cert: Path,
    key: Path,
    extra: Sequence[str],
    log_path: Path,
    *,
    access_log: bool | None = None,
) -> AzuriteProcess:
    """Start Azurite with HTTPS and basic OAuth on `ports` and wait until all three accept connections.

    Its output goes to `log_path` (0600). `access_log` (default: `access_log_wanted()`) keeps its request log
    there and a debug log beside it; both hold SAS signatures, so they are off otherwise.
    """
    logs = access_log_wanted() if access_log is None else access_log
    debug = debug_log_path(log_path)
    cmd = [
        str(bin_path),
        "--disableTelemetry",
        "--oauth",
        "basic",
        "--cert",
        str(cert),
        "--key",
        str(key),
        "--blobHost",
        HOST,
        "--queueHost",
        HOST,
        "--tableHost",
        HOST,
        "--blobPort",
        str(ports.blob),
        "--queuePort",
        str(ports.queue),
        "--tablePort",
        str(ports.table),
        *(["--debug", str(debug)] if logs else ["--silent"]),
        *extra,
    ]
    out = _private_logs(log_path, debug, logs)
    try:
        # Its own session: a Ctrl-C in the terminal reaches us, and we stop Azurite in order.
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    finally:
        os.close(out)
    handle = AzuriteProcess(proc, ports, cert, log_path)
    atexit.register(handle.stop)
    try:
        _wait_for_ports(proc, ports, log_path)
    except BaseException:
        handle.stop()
        raise
    log.info("Azurite (pid %d) listening on %s ports %s", proc.pid, HOST, ports.all())
    return handle


def _private_logs(log_path: Path, debug: Path, logs: bool) -> int:
    """The log's descriptor, the log and the debug log made owner-only.

    Without the logs, the log starts empty and an old debug log goes: either may hold the signatures of an
    earlier run that logged (devhost used to keep both always).
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    if logs:
        os.close(_private_file(debug, truncate=False))
    else:
        debug.unlink(missing_ok=True)
    return _private_file(log_path, truncate=not logs)


def _private_file(path: Path, *, truncate: bool) -> int:
    """A descriptor for appending to `path` (emptied first if `truncate`), which only its owner may read (0600)."""
    fd = os.open(
        path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | (os.O_TRUNC if truncate else 0), 0o600
    )
    os.fchmod(fd, 0o600)  # the mode os.open gives applies to new files only
    return fd


def _wait_for_ports(
    proc: subprocess.Popen[bytes], ports: Ports, log_path: Path, timeout: float = START_TIMEOUT
) -> None:
    deadline = time.monotonic() + timeout
    while not all(port_open(p) for p in ports.all()):
        if proc.poll() is not None:
            raise AzuriteError(f"Azurite exited with code {proc.returncode}: {_tail(log_path)}")
        if time.monotonic() > deadline:
            raise AzuriteError(
                f"Azurite did not open ports {ports.all()} within {timeout:.0f} s: {_tail(log_path)}"
            )
        time.sleep(0.05)


def _tail(path: Path, chars: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:].strip() or "(no output)"
    except OSError:
        return "(no log)"
