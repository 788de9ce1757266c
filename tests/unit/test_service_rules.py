"""The rules of jobs, reports, cancel, dispatch and reconcile, through the public service functions, on the fakes of
`tests/fakes.py` (no Azurite, no SSH). One test per rule; the integration tests run the same rules on the real
adapters.

The remote side answers by program: each remote command the gateway runs is `sh -c SCRIPT NAME ...`, and `NAME`
("simgate" for the submit, "simgate-status", "simgate-cancel", "simgate-exit-codes") picks the test's answer.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from core import cancel, dispatch
from core.auth import Principal
from core.cancel import cancel_job, stop
from core.config import APP_ROOT
from core.errors import (
    Conflict,
    Forbidden,
    GatewayError,
    InvalidBody,
    InvalidValues,
    NotFound,
    Unauthenticated,
    Unavailable,
)
from core.job_operations import create_job, delete_job, list_jobs, run_job, show_job, update_job
from core.outputs import download, list_outputs
from core.ports import CommandResult
from core.reconcile import reconcile
from core.records import Job, hash_token, iso_time, new_job_id
from core.reports import report_status
from core.services import Services, use_services
from core.states import JobState
from core.targets import Target
from tests.fakes import FakeJobs, FakeOutputs, FakeQueue, fake_services

ALICE = Principal("alice-id", "Alice", False)
BOB = Principal("bob-id", "Bob", False)
ADMIN = Principal("admin-id", "Admin", True)
SMOOTHIE = 2  # case id; its target is "local", a `direct` scheduler
TOKEN = "the-jobs-own-token"
SECRET = "password=hunter2 at /srv/internal/path"  # what a bug's own message might hold: never for a user

Answer = Callable[[list[str]], CommandResult]


@dataclass
class World:
    """The fakes behind the services, and the remote side's answers by program name."""

    services: Services
    answers: dict[str, Answer] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)

    @property
    def jobs(self) -> FakeJobs:
        return self.services.jobs  # type: ignore[return-value]

    @property
    def outputs(self) -> FakeOutputs:
        return self.services.outputs  # type: ignore[return-value]

    @property
    def queue(self) -> FakeQueue:
        return self.services.queue  # type: ignore[return-value]

    def remote(self, target: Target, argv: list[str], stdin: bytes | None) -> CommandResult:
        program = argv[3]
        self.asked.append(program)
        if program not in self.answers:
            raise AssertionError(f"no remote {program!r} was expected")
        return self.answers[program](argv)

    def job(
        self, status: JobState, owner: Principal = ALICE, minutes_ago: float = 0, **changes: Any
    ) -> str:
        """A stored job of `owner` in `status`, last changed `minutes_ago`; its id."""
        at = iso_time(datetime.now(UTC) - timedelta(minutes=minutes_ago))
        job = Job(
            job_id=new_job_id(owner.user_id),
            owner=owner.user_id,
            owner_name=owner.name,
            case_id=changes.pop("case_id", SMOOTHIE),
            title="a job",
            description="",
            status=status,
            created_at=at,
            updated_at=at,
            **changes,
        )
        return self.jobs.put(job).job_id

    def reporting(self, status: JobState, **changes: Any) -> str:
        """A job that holds `TOKEN` (it was dispatched), with its upload container."""
        job_id = self.job(
            status,
            scheduler_id="4242",
            dispatch_message="m1",
            token_hash=hash_token(TOKEN),
            **changes,
        )
        self.outputs.create(job_id)
        return job_id

    def get(self, job_id: str) -> Job:
        return self.jobs.get(job_id)


def said(stdout: str = "", exit_status: int = 0, stderr: str = "") -> Answer:
    """An answer: the program ran and printed this."""
    return lambda argv: CommandResult(exit_status, stdout, stderr)


def raising(exc: BaseException) -> Answer:
    """An answer: running the program raised `exc`."""

    def answer(argv: list[str]) -> CommandResult:
        raise exc

    return answer


@contextlib.contextmanager
def make_world(**settings: Any) -> Iterator[World]:
    """The fakes in use for the block, with `settings` replacing some."""
    world: World
    services = fake_services(
        lambda target, argv, stdin: world.remote(target, argv, stdin),
        upload_minutes=15,
        lost_after_minutes=15,
        **settings,
    )
    world = World(services)
    with use_services(services):
        yield world


@pytest.fixture
def world() -> Iterator[World]:
    with make_world() as made:
        yield made


