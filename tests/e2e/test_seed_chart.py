"""The seed chart, end to end: every step a user takes, over real HTTP through devhost, on real components.

Azurite (HTTPS, OAuth) holds the jobs and the outputs; the job goes over SSH to OpenSSH's sshd and is submitted to a
one-node Slurm; the shipped wrapper reports back to the gateway and uploads the outputs; the CSV comes down through
its SAS URL with urllib and the Azurite CA, no Azure SDK. Once for the cavity (OpenFOAM's icoFoam, target
`cluster`) and once for the smoothie (python3, target `local`). See ../shared/design/seed-chart.md.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import AzuriteFixture
from tests.integration.conftest import Gateway, Reply

pytestmark = [pytest.mark.azurite, pytest.mark.ssh, pytest.mark.slurm]

USER = "martin"
ORDER = ["DRAFT", "SUBMITTED", "QUEUED", "RUNNING", "FINALIZING", "COMPLETED"]
ENDED = {"COMPLETED", "FAILED", "CANCELLED"}
RUN_TIMEOUT = 45.0  # seconds from run to COMPLETED; both jobs take a few


@dataclass
class Story:
    """One case's part in the chart: what Martin picks and sets, and what he should find in the CSV."""

    case_id: int
    slug: str
    values: dict[str, Any]
    csv: str  # the output to download
    columns: list[str]
    outputs: set[str]  # every output id the job must end with
    check_rows: Callable[[list[dict[str, float]], dict[str, Any]], None]


@dataclass
class Seen:
    """What polling `GET /job/{id}/status` saw: each new status with the seconds since the run."""

    changes: list[tuple[float, str]] = field(default_factory=list)

    @property
    def statuses(self) -> list[str]:
        return [status for _, status in self.changes]

    def __str__(self) -> str:
        return ", ".join(f"{status} at {at:.1f} s" for at, status in self.changes)


# --- the chart -------------------------------------------------------------------------------------------------


def seed_chart(gateway: Gateway, azurite: AzuriteFixture, story: Story) -> dict[str, Any]:
    """Play the chart for one case; the job as last shown."""
    show_all_cases(gateway, story)
    show_the_case(gateway, story)
    job_id = make_a_job(gateway, story)
    set_values(gateway, job_id, story)
    run_it(gateway, job_id)
    seen = poll_until_ended(gateway, job_id)
    show_all_jobs(gateway, job_id)
    job = show_the_job(gateway, job_id, story, seen)
    outputs = list_outputs(gateway, azurite, job_id, story, job)
    rows = download_csv(gateway, azurite, job_id, outputs[story.csv], story)
    story.check_rows(rows, job_values(job))
    return job


