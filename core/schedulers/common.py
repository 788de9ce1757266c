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
from core.schedulers.base import ArraySubmission, RemoteState, Scheduler, Submission

NAME = re.compile(r"[A-Za-z0-9_.-]{1,128}")
WALLTIME = re.compile(
    r"\d{1,4}:[0-5]\d:[0-5]\d"
)  # HH:MM:SS; hours may pass 24 (Slurm and PBS both accept 48:00:00)
SIMPLE_VALUE = re.compile(
    r"[A-Za-z0-9_.-]{1,64}"
)  # queue, account, qos and the like: no spaces, quotes or `=`

# The array's runs file, in the array's folder: task i's run id on line i + 1. Run ids, not paths, so a line can hold
# nothing a shell or a directive would act on, and the batch script builds the folder as `folder_of` does.
# (A job folder name: the lead may move it to core/jobfolder.py with the others.)
RUNS_FILE = "simgate_runs.txt"
RUN_ID = re.compile(
    r"[0-9a-f]{16}-[0-9]{13}-[0-9a-f]{6}"
)  # core.records.JOB_ID, the gateway's job ids

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


def check_array(array: ArraySubmission) -> None:
    """Refuse an ArraySubmission whose runs or limit could not go into an array as they are."""
    check_submission(array.job)
    if not array.base_dir.startswith("/") or "\x00" in array.base_dir:
        raise InvalidSubmission(f"base_dir {array.base_dir!r} must be an absolute path")
    if not array.run_ids:
        raise InvalidSubmission("an array needs at least one run")
    for run_id in array.run_ids:
        if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id):
            raise InvalidSubmission(f"run id {run_id!r} must match {RUN_ID.pattern}")
    if len(set(array.run_ids)) != len(array.run_ids):
        raise InvalidSubmission("an array's run ids must differ: two tasks would share one folder")
    k = array.max_running
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InvalidSubmission(f"max_running must be a positive whole number, not {k!r}")


def array_runs(array: ArraySubmission) -> str:
    """The text of the array's runs file (`RUNS_FILE`): one run id a line, task 0 first."""
    check_array(array)
    return "".join(f"{run_id}\n" for run_id in array.run_ids)


def array_range(array: ArraySubmission) -> str:
    """`0-{N-1}`, with `%K` when at most K of the N tasks may run at once and K < N (Slurm's and PBS's syntax)."""
    count = len(array.run_ids)
    limit = f"%{array.max_running}" if array.max_running < count else ""
    return f"0-{count - 1}{limit}"


def array_body(array: ArraySubmission, index: str, prologue: tuple[str, ...] = ()) -> list[str]:
    """The lines after the directives of an array's script: read the task's index from the variable `index`, find
    its run on that line of the runs file, go to the run's folder, send output there, set up, hand over.

    The index and the line are checked before use: the variable is the scheduler's and the file the gateway's, but
    a cut-off file or a stray environment must stop the task, never send it into another folder. `prologue` runs
    after the checks and before the `cd` (`direct` records the task there). The task's output goes to its run's
    `stdout.txt`/`stderr.txt`, as a single job's does; the scheduler's own log of the task only holds what failed
    before this line.
    """
    base = shlex.quote(array.base_dir.rstrip("/") or "/")
    runs = shlex.quote(f"{array.job.job_dir.rstrip('/')}/{RUNS_FILE}")
    return [
        "set -eu",
        f"task=${{{index}:-}}",
        'case $task in ""|*[!0-9]*) echo "simgate: not an array task: index=$task" >&2; exit 2;; esac',
        f'run=$(sed -n "$((task + 1))p" {runs})',
        'case $run in ""|*[!0-9a-f-]*) echo "simgate: no run for task $task" >&2; exit 2;; esac',
        *prologue,
        f'cd {base}/"$run"',
        "exec >stdout.txt 2>stderr.txt",
        *array.job.setup,
        f"exec {array.job.command}",
    ]


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

    # --- arrays: many runs in one submission ------------------------------------------------------------------
    # An adapter with arrays sets `NATIVE_ARRAYS` (the scheduler has them itself) or emulates them (`direct`), and
    # gives `ARRAY_INDEX` and the array commands. The array's folder is passed to every array command: the native
    # schedulers ignore it, `direct` keeps its records there.

    NATIVE_ARRAYS: ClassVar[bool] = False  # whether the scheduler itself runs arrays (Slurm, PBS)
    ARRAY_INDEX: ClassVar[str] = ""  # the variable that holds a task's index in its batch script

    @property
    def native_arrays(self) -> bool:
        """Whether this scheduler runs arrays itself (`direct` starts the tasks with a supervisor of its own)."""
        return self.NATIVE_ARRAYS

    def array_script(self, array: ArraySubmission) -> str:
        """The batch script every task of the array runs: its directives, then `array_body`."""
        check_array(array)
        check_options(array.job.options, self.OPTIONS, self.name)
        directives = [f"{self.DIRECTIVE} {d}" for d in self.array_directives(array)]
        return "\n".join(["#!/bin/sh", *directives, *self.array_lines(array)]) + "\n"

    def array_directives(self, array: ArraySubmission) -> list[str]:
        """The arguments of the array script's directive lines; none by default."""
        return []

    def array_lines(self, array: ArraySubmission) -> list[str]:
        """The array script's lines after the directives."""
        return array_body(array, self.ARRAY_INDEX)

    def array_runs(self, array: ArraySubmission) -> str:
        """The runs file to write at `RUNS_FILE` in the array's folder before submitting."""
        return array_runs(array)

    def array_submit_argv(self, script_path: str, array: ArraySubmission) -> list[str]:
        """The argv that submits the array's script at `script_path` once and prints the array's id."""
        raise NotImplementedError(f"{self.name} has no arrays")

    def parse_array_submit(self, stdout: str) -> str:
        """The array's id in the submit command's output; `InvalidSubmission` when there is none."""
        return self.parse_submit(stdout)

    def task_ids(self, array_id: str, count: int) -> list[str]:
        """The id of each of the array's `count` tasks, task 0 first: what status and cancel name a run by."""
        raise NotImplementedError(f"{self.name} has no arrays")

    def array_status_argv(self, array_id: str, array_dir: str) -> list[str]:
        """One argv that asks about every task of the array."""
        raise NotImplementedError(f"{self.name} has no arrays")

    def parse_array_status(self, stdout: str, array_id: str, count: int) -> dict[str, RemoteState]:
        """The state of each of the array's tasks, by task id (UNKNOWN for one the output does not mention)."""
        raise NotImplementedError(f"{self.name} has no arrays")

    def array_cancel_argv(self, array_id: str, array_dir: str) -> list[str]:
        """The argv that stops every task of the array, in one call."""
        raise NotImplementedError(f"{self.name} has no arrays")

    def task_cancel_argv(self, task_id: str, array_dir: str) -> list[str]:
        """The argv that stops one task of an array (by default as a job: the native ids name one task)."""
        return self.cancel_argv(task_id)

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
