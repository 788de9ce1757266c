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
_ORDER = {state: rank for rank, state in enumerate(JobState)}
# The seed's words for states, accepted case-insensitively from simulators.
ALIASES = {
    "clean up": JobState.FINALIZING,
    "cleanup": JobState.FINALIZING,
    "done": JobState.COMPLETED,
}
_BLANKS = " \t\r\n"
# The active states the reconciler asks a scheduler about once the job has been silent for a while.
SWEPT = (JobState.QUEUED, JobState.RUNNING, JobState.FINALIZING, JobState.CANCELLING)
# The states a queue message goes with (dispatch, cancel): a lost one is sent again.
WAITING = (JobState.SUBMITTED, JobState.CANCELLING)
# The states a simulator reports, in order; the others are the gateway's own moves.
REPORTABLE = (
    JobState.RUNNING,
    JobState.FINALIZING,
    JobState.COMPLETED,
    JobState.FAILED,
    JobState.CANCELLED,
)


def parse_state(text: str) -> JobState:
    """The state named by `text`: a state's name or a seed alias, in any ASCII case, perhaps between blanks (a
    shell's trailing newline); `ValueError` if none.

    Nothing else folds into a name: no other white space, and no non-ASCII letter that upper-cases to an ASCII one
    (as "ı" and "ﬁ" do), so that `REPORTED_PATTERN` declares exactly what is taken.
    """
    if not text.isascii():
        raise ValueError(f"{text!r} names no state")
    key = text.strip(_BLANKS).lower()
    if key in ALIASES:
        return ALIASES[key]
    return JobState(key.upper())


def _any_case(word: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in word)


# What a status report's `status` may be, as a JSON Schema (ECMA-262) pattern: the reportable states and the
# aliases, in any ASCII case, between blanks.
_BLANK = "[ \\t\\r\\n]*"
REPORTED_PATTERN = (
    f"^{_BLANK}(?:" + "|".join(_any_case(w) for w in (*REPORTABLE, *ALIASES)) + f"){_BLANK}$"
)


def advances(current: JobState, incoming: JobState) -> bool:
    """Whether moving from `current` to `incoming` is progress (False for repeats and late reports)."""
    if current.terminal or incoming is current:
        return False
    if incoming in (JobState.FAILED, JobState.CANCELLED):
        return current is not JobState.DRAFT
    if current is JobState.CANCELLING:
        return False
    return _ORDER[incoming] > _ORDER[current]
