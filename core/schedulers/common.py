"""What the adapters share: checks on a Submission, the body of every batch script, reading a submit command's answer,
the `BatchScheduler` base class that puts them together, and the registry of adapters.

Pure functions, no I/O. Every check raises `InvalidSubmission` naming the field, so a bad target or case fails at
dispatch with a reason instead of producing a script that does something else.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping
from typing import ClassVar, Self, TypeVar

from core.errors import InvalidSubmission
from core.schedulers.base import RemoteState, Scheduler, Submission

NAME = re.compile(r"[A-Za-z0-9_.-]{1,128}")
WALLTIME = re.compile(
    r"\d{1,4}:[0-5]\d:[0-5]\d"
)  # HH:MM:SS; hours may pass 24 (Slurm and PBS both accept 48:00:00)
SIMPLE_VALUE = re.compile(
    r"[A-Za-z0-9_.-]{1,64}"
)  # queue, account, qos and the like: no spaces, quotes or `=`

# name → the adapter's factory, which takes the target's options. Filled by `@register` as each adapter module is
# imported (`core/schedulers/__init__.py` imports every module of the package), read by `get_scheduler` and by the
# validation of `Target.scheduler`.
SCHEDULERS: dict[str, Callable[[Mapping[str, str]], Scheduler]] = {}


def check_submission(job: Submission) -> None:
    """Refuse a Submission whose fields could not go into a script as they are."""
    if not NAME.fullmatch(job.name):
        raise InvalidSubmission(f"job name {job.name!r} must match {NAME.pattern}")
    if not job.job_dir.startswith("/") or "\x00" in job.job_dir:
        raise InvalidSubmission(f"job_dir {job.job_dir!r} must be an absolute path")
    if not WALLTIME.fullmatch(job.walltime):
        raise InvalidSubmission(f"walltime {job.walltime!r} must be HH:MM:SS")
    for field, value in (("nodes", job.nodes), ("cpus", job.cpus), ("memory_mb", job.memory_mb)):
        if field == "memory_mb" and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidSubmission(f"{field} must be a positive whole number, not {value!r}")


def check_options(
    options: Mapping[str, str], patterns: Mapping[str, re.Pattern[str]], scheduler: str
) -> None:
    """Refuse an option this scheduler does not know, or a value that does not match its pattern."""
    for key, value in options.items():
        pattern = patterns.get(key)
        if pattern is None:
            known = ", ".join(sorted(patterns)) or "none"
            raise InvalidSubmission(
                f"{scheduler} does not know the option {key!r} (known: {known})"
            )
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise InvalidSubmission(
                f"{scheduler} option {key}={value!r} must match {pattern.pattern}"
            )


def script_body(job: Submission) -> list[str]:
    """The lines after the directives: stop at the first error, go to the job folder, set up, hand over.

    `exec` makes the command the batch script's own process, so its exit status is the job's and a signal to the
    job (cancel, time limit) reaches it directly. The set-up lines are the operator's shell, run as written.
    """
    return ["set -eu", f"cd {shlex.quote(job.job_dir)}", *job.setup, f"exec {job.command}"]


def last_line(stdout: str, what: str) -> str:
    """The last non-blank line of a command's output; `InvalidSubmission` when there is none.

    The last, because a login script on the target may print before the command does; a job id must then be all
    that line holds, which the caller checks.
    """
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    if not lines:
        raise InvalidSubmission(f"{what} printed nothing")
    return lines[-1]


class BatchScheduler:
    """The scaffolding every adapter repeats, so that one is its data and a few hooks (as dask-jobqueue's `moab.py`
    is three class attributes on `PBSJob`).

    The base class checks the Submission and its options, writes the batch script (`#!/bin/sh`, the directives, the
    common body), refuses an empty or malformed id list before any argv is built, and reads the submit command's last
    line. A subclass gives `name`, `OPTIONS`, `JOB_ID`, `ID_NAME`, `SUBMITTER`, `DIRECTIVE` with `directives(job)`,
    and its commands: `submit_argv`, `status_command`, `cancel_command`, `parse_status` (and `submitted_id` when the
    submit command prints more than the id). It is then registered with `@register`.
    """

    name: str  # the target's `scheduler`; a plain attribute, as the `Scheduler` protocol has it
    OPTIONS: ClassVar[
        Mapping[str, re.Pattern[str]]
    ] = {}  # the target options a job may set: name → allowed values
    JOB_ID: ClassVar[
        re.Pattern[str]
    ]  # what a scheduler id looks like: every id is checked before it reaches an argv
    ID_NAME: ClassVar[str]  # what an id is called in errors ("Slurm job id")
    SUBMITTER: ClassVar[str]  # the submit command, as errors name it ("sbatch")
    DIRECTIVE: ClassVar[str] = (
        ""  # the prefix of the directive lines ("#SBATCH"); none when there are no directives
    )

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> Self:
        """The adapter for a target with these options (most adapters read none of them here)."""
        return cls()

    def batch_script(self, job: Submission) -> str:
        """The directives from the Submission and its options, then the common body."""
        check_submission(job)
        check_options(job.options, self.OPTIONS, self.name)
        directives = [f"{self.DIRECTIVE} {d}" for d in self.directives(job)]
        return "\n".join(["#!/bin/sh", *directives, *script_body(job)]) + "\n"

    def directives(self, job: Submission) -> list[str]:
        """The arguments of the directive lines, each written after `DIRECTIVE`; none by default."""
        return []

    def submit_argv(self, script_path: str, job: Submission) -> list[str]:
        """The argv that submits the batch script at `script_path` and prints the scheduler's job id."""
        raise NotImplementedError

    def parse_submit(self, stdout: str) -> str:
        """The scheduler's job id from the last line the submit command printed; `InvalidSubmission` when there is
        none."""
        return self.submitted_id(last_line(stdout, self.SUBMITTER))

    def submitted_id(self, line: str) -> str:
        """The job id in the submit command's last line, which must be the id and nothing else."""
        if not self.JOB_ID.fullmatch(line):
            raise InvalidSubmission(f"{self.SUBMITTER} printed no {self.ID_NAME}: {line[:200]!r}")
        return line

    def status_argv(self, ids: list[str]) -> list[str]:
        """One argv that asks about all of `ids` at once (each checked against `JOB_ID`)."""
        if not ids:
            raise InvalidSubmission(f"no {self.name} job ids to ask about")
        return self.status_command([self.job_id(i) for i in ids])

    def status_command(self, ids: list[str]) -> list[str]:
        """The status argv for `ids`, already checked and never empty."""
        raise NotImplementedError

    def parse_status(self, stdout: str, ids: list[str]) -> dict[str, RemoteState]:
        """The state of each of `ids` (UNKNOWN for one the output does not mention)."""
        raise NotImplementedError

    def cancel_argv(self, scheduler_id: str) -> list[str]:
        """The argv that stops a job (its id checked against `JOB_ID`)."""
        return self.cancel_command(self.job_id(scheduler_id))

    def cancel_command(self, scheduler_id: str) -> list[str]:
        """The cancel argv for an id already checked."""
        raise NotImplementedError

    def job_id(self, text: str) -> str:
        """`text`, when it is one of this scheduler's job ids; `InvalidSubmission` otherwise."""
        if not self.JOB_ID.fullmatch(text):
            raise InvalidSubmission(f"{text!r} is not a {self.ID_NAME}")
        return text


B = TypeVar("B", bound=type[BatchScheduler])


def register(adapter: B) -> B:
    """Class decorator: make `adapter` the scheduler called `adapter.name` (a target's `scheduler`); a name taken
    already is refused, so two modules cannot silently replace each other."""
    if adapter.name in SCHEDULERS:
        raise ValueError(f"a scheduler called {adapter.name!r} is registered already")
    SCHEDULERS[adapter.name] = adapter.from_options
    return adapter
