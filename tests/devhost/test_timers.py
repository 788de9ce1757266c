"""NCRONTAB and TimeSpan schedules (pure), and one real timer firing."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest

from devhost.host import DevHost
from devhost.timers import (
    DAY,
    MINUTE,
    MONTH,
    WEEKDAY,
    CronSchedule,
    FieldSpec,
    IntervalSchedule,
    ScheduleError,
    parse_field,
    parse_schedule,
)
from tests.devhost import sample_app

FRIDAY_EVENING = dt.datetime(2025, 11, 28, 17, 58, 3)  # a Friday


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


@pytest.mark.parametrize(
    ("text", "spec", "values"),
    [
        ("*", WEEKDAY, set(range(7))),
        ("*/15", MINUTE, {0, 15, 30, 45}),
        ("5", MINUTE, {5}),
        ("10-12", MINUTE, {10, 11, 12}),
        ("0-30/10", MINUTE, {0, 10, 20, 30}),
        ("50/5", MINUTE, {50, 55}),
        ("1,15,31", DAY, {1, 15, 31}),
        ("Jan,mar,DECEMBER", MONTH, {1, 3, 12}),
        ("Mon-Fri", WEEKDAY, {1, 2, 3, 4, 5}),
        ("sunday,sat", WEEKDAY, {0, 6}),
    ],
)
def test_parse_field(text: str, spec: FieldSpec, values: set[int]) -> None:
    assert parse_field(text, spec) == values


@pytest.mark.parametrize(
    "expression",
    [
        "0 */5 * * *",  # five fields: the host wants seconds
        "60 * * * * *",
        "* * 24 * * *",
        "* * * 0 * *",
        "* * * * 13 *",
        "* * * * * 7",
        "* * * * * Funday",
        "5-1 * * * * *",
        "*/0 * * * * *",
        "a b c d e f",
    ],
)
def test_bad_schedules_are_refused(expression: str) -> None:
    with pytest.raises(ScheduleError):
        parse_schedule(expression)


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("*/1 * * * * *", "2025-11-28T17:58:03", "2025-11-28T17:58:04"),
        ("*/1 * * * * *", "2025-11-28T17:58:03.900", "2025-11-28T17:58:04"),
        ("0 */5 * * * *", "2025-11-28T17:58:03", "2025-11-28T18:00:00"),
        ("30 0 9 * * *", "2025-11-28T09:00:30", "2025-11-29T09:00:30"),  # strictly after
        (
            "0 0 9-17 * * Mon-Fri",
            FRIDAY_EVENING.isoformat(),
            "2025-12-01T09:00:00",
        ),  # over the weekend
        ("0 0 0 1 1 *", "2025-11-28T00:00:00", "2026-01-01T00:00:00"),  # over the year end
        ("0 0 0 29 Feb *", "2025-03-01T00:00:00", "2028-02-29T00:00:00"),  # the next leap day
        ("0 0 12 31 * *", "2025-11-28T00:00:00", "2025-12-31T12:00:00"),  # skips 30-day months
        # NCrontab ANDs day-of-month with day-of-week: the next Friday the 13th.
        ("0 0 0 13 * Fri", "2025-11-28T00:00:00", "2026-02-13T00:00:00"),
    ],
)
def test_next_fire(expression: str, after: str, expected: str) -> None:
    assert parse_schedule(expression).next_after(at(after)) == at(expected)


def test_timespan_schedule() -> None:
    schedule = parse_schedule("00:05:00")
    assert schedule == IntervalSchedule(dt.timedelta(minutes=5))
    assert schedule.next_after(FRIDAY_EVENING) == FRIDAY_EVENING + dt.timedelta(minutes=5)
    assert parse_schedule("1.00:00:00") == IntervalSchedule(dt.timedelta(days=1))
    with pytest.raises(ScheduleError):
        parse_schedule("00:00:00")


def test_a_schedule_that_never_matches_is_an_error() -> None:
    with pytest.raises(ScheduleError, match="matches no date"):
        CronSchedule.parse("0 0 0 30 Feb *").next_after(FRIDAY_EVENING)


def test_timer_fires_for_real(tmp_path: Path) -> None:
    before = len(sample_app.calls["tick"])
    with DevHost(sample_app.app, root=tmp_path, port=0, queues=False) as host:
        assert "tick" not in host.function_errors
        deadline = time.monotonic() + 5
        while len(sample_app.calls["tick"]) == before and time.monotonic() < deadline:
            time.sleep(0.05)
    assert len(sample_app.calls["tick"]) > before, "the every-second timer did not fire within 5 s"
    assert sample_app.calls["tick"][before] is False  # past_due