def report(job_id: str, body: dict[str, Any], token: str = TOKEN) -> dict[str, Any]:
    return report_status(job_id, f"Bearer {token}", lambda: body)


def claims(*files: tuple[str, str]) -> list[dict[str, str]]:
    return [{"name": name, "file": file} for name, file in files]


def field_names(exc: GatewayError) -> list[str]:
    return [p.name for p in exc.errors]


# ---- jobs -------------------------------------------------------------------------------------------------------


def test_a_new_job_is_a_draft_of_its_creator(world: World) -> None:
    made = create_job(ALICE, {"case_id": SMOOTHIE, "job_title": "first blend"})
    stored = world.get(made.job_id)
    assert (made.status, made.user, made.job_title) == ("DRAFT", "Alice", "first blend")
    assert (stored.status, stored.owner, stored.case_id) == (
        JobState.DRAFT,
        ALICE.user_id,
        SMOOTHIE,
    )
    assert world.queue.sent == []  # nothing runs until it is run


def test_a_bad_value_is_refused_naming_the_field(world: World) -> None:
    job_id = world.job(JobState.DRAFT)
    with pytest.raises(InvalidValues) as refused:
        update_job(ALICE, job_id, {"fields": [{"name": "fruit_fraction", "value": 5}]})
    assert field_names(refused.value) == ["fruit_fraction"]
    assert world.get(job_id).values == {}


def test_a_good_value_is_set_on_a_draft(world: World) -> None:
    job_id = world.job(JobState.DRAFT)
    update_job(ALICE, job_id, {"fields": [{"name": "fruit_fraction", "value": 0.5}]})
    assert world.get(job_id).values == {"fruit_fraction": 0.5}


def test_only_a_draft_can_be_edited(world: World) -> None:
    job_id = world.job(JobState.SUBMITTED)
    with pytest.raises(Conflict):
        update_job(ALICE, job_id, {"job_title": "renamed"})
    assert world.get(job_id).title == "a job"


def test_a_run_submits_makes_the_containers_and_queues_one_dispatch(world: World) -> None:
    job_id = world.job(JobState.DRAFT)
    assert run_job(ALICE, job_id).status == "SUBMITTED"
    assert world.get(job_id).status is JobState.SUBMITTED
    assert job_id in world.outputs.uploads
    assert job_id in world.outputs.outputs
    assert world.queue.sent == [(job_id, None, None)]


def test_a_job_runs_once(world: World) -> None:
    job_id = world.job(JobState.DRAFT)
    run_job(ALICE, job_id)
    with pytest.raises(Conflict):
        run_job(ALICE, job_id)
    assert world.queue.sent == [(job_id, None, None)]


def test_a_required_field_must_be_set_before_a_run(tmp_path: Path) -> None:
    # The packaged cases give every required field a default: a copy of one whose `label` has none.
    case = shutil.copytree(APP_ROOT / "cases" / "smoothie", tmp_path / "cases" / "smoothie")
    text = (case / "case.yaml").read_text(encoding="utf-8")
    loose = "    required: false\n    max_length: 120\n    default: my smoothie\n"
    assert loose in text
    (case / "case.yaml").write_text(text.replace(loose, "    max_length: 120\n"), encoding="utf-8")
    with make_world(cases_dir=tmp_path / "cases") as world:
        job_id = world.job(JobState.DRAFT)
        with pytest.raises(InvalidValues) as refused:
            run_job(ALICE, job_id)
        assert field_names(refused.value) == ["label"]
        assert world.get(job_id).status is JobState.DRAFT
        assert world.queue.sent == []


def test_a_run_whose_dispatch_cannot_be_queued_gives_the_draft_back(world: World) -> None:
    job_id = world.job(JobState.DRAFT)
    world.queue.fail = True
    with pytest.raises(Unavailable):
        run_job(ALICE, job_id)
    job = world.get(job_id)
    assert job.status is JobState.DRAFT
    assert [c.status for c in job.history] == [JobState.SUBMITTED, JobState.DRAFT]
    world.queue.fail = False
    assert run_job(ALICE, job_id).status == "SUBMITTED"  # the user may run it again


def test_another_users_job_is_not_found(world: World) -> None:
    job_id = world.job(JobState.COMPLETED, owner=BOB)
    for attempt in (
        lambda: show_job(ALICE, job_id),
        lambda: update_job(ALICE, job_id, {"job_title": "mine"}),
        lambda: delete_job(ALICE, job_id),
    ):
        with pytest.raises(NotFound):
            attempt()
    assert world.get(job_id).title == "a job"


