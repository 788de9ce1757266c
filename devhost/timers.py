"""Timer triggers: NCRONTAB and TimeSpan schedules, and the thread that fires them.

Schedules read as the host reads them (`TimerSchedule.Create`): first as a six-field NCRONTAB expression
`{second} {minute} {hour} {day} {month} {day-of-week}`, else as a TimeSpan ("hh:mm:ss", fire every interval).
Fields take `*`, `n`, `a-b`, `*/n`, `a-b/n`, `a/n` and comma lists; months and weekdays also take English names
(`Jan`, `Monday`). As in NCrontab, a restricted day-of-month AND a restricted day-of-week must both match (classic
cron ORs them). Times are local, as the host's are without `WEBSITE_TIME_ZONE`.

Firing: `runOnStartup` fires once at start; then each occurrence after the previous invocation finished, so
invocations never overlap and missed ones are skipped. `past_due` is always False: the host sets it only from its
schedule monitor's persisted status, which devhost does not keep.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from azure.functions.timer import TimerRequest

from devhost.invoke import Invoker
from devhost.routing import IndexedFunction
from devhost.settings import SettingsError, parse_timespan, resolve_setting_expression

log = logging.getLogger(__name__)

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_FULL_DAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
_FULL_MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
SEARCH_YEARS = 5  # NCrontab, too, gives up on a schedule that matches no date


class ScheduleError(ValueError):
    """A schedule the host would refuse."""


class Schedule(Protocol):
    """Anything that can say when it fires next."""

    def next_after(self, moment: dt.datetime) -> dt.datetime:
        """The first occurrence strictly after `moment`."""
        ...


@dataclass(frozen=True)
class FieldSpec:
    """One NCRONTAB field's range and optional names (index 0 maps to `first`)."""

    name: str
    low: int
    high: int
    names: Sequence[Sequence[str]] = ()


SECOND = FieldSpec("second", 0, 59)
MINUTE = FieldSpec("minute", 0, 59)
HOUR = FieldSpec("hour", 0, 23)
DAY = FieldSpec("day", 1, 31)
MONTH = FieldSpec("month", 1, 12, (_MONTHS, _FULL_MONTHS))
WEEKDAY = FieldSpec("day-of-week", 0, 6, (_DAYS, _FULL_DAYS))
_FIELDS = (SECOND, MINUTE, HOUR, DAY, MONTH, WEEKDAY)


def parse_field(text: str, spec: FieldSpec) -> frozenset[int]:
    """The set of values one field allows, e.g. "*/15" in the minute field -> {0, 15, 30, 45}."""
    values: set[int] = set()
    for item in text.split(","):
        values.update(_parse_item(item, spec))
    return frozenset(values)


def _parse_item(item: str, spec: FieldSpec) -> range:
    m = re.fullmatch(r"(\*|[\w]+)(?:-([\w]+))?(?:/(\d+))?", item.strip())
    if m is None:
        raise ScheduleError(f"bad {spec.name} field item {item!r}")
    start_text, end_text, step_text = m.groups()
    step = int(step_text) if step_text else 1
    if step < 1:
        raise ScheduleError(f"bad step in {item!r}")
    if start_text == "*":
        if end_text:
            raise ScheduleError(f"bad {spec.name} field item {item!r}")
        return range(spec.low, spec.high + 1, step)
    start = _value(start_text, spec)
    # "a/n" runs from a to the field's end, as in NCrontab.
    end = _value(end_text, spec) if end_text else (spec.high if step_text else start)
    if end < start:
        raise ScheduleError(f"{spec.name} range {item!r} runs backwards")
    return range(start, end + 1, step)


def _value(text: str, spec: FieldSpec) -> int:
    number = int(text) if text.isdigit() else _name_value(text.lower(), spec)
    if not spec.low <= number <= spec.high:
        raise ScheduleError(f"{spec.name} value {text!r} is outside {spec.low}-{spec.high}")
    return number


def _name_value(text: str, spec: FieldSpec) -> int:
    for names in spec.names:
        if text in names:
            return names.index(text) + spec.low
    raise ScheduleError(f"unknown {spec.name} name {text!r}")


