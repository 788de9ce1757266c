"""The host process dies between two writes, and no job is left stuck.

A state and its queue message are two writes: a run writes SUBMITTED and sends the dispatch; a cancel writes
CANCELLING and sends the cancel; a dispatcher that finds its job cancelled mid-submit records the scheduler's id and
sends the cancel. First the process is killed at each seam (`tests/integration/crashing_host.py` plants the
SIGKILL from the test side: the app is not changed), then for real, as an operator did: SIGKILL of devhost while
runs are being requested. The host is started again, its reconciler's timer firing every two seconds
(`SIMGATE_RESEND_AFTER_SECONDS` 3), and every job ends: a run answered 202 always ends; a run whose request got no
answer ends, or is still a DRAFT. The queue's lease is 15 s here (the host's ten minutes), so that a message whose
worker died comes back within the test.

The gateway runs as its own process (`tests/integration/test_faults.py`'s Stack) on an Azurite that keeps its data
on disk, and on devhost's embedded SSH simulator, which runs in the test process and so outlives the host.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_faults import FINAL, JOBS_TABLE, Stack, call
from tests.integration.test_operations import SLOW_MODEL, processes_in

pytestmark = [pytest.mark.azurite, pytest.mark.ssh]

LEASE = 15  # seconds: devhost's queue lease in these tests (the host's is ten minutes)
SAVED = 7  # seconds after its last write by which Azurite has saved it to its data folder (it saves every 5 s)
FAST_RECONCILER = {
    "SIMGATE_RECONCILE_SCHEDULE": "*/2 * * * * *",
    "SIMGATE_RESEND_AFTER_SECONDS": "3",
}


def crashing(seam: str, stack: Stack) -> tuple[str, ...]:
    return (
        "tests.integration.crashing_host",
        "--seam",
        seam,
        "--lease",
        str(LEASE),
        "--marker",
        str(stack.folder / "dispatcher-waits"),
        "--",
    )


def restarted(stack: Stack) -> None:
    """The host again, as after a crash: no seam, the same storage, the reconciler's timer firing."""
    stack.start_host(crashing("none", stack), FAST_RECONCILER)


@pytest.fixture
def make_stack(tmp_path: Path, embedded_simulator: Any) -> Iterator[Any]:
    """A Stack (Azurite started, no host yet) on the embedded simulator; `slow=True` runs a model that sleeps."""
    from tests.conftest import ROOT, _missing_component

    if not (ROOT / "node_modules/.bin/azurite").exists():
        _missing_component("node_modules/.bin/azurite is missing: run `npm ci`")
    made: list[Stack] = []

    def make(slow: bool = False) -> Stack:
        stack = Stack(
            tmp_path, embedded_simulator.target("local", setup=SLOW_MODEL if slow else ())
        )
        stack.start_azurite()
        made.append(stack)
        return stack

    try:
        yield make
    finally:
        for stack in made:
            try:
                _end_leftovers(stack)
            finally:
                stack.stop()


def _end_leftovers(stack: Stack) -> None:
    """After a failed test: cancel what is still active, so no simulator job outlives it."""
    if stack.host is None or stack.host.poll() is not None:
        return
    status, _, jobs = call(stack, "GET", "/job?per_page=100")
    for job in jobs if status == 200 else []:
        if job["status"] not in FINAL and job["status"] != "DRAFT":
            call(stack, "POST", f"/job/{job['job_id']}/cancel")


def draft(stack: Stack, title: str) -> str:
    status, _, job = call(stack, "POST", "/job", {"case_id": 2, "job_title": title})
    assert status == 201, job
    fields = [{"name": "mesh", "value": "coarse"}, {"name": "blend_duration", "value": 60.0}]
    assert call(stack, "PATCH", f"/job/{job['job_id']}", {"fields": fields})[0] == 200
    return str(job["job_id"])


def status_of(stack: Stack, job_id: str) -> str | None:
    body = call(stack, "GET", f"/job/{job_id}/status")[2] or {}
    return body.get("status")


def detail(stack: Stack, job_id: str) -> dict[str, Any]:
    status, _, body = call(stack, "GET", f"/job/{job_id}")
    assert status == 200, body
    return dict(body)


