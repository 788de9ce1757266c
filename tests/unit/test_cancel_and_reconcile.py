"""The pure rules of cancel and of the reconciler (`core.transitions`): which state a cancel moves a job to, how a
job's own final report settles a cancel, how a swept job ends, and which jobs get their queue message sent again."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from core.errors import Conflict
from core.reconcile import resend_due
from core.records import Job
from core.states import JobState
from core.transitions import (
    cancel_confirmed,
    cancel_requested,
    reported_end,
    resend_noted,
    seen_alive,
)
from core.transitions import lost as lost_job


def job(status: JobState, **changes: Any) -> Job:
    return Job(
        job_id="0123456789abcdef-8765432109876-abcdef",
        owner="o",
        owner_name="o",
        case_id=2,
        title="t",
        description="",
        status=status,
        created_at="c",
        updated_at="2026-01-01T00:00:00.000Z",
        **changes,
    )


def test_a_job_no_dispatcher_has_claimed_is_cancelled_at_once() -> None:
    moved = cancel_requested(job(JobState.SUBMITTED), "martin")
    assert moved is not None
    assert moved.status is JobState.CANCELLED
    assert moved.history[-1].by == "martin"


@pytest.mark.parametrize("status", [JobState.QUEUED, JobState.RUNNING, JobState.FINALIZING])
def test_a_job_on_a_simulator_is_cancelling_until_its_scheduler_confirms(status: JobState) -> None:
    moved = cancel_requested(job(status, scheduler_id="7"), "martin")
    assert moved is not None
    assert moved.status is JobState.CANCELLING
    claimed = cancel_requested(job(JobState.SUBMITTED, dispatch_message="m1"), "martin")
    assert claimed is not None
    assert (
        claimed.status is JobState.CANCELLING
    )  # a dispatch is under way: it stops the job once submitted


@pytest.mark.parametrize("status", [JobState.CANCELLING, JobState.CANCELLED])
def test_cancelling_again_changes_nothing(status: JobState) -> None:
    assert cancel_requested(job(status), "martin") is None


@pytest.mark.parametrize("status", [JobState.DRAFT, JobState.COMPLETED, JobState.FAILED])
def test_a_draft_or_an_ended_job_cannot_be_cancelled(status: JobState) -> None:
    with pytest.raises(Conflict):
        cancel_requested(job(status), "martin")


def test_only_a_cancelling_job_is_confirmed_cancelled() -> None:
    confirmed = cancel_confirmed(job(JobState.CANCELLING))
    assert confirmed is not None
    assert confirmed.status is JobState.CANCELLED
    assert cancel_confirmed(job(JobState.COMPLETED)) is None


@pytest.mark.parametrize(
    ("current", "reported", "settled"),
    [
        (JobState.CANCELLING, JobState.FAILED, JobState.CANCELLED),
        (JobState.CANCELLING, JobState.COMPLETED, JobState.CANCELLED),
        (JobState.CANCELLING, JobState.FINALIZING, JobState.FINALIZING),
        (JobState.RUNNING, JobState.FAILED, JobState.FAILED),
        (JobState.FINALIZING, JobState.COMPLETED, JobState.COMPLETED),
    ],
)
def test_a_final_report_while_cancelling_ends_the_job_cancelled(
    current: JobState, reported: JobState, settled: JobState
) -> None:
    assert reported_end(job(current), reported) is settled


def test_a_swept_job_its_scheduler_lost_fails_with_the_exit_code_it_left() -> None:
    seen = job(JobState.RUNNING, scheduler_id="7")
    lost = lost_job(seen, seen, None)
    assert lost is not None
    assert (lost.status, lost.reason, lost.history[-1].by) == (
        JobState.FAILED,
        "lost by scheduler",
        "reconciler",
    )
    with_code = lost_job(seen, seen, 0)
    assert with_code is not None
    assert with_code.reason == "lost by scheduler (exit code 0)"


def test_a_swept_cancelling_job_the_scheduler_no_longer_runs_is_cancelled() -> None:
    seen = job(JobState.CANCELLING, scheduler_id="7")
    settled = lost_job(seen, seen, 143)
    assert settled is not None
    assert settled.status is JobState.CANCELLED


def test_a_report_that_arrived_after_the_sweep_wins() -> None:
    seen = job(JobState.RUNNING, scheduler_id="7")
    reported = replace(seen, status=JobState.FINALIZING, updated_at="2026-01-01T00:05:00.000Z")
    assert lost_job(reported, seen, None) is None
    assert seen_alive(reported, seen) is None
    noted = seen_alive(seen, seen)
    assert noted is not None
    assert noted.checked_at is not None
    assert (
        noted.updated_at == seen.updated_at
    )  # a check is not a report: the job stays silent until it reports


SUBMITTED_AT = datetime.fromisoformat("2026-01-01T00:00:00.000Z")
AFTER = timedelta(minutes=5)


def later(minutes: float) -> datetime:
    return SUBMITTED_AT + timedelta(minutes=minutes)


def stamp(minutes: float) -> str:
    return later(minutes).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.mark.parametrize(
    ("waiting", "changes", "minutes", "sent"),
    [
        # A run whose dispatch message was lost: SUBMITTED, no dispatcher claimed it.
        (JobState.SUBMITTED, {}, 5, "dispatch"),
        (JobState.SUBMITTED, {}, 4.9, None),  # its message may still be in the queue, on its way
        # Claimed: its own message is in the queue until the dispatch ends (the host is retrying it, or its lease runs
        # out after its worker died, and it comes back): a second message could not dispatch it anyway.
        (JobState.SUBMITTED, {"dispatch_message": "m1"}, 60, None),
        (
            JobState.SUBMITTED,
            {"dispatch_message": "m1", "dispatch_error": "ssh: connection refused"},
            60,
            None,
        ),
        # A cancel whose message was lost: CANCELLING, with a scheduler id to cancel.
        (JobState.CANCELLING, {"scheduler_id": "7"}, 5, "cancel"),
        (JobState.CANCELLING, {"scheduler_id": "7"}, 4.9, None),
        (
            JobState.CANCELLING,
            {"scheduler_id": "7"},
            600,
            "cancel",
        ),  # once per pass, for as long as it takes
        (
            JobState.CANCELLING,
            {"dispatch_message": "m1"},
            60,
            None,
        ),  # its dispatcher stops it once submitted
        # No message goes with these states.
        (JobState.DRAFT, {}, 60, None),
        (JobState.QUEUED, {"scheduler_id": "7"}, 60, None),
        (JobState.RUNNING, {"scheduler_id": "7"}, 60, None),
        (JobState.FINALIZING, {"scheduler_id": "7"}, 60, None),
        (JobState.COMPLETED, {}, 60, None),
        (JobState.CANCELLED, {}, 60, None),
        (JobState.FAILED, {}, 60, None),
    ],
)
def test_which_jobs_get_their_message_sent_again(
    waiting: JobState, changes: dict[str, Any], minutes: float, sent: str | None
) -> None:
    assert resend_due(job(waiting, **changes), later(minutes), AFTER) == sent


def test_each_dispatch_sent_again_waits_as_long_as_the_job_had_waited() -> None:
    """No storm for a job merely waiting in a long backlog: passes every five minutes for an hour send 4, not 12."""
    waiting = job(JobState.SUBMITTED)
    sent_at = []
    for minutes in range(5, 61, 5):
        if resend_due(waiting, later(minutes), AFTER) == "dispatch":
            sent_at.append(minutes)
            noted = resend_noted(waiting, waiting, stamp(minutes))
            assert noted is not None
            waiting = noted
    assert sent_at == [5, 10, 20, 40]
    assert waiting.updated_at == job(JobState.SUBMITTED).updated_at  # a re-send is not a report


@pytest.mark.parametrize(
    "meanwhile",
    [
        {"dispatch_message": "m1"},  # a dispatcher claimed it after the sweep read it
        {"status": JobState.CANCELLED},  # cancelled before any dispatcher took it
        {"checked_at": "2026-01-01T00:05:00.000Z"},  # another pass sent it again already
    ],
)
def test_a_job_that_changed_since_the_sweep_gets_no_message(meanwhile: dict[str, Any]) -> None:
    seen = job(JobState.SUBMITTED)
    assert resend_noted(replace(seen, **meanwhile), seen, stamp(5)) is None
    noted = resend_noted(seen, seen, stamp(5))
    assert noted is not None
    assert noted.checked_at == stamp(5)
