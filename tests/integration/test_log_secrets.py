"""No secret in the logs: every log record the app, devhost and the Azure SDK write (at DEBUG) during a whole job,
from creation through the simulator's reports and uploads to a download, is searched for the job token, SAS
signatures, bearer tokens and private-key material."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import Gateway
from tests.integration.test_dispatch import run
from tests.integration.test_report_runs import download, finished

pytestmark = [pytest.mark.azurite, pytest.mark.ssh]

PATTERNS = {
    "a SAS signature": re.compile(r"sig=(?!REDACTED)[A-Za-z0-9%+/=]{16,}"),
    "a JWT": re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\."),
    "private-key material": re.compile(
        r"PRIVATE KEY|b3BlbnNzaC1rZXktdjE"
    ),  # PEM armour; OpenSSH key magic
}


class Everything(logging.Handler):
    """Keeps every record, formatted with its arguments and any traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def every_log_line() -> Iterator[list[str]]:
    handler, root = Everything(), logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler.lines
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_a_whole_job_leaves_no_secret_in_any_log(
    gateway: Gateway,
    azurite: Any,
    embedded_simulator: Any,
    use_targets: Any,
    every_log_line: list[str],
) -> None:
    use_targets({"local": embedded_simulator.target("local")})
    job_id = run(gateway, mesh="coarse", blend_duration=2.0)
    assert finished(gateway, job_id)["status"] == "COMPLETED"
    grant = gateway.call("GET", f"/job/{job_id}/output/mixing_index.csv", user="runner").body
    assert download(gateway, azurite, job_id, "mixing_index.csv")
    job_file = Path(embedded_simulator.target("local")["base_dir"]) / job_id / "simgate_job.json"
    secrets = {
        "the job token": json.loads(job_file.read_text())["token"],
        "the download SAS": grant["token"],
        "the user's token": gateway.token("runner"),
    }
    assert len(every_log_line) > 50  # the run was logged (at DEBUG the SDK logs every request)
    text = "\n".join(every_log_line)
    leaks = [name for name, value in secrets.items() if value in text]
    leaks += [name for name, pattern in PATTERNS.items() if pattern.search(text)]
    assert leaks == [], [
        line
        for line in every_log_line
        if any(v in line for v in secrets.values())
        or any(p.search(line) for p in PATTERNS.values())
    ][:5]
