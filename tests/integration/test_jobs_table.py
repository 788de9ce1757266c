"""The job repository against Azurite: point reads, conditional writes, partition pages with cursors."""

from __future__ import annotations

from dataclasses import replace

import pytest

from core.errors import ConcurrencyConflict, InvalidInput, NotFound
from core.ports import JobQuery
from core.records import Change, Job, new_job_id, now_iso
from core.services import get_settings, reset_services
from core.states import JobState
from core.storage.jobs_table import JobsTable, decode_cursor, encode_cursor, make_client
from tests.conftest import AzuriteFixture

pytestmark = pytest.mark.azurite


@pytest.fixture(scope="module")
def table(azurite: AzuriteFixture, monkeypatch_module: pytest.MonkeyPatch) -> JobsTable:
    for key, value in azurite.app_settings().items():
        monkeypatch_module.setenv(key, value)
    monkeypatch_module.setenv(
        "SIMGATE_JOBS_TABLE", "repo" + azurite.unique_name("").replace("-", "")
    )
    reset_services()
    try:
        return JobsTable(make_client(get_settings()))
    finally:
        reset_services()


@pytest.fixture(scope="module")
def monkeypatch_module() -> pytest.MonkeyPatch:
    with pytest.MonkeyPatch.context() as patch:
        yield patch  # type: ignore[misc]


def a_job(user: str = "ada", title: str = "t") -> Job:
    now = now_iso()
    return Job(
        job_id=new_job_id(user),
        owner=user,
        owner_name=user,
        case_id=2,
        title=title,
        description="",
        status=JobState.DRAFT,
        created_at=now,
        updated_at=now,
        values={"x": 1.5},
        history=(Change(JobState.DRAFT, now, user),),
    )


def test_a_job_round_trips(table: JobsTable) -> None:
    job = table.insert(a_job())
    got = table.get(job.job_id)
    assert replace(got, etag=None) == replace(job, etag=None)
    assert got.etag == job.etag


def test_a_stale_write_is_a_conflict_and_changes_nothing(table: JobsTable) -> None:
    job = table.insert(a_job())
    table.replace(replace(job, title="first"))
    with pytest.raises(ConcurrencyConflict):
        table.replace(replace(job, title="second"))  # still carries the old ETag
    with pytest.raises(ConcurrencyConflict):
        table.delete(job)
    assert table.get(job.job_id).title == "first"


def test_missing_jobs_are_not_found(table: JobsTable) -> None:
    with pytest.raises(NotFound):
        table.get(a_job().job_id)


def test_pages_walk_a_partition_newest_first(table: JobsTable) -> None:
    made = [table.insert(a_job("pager", f"j{i}")).job_id for i in range(5)]
    seen, cursor = [], None
    while True:
        jobs, cursor = table.page(JobQuery(owner="pager"), 2, cursor)
        seen += [j.job_id for j in jobs]
        if not cursor:
            break
    assert seen == made[::-1]


@pytest.mark.parametrize("cursor", ["", None])
def test_no_cursor_is_the_first_page(cursor: str | None) -> None:
    assert decode_cursor(cursor) is None


def test_cursors_round_trip_and_junk_is_refused() -> None:
    token = {"PartitionKey": "abc", "RowKey": "def"}
    assert decode_cursor(encode_cursor(token)) == token
    with pytest.raises(InvalidInput):  # not even shaped like a cursor
        decode_cursor("!!!")
    for junk in [
        "e30",
        encode_cursor({"Other": "x"}),
        encode_cursor({"RowKey": 5}),
        encode_cursor([1]),
    ]:
        with pytest.raises(NotFound):  # shaped like one, but no page of ours
            decode_cursor(junk)
