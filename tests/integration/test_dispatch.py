"""Run a job: POST /job/{id} → the dispatch queue → SSH to a real simulator → QUEUED with the scheduler's id.

Through OpenSSH's sshd to a one-node Slurm and to a workstation (`direct`), and through devhost's embedded
simulator; with hostile values, duplicate deliveries, an unreachable target and a wrong host key.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import AzuriteFixture
from tests.infra import free_port
from tests.integration.conftest import Gateway

pytestmark = pytest.mark.azurite

SMOOTHIE = 2
HOSTILE = "$(touch PWNED1) `touch PWNED2`; touch PWNED3 'q\" ../../x && touch PWNED4"


def run(gateway: Gateway, user: str = "runner", **values: Any) -> str:
    """Create a smoothie job, set values, run it; its id."""
    job_id = gateway.call(
        "POST", "/job", {"case_id": SMOOTHIE, "job_title": "run me"}, user=user
    ).body["job_id"]
    if values:
        fields = [{"name": k, "value": v} for k, v in values.items()]
        assert gateway.call("PATCH", f"/job/{job_id}", {"fields": fields}, user=user).status == 200
    reply = gateway.call("POST", f"/job/{job_id}", user=user)
    assert reply.status == 202, reply.body
    assert reply.headers["location"] == f"/job/{job_id}/status"
    return job_id


def settle(
    gateway: Gateway, job_id: str, user: str = "runner", timeout: float = 40
) -> dict[str, Any]:
    """The job once its dispatch is over: submitted (the scheduler's id recorded) or failed.

    The job may have reported RUNNING or more by then: the wrapper calls back as soon as the scheduler starts it.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = gateway.call("GET", f"/job/{job_id}", user=user).body
        if job["scheduler_id"] or job["status"] == "FAILED":
            return job  # type: ignore[no-any-return]
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} not dispatched after {timeout} s")


def dispatched(job: dict[str, Any]) -> bool:
    """Whether the history shows a dispatch: QUEUED by the dispatcher, unless the job reported in before it."""
    states = [h["status"] for h in job["history"]]
    return (
        states[:2] == ["DRAFT", "SUBMITTED"]
        and states[2] in ("QUEUED", "RUNNING")
        and len(set(states)) == len(states)
    )


# --- through OpenSSH's sshd ----------------------------------------------------------------------------------


@pytest.mark.ssh
@pytest.mark.slurm
def test_a_smoothie_job_is_queued_on_real_slurm(
    gateway: Gateway, sshd: Any, slurm: Any, use_targets: Any
) -> None:
    use_targets({"local": sshd.target("local", scheduler="slurm")})
    job_id = run(gateway)
    assert gateway.call("GET", f"/job/{job_id}/status", user="runner").body["status"] in (
        "SUBMITTED",
        "QUEUED",
    )
    job = settle(gateway, job_id)
    assert dispatched(job), job
    assert slurm.jobs_named(job_id) == [job["scheduler_id"]]
    job_dir = f"{sshd.home}/simgate-jobs/{job_id}"
    for name in (
        "run.sh",
        "model.py",
        "params.json",
        "simgate_wrapper.py",
        "simgate_batch.sh",
        "simgate_job.json",
    ):
        assert sshd.exists(f"{job_dir}/{name}"), name
    assert "#SBATCH" in sshd.read(f"{job_dir}/simgate_batch.sh")
    assert sshd.mode(f"{job_dir}/simgate_job.json") == 0o600
    assert slurm.wait_done(job["scheduler_id"], timeout=60) == "COMPLETED"
    assert sshd.read(f"{job_dir}/.simgate-exit-code").strip() == "0"
    assert sshd.exists(f"{job_dir}/mixing_index.csv")


@pytest.mark.ssh
@pytest.mark.slurm
def test_the_same_message_twice_submits_once(
    gateway: Gateway, azurite: AzuriteFixture, sshd: Any, slurm: Any, use_targets: Any
) -> None:
    use_targets({"local": sshd.target("local", scheduler="slurm")})
    job_id = run(gateway)
    queue = azurite.queue("dispatch")
    queue.send_message(json.dumps({"job_id": job_id}))  # a duplicate right behind the first
    job = settle(gateway, job_id)
    queue.send_message(json.dumps({"job_id": job_id}))  # and a late one
    time.sleep(3)
    assert slurm.jobs_named(job_id) == [job["scheduler_id"]]
    final = gateway.call("GET", f"/job/{job_id}", user="runner").body
    assert dispatched(final), final


@pytest.mark.ssh
def test_hostile_values_are_refused_or_inert_on_the_target(
    gateway: Gateway, sshd: Any, use_targets: Any
) -> None:
    use_targets({"local": sshd.target("local", scheduler="direct")})
    job_id = gateway.call(
        "POST", "/job", {"case_id": SMOOTHIE, "job_title": HOSTILE}, user="runner"
    ).body["job_id"]
    refused = [
        {"name": "mesh", "value": "coarse; touch PWNED5"},
        {"name": "label", "value": "a\ntouch PWNED6"},
        {"name": "fruit_density", "value": "$(touch PWNED7)"},
        {"name": "pulse", "value": "`touch PWNED8`"},
    ]
    for field in refused:
        assert (
            gateway.call("PATCH", f"/job/{job_id}", {"fields": [field]}, user="runner").status
            == 422
        )
    assert (
        gateway.call(
            "PATCH",
            f"/job/{job_id}",
            {"fields": [{"name": "label", "value": HOSTILE}, {"name": "mesh", "value": "coarse"}]},
            user="runner",
        ).status
        == 200
    )
    assert gateway.call("POST", f"/job/{job_id}", user="runner").status == 202
    job = settle(gateway, job_id)
    assert dispatched(job), job
    job_dir = f"{sshd.home}/simgate-jobs/{job_id}"
    wait_for(lambda: sshd.read_if(f"{job_dir}/.simgate-exit-code"), "the job to end")
    log = sshd.read(
        f"{job_dir}/simgate-stdout.log"
    )  # the entry script's stdout, as the wrapper keeps it
    assert f"run label: {HOSTILE}" in log  # the value arrived whole, as text
    for root in (job_dir, sshd.home, f"{sshd.home}/simgate-jobs"):
        assert not any(Path(p).name.startswith("PWNED") for p in sshd.listdir(root)), root


