"""No log file devhost keeps holds SAS signatures (F7 of the security review: `.local/azurite.log` held 236 full
SAS URLs, mode 0644). Azurite's access and debug logs write request URLs whole, so they are off unless
`DEVHOST_AZURITE_LOG` asks for them, and every Azurite log is owner-only."""

from __future__ import annotations

import ssl
import stat
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from devhost.azurite import (
    ACCOUNT,
    AZURITE_BIN,
    LOG_SETTING,
    Ports,
    debug_log_path,
    free_ports,
    start_project_azurite,
)
from devhost.setup import CERT_FILE, KEY_FILE, make_self_signed_cert
from tests.conftest import ROOT, _missing_component
from tests.gateway import Gateway
from tests.integration.test_dispatch import run
from tests.integration.test_report_runs import download, finished

pytestmark = [pytest.mark.azurite]

FAKE_SAS = "sv=2021-08-06&sr=b&sp=r&sig=FAKESIGNATUREFAKESIGNATURE%3D"


def files_with_signatures(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and b"sig=" in p.read_bytes()]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_whole_job_leaves_no_signature_in_any_file(
    gateway: Gateway, azurite: Any, embedded_simulator: Any, use_targets: Any
) -> None:
    use_targets({"local": embedded_simulator.target("local")})
    job_id = run(gateway, mesh="coarse", blend_duration=1.0)
    assert finished(gateway, job_id)["status"] == "COMPLETED"  # the upload grant was used
    assert download(gateway, azurite, job_id, "mixing_index.csv")  # and a download SAS
    azurite_folder = azurite.process.log_path.parent
    assert files_with_signatures(azurite_folder) == []
    assert files_with_signatures(embedded_simulator.root / ".local") == []
    for log in azurite_folder.glob("*.log"):
        assert mode(log) == 0o600, log


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A checkout's `.local` as set-up leaves it, with the world-readable logs an older devhost left."""
    if not (ROOT / AZURITE_BIN).exists():
        _missing_component(f"{AZURITE_BIN} is missing: run `npm ci`")
    make_self_signed_cert(tmp_path / CERT_FILE, tmp_path / KEY_FILE, days=1)
    for old in (tmp_path / ".local" / "azurite.log", tmp_path / ".local" / "azurite-debug.log"):
        old.write_text(f"GET /devstoreaccount1/c/b?{FAKE_SAS} 200\n")
        old.chmod(0o644)
    return tmp_path


def request_with_a_signature(ports: Ports, cert: Path, signature: str = "THISRUNSIGNATURE") -> None:
    url = f"https://127.0.0.1:{ports.blob}/{ACCOUNT}/container/blob.csv?sv=2021-08-06&sr=b&sp=r&sig={signature}"
    context = ssl.create_default_context(cafile=str(cert))
    with pytest.raises(urllib.error.HTTPError):  # a made-up signature: refused, but seen by Azurite
        urllib.request.urlopen(url, context=context, timeout=10)


def test_the_projects_azurite_keeps_no_access_log_by_default(
    checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(LOG_SETTING, raising=False)
    ports = Ports(*free_ports(3))
    with start_project_azurite(checkout, ports, ROOT / AZURITE_BIN) as azurite:
        request_with_a_signature(ports, checkout / CERT_FILE)
    assert "--silent" in list(azurite.process.args)  # type: ignore[arg-type]
    assert files_with_signatures(checkout / ".local") == []
    assert mode(azurite.log_path) == 0o600
    assert azurite.log_path.read_text().strip()  # its start-up lines are still there
    assert not debug_log_path(azurite.log_path).exists()


def test_asked_for_the_logs_are_kept_owner_only(
    checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(LOG_SETTING, "1")
    ports = Ports(*free_ports(3))
    with start_project_azurite(checkout, ports, ROOT / AZURITE_BIN) as azurite:
        request_with_a_signature(ports, checkout / CERT_FILE)
    debug = debug_log_path(azurite.log_path)
    assert (
        b"sig=THISRUNSIGNATURE" in azurite.log_path.read_bytes()
    )  # what the setting is for: every request
    assert (mode(azurite.log_path), mode(debug)) == (0o600, 0o600)