def show_all_cases(gateway: Gateway, story: Story) -> None:
    """Martin: Show all cases. `GET /case?page=1&per_page=5`, then the pages one `Link: rel="next"` at a time."""
    first = gateway.call("GET", "/case?page=1&per_page=5")
    assert first.status == 200, first.body
    total = int(first.headers["x-total-count"])
    assert len(first.body) == min(5, total)
    assert {"id", "name", "title", "description", "links"} <= set(first.body[0])
    # Two a page: follow the links to the end and meet every case once.
    reply, pages, ids = gateway.call("GET", "/case?page=1&per_page=2"), 0, []
    while True:
        assert reply.status == 200, reply.body
        assert reply.headers["x-total-count"] == str(total)
        pages += 1
        ids += [case["id"] for case in reply.body]
        links = link_header(reply)
        assert links["first"].endswith("?page=1&per_page=2")
        assert links["last"].endswith(f"?page={-(-total // 2)}&per_page=2")
        if "next" not in links:
            break
        reply = gateway.call("GET", path_of(gateway, links["next"]))
    assert pages == -(-total // 2)
    assert len(ids) == len(set(ids)) == total
    assert story.case_id in ids


def show_the_case(gateway: Gateway, story: Story) -> None:
    """Martin: Show the smoothie (cavity) case. `GET /case/{id}`: the typed field tree, no scripts or hosts."""
    reply = gateway.call("GET", f"/case/{story.case_id}")
    assert reply.status == 200, reply.body
    case = reply.body
    assert (case["id"], case["name"]) == (story.case_id, story.slug)
    leaves = {leaf["name"]: leaf for leaf in walk(case["fields"])}
    assert set(story.values) <= set(leaves)
    assert all("default" in leaf and "type" in leaf for leaf in leaves.values())
    assert story.csv.removesuffix(".csv") in {o["name"] for o in case["outputs"]}
    assert not {"scripts", "target", "entry"} & set(case)


def make_a_job(gateway: Gateway, story: Story) -> str:
    """Martin: Make this a job called "Test 1". `POST /job {case_id, job_title, user}`: 201, a DRAFT."""
    reply = gateway.call(
        "POST", "/job", {"case_id": story.case_id, "job_title": "Test 1", "user": USER}, user=USER
    )
    assert reply.status == 201, reply.body
    job = reply.body
    assert (job["status"], job["job_title"], job["case_id"], job["user"]) == (
        "DRAFT",
        "Test 1",
        story.case_id,
        USER,
    )
    assert reply.headers["location"] == f"/job/{job['job_id']}"
    return str(job["job_id"])


def set_values(gateway: Gateway, job_id: str, story: Story) -> None:
    """Martin: Set these values. `PATCH /job/{id} {fields: [...]}`: each checked against its spec."""
    fields = [{"name": name, "value": value} for name, value in story.values.items()]
    reply = gateway.call("PATCH", f"/job/{job_id}", {"fields": fields}, user=USER)
    assert reply.status == 200, reply.body
    assert {k: v for k, v in job_values(reply.body).items() if k in story.values} == story.values


def run_it(gateway: Gateway, job_id: str) -> None:
    """Martin: Run this job. `POST /job/{id}`: 202, SUBMITTED, and the status to poll in `Location`."""
    reply = gateway.call("POST", f"/job/{job_id}", user=USER)
    assert reply.status == 202, reply.body
    assert reply.body["status"] == "SUBMITTED"
    assert reply.headers["location"] == f"/job/{job_id}/status"
    again = gateway.call("POST", f"/job/{job_id}", user=USER)
    assert again.status == 409, again.body  # never a second run


def poll_until_ended(gateway: Gateway, job_id: str, timeout: float = RUN_TIMEOUT) -> Seen:
    """Martin goes home; the frontend polls `GET /job/{id}/status` until the job ends."""
    seen, started = Seen(), time.monotonic()
    while True:
        reply = gateway.call("GET", f"/job/{job_id}/status", user=USER)
        assert reply.status == 200, reply.body
        status = reply.body["status"]
        if not seen.changes or seen.changes[-1][1] != status:
            seen.changes.append((time.monotonic() - started, status))
        if status in ENDED:
            break
        assert time.monotonic() - started < timeout, (
            f"job {job_id} still {status} after {timeout} s; seen: {seen}"
        )
        time.sleep(0.1)
    assert seen.statuses[-1] == "COMPLETED", f"{reply.body}; seen: {seen}"
    # Polling may miss a state between two polls, never see one out of order.
    assert [ORDER.index(s) for s in seen.statuses] == sorted(
        {ORDER.index(s) for s in seen.statuses}
    ), str(seen)
    return seen


def show_the_job(gateway: Gateway, job_id: str, story: Story, seen: Seen) -> dict[str, Any]:
    """Martin: Show me job 2 (and that status again). `GET /job/{id}`: values with units, status and its history."""
    reply = gateway.call("GET", f"/job/{job_id}", user=USER)
    assert reply.status == 200, reply.body
    job = reply.body
    assert (job["job_id"], job["status"], job["reason"]) == (job_id, "COMPLETED", None)
    assert str(job["scheduler_id"]).isdigit(), job["scheduler_id"]  # Slurm's job id
    history = [change["status"] for change in job["history"]]
    # QUEUED is the dispatcher's; a job that reports RUNNING first makes it a late report that changes nothing.
    assert history in (ORDER, [s for s in ORDER if s != "QUEUED"]), (
        f"history {history}; polling saw: {seen}"
    )
    times = [change["at"] for change in job["history"]]
    assert times == sorted(times)
    assert all(change["by"] for change in job["history"])
    assert set(seen.statuses) <= set(history), f"polling saw {seen}, history {history}"
    values = {v["name"]: v for v in job["values"]}
    for name, value in story.values.items():
        assert (values[name]["value"], values[name]["is_default"]) == (value, False), values[name]
    assert any(values[name]["units"] for name in story.values)  # values are shown with their units
    return dict(job)


def show_all_jobs(gateway: Gateway, job_id: str) -> None:
    """Martin: Show all jobs. `GET /job`: his job headers with their status, newest first."""
    reply = gateway.call("GET", "/job", user=USER)
    assert reply.status == 200, reply.body
    jobs = reply.body
    assert jobs[0]["job_id"] == job_id, [j["job_id"] for j in jobs]  # the newest
    assert jobs[0]["status"] == "COMPLETED"
    created = [j["created_at"] for j in jobs]
    assert created == sorted(created, reverse=True)
    assert {j["user"] for j in jobs} == {USER}
    other = gateway.call("GET", f"/job/{job_id}", user="not-martin")
    assert other.status == 404  # another user's job does not exist for them


def list_outputs(
    gateway: Gateway, azurite: AzuriteFixture, job_id: str, story: Story, job: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """Martin: What outputs are there? `GET /job/{id}/output`: id, name, content type, size and a bare URI."""
    reply = gateway.call("GET", f"/job/{job_id}/output", user=USER)
    assert reply.status == 200, reply.body
    outputs = {o["output_id"]: o for o in reply.body}
    assert set(outputs) == story.outputs
    assert {o["output_id"] for o in job["outputs"]} == story.outputs
    csv_output = outputs[story.csv]
    assert csv_output["content_type"] == "text/csv"
    assert csv_output["size"] > 0
    assert csv_output["uri"].startswith("https://127.0.0.1:")
    assert "?" not in csv_output["uri"]  # no token in a listing
    assert plain_get(csv_output["uri"], azurite)[0] >= 400, (
        "a blob must not be readable without a SAS"
    )
    return outputs


def download_csv(
    gateway: Gateway, azurite: AzuriteFixture, job_id: str, output: dict[str, Any], story: Story
) -> list[dict[str, float]]:
    """Martin: Download csv1. `GET /job/{id}/output/{output_id}` signs a read-only SAS URL; any HTTP client
    fetches it. Then: Open Excel (parse the CSV)."""
    reply = gateway.call("GET", f"/job/{job_id}/output/{output['output_id']}", user=USER)
    assert reply.status == 200, reply.body
    grant = reply.body
    assert grant["url"] == f"{output['uri']}?{grant['token']}"
    expires = datetime.fromisoformat(grant["expires_on"].replace("Z", "+00:00"))
    assert datetime.now(UTC) < expires <= datetime.now(UTC) + timedelta(minutes=61)
    context = ssl.create_default_context(cafile=str(azurite.ca_path))
    with urllib.request.urlopen(
        grant["url"], context=context, timeout=30
    ) as resp:  # no Authorization header
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/csv"
        saved_as = f"attachment; filename=\"{story.csv}\"; filename*=UTF-8''{story.csv}"
        assert resp.headers["Content-Disposition"] == saved_as
        data = resp.read()
    assert len(data) == output["size"]
    text = data.decode("utf-8")
    reader = csv.DictReader(io.StringIO(text))
    assert reader.fieldnames == story.columns, text[:200]
    rows = [{k: float(v) for k, v in row.items()} for row in reader]  # every cell a number
    assert rows
    return rows


# --- the two cases ---------------------------------------------------------------------------------------------


def check_centreline(rows: list[dict[str, float]], values: dict[str, Any]) -> None:
    """The centre-line profile of the lid-driven cavity at the end time."""
    lid = values["lid_velocity"]
    ys, us = [r["y_m"] for r in rows], [r["u_m_per_s"] for r in rows]
    assert len(rows) == 21  # every face crossing of the coarse 20 × 20 mesh, floor and lid included
    assert ys[0] == 0
    assert ys[-1] == pytest.approx(0.1)
    assert all(a < b for a, b in itertools.pairwise(ys))
    assert us[-1] == pytest.approx(lid, abs=1e-9)  # the fluid at the lid moves with it
    assert us[0] == pytest.approx(0, abs=1e-9)  # and at the floor stands still
    # The primary vortex: return flow in the lower half, slower than the lid.
    assert -0.5 * lid < min(us) < -0.05 * lid
    assert ys[us.index(min(us))] < 0.07
    assert all(abs(r["u_m_per_s"]) <= lid and abs(r["v_m_per_s"]) <= lid for r in rows)


def check_mixing(rows: list[dict[str, float]], values: dict[str, Any]) -> None:
    """The smoothie's mixing index over time: 0 as poured, rising, and fruit conserved."""
    times, mixing = [r["time_s"] for r in rows], [r["mixing_index"] for r in rows]
    assert times[0] == 0
    assert times[-1] == pytest.approx(values["blend_duration"])
    assert all(a < b for a, b in itertools.pairwise(times))
    assert mixing[0] == pytest.approx(0, abs=1e-9)
    assert all(b >= a - 1e-6 for a, b in itertools.pairwise(mixing))
    assert 0.5 < mixing[-1] <= 1  # a fast blade mixes a thin smoothie within the run
    means = [r["mean_concentration"] for r in rows]
    assert max(means) - min(means) <= 2e-9
    assert means[0] == pytest.approx(values["fruit_fraction"], abs=0.005)


CAVITY = Story(
    case_id=1,
    slug="cavity",
    values={"lid_velocity": 1.5, "kinematic_viscosity": 0.01, "mesh": "coarse", "end_time": 0.5},
    csv="centreline.csv",
    columns=["y_m", "u_m_per_s", "v_m_per_s", "p_m2_per_s2"],
    outputs={
        "centreline.csv",
        "log.blockMesh",
        "log.icoFoam",
        "simgate-stdout.log",
        "simgate-stderr.log",
    },
    check_rows=check_centreline,
)
SMOOTHIE = Story(
    case_id=2,
    slug="smoothie",
    values={
        "label": "Test 1 from the seed chart",
        "blade_speed": 15000,
        "blend_duration": 2.0,
        "mesh": "coarse",
    },
    csv="mixing_index.csv",
    columns=["time_s", "mixing_index", "coefficient_of_variation", "mean_concentration"],
    outputs={"mixing_index.csv", "concentration.csv", "simgate-stdout.log", "simgate-stderr.log"},
    check_rows=check_mixing,
)


@pytest.mark.openfoam
def test_the_seed_chart_runs_the_cavity_with_openfoam_on_slurm(
    gateway: Gateway,
    azurite: AzuriteFixture,
    sshd: Any,
    slurm: Any,
    openfoam: list[str],
    use_targets: Any,
) -> None:
    use_targets({"cluster": sshd.target("cluster", scheduler="slurm", setup=openfoam)})
    job = seed_chart(gateway, azurite, CAVITY)
    assert slurm.wait_done(job["scheduler_id"]) == "COMPLETED"  # and Slurm agrees


def test_the_seed_chart_runs_the_smoothie_on_slurm(
    gateway: Gateway, azurite: AzuriteFixture, sshd: Any, slurm: Any, use_targets: Any
) -> None:
    use_targets({"local": sshd.target("local", scheduler="slurm")})
    job = seed_chart(gateway, azurite, SMOOTHIE)
    assert slurm.wait_done(job["scheduler_id"]) == "COMPLETED"  # and Slurm agrees


# --- small helpers ---------------------------------------------------------------------------------------------


def walk(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The leaf fields of a case's field tree (groups only nest them)."""
    return [
        leaf
        for node in nodes
        for leaf in (walk(node["fields"]) if node["type"] == "group" else [node])
    ]


def job_values(job: dict[str, Any]) -> dict[str, Any]:
    """A shown job's values by name (defaults filled in)."""
    return {v["name"]: v["value"] for v in job["values"]}


def link_header(reply: Reply) -> dict[str, str]:
    """The URLs of an RFC 8288 `Link` header by relation."""
    return {
        rel: url
        for url, rel in re.findall(r'<([^>]*)>\s*;\s*rel="([^"]+)"', reply.headers.get("link", ""))
    }


def path_of(gateway: Gateway, url: str) -> str:
    """A link's path and query on the gateway: relative, as no SIMGATE_PUBLIC_URL is set (never the Host's)."""
    assert url.startswith("/"), url
    assert not url.startswith("//"), url
    return url


def plain_get(url: str, azurite: AzuriteFixture) -> tuple[int, bytes]:
    """GET `url` with urllib, trusting the Azurite CA: the status and body, errors included."""
    context = ssl.create_default_context(cafile=str(azurite.ca_path))
    try:
        with urllib.request.urlopen(url, context=context, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()