@pytest.mark.ssh
def test_an_unreachable_target_is_retried_then_failed_with_a_reason(
    gateway: Gateway, sshd: Any, use_targets: Any
) -> None:
    target = sshd.target("local")
    use_targets(
        {"local": {**target, "port": free_port()}}
    )  # nothing listens there: connection refused
    job_id = run(gateway)
    job = settle(gateway, job_id, timeout=60)
    assert job["status"] == "FAILED"
    assert "connection refused" in job["reason"]
    assert "gave up after retries" in job["reason"]


@pytest.mark.ssh
def test_a_wrong_host_key_is_refused_at_once_and_runs_nothing(
    gateway: Gateway, sshd: Any, use_targets: Any, tmp_path: Path
) -> None:
    import asyncssh

    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().split()[:2]
    target = sshd.target("local")
    use_targets(
        {"local": {**target, "known_hosts": f"[{sshd.host}]:{sshd.port} {' '.join(other)}"}}
    )
    job_id = run(gateway)
    job = settle(gateway, job_id)
    assert job["status"] == "FAILED"
    assert "host key" in job["reason"]
    assert not sshd.exists(f"{sshd.home}/simgate-jobs/{job_id}")


# --- through devhost's embedded simulator --------------------------------------------------------------------


@pytest.mark.ssh
def test_a_smoothie_job_is_queued_on_the_embedded_simulator(
    gateway: Gateway, embedded_simulator: Any, use_targets: Any
) -> None:
    use_targets({"local": embedded_simulator.target("local")})
    job_id = run(gateway)
    job = settle(gateway, job_id)
    assert dispatched(job), job
    assert job["scheduler_id"].isdigit()  # the direct scheduler's id is the process id
    job_dir = Path(embedded_simulator.target("local")["base_dir"]) / job_id
    wait_for(lambda: (job_dir / ".simgate-exit-code").exists(), "the job to end")
    assert (job_dir / ".simgate-exit-code").read_text().strip() == "0"
    assert (job_dir / "concentration.csv").exists()


def wait_for(probe: Any, what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.ssh
@pytest.mark.slurm
def test_a_failing_submit_fails_the_job_at_once_with_its_stderr(
    gateway: Gateway, sshd: Any, slurm: Any, use_targets: Any
) -> None:
    use_targets({"local": sshd.target("local", scheduler="slurm", options={"partition": "nosuch"})})
    job_id = run(gateway)
    job = settle(gateway, job_id)
    assert job["status"] == "FAILED"
    assert "exit 1" in job["reason"]
    assert "partition" in job["reason"].lower()  # sbatch's own words, from its stderr
    assert slurm.jobs_named(job_id) == []


@pytest.mark.ssh
def test_a_plain_http_callback_off_this_machine_fails_the_job_before_any_token_leaves(
    gateway: Gateway, sshd: Any, use_targets: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.services import reset_services

    use_targets({"local": sshd.target("local", scheduler="direct")})
    monkeypatch.setenv("SIMGATE_CALLBACK_URL", "http://gateway.example.org")
    reset_services()
    try:
        job = settle(gateway, run(gateway))
    finally:
        monkeypatch.undo()
        reset_services()
    assert job["status"] == "FAILED"
    assert "SIMGATE_CALLBACK_URL" in job["reason"]
    assert not sshd.exists(f"{sshd.home}/simgate-jobs/{job['job_id']}")


@pytest.mark.ssh
def test_deleting_a_finished_job_removes_its_folder_on_the_target(
    gateway: Gateway, sshd: Any, use_targets: Any
) -> None:
    use_targets({"local": sshd.target("local", scheduler="direct")})
    job_id = run(gateway, mesh="coarse", blend_duration=2.0)
    job_dir = f"{sshd.home}/simgate-jobs/{job_id}"
    wait_for(
        lambda: (
            gateway.call("GET", f"/job/{job_id}/status", user="runner").body["status"]
            == "COMPLETED"
        ),
        "the job to complete",
        timeout=120,
    )
    other = run(gateway, mesh="coarse", blend_duration=2.0)  # a neighbour that must stay
    assert sshd.exists(job_dir)
    assert gateway.call("DELETE", f"/job/{job_id}", user="runner").status == 204
    wait_for(lambda: not sshd.exists(job_dir), "the job's folder to be removed")
    wait_for(
        lambda: (
            gateway.call("GET", f"/job/{other}/status", user="runner").body["status"] == "COMPLETED"
        ),
        "the neighbour to complete",
        timeout=120,
    )
    assert sshd.exists(f"{sshd.home}/simgate-jobs/{other}/mixing_index.csv")