@dataclass(frozen=True)
class CronSchedule:
    """A six-field NCRONTAB schedule."""

    expression: str
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]

    @classmethod
    def parse(cls, expression: str) -> CronSchedule:
        """Parse "{second} {minute} {hour} {day} {month} {day-of-week}"."""
        fields = expression.split()
        if len(fields) != 6:
            raise ScheduleError(
                f"NCRONTAB needs six fields (with seconds), got {len(fields)}: {expression!r}"
            )
        return cls(
            expression, *(parse_field(f, spec) for f, spec in zip(fields, _FIELDS, strict=True))
        )

    def next_after(self, moment: dt.datetime) -> dt.datetime:
        """The first matching second strictly after `moment`."""
        start = moment.replace(microsecond=0) + dt.timedelta(seconds=1)
        day = start.date()
        for _ in range(366 * SEARCH_YEARS):
            if self._day_matches(day):
                earliest = start.time() if day == start.date() else dt.time.min
                found = self._first_time_from(earliest)
                if found is not None:
                    return dt.datetime.combine(day, found, tzinfo=moment.tzinfo)
            day += dt.timedelta(days=1)
        raise ScheduleError(f"{self.expression!r} matches no date in {SEARCH_YEARS} years")

    def _day_matches(self, day: dt.date) -> bool:
        weekday = day.isoweekday() % 7  # NCRONTAB counts Sunday as 0
        return day.month in self.months and day.day in self.days and weekday in self.weekdays

    def _first_time_from(self, earliest: dt.time) -> dt.time | None:
        for hour in sorted(h for h in self.hours if h >= earliest.hour):
            same_hour = hour == earliest.hour
            for minute in sorted(m for m in self.minutes if not same_hour or m >= earliest.minute):
                floor = earliest.second if same_hour and minute == earliest.minute else 0
                second = min((s for s in self.seconds if s >= floor), default=None)
                if second is not None:
                    return dt.time(hour, minute, second)
        return None


@dataclass(frozen=True)
class IntervalSchedule:
    """A TimeSpan schedule: every `interval`, counted from start-up."""

    interval: dt.timedelta

    def next_after(self, moment: dt.datetime) -> dt.datetime:
        """`moment` plus the interval, as the host's ConstantSchedule does."""
        return moment + self.interval


def parse_schedule(text: str) -> CronSchedule | IntervalSchedule:
    """Read a schedule as the host does: NCRONTAB first, then TimeSpan."""
    try:
        return CronSchedule.parse(text)
    except ScheduleError as cron_error:
        try:
            interval = parse_timespan(text)
        except SettingsError:
            raise cron_error from None
    if interval <= dt.timedelta(0):
        raise ScheduleError(f"a TimeSpan schedule must be positive: {text!r}")
    return IntervalSchedule(interval)


def resolve_schedule(
    function: IndexedFunction, env: Mapping[str, str]
) -> CronSchedule | IntervalSchedule:
    """The function's schedule, `%SETTING%` expressions resolved from the app settings."""
    try:
        return parse_schedule(resolve_setting_expression(str(function.trigger["schedule"]), env))
    except (SettingsError, ScheduleError) as exc:
        raise ScheduleError(f"{function.name}: {exc}") from exc


class TimerPump:
    """Fires one timer-triggered function on its schedule until stopped."""

    def __init__(self, function: IndexedFunction, schedule: Schedule, invoker: Invoker) -> None:
        self.function = function
        self.schedule = schedule
        self._invoker = invoker
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"devhost-timer-{function.name}", daemon=True
        )

    def start(self) -> None:
        """Start the timer thread."""
        self._thread.start()

    def signal_stop(self) -> None:
        """Ask the timer to stop, without waiting."""
        self._stop.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop firing; waits for a running invocation up to `timeout` seconds."""
        self.signal_stop()
        self._thread.join(timeout)

    def _run(self) -> None:
        if self.function.trigger.get("runOnStartup"):
            self._fire(dt.datetime.now())
        while not self._stop.is_set():
            due = self.schedule.next_after(dt.datetime.now())
            if self._sleep_until(due):
                self._fire(due)

    def _sleep_until(self, due: dt.datetime) -> bool:
        # Short waits re-read the wall clock, so a clock change or suspend does not push the fire time away.
        while not self._stop.is_set():
            remaining = (due - dt.datetime.now()).total_seconds()
            if remaining <= 0:
                return True
            self._stop.wait(min(remaining, 5.0))
        return False

    def _fire(self, due: dt.datetime) -> None:
        request = TimerRequest(past_due=False, schedule={"AdjustForDST": True})
        try:
            self._invoker.call(
                self.function.user_function, {str(self.function.trigger["name"]): request}
            )
        except Exception:
            log.exception(
                "%s: timer invocation (due %s) failed", self.function.name, due.isoformat()
            )
            return
        log.info("%s: timer invocation (due %s) succeeded", self.function.name, due.isoformat())
