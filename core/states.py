"""Job states, their order, and the rule that a late or repeated report changes nothing.

    DRAFT → SUBMITTED → QUEUED → RUNNING → FINALIZING → COMPLETED
    any active state → FAILED;  any active state → CANCELLING → CANCELLED

COMPLETED, FAILED and CANCELLED are terminal. States are ordered along the happy path, so a report that would move
a job backwards (RUNNING after FINALIZING, the dispatcher's QUEUED after the job said RUNNING) is a no-op.
"""

from __future__ import annotations

from enum import StrEnum


class JobState(StrEnum):
    """Where a job is in its life."""

    DRAFT = "DRAFT"
    SUBMITTED = "SUBMITTED"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    FINALIZING = "FINALIZING"
    COMPLETED = "COMPLETED"
    CANCELLING = "CANCELLING"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"

    @property
    def terminal(self) -> bool:
        """Whether the job has ended (nothing moves it again)."""
        return self in TERMINAL

    @property
    def active(self) -> bool:
        """Whether the job is submitted and not yet ended."""
        return self is not JobState.DRAFT and not self.terminal

    @property
    def reportable(self) -> bool:
        """Whether a simulator may report this state (the ones before it are the gateway's own)."""
        return self in REPORTABLE


TERMINAL = frozenset({JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED})
REPORTABLE = frozenset({JobState.RUNNING, JobState.FINALIZING, JobState.COMPLETED, JobState.FAILED,
                        JobState.CANCELLED})
_ORDER = {state: rank for rank, state in enumerate(JobState)}
# The seed's words for states, accepted case-insensitively from simulators.
ALIASES = {"clean up": JobState.FINALIZING, "cleanup": JobState.FINALIZING, "done": JobState.COMPLETED}


def parse_state(text: str) -> JobState:
    """The state named by `text` (case-insensitive, seed aliases allowed); `ValueError` if none."""
    key = text.strip().lower()
    if key in ALIASES:
        return ALIASES[key]
    return JobState(key.upper())


def advances(current: JobState, incoming: JobState) -> bool:
    """Whether moving from `current` to `incoming` is progress (False for repeats and late reports)."""
    if current.terminal or incoming is current:
        return False
    if incoming in (JobState.FAILED, JobState.CANCELLED):
        return current is not JobState.DRAFT
    if current is JobState.CANCELLING:
        return False
    return _ORDER[incoming] > _ORDER[current]
