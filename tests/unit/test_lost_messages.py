"""A lost queue message, with fakes at the ports (`tests/fakes.py`): the reconciler sends again the dispatch (or
the cancel) of a job whose message was lost, and a second message, in whatever order it arrives, submits nothing
twice. The remote runner counts submits: a second submit of one job prints the first one's id, as the marker does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core import dispatch
from core.auth import Principal
from core.cancel import cancel_job
from core.ports import CommandResult
from core.reconcile import Sweep, reconcile
from core.records import Job, iso_time
from core.services import use_services
from core.states import JobState
from tests.fakes import FakeJobs, FakeOutputs, FakeQueue, fake_services

NOW = datetime.now(UTC)  # the states a cancel or a dispatch writes are stamped with the real time


class WorkerDied(Exception):
    """The dispatch worker's process went away (nothing in dispatch catches it)."""


@dataclass
class Port:
    """The fakes, and what the remote side saw."""

    table: FakeJobs
    queue: FakeQueue
    outputs: FakeOutputs
    submits: list[str] = field(default_factory=list)  # job ids submitted on the target
    die_at_submit: bool = False  # the worker dies in the middle of its remote submit
    die_at_cancel: bool = False  # the worker dies as it would send a cancel
    while_submitting: Any = None  # called during the remote submit, with the job's id

    @property
    def sent(self) -> list[tuple[str, str | None]]:
        return [(job_id, action) for job_id, action, _ in self.queue.sent]

    @property
    def containers(self) -> list[str]:
        return list(self.outputs.uploads)

    def messages(self, job_id: str, action: str | None = None) -> int:
        return self.sent.count((job_id, action))


@pytest.fixture
def port(monkeypatch: pytest.MonkeyPatch) -> Iterator[Port]:
    # Each test's own "now": the states the code writes are stamped with the real time, which must not have run
    # ahead of NOW (a whole suite can run for minutes after this module is imported).
    monkeypatch.setitem(globals(), "NOW", datetime.now(UTC))
    seen: Port

    async def remote(target: Any, argv: list[str], stdin: bytes | None) -> CommandResult:
        job_id = argv[4].rsplit("/", 1)[-1]  # SUBMIT_ONCE's "$1": the job's folder
        if seen.die_at_submit:
            seen.die_at_submit = False
            raise WorkerDied
        if seen.while_submitting is not None:
            await asyncio.to_thread(seen.while_submitting, job_id)
        if job_id not in seen.submits:  # the marker: a second submit prints the first one's id
            seen.submits.append(job_id)
        return CommandResult(0, f"{4000 + seen.submits.index(job_id)}\n", "")

    def before_send(job_id: str, action: str | None) -> None:
        if action == "cancel" and seen.die_at_cancel:
            seen.die_at_cancel = False
            raise WorkerDied

    services = fake_services(remote, resend_after_seconds=300, lost_after_minutes=15)
    seen = Port(services.jobs, services.queue, services.outputs)  # type: ignore[arg-type]
    seen.queue.before_send = before_send
    with use_services(services):
        yield seen


def a_job(port: Port, status: JobState, minutes_ago: float, n: int = 0, **changes: Any) -> str:
    at = iso_time(NOW - timedelta(minutes=minutes_ago))
    job_id = f"0123456789abcdef-{8765432109876 - n:013d}-abcdef"
    port.table.put(
        Job(
            job_id=job_id,
            owner="o",
            owner_name="o",
            case_id=2,
            title=f"job {n}",
            description="",
            status=status,
            created_at=at,
            updated_at=at,
            **changes,
        )
    )
    return job_id


def sweep(minutes_from_now: float = 0) -> Sweep:
    return asyncio.run(reconcile(NOW + timedelta(minutes=minutes_from_now)))


def deliver(job_id: str, message_id: str) -> None:
    asyncio.run(dispatch.dispatch(job_id, message_id))