def test_an_admin_may_show_anyones_job_but_not_change_it(world: World) -> None:
    job_id = world.job(JobState.DRAFT, owner=BOB)
    assert show_job(ADMIN, job_id).user == "Bob"
    with pytest.raises(NotFound):
        update_job(ADMIN, job_id, {"job_title": "the admin's"})
    with pytest.raises(NotFound):
        delete_job(ADMIN, job_id)
    assert world.get(job_id).title == "a job"


def test_an_active_job_cannot_be_deleted(world: World) -> None:
    job_id = world.job(JobState.RUNNING, scheduler_id="4242")
    world.outputs.create(job_id)
    with pytest.raises(Conflict):
        delete_job(ALICE, job_id)
    assert world.get(job_id).status is JobState.RUNNING
    assert job_id in world.outputs.outputs


def test_deleting_an_ended_job_removes_its_outputs_and_cleans_its_target(world: World) -> None:
    job_id = world.job(JobState.COMPLETED, scheduler_id="4242", dispatch_message="m1")
    world.outputs.create(job_id)
    delete_job(ALICE, job_id)
    with pytest.raises(NotFound):
        world.get(job_id)
    assert job_id not in world.outputs.outputs
    assert job_id not in world.outputs.uploads
    assert world.queue.sent == [(job_id, "clean", "local")]


def test_deleting_a_draft_whose_run_failed_leaves_no_containers(world: World) -> None:
    job_id = world.job(JobState.DRAFT)
    world.queue.fail = True
    with pytest.raises(Unavailable):
        run_job(ALICE, job_id)  # the containers are made, then the queue is away: a DRAFT again
    delete_job(ALICE, job_id)
    assert (job_id in world.outputs.uploads, job_id in world.outputs.outputs) == (False, False)


def test_jobs_are_listed_in_pages_by_owner_status_and_case(world: World) -> None:
    alices = {
        world.job(JobState.DRAFT),
        world.job(JobState.RUNNING),
        world.job(JobState.RUNNING, case_id=1),
    }
    world.job(JobState.RUNNING, owner=BOB)

    def listed(cursor: str | None = None, **query: Any) -> tuple[list[str], str | None]:
        query = {"status": None, "case_id": None, "everyone": False, **query}
        page, following = list_jobs(ALICE, per_page=2, cursor=cursor, **query)
        return [j.job_id for j in page], following

    first, cursor = listed()
    assert len(first) == 2
    assert cursor is not None
    second, last = listed(cursor)
    assert (set(first) | set(second), last) == (alices, None)
    running, _ = listed(status="RUNNING")
    assert {world.get(i).status for i in running} == {JobState.RUNNING}
    assert len(running) == 2
    smoothies, _ = listed(status="RUNNING", case_id=SMOOTHIE)
    assert [world.get(i).case_id for i in smoothies] == [SMOOTHIE]
    with pytest.raises(Forbidden):
        listed(everyone=True)


# ---- conditional writes -------------------------------------------------------------------------------------------


class RacingJobs(FakeJobs):
    """A job repository where someone else writes the job once, between the service's read and its write."""

    def __init__(self, meanwhile: Callable[[Job], Job]) -> None:
        super().__init__()
        self.meanwhile: Callable[[Job], Job] | None = meanwhile

    def replace(self, job: Job) -> Job:
        if self.meanwhile is not None:
            other, self.meanwhile = self.meanwhile, None
            self.put(other(self.rows[job.job_id]))  # a new ETag: the write below conflicts
        return super().replace(job)


def test_a_write_that_lost_a_race_is_retried_from_a_fresh_read(world: World) -> None:
    racing = RacingJobs(lambda job: replace(job, description="written meanwhile"))
    world.services.jobs = racing
    job_id = world.job(JobState.DRAFT)
    update_job(ALICE, job_id, {"job_title": "renamed"})
    job = world.get(job_id)
    assert (job.title, job.description) == ("renamed", "written meanwhile")  # neither write is lost
    assert racing.meanwhile is None


# ---- reports ------------------------------------------------------------------------------------------------------