def wait_until(what: str, test: Any, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not test():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def ended(stack: Stack, job_ids: list[str], timeout: float = 120) -> dict[str, str | None]:
    """The jobs' states once all have ended (or the timeout, with whatever they are)."""
    deadline, states = time.monotonic() + timeout, {}
    while time.monotonic() < deadline:
        states = {j: status_of(stack, j) for j in job_ids}
        if set(states.values()) <= FINAL:
            break
        time.sleep(1)
    return states


def died(stack: Stack) -> None:
    assert stack.host is not None
    assert stack.host.wait(timeout=30) == -signal.SIGKILL
    assert "SIGKILL at the seam" in (stack.folder / "devhost.log").read_text()


def resent(stack: Stack) -> tuple[int, int]:
    """How many dispatches and cancels the reconciler's passes sent again, from the host's log."""
    import re

    counts = re.findall(
        r"(\d+) dispatches and (\d+) cancels sent again", (stack.folder / "devhost.log").read_text()
    )
    return sum(int(d) for d, _ in counts), sum(int(c) for _, c in counts)


def stored(stack: Stack, job_id: str) -> dict[str, Any]:
    """The job's record as storage holds it while no host runs, read straight from the table."""
    from azure.data.tables import TableClient

    from core.records import split_job_id
    from devhost.azurite import connection_string

    with TableClient.from_connection_string(
        connection_string(stack.ports), JOBS_TABLE, connection_verify=str(stack.cert)
    ) as table:
        return dict(table.get_entity(*split_job_id(job_id)))


def _processes_of(stack: Stack, job_id: str) -> list[int]:
    return processes_in(f"{stack.target['base_dir']}/{job_id}")


# --- a fault at each seam --------------------------------------------------------------------------------------


def test_a_run_whose_host_died_after_its_state_write_is_dispatched_by_the_reconciler(
    make_stack: Any,
) -> None:
    stack = make_stack()
    stack.start_host(crashing("run:after-state", stack))
    job_id = draft(stack, "died after SUBMITTED")
    assert call(stack, "POST", f"/job/{job_id}")[0] == 0  # no answer: the process died
    died(stack)
    assert (
        stored(stack, job_id)["status"] == "SUBMITTED"
    )  # no message was sent, no outputs container made

    restarted(stack)
    assert ended(stack, [job_id]) == {job_id: "COMPLETED"}
    history = detail(stack, job_id)["history"]
    assert [h["status"] for h in history][:3] == ["DRAFT", "SUBMITTED", "QUEUED"]
    assert resent(stack)[0] == 1
    outputs = {o["name"] for o in call(stack, "GET", f"/job/{job_id}/output")[2]}
    assert outputs >= {
        "mixing_index",
        "concentration",
    }  # uploaded: the reconciler made the container too


def test_a_run_whose_host_died_after_its_message_is_dispatched_once(make_stack: Any) -> None:
    stack = make_stack()
    stack.start_host(crashing("run:after-message", stack))
    job_id = draft(stack, "died after the dispatch message")
    assert call(stack, "POST", f"/job/{job_id}")[0] == 0
    died(stack)

    restarted(stack)
    assert ended(stack, [job_id]) == {job_id: "COMPLETED"}
    history = [h["status"] for h in detail(stack, job_id)["history"]]
    assert history == [
        "DRAFT",
        "SUBMITTED",
        "QUEUED",
        "RUNNING",
        "FINALIZING",
        "COMPLETED",
    ]  # one dispatch


def test_a_dispatch_whose_worker_died_after_the_claim_is_finished_by_its_own_message(
    make_stack: Any,
) -> None:
    stack = make_stack()
    stack.start_host(crashing("dispatch:after-claim", stack))
    job_id = draft(stack, "died after the claim")
    assert call(stack, "POST", f"/job/{job_id}")[0] == 202
    died(stack)  # the claim is written; the message stays in the queue, leased to the dead worker
    claim = stored(stack, job_id)
    assert (claim["status"], bool(claim.get("dispatch_message"))) == ("SUBMITTED", True)

    restarted(stack)
    assert ended(stack, [job_id], timeout=LEASE + 90) == {job_id: "COMPLETED"}
    assert resent(stack) == (
        0,
        0,
    )  # passes ran while the lease hid the message: a claimed job gets none
    log = (stack.folder / "devhost.log").read_text()
    assert (
        f"dispatch_job: message {claim['dispatch_message']} (dequeue count 2) succeeded" in log
    )  # its own, again


def running_job(stack: Stack, title: str) -> str:
    """A job of the slow model, RUNNING, with its scheduler's id recorded."""
    job_id = draft(stack, title)
    assert call(stack, "POST", f"/job/{job_id}")[0] == 202
    wait_until(
        "the job to run",
        lambda: status_of(stack, job_id) == "RUNNING" and detail(stack, job_id)["scheduler_id"],
        timeout=60,
    )
    return job_id


@pytest.mark.parametrize("seam", ["cancel:after-state", "cancel:after-message"])
def test_a_cancel_whose_host_died_between_its_writes_still_cancels(
    make_stack: Any, seam: str
) -> None:
    stack = make_stack(slow=True)
    stack.start_host(crashing(seam, stack))
    job_id = running_job(stack, f"cancel, {seam}")
    assert call(stack, "POST", f"/job/{job_id}/cancel")[0] == 0  # no answer: the process died
    died(stack)
    assert stored(stack, job_id)["status"] == "CANCELLING"

    restarted(stack)
    assert ended(stack, [job_id]) == {job_id: "CANCELLED"}
    assert [h["status"] for h in detail(stack, job_id)["history"]][-2:] == [
        "CANCELLING",
        "CANCELLED",
    ]
    if seam == "cancel:after-state":
        assert resent(stack)[1] >= 1  # no cancel was ever sent but the reconciler's
    assert not _processes_of(stack, job_id)


def test_a_cancel_mid_submit_whose_host_died_before_the_dispatcher_sent_it_still_cancels(
    make_stack: Any,
) -> None:
    stack = make_stack(slow=True)
    stack.start_host(crashing("dispatch:before-cancel", stack))
    job_id = draft(stack, "cancelled mid-submit")
    assert call(stack, "POST", f"/job/{job_id}")[0] == 202
    wait_until("the dispatcher to submit", (stack.folder / "dispatcher-waits").exists)
    status, _, cancelling = call(stack, "POST", f"/job/{job_id}/cancel")
    assert (status, cancelling["status"]) == (202, "CANCELLING")
    log = stack.folder / "devhost.log"
    wait_until(
        "the cancel's message to be done", lambda: "(dequeue count 1) succeeded" in log.read_text()
    )
    # It found no scheduler id yet, so it left the job to its dispatcher, which goes on now:
    (stack.folder / "dispatcher-waits.go").touch()
    died(stack)
    record = stored(
        stack, job_id
    )  # the dispatcher recorded the scheduler's id, and died before sending the cancel
    assert (record["status"], bool(record.get("scheduler_id"))) == ("CANCELLING", True)

    restarted(stack)
    assert ended(stack, [job_id]) == {job_id: "CANCELLED"}
    assert resent(stack)[1] >= 1
    assert not _processes_of(stack, job_id)


# --- a real kill, as the operator did -------------------------------------------------------------------------


@pytest.mark.timeout(600)
@pytest.mark.parametrize("azurite_too", [False, True], ids=["devhost", "devhost-and-azurite"])
def test_a_host_killed_while_runs_are_requested_leaves_no_job_stuck(
    make_stack: Any, azurite_too: bool
) -> None:
    """The operator's kill: SIGKILL of devhost while 20 runs are being requested, and a restart 4 s later.

    With `azurite_too`, Azurite is killed as well, once it has saved what it acknowledged: it writes its data folder
    every five seconds, so a kill within five seconds of a write loses writes it had answered (a draft is gone, a
    run answered 202 is a DRAFT again), which Azure Storage never does and nothing above storage could make up for.
    """
    stack = make_stack()
    restarted(stack)
    jobs = [draft(stack, f"burst {i}") for i in range(20)]
    answers: dict[str, int] = {}
    lock = threading.Lock()

    def run(index_and_job: tuple[int, str]) -> None:
        index, job_id = index_and_job
        # Eight over two seconds (their dispatches under way), then the other twelve at once (the kill lands among
        # them, between some run's state write and its message).
        time.sleep(index * 0.25 if index < 8 else 2.5)
        status = call(stack, "POST", f"/job/{job_id}")[0]
        with lock:
            answers[job_id] = status
            if len(answers) == 9:  # the first of the twelve: the others are in flight
                stack.kill_host()

    with ThreadPoolExecutor(len(jobs)) as pool:
        list(pool.map(run, enumerate(jobs)))
    if azurite_too:
        time.sleep(SAVED)
        stack.kill_azurite()
    time.sleep(4)
    if azurite_too:
        stack.start_azurite()  # the same data folder and ports
    restarted(stack)

    answered = [j for j in jobs if answers[j] == 202]
    unanswered = [j for j in jobs if answers[j] != 202]
    assert len(answered) >= 6, answers
    assert unanswered, answers  # the kill did land while runs were being requested
    states = ended(stack, answered, timeout=300)
    assert set(states.values()) <= FINAL, states  # a run answered 202 always ends
    others: dict[str, str | None] = {}

    def settled() -> bool:
        others.update({j: status_of(stack, j) for j in unanswered})
        return set(others.values()) <= FINAL | {"DRAFT"}

    wait_until(
        "the unanswered runs to end or stay drafts", settled, timeout=120
    )  # none SUBMITTED for good
    assert "COMPLETED" in states.values(), (states, others)
