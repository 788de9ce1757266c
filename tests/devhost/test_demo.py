"""`python -m devhost demo` (`make demo`): the seed chart's story against a running gateway, step by step.

Played against the tests' gateway (devhost over real HTTP, a private Azurite) with the smoothie's target on devhost's
embedded SSH simulator, as `make run` has it; and against nothing at all, which must say so in one line.
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from devhost import demo
from tests.conftest import ROOT, AzuriteFixture
from tests.infra import free_port
from tests.integration.conftest import Gateway

STEPS = [
    "Martin: Show all cases",
    "Martin: Show the smoothie case",
    'Martin: Make this a job called "Test 1"',
    "Martin: Set these values",
    "Martin: Run this job",
    "Martin: Goes home (the frontend polls the status)",
    "Martin: Show all jobs",
    "Martin: Show me job {job_id}",
    "Martin: Lunch (the frontend polls on)",  # unless the job had ended by the time Martin got home
    "Martin: Show me that status again",
    "Martin: What outputs are there?",
    "Martin: Download csv1",
    "Martin: Open Excel",
]
ORDER = ["SUBMITTED", "QUEUED", "RUNNING", "FINALIZING", "COMPLETED"]


@pytest.mark.azurite
def test_the_demo_plays_the_seed_chart_and_downloads_the_csv(
    gateway: Gateway,
    azurite: AzuriteFixture,
    embedded_simulator: Any,
    use_targets: Any,
    tmp_path: Path,
) -> None:
    use_targets({"local": embedded_simulator.target("local")})
    out, err = io.StringIO(), io.StringIO()
    code = demo.run(
        gateway.url,
        lambda: gateway.token("martin"),
        tmp_path / "downloads",
        azurite.ca_path,
        out,
        err,
        poll_interval=0.1,
        timeout=60,
    )
    text = out.getvalue()
    assert code == 0, text + err.getvalue()
    assert err.getvalue() == ""
    lines = text.splitlines()

    # The job's id, from "  job <id>: DRAFT"; then every step in the chart's words, in order.
    job_id = next(line.split()[1].rstrip(":") for line in lines if line.startswith("    job "))
    steps = [line for line in lines if line.startswith("Martin: ")]
    expected = [step.format(job_id=job_id) for step in STEPS]
    if "Martin: Lunch (the frontend polls on)" not in steps:
        expected.remove("Martin: Lunch (the frontend polls on)")
    assert steps == expected

    # Each step's HTTP call with its answer's status.
    for call in (
        "GET /case?page=1&per_page=5 → 200",
        "GET /case/2 → 200",
        'POST /job {"case_id": 2, "job_title": "Test 1"} → 201',
        f'PATCH /job/{job_id} {{"fields": [{{"name": "blade_speed", "value": 15000}}, ',
        f"POST /job/{job_id} → 202",
        "GET /job → 200",
        f"GET /job/{job_id} → 200",
        f"GET /job/{job_id}/output → 200",
        f"GET /job/{job_id}/output/mixing_index.csv → 200",
    ):
        assert f"  {call}" in text, call
    # Short summaries, not JSON dumps.
    assert any(line.endswith(" case(s) in all; this page:") for line in lines)
    assert any(line.split()[:2] == ["2", "smoothie"] for line in lines)
    assert any("blade_speed = 15000 rpm" in line for line in lines)
    assert not any(line.lstrip().startswith(("{", "[")) for line in lines)

    # A line per status change, in the states' order, ending COMPLETED.
    polled = [
        line.split()[4] for line in lines if line.startswith(f"  GET /job/{job_id}/status → 200")
    ]
    assert polled[-1] == "COMPLETED", text
    assert [ORDER.index(s) for s in polled] == sorted({ORDER.index(s) for s in polled})
    assert "RUNNING" in polled or "FINALIZING" in polled or polled == ["COMPLETED"]

    # The SAS fetch is shown without its token; the CSV's path ends the story, and the file parses.
    sas = next(line for line in lines if line.startswith("  GET https://"))
    assert "?<SAS>" in sas
    assert "sig=" not in text
    path = Path(lines[-1])
    assert path == tmp_path / "downloads" / job_id / "mixing_index.csv"
    assert path.is_file()
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    assert list(rows[0]) == [
        "time_s",
        "mixing_index",
        "coefficient_of_variation",
        "mean_concentration",
    ]
    assert float(rows[0]["mixing_index"]) == pytest.approx(0, abs=1e-9)
    assert float(rows[-1]["time_s"]) == pytest.approx(demo.VALUES["blend_duration"])
    assert 0 < float(rows[-1]["mixing_index"]) <= 1
    assert f"saved {path} ({len(rows)} rows); the first ones:" in text
    assert any(
        line.split() == ["time_s", "mixing_index", "coefficient_of_variation", "mean_concentration"]
        for line in lines
    )
    assert gateway.call("GET", f"/job/{job_id}", user="martin").body["status"] == "COMPLETED"


@pytest.mark.azurite
def test_a_refused_call_stops_the_demo_with_one_line(
    gateway: Gateway, azurite: AzuriteFixture, tmp_path: Path
) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = demo.run(gateway.url, lambda: "not-a-token", tmp_path, azurite.ca_path, out, err)
    assert code == 1
    assert err.getvalue().startswith("demo: POST /job answered 401, not 201: ")
    assert err.getvalue().count("\n") == 1
    assert "Martin: Make this a job called" in out.getvalue()


def test_a_stack_that_is_not_running_gets_one_line_and_a_non_zero_exit(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    done = subprocess.run(
        [sys.executable, "-m", "devhost", "demo", "--url", url, "--downloads", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert (
        done.stderr
        == f"demo: nothing answers at {url} (Connection refused): start it with `make run` first\n"
    )
    assert not list(tmp_path.iterdir())
