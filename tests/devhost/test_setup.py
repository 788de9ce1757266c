"""First-use set-up and the command line."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import queue
import signal
import ssl
import stat
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509

from devhost.__main__ import with_default_command
from devhost.setup import CERT_FILE, KEY_FILE, STEPS, Step, cert_is_fresh, make_self_signed_cert, run_setup

PROJECT = Path(__file__).resolve().parents[2]
EXAMPLE = {"IsEncrypted": False, "Values": {"FUNCTIONS_WORKER_RUNTIME": "python"}}


@pytest.fixture
def app_root(tmp_path: Path) -> Path:
    (tmp_path / "local.settings.example.json").write_text(json.dumps(EXAMPLE))
    return tmp_path


def test_setup_makes_everything_once(app_root: Path) -> None:
    first = run_setup(app_root)
    assert all(r.ran for r in first)
    assert {p for step in STEPS for p in step.outputs} <= {p.relative_to(app_root) for p in app_root.rglob("*")}
    cert_bytes = (app_root / CERT_FILE).read_bytes()
    again = run_setup(app_root)
    assert not any(r.ran for r in again)
    assert (app_root / CERT_FILE).read_bytes() == cert_bytes
    assert json.loads((app_root / "local.settings.json").read_text()) == EXAMPLE


def test_secrets_are_private(app_root: Path) -> None:
    run_setup(app_root)
    for path in (app_root / KEY_FILE, app_root / "local.settings.json"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_certificate_is_its_own_ca_for_localhost(tmp_path: Path) -> None:
    make_self_signed_cert(tmp_path / "c.pem", tmp_path / "k.pem")
    cert = x509.load_pem_x509_certificate((tmp_path / "c.pem").read_bytes())
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.IPv4Address("127.0.0.1")]
    ssl.create_default_context(cafile=str(tmp_path / "c.pem"))  # loads as a trust anchor


def test_an_expiring_certificate_is_renewed(app_root: Path) -> None:
    make_self_signed_cert(app_root / CERT_FILE, app_root / KEY_FILE, days=1)
    assert not cert_is_fresh(app_root / CERT_FILE)
    ran = {r.name: r.ran for r in run_setup(app_root)}
    assert ran["Azurite TLS certificate"]
    cert = x509.load_pem_x509_certificate((app_root / CERT_FILE).read_bytes())
    assert cert.not_valid_after_utc > dt.datetime.now(dt.UTC) + dt.timedelta(days=300)


def test_more_steps_slot_in(app_root: Path) -> None:
    made: list[Path] = []

    def make_key(root: Path) -> None:
        made.append(root)
        (root / ".local").mkdir(exist_ok=True)
        (root / ".local/dev.key").write_text("k")

    step = Step("dev key", (Path(".local/dev.key"),), make_key)
    assert [r.ran for r in run_setup(app_root, [step])] == [True]
    assert [r.ran for r in run_setup(app_root, [step])] == [False]
    assert made == [app_root]


@pytest.mark.parametrize(("argv", "expected"), [
    ([], ["serve"]),
    (["--port", "7072"], ["serve", "--port", "7072"]),
    (["--root", "/x", "--no-azurite"], ["--root", "/x", "serve", "--no-azurite"]),
    (["setup"], ["setup"]),
    (["--help"], ["--help"]),
])
def test_serve_is_the_default_command(argv: list[str], expected: list[str]) -> None:
    assert with_default_command(argv) == expected


APP = '''
import azure.functions as func
app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

@app.route(route="ping", methods=["GET"])
def ping(req: func.HttpRequest) -> str:
    return "pong"
'''


def test_cli_serves_until_sigterm(app_root: Path) -> None:
    (app_root / "function_app.py").write_text(APP)
    (app_root / "host.json").write_text(json.dumps({"version": "2.0"}))
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    cmd = [sys.executable, "-m", "devhost", "--root", str(app_root), "serve", "--no-azurite", "--port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        url = _read_url(proc)
        with urllib.request.urlopen(f"{url}/api/ping", timeout=10) as resp:
            assert resp.read() == b"pong"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
        proc.wait()
    assert (app_root / "local.settings.json").exists()  # set-up ran first


def _read_url(proc: subprocess.Popen[str], timeout: float = 20.0) -> str:
    # A reader thread, so a silent process cannot block the test past its deadline.
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in proc.stdout or ():
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if "listening on" in line:
            return line.split("listening on", 1)[1].split()[0]
    pytest.fail("devhost did not print its URL")