def test_a_wrong_token_is_refused_before_the_body_is_read(world: World) -> None:
    job_id = world.reporting(JobState.RUNNING)

    def body() -> Any:
        raise AssertionError("the body was read")

    for authorization in ("Bearer not-the-token", None):
        with pytest.raises(Unauthenticated):
            report_status(job_id, authorization, body)
    with pytest.raises(Unauthenticated):  # a job that does not exist is answered alike
        report_status(new_job_id(ALICE.user_id), f"Bearer {TOKEN}", body)


def test_a_running_report_moves_the_job_and_keeps_its_progress(world: World) -> None:
    job_id = world.reporting(JobState.QUEUED)
    view = report(job_id, {"status": "RUNNING", "progress": 40, "message": "blending"})
    job = world.get(job_id)
    assert view.status == "RUNNING"
    assert (job.status, job.progress, job.message) == (JobState.RUNNING, 40, "blending")
    assert "upload" not in view


def test_finalizing_gets_an_upload_grant_and_the_same_one_again_while_it_is_valid(
    world: World,
) -> None:
    job_id = world.reporting(JobState.RUNNING)
    first = report(job_id, {"status": "FINALIZING"}).upload
    expires = datetime.fromisoformat(first.expires_on)
    assert timedelta(minutes=14) < expires - datetime.now(UTC) <= timedelta(minutes=15)
    assert first.url == world.outputs.upload_grant(job_id, expires).uri
    # Five minutes on (the grant's window moved back, as if time had passed): ten minutes left, still good.
    later = iso_time(expires - timedelta(minutes=5))
    world.jobs.put(replace(world.get(job_id), upload_expires=later))
    again = report(job_id, {"status": "FINALIZING", "progress": 90}).upload
    assert again.expires_on == later
    assert again.sas == world.outputs.upload_grant(job_id, datetime.fromisoformat(later)).token


def test_a_completed_report_records_the_uploaded_outputs(world: World) -> None:
    job_id = world.reporting(JobState.RUNNING)
    report(job_id, {"status": "FINALIZING"})
    data = b"time_s,mixing_index\n0,0\n1,0.9\n"
    world.outputs.upload(job_id, "mixing_index.csv", data)
    world.outputs.upload(job_id, "simgate-stdout.log", b"ok\n")
    view = report(
        job_id, {"status": "COMPLETED", "outputs": claims(("mixing_index", "mixing_index.csv"))}
    )
    job = world.get(job_id)
    assert view.status == job.status == JobState.COMPLETED
    [output] = job.outputs
    md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
    assert (output.name, output.file, output.size, output.md5) == (
        "mixing_index",
        "mixing_index.csv",
        len(data),
        md5,
    )
    assert output.content_type == "text/csv"  # the case's, not what the upload said
    assert world.outputs.outputs[job_id][output.blob_name].md5 == md5  # copied where users read
    assert job_id not in world.outputs.uploads  # the grant has nothing left to write to


@pytest.mark.parametrize(
    ("claim", "copied"),
    [
        (
            ("mixing_index", "mixing_index.csv"),
            True,
        ),  # copied from elsewhere in storage, not uploaded
        (("concentration", "concentration.csv"), False),  # never uploaded
        (("secret_sauce", "mixing_index.csv"), False),  # not an output of the case
    ],
)
def test_a_completed_report_with_a_bad_claim_is_refused_naming_it(
    world: World, claim: tuple[str, str], copied: bool
) -> None:
    job_id = world.reporting(JobState.RUNNING)
    report(job_id, {"status": "FINALIZING"})
    world.outputs.upload(job_id, "simgate-stdout.log", b"ok\n")
    world.outputs.upload(job_id, "mixing_index.csv", b"0,0\n", copied=copied)
    with pytest.raises(InvalidBody) as refused:
        report(
            job_id,
            {"status": "COMPLETED", "outputs": claims(("stdout", "simgate-stdout.log"), claim)},
        )
    assert field_names(refused.value) == ["outputs[1].file"]
    job = world.get(job_id)
    assert (job.status, job.outputs) == (JobState.FINALIZING, ())
    assert world.outputs.outputs[job_id] == {}


@pytest.mark.parametrize("ended", [JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED])
def test_a_report_after_the_end_is_a_conflict(world: World, ended: JobState) -> None:
    job_id = world.reporting(ended)
    before = world.get(job_id)
    with pytest.raises(Conflict):
        report(job_id, {"status": "RUNNING"})
    assert world.get(job_id) == before