def test_a_pass_sends_again_only_the_dispatches_and_cancels_that_were_lost(port: Port) -> None:
    lost_run = a_job(port, JobState.SUBMITTED, 6, 0)
    just_run = a_job(port, JobState.SUBMITTED, 1, 1)  # its message is surely still on its way
    claimed = a_job(
        port, JobState.SUBMITTED, 30, 2, dispatch_message="m", dispatch_error="ssh refused"
    )
    lost_cancel = a_job(port, JobState.CANCELLING, 6, 3, scheduler_id="42", dispatch_message="m")
    mid_submit = a_job(
        port, JobState.CANCELLING, 6, 4, dispatch_message="m"
    )  # its dispatcher stops it
    running = a_job(port, JobState.RUNNING, 6, 5, scheduler_id="43")

    done = sweep()

    assert (done.redispatched, done.recancelled) == ([lost_run], [lost_cancel])
    assert port.sent == [(lost_run, None), (lost_cancel, "cancel")]
    assert port.containers == [
        lost_run
    ]  # the run's container too: its request may have died before making it
    assert port.table.get(lost_run).checked_at == iso_time(NOW)
    assert port.table.get(lost_run).updated_at == iso_time(
        NOW - timedelta(minutes=6)
    )  # not a report
    for untouched in (just_run, claimed, mid_submit, running):
        assert port.table.get(untouched).checked_at is None
    assert sweep().redispatched == []  # the same moment again: nothing more is sent
    assert sweep(5).redispatched == [just_run]  # its turn: unclaimed for six minutes now
    assert sweep(6).redispatched == [
        lost_run
    ]  # it had waited six minutes before its first: six more, then again


def test_the_original_message_arriving_after_the_one_sent_again_does_nothing(port: Port) -> None:
    job_id = a_job(
        port, JobState.SUBMITTED, 6
    )  # its message "m1" is stuck in the queue (say, a lease held)
    assert sweep().redispatched == [job_id]
    deliver(job_id, "m2")  # the message sent again claims and submits
    queued = port.table.get(job_id)
    assert (queued.status, queued.scheduler_id, queued.dispatch_message) == (
        JobState.QUEUED,
        "4000",
        "m2",
    )
    deliver(job_id, "m1")  # the original, late
    assert port.table.get(job_id) == queued
    assert port.submits == [job_id]


def test_two_messages_at_once_submit_once(port: Port) -> None:
    job_id = a_job(port, JobState.SUBMITTED, 6)

    async def both() -> None:
        await asyncio.gather(dispatch.dispatch(job_id, "m1"), dispatch.dispatch(job_id, "m2"))

    asyncio.run(both())
    assert port.table.get(job_id).status is JobState.QUEUED
    assert port.submits == [job_id]


def test_a_claim_whose_worker_died_is_finished_by_its_own_message(port: Port) -> None:
    job_id = a_job(port, JobState.SUBMITTED, 1)
    port.die_at_submit = True
    with pytest.raises(WorkerDied):
        deliver(job_id, "m1")  # claimed, then the process died: the host never deleted "m1"
    claimed = port.table.get(job_id)
    assert (claimed.status, claimed.dispatch_message) == (JobState.SUBMITTED, "m1")

    assert (
        sweep(10).redispatched == []
    )  # claimed: nothing is sent again, "m1" comes back when its lease runs out
    deliver(job_id, "m9")  # a stray second message would not take the claim over
    assert port.table.get(job_id) == claimed
    deliver(job_id, "m1")  # "m1" again, after its lease
    done = port.table.get(job_id)
    assert (done.status, done.scheduler_id) == (JobState.QUEUED, "4000")
    assert (
        done.token_hash != claimed.token_hash
    )  # the token the target holds now is the one recorded
    assert port.submits == [job_id]


def test_a_job_cancelled_mid_submit_whose_cancel_was_lost_gets_it_again(port: Port) -> None:
    job_id = a_job(port, JobState.SUBMITTED, 1)

    def user_cancels(_: str) -> None:
        cancel_job(
            Principal("o", "o", False), job_id
        )  # CANCELLING; its cancel finds no scheduler id yet
        port.die_at_cancel = True  # the next cancel, the dispatcher's, dies with the process

    port.while_submitting = user_cancels
    with pytest.raises(WorkerDied):
        deliver(
            job_id, "m1"
        )  # records the scheduler's id on the CANCELLING job, and dies before the cancel
    stuck = port.table.get(job_id)
    assert (stuck.status, stuck.scheduler_id) == (JobState.CANCELLING, "4000")
    assert port.sent == [
        (job_id, "cancel")
    ]  # the user's own cancel found no scheduler id: it did nothing

    assert sweep().recancelled == []  # just cancelled: its cancel may be on its way
    assert sweep(10).recancelled == [job_id]
    assert sweep(15).recancelled == [job_id]  # a pass each, until the job is CANCELLED
    assert port.messages(job_id, "cancel") == 3
    deliver(job_id, "m1")  # the original dispatch message, after its lease: nothing more to do
    assert port.table.get(job_id) == stuck
    assert port.submits == [job_id]
