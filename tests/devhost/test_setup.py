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
from typing import Any

import pytest
from cryptography import x509

from core.targets import parse_targets
from devhost import setup as devhost_setup
from devhost.__main__ import with_default_command
from devhost.setup import (
    CERT_FILE,
    KEY_FILE,
    SIMULATOR_HOST_KEY,
    SIMULATOR_STEPS,
    SIMULATOR_TARGETS,
    STEPS,
    TARGETS_FILE,
    Step,
    cert_is_fresh,
    find_openfoam,
    make_self_signed_cert,
    read_public_key,
    run_setup,
)

PROJECT = Path(__file__).resolve().parents[2]
EXAMPLE = {"IsEncrypted": False, "Values": {"FUNCTIONS_WORKER_RUNTIME": "python"}}


@pytest.fixture
def app_root(tmp_path: Path) -> Path:
    (tmp_path / "local.settings.example.json").write_text(json.dumps(EXAMPLE))
    return tmp_path


def test_setup_makes_everything_once(app_root: Path) -> None:
    first = run_setup(app_root)
    assert all(r.ran for r in first)
    assert {p for step in STEPS for p in step.outputs} <= {
        p.relative_to(app_root) for p in app_root.rglob("*")
    }
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


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], ["serve"]),
        (["--port", "7072"], ["serve", "--port", "7072"]),
        (["--root", "/x", "--no-azurite"], ["--root", "/x", "serve", "--no-azurite"]),
        (["setup"], ["setup"]),
        (["--help"], ["--help"]),
    ],
)
def test_serve_is_the_default_command(argv: list[str], expected: list[str]) -> None:
    assert with_default_command(argv) == expected


APP = """
import azure.functions as func
app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

@app.route(route="ping", methods=["GET"])
def ping(req: func.HttpRequest) -> str:
    return "pong"
"""