def test_a_late_running_report_after_finalizing_changes_nothing(world: World) -> None:
    job_id = world.reporting(JobState.RUNNING)
    report(job_id, {"status": "FINALIZING", "progress": 90, "message": "uploading"})
    before = world.get(job_id)
    view = report(job_id, {"status": "RUNNING", "progress": 50, "message": "late"})
    assert view.status == "FINALIZING"
    assert world.get(job_id) == before


# ---- cancel -------------------------------------------------------------------------------------------------------


def test_an_unclaimed_job_is_cancelled_at_once(world: World) -> None:
    job_id = world.job(JobState.SUBMITTED)
    assert cancel_job(ALICE, job_id).status == "CANCELLED"
    assert world.get(job_id).status is JobState.CANCELLED
    assert world.queue.sent == []


def test_a_queued_job_is_cancelling_with_one_cancel_message(world: World) -> None:
    job_id = world.job(JobState.QUEUED, scheduler_id="4242", dispatch_message="m1")
    assert cancel_job(ALICE, job_id).status == "CANCELLING"
    assert world.get(job_id).status is JobState.CANCELLING
    assert world.queue.sent == [(job_id, "cancel", None)]


def test_a_cancel_the_scheduler_confirms_ends_the_job_cancelled(world: World) -> None:
    job_id = world.job(JobState.CANCELLING, scheduler_id="4242", dispatch_message="m1")
    world.answers.update(
        {"simgate-cancel": said(), "simgate-status": said("")}
    )  # no PID listed: gone
    asyncio.run(stop(job_id))
    assert world.get(job_id).status is JobState.CANCELLED
    assert world.asked == ["simgate-cancel", "simgate-status"]


def test_a_job_that_outlives_its_cancel_is_asked_about_again_later(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cancel, "CONFIRM_PAUSE", 0)
    job_id = world.job(JobState.CANCELLING, scheduler_id="4242", dispatch_message="m1")
    world.answers.update({"simgate-cancel": said(), "simgate-status": said("4242 S\n")})
    with pytest.raises(Unavailable) as busy:
        asyncio.run(stop(job_id))
    assert busy.value.transient  # the host retries the message
    assert world.asked.count("simgate-status") == cancel.CONFIRM_TRIES
    assert world.get(job_id).status is JobState.CANCELLING


# ---- dispatch and errors ------------------------------------------------------------------------------------------


def deliver(job_id: str, message_id: str = "m1") -> None:
    asyncio.run(dispatch.dispatch(job_id, message_id))


def test_a_dispatch_submits_and_records_the_job_queued(world: World) -> None:
    job_id = world.job(JobState.SUBMITTED)
    world.answers["simgate"] = said("4321\n")
    deliver(job_id)
    job = world.get(job_id)
    assert (job.status, job.scheduler_id, job.dispatch_message) == (JobState.QUEUED, "4321", "m1")
    assert job.token_hash is not None


def test_a_failing_submit_fails_the_job_for_good(world: World) -> None:
    job_id = world.job(JobState.SUBMITTED)
    world.answers["simgate"] = said(exit_status=1, stderr="sh: setsid: not found\n")
    deliver(job_id)  # not raised: a retry would fail alike
    job = world.get(job_id)
    assert job.status is JobState.FAILED
    assert job.reason == "dispatch: submitting with direct failed (exit 1): sh: setsid: not found"


def test_an_unreachable_target_is_noted_and_retried(world: World) -> None:
    job_id = world.job(JobState.SUBMITTED)
    world.answers["simgate"] = raising(Unavailable("cannot reach 127.0.0.1:22"))
    with pytest.raises(Unavailable):
        deliver(job_id)
    job = world.get(job_id)
    assert (job.status, job.dispatch_error) == (JobState.SUBMITTED, "cannot reach 127.0.0.1:22")
    dispatch.give_up(job_id)  # the host's last retry failed too
    assert world.get(job_id).reason == "dispatch: cannot reach 127.0.0.1:22 (gave up after retries)"


