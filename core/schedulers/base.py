"""What every scheduler adapter provides: pure argv builders and text parsers, no I/O.

The dispatcher (the only caller of SSH) asks an adapter for the batch script of a job, the argv that submits it,
and how to read the scheduler's answer; later, the argv that asks about many jobs at once and the one that cancels.
Adapters are tested on captured scheduler output, as strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class RemoteState(StrEnum):
    """What a scheduler says of a job, mapped onto the few states the gateway acts on."""

    PENDING = "PENDING"  # accepted, waiting for resources
    RUNNING = "RUNNING"
    DONE = "DONE"  # ended; the job's own report (or its exit-code file) says how
    CANCELLED = "CANCELLED"
    FAILED = (
        "FAILED"  # ended badly by the scheduler's account (node failure, out of memory, timeout)
    )
    UNKNOWN = "UNKNOWN"  # the scheduler no longer knows the id

    @property
    def alive(self) -> bool:
        """Whether the scheduler still has the job (waiting or running): it has not ended."""
        return self in (RemoteState.PENDING, RemoteState.RUNNING)


@dataclass(frozen=True)
class Submission:
    """One job to submit: where it lives on the target, what it runs, and what it asks for."""

    name: str  # the gateway's job id (safe: [0-9a-f-])
    job_dir: str  # absolute path of the job's folder on the target
    command: str  # what the batch script runs, already shell-safe (the job wrapper)
    nodes: int = 1
    cpus: int = 1
    walltime: str = "00:30:00"  # HH:MM:SS
    memory_mb: int | None = None
    options: dict[str, str] = field(
        default_factory=dict
    )  # target settings: partition, account, qos, queue
    setup: tuple[str, ...] = ()  # the target's environment set-up lines, run before the command


@dataclass(frozen=True)
class ArraySubmission:
    """Many runs of one kind submitted at once: task i runs in `folder_of(base_dir, run_ids[i])`.

    `job` says what every task asks for and runs; its `name` names the array and its `job_dir` is the array's own
    folder, which holds the array's batch script, the runs file (`array_runs`) and the scheduler's logs of a task
    that failed before reaching its run's folder. At most `max_running` tasks run at the same time.
    """

    job: Submission
    base_dir: str  # the target's base folder: the runs' folders are below it, named by their ids
    run_ids: tuple[str, ...]  # the gateway's job ids, in task-index order
    max_running: int


class Scheduler(Protocol):
    """A scheduler adapter (`direct`, `slurm`, `pbs`, ...); `common.BatchScheduler` implements the shared part."""

    name: str

    def batch_script(self, job: Submission) -> str:
        """The job's batch script: directives, `cd` to the job folder, the set-up lines, the command."""
        ...

    def submit_argv(self, script_path: str, job: Submission) -> list[str]:
        """The argv that submits the batch script at `script_path` and prints the scheduler's job id."""
        ...

    def parse_submit(self, stdout: str) -> str:
        """The scheduler's job id in the submit command's output; `InvalidSubmission` when there is none."""
        ...

    def status_argv(self, ids: list[str]) -> list[str]:
        """One argv that asks about all of `ids` at once."""
        ...

    def parse_status(self, stdout: str, ids: list[str]) -> dict[str, RemoteState]:
        """The state of each of `ids` (UNKNOWN for one the output does not mention)."""
        ...

    def cancel_argv(self, scheduler_id: str) -> list[str]:
        """The argv that stops a job."""
        ...