def test_cli_serves_until_sigterm(app_root: Path) -> None:
    (app_root / "function_app.py").write_text(APP)
    (app_root / "host.json").write_text(json.dumps({"version": "2.0"}))
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    cmd = [
        sys.executable,
        "-m",
        "devhost",
        "--root",
        str(app_root),
        "serve",
        "--no-azurite",
        "--port",
        "0",
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
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


# -- the embedded simulator's targets: OpenFOAM, and what a developer adds -----------------------------------------


@pytest.fixture
def openfoam_at(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where set-up looks for OpenFOAM in these tests (nothing there yet): never the machine's own install."""
    place = tmp_path / "opt" / "openfoam" / "etc" / "bashrc"
    monkeypatch.setattr(devhost_setup, "OPENFOAM_PLACES", (str(place),))
    monkeypatch.delenv("WM_PROJECT_DIR", raising=False)
    return place


def install_openfoam(bashrc: Path) -> None:
    """A stand-in bashrc that behaves as OpenFOAM's does where it matters: it reads unset variables and finds its
    project folder through BASH_SOURCE."""
    bashrc.parent.mkdir(parents=True, exist_ok=True)
    bashrc.write_text(
        'echo "complaints on stderr" >&2\n[ -n "$FOAM_INST_DIR" ] || true\n'
        'WM_PROJECT_DIR=$(cd "$(dirname "$BASH_SOURCE")/.." && pwd); export WM_PROJECT_DIR\n'
    )


def embedded(app_root: Path) -> dict[str, Any]:
    targets: dict[str, Any] = json.loads((app_root / TARGETS_FILE).read_text())
    return targets


def test_found_openfoam_is_loaded_by_the_embedded_targets(
    app_root: Path, openfoam_at: Path
) -> None:
    install_openfoam(openfoam_at)
    run_setup(app_root, SIMULATOR_STEPS)
    targets = embedded(app_root)
    for name in SIMULATOR_TARGETS:
        assert targets[name]["provides"] == ["openfoam"]
        [line] = targets[name]["setup"]
        assert line.startswith(
            f"set +u; BASH_SOURCE={openfoam_at}; . {openfoam_at} >/dev/null 2>&1; "
            "unset BASH_SOURCE; set -u"
        )
    parsed = parse_targets((app_root / TARGETS_FILE).read_text())  # as the gateway reads it
    assert parsed["cluster"].lacks(("openfoam",)) == ()


def test_the_set_up_line_loads_openfoam_in_the_batch_scripts_sh_eu(
    app_root: Path, openfoam_at: Path
) -> None:
    install_openfoam(openfoam_at)
    run_setup(app_root, SIMULATOR_STEPS)
    [line] = embedded(app_root)["cluster"]["setup"]
    script = f'set -eu\n{line}\nprintf "%s\\n" "$WM_PROJECT_DIR"\necho "$NOT_SET_EVER"\n'
    done = subprocess.run(
        ["sh", "-c", script], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.stdout.splitlines() == [str(openfoam_at.parent.parent)]
    assert done.returncode != 0  # and -u is back on after it
    assert "complaints" not in done.stderr  # the bashrc's noise stays out of the job's log


def test_without_openfoam_the_targets_provide_nothing_and_load_nothing(
    app_root: Path, openfoam_at: Path
) -> None:
    run_setup(app_root, SIMULATOR_STEPS)
    for name in SIMULATOR_TARGETS:
        assert (embedded(app_root)[name]["setup"], embedded(app_root)[name]["provides"]) == ([], [])
    assert parse_targets((app_root / TARGETS_FILE).read_text())["cluster"].lacks(("openfoam",)) == (
        "openfoam",
    )


def test_an_already_loaded_openfoam_is_found_first(
    app_root: Path, openfoam_at: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_openfoam(openfoam_at)
    loaded = app_root / "OpenFOAM-v2312"
    install_openfoam(loaded / "etc" / "bashrc")
    monkeypatch.setenv("WM_PROJECT_DIR", str(loaded))
    assert find_openfoam() == loaded / "etc" / "bashrc"
    monkeypatch.setenv("WM_PROJECT_DIR", str(app_root / "gone"))
    assert find_openfoam() == openfoam_at


def test_what_a_developer_adds_to_the_embedded_targets_survives_set_up(
    app_root: Path, openfoam_at: Path
) -> None:
    install_openfoam(openfoam_at)
    run_setup(app_root, SIMULATOR_STEPS)
    targets = embedded(app_root)
    ours = targets["cluster"]["setup"][0]
    targets["cluster"]["setup"].append("export OMP_NUM_THREADS=1")
    targets["cluster"]["options"] = {"nice": "10"}
    targets["cluster"]["provides"].append("gnuplot")
    targets["cluster"]["command_timeout"] = 120
    targets["local"]["setup"] = [
        "module load openfoam/2312"
    ]  # an OpenFOAM of their own instead of ours
    (app_root / TARGETS_FILE).write_text(json.dumps(targets))
    (
        app_root / SIMULATOR_HOST_KEY
    ).unlink()  # and something set-up owns changes: the targets are rewritten
    assert "simulator targets" in {r.name for r in run_setup(app_root, SIMULATOR_STEPS) if r.ran}
    after = embedded(app_root)
    cluster, local = after["cluster"], after["local"]
    assert cluster["known_hosts"].endswith(read_public_key(app_root / SIMULATOR_HOST_KEY))
    assert cluster["setup"] == [ours, "export OMP_NUM_THREADS=1"]
    assert cluster["options"] == {"nice": "10"}
    assert cluster["provides"] == ["openfoam", "gnuplot"]
    assert cluster["command_timeout"] == 120
    assert (local["setup"], local["provides"]) == (["module load openfoam/2312"], ["openfoam"])
    parse_targets((app_root / TARGETS_FILE).read_text())  # still what the gateway takes
    assert not any(
        r.ran for r in run_setup(app_root, SIMULATOR_STEPS)
    )  # and now current: left alone


def test_the_identity_of_the_simulator_is_set_ups_own(app_root: Path, openfoam_at: Path) -> None:
    run_setup(app_root, SIMULATOR_STEPS)
    targets = embedded(app_root)
    wanted = dict(targets["local"])
    targets["local"].update(
        host="10.0.0.9", port=22, user="nobody", known_hosts="x", key_file="k", base_dir="/x"
    )
    (app_root / TARGETS_FILE).write_text(json.dumps(targets))
    run_setup(app_root, SIMULATOR_STEPS)
    assert embedded(app_root)["local"] == wanted


def test_openfoam_installed_or_removed_later_updates_only_set_ups_own_parts(
    app_root: Path, openfoam_at: Path
) -> None:
    run_setup(app_root, SIMULATOR_STEPS)  # `make run` before OpenFOAM was installed
    targets = embedded(app_root)
    targets["cluster"]["setup"] = ["export FOAM_SIGFPE=0"]
    targets["local"]["setup"], targets["local"]["provides"] = (
        [". /home/me/foam/etc/bashrc"],
        ["openfoam"],
    )
    (app_root / TARGETS_FILE).write_text(json.dumps(targets))

    install_openfoam(openfoam_at)  # `make test` installs it; the next `make run` finds it
    assert [r.name for r in run_setup(app_root, SIMULATOR_STEPS) if r.ran] == ["simulator targets"]
    cluster = embedded(app_root)["cluster"]
    assert cluster["setup"][1:] == ["export FOAM_SIGFPE=0"]
    assert str(openfoam_at) in cluster["setup"][0]
    assert cluster["provides"] == ["openfoam"]

    openfoam_at.unlink()  # uninstalled: set-up's line and its `openfoam` go; the developer's own stay
    assert [r.name for r in run_setup(app_root, SIMULATOR_STEPS) if r.ran] == ["simulator targets"]
    after = embedded(app_root)
    assert (after["cluster"]["setup"], after["cluster"]["provides"]) == (
        ["export FOAM_SIGFPE=0"],
        [],
    )
    assert after["local"]["setup"] == [". /home/me/foam/etc/bashrc"]
    assert after["local"]["provides"] == ["openfoam"]  # they said so themselves: theirs to keep
