"""Cases and what their simulator provides, over real HTTP on devhost's embedded simulator.

A case that needs OpenFOAM, on a target that declares it has none, is listed as unavailable with a note and refused
at run (409, nothing dispatched). On a target with the set-up line devhost's set-up writes, the cavity runs to
COMPLETED; on one with no set-up at all, OpenFOAM fails for real and the job's reason says what OpenFOAM said.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from devhost.setup import find_openfoam, openfoam_setup_line
from tests.conftest import _missing_component
from tests.integration.conftest import Gateway
from tests.integration.test_report_runs import finished

pytestmark = [pytest.mark.azurite, pytest.mark.ssh]

USER = "availability"
CAVITY, SMOOTHIE = 1, 2
NOTE = "This case needs OpenFOAM, which its simulator does not provide."


@pytest.fixture(scope="module")
def openfoam_bashrc() -> Path:
    """The installed OpenFOAM's bashrc, as devhost's set-up finds it."""
    found = find_openfoam()
    if found is None:
        _missing_component(
            "OpenFOAM is not installed (`make system-deps` as root installs Debian's)"
        )
    assert found is not None
    return found


def cavity_job(gateway: Gateway, title: str) -> str:
    reply = gateway.call("POST", "/job", {"case_id": CAVITY, "job_title": title}, user=USER)
    assert reply.status == 201, reply.body
    return str(reply.body["job_id"])


def storage_requests_of(action: Any) -> list[str]:
    from core.storage import observe_requests

    seen: list[str] = []
    stop = observe_requests(lambda method, url: seen.append(f"{method} {url}"))
    try:
        action()
    finally:
        stop()
    return seen


def test_a_case_its_target_lacks_openfoam_for_is_unavailable_and_refused_at_run(
    gateway: Gateway, embedded_simulator: Any, use_targets: Any
) -> None:
    use_targets(
        {
            "cluster": {**embedded_simulator.target("cluster"), "provides": []},
            "local": {**embedded_simulator.target("local"), "provides": []},
        }
    )
    replies: dict[str, Any] = {}

    def read_catalog() -> None:
        replies["list"] = gateway.call("GET", "/case?per_page=10")
        replies["cavity"] = gateway.call("GET", f"/case/{CAVITY}")

    assert storage_requests_of(read_catalog) == []  # the catalog still costs no storage round trip
    listed = {c["id"]: c for c in replies["list"].body}
    assert (listed[CAVITY]["available"], listed[CAVITY]["note"]) == (False, NOTE)
    assert (listed[SMOOTHIE]["available"], listed[SMOOTHIE]["note"]) == (True, None)
    assert (replies["cavity"].body["available"], replies["cavity"].body["note"]) == (False, NOTE)

    job_id = cavity_job(gateway, "needs OpenFOAM")  # a draft can still be made and edited
    refused = gateway.call("POST", f"/job/{job_id}", user=USER)
    assert refused.status == 409
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.body["detail"] == NOTE
    job = gateway.call("GET", f"/job/{job_id}", user=USER).body
    assert job["status"] == "DRAFT"  # no job is made to fail for it
    assert [h["status"] for h in job["history"]] == ["DRAFT"]
    assert gateway.call("DELETE", f"/job/{job_id}", user=USER).status == 204


@pytest.mark.openfoam
def test_the_cavity_completes_on_the_embedded_simulator_with_set_ups_line(
    gateway: Gateway, embedded_simulator: Any, use_targets: Any, openfoam_bashrc: Path
) -> None:
    target = embedded_simulator.target("cluster", setup=[openfoam_setup_line(openfoam_bashrc)])
    use_targets({"cluster": {**target, "provides": ["openfoam"]}})
    assert gateway.call("GET", f"/case/{CAVITY}").body["available"] is True
    job_id = cavity_job(gateway, "cavity with its defaults")
    assert gateway.call("POST", f"/job/{job_id}", user=USER).status == 202
    job = finished(gateway, job_id, user=USER)
    assert job["status"] == "COMPLETED", job
    outputs = {o["output_id"] for o in gateway.call("GET", f"/job/{job_id}/output", user=USER).body}
    assert {"centreline.csv", "log.blockMesh", "log.icoFoam"} <= outputs


@pytest.mark.openfoam
def test_an_openfoam_failure_says_why_in_the_jobs_reason(
    gateway: Gateway, embedded_simulator: Any, use_targets: Any, openfoam_bashrc: Path
) -> None:
    # No set-up lines and no `provides`: nothing is checked, blockMesh runs without OpenFOAM's environment.
    use_targets({"cluster": embedded_simulator.target("cluster")})
    job_id = cavity_job(gateway, "cavity without OpenFOAM's environment")
    assert gateway.call("POST", f"/job/{job_id}", user=USER).status == 202
    job = finished(gateway, job_id, user=USER)
    assert job["status"] == "FAILED", job
    assert (
        job["reason"]
        == "exit code 1: blockMesh: Could not find mandatory etc entry (mode=ugo) 'controlDict'"
    )
    assert job["history"][-1]["reason"] == job["reason"]