@pytest.mark.parametrize("bug", [ValueError(SECRET), KeyError(SECRET)])
def test_a_bug_is_logged_and_retried_and_the_user_reads_only_a_correlation_id(
    world: World, caplog: pytest.LogCaptureFixture, bug: Exception
) -> None:
    job_id = world.job(JobState.SUBMITTED)
    world.answers["simgate"] = raising(bug)
    with caplog.at_level(logging.ERROR), pytest.raises(type(bug)):
        deliver(job_id)
    noted = world.get(job_id).dispatch_error or ""
    match = re.fullmatch(r"internal error \(correlation id ([0-9a-f]+)\)", noted)
    assert match, noted
    correlation = match.group(1)
    [record] = [r for r in caplog.records if correlation in r.getMessage()]
    assert record.exc_info is not None
    assert record.exc_info[1] is bug  # the traceback is in the log, with the bug's own text
    assert world.get(job_id).status is JobState.SUBMITTED

    dispatch.give_up(job_id)
    job = world.get(job_id)
    assert job.status is JobState.FAILED
    assert "internal error" in (job.reason or "")
    assert correlation in (job.reason or "")
    assert "hunter2" not in (job.reason or "") + noted
    assert "hunter2" not in str(show_job(ALICE, job_id))


def test_a_job_whose_case_is_gone_fails_at_once(world: World) -> None:
    job_id = world.job(JobState.SUBMITTED, case_id=99)
    deliver(job_id)  # not raised: a retry would not find the case either
    job = world.get(job_id)
    assert job.status is JobState.FAILED
    assert job.reason == "dispatch: there is no case 99"
    assert world.asked == []


# ---- reconcile ----------------------------------------------------------------------------------------------------


def exit_code_of_each(code: int) -> Answer:
    """The EXIT_CODES program: every folder asked about, with `code` as the wrapper's exit code."""
    return lambda argv: CommandResult(0, "".join(f"{folder} {code}\n" for folder in argv[4:]), "")


def test_a_silent_job_its_scheduler_lost_fails_with_its_exit_code(world: World) -> None:
    job_id = world.job(JobState.RUNNING, minutes_ago=30, scheduler_id="4242", dispatch_message="m1")
    world.answers.update({"simgate-status": said(""), "simgate-exit-codes": exit_code_of_each(137)})
    sweep = asyncio.run(reconcile())
    job = world.get(job_id)
    assert sweep.failed == [job_id]
    assert (job.status, job.reason) == (JobState.FAILED, "lost by scheduler (exit code 137)")
    assert job.history[-1].by == "reconciler"


def test_a_silent_job_still_running_is_noted_as_checked(world: World) -> None:
    job_id = world.job(JobState.RUNNING, minutes_ago=30, scheduler_id="4242", dispatch_message="m1")
    before = world.get(job_id)
    world.answers["simgate-status"] = said("4242 S\n")
    sweep = asyncio.run(reconcile())
    job = world.get(job_id)
    assert sweep.alive == [job_id]
    assert job.checked_at is not None
    assert (job.status, job.updated_at) == (
        JobState.RUNNING,
        before.updated_at,
    )  # not a report: still silent


def test_a_recent_job_is_not_asked_about(world: World) -> None:
    job_id = world.job(JobState.RUNNING, minutes_ago=5, scheduler_id="4242", dispatch_message="m1")
    sweep = asyncio.run(reconcile())
    assert (sweep.alive, sweep.failed, world.asked) == ([], [], [])
    assert world.get(job_id).checked_at is None


def test_a_target_that_cannot_be_asked_is_skipped(world: World) -> None:
    job_id = world.job(JobState.RUNNING, minutes_ago=30, scheduler_id="4242", dispatch_message="m1")
    before = world.get(job_id)
    world.answers["simgate-status"] = raising(Unavailable("cannot reach 127.0.0.1:22"))
    sweep = asyncio.run(reconcile())
    assert sweep.skipped == [job_id]
    assert world.get(job_id) == before


# ---- outputs ------------------------------------------------------------------------------------------------------


def test_recorded_outputs_are_listed_and_downloaded_by_who_may_see_the_job(world: World) -> None:
    job_id = world.reporting(JobState.RUNNING)
    report(job_id, {"status": "FINALIZING"})
    world.outputs.upload(job_id, "mixing_index.csv", b"0,0\n")
    report(job_id, {"status": "COMPLETED", "outputs": claims(("mixing_index", "mixing_index.csv"))})
    [listed] = list_outputs(ALICE, job_id)
    assert (listed.output_id, listed.content_type) == ("mixing_index.csv", "text/csv")
    assert list_outputs(ADMIN, job_id) == [listed]
    grant = download(ALICE, job_id, "mixing_index.csv")
    assert "rsct=text/csv" in grant.token
    with pytest.raises(NotFound):
        download(ALICE, job_id, "concentration.csv")
    with pytest.raises(NotFound):
        list_outputs(BOB, job_id)
