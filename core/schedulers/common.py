"""What the adapters share: checks on a Submission, the body of every batch script, reading a submit command's answer.

Pure functions, no I/O. Every check raises `ValueError` naming the field, so a bad target or case fails at dispatch
with a reason instead of producing a script that does something else.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping

from core.schedulers.base import Submission

NAME = re.compile(r"[A-Za-z0-9_.-]{1,128}")
WALLTIME = re.compile(r"\d{1,4}:[0-5]\d:[0-5]\d")  # HH:MM:SS; hours may pass 24 (Slurm and PBS both accept 48:00:00)
SIMPLE_VALUE = re.compile(r"[A-Za-z0-9_.-]{1,64}")  # queue, account, qos and the like: no spaces, quotes or `=`


def check_submission(job: Submission) -> None:
    """Refuse a Submission whose fields could not go into a script as they are."""
    if not NAME.fullmatch(job.name):
        raise ValueError(f"job name {job.name!r} must match {NAME.pattern}")
    if not job.job_dir.startswith("/") or "\x00" in job.job_dir:
        raise ValueError(f"job_dir {job.job_dir!r} must be an absolute path")
    if not WALLTIME.fullmatch(job.walltime):
        raise ValueError(f"walltime {job.walltime!r} must be HH:MM:SS")
    for field, value in (("nodes", job.nodes), ("cpus", job.cpus), ("memory_mb", job.memory_mb)):
        if field == "memory_mb" and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{field} must be a positive whole number, not {value!r}")


def check_options(options: Mapping[str, str], patterns: Mapping[str, re.Pattern[str]], scheduler: str) -> None:
    """Refuse an option this scheduler does not know, or a value that does not match its pattern."""
    for key, value in options.items():
        pattern = patterns.get(key)
        if pattern is None:
            known = ", ".join(sorted(patterns)) or "none"
            raise ValueError(f"{scheduler} does not know the option {key!r} (known: {known})")
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise ValueError(f"{scheduler} option {key}={value!r} must match {pattern.pattern}")


def script_body(job: Submission) -> list[str]:
    """The lines after the directives: stop at the first error, go to the job folder, set up, hand over.

    `exec` makes the command the batch script's own process, so its exit status is the job's and a signal to the
    job (cancel, time limit) reaches it directly. The set-up lines are the operator's shell, run as written.
    """
    return ["set -eu", f"cd {shlex.quote(job.job_dir)}", *job.setup, f"exec {job.command}"]


def last_line(stdout: str, what: str) -> str:
    """The last non-blank line of a command's output; `ValueError` when there is none.

    The last, because a login script on the target may print before the command does; a job id must then be all
    that line holds, which the caller checks.
    """
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    if not lines:
        raise ValueError(f"{what} printed nothing")
    return lines[-1]
