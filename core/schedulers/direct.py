"""`direct`: a plain workstation with no batch system. The job is a detached process; its id is the process id.

The submit command starts the batch script in a new session (`setsid`), so the script's PID is also its process group
and session id: cancel signals the whole group, and status counts a PID as the job only while it still leads its own
session, which a recycled PID almost never does. The job's exit status is not kept by anyone but the job wrapper
(`.simgate-exit-code`), so status only says present (RUNNING) or gone (DONE).

Every shell text here is fixed; values reach it as positional parameters ("$1"...), never pasted in. Each is one line,
so a remote login shell of the csh family (which refuses newlines inside quotes) passes it to `sh` intact.
"""

from __future__ import annotations

import re

from core.schedulers.base import RemoteState, Submission
from core.schedulers.common import BatchScheduler, check_submission, register

# Never 1: PID 1 is init, and "kill -TERM -1" would signal every process of the user.
PID = re.compile(r"(?!1\Z)[1-9][0-9]{0,9}")

# "$1" the batch script, "$2" the job folder. Prints the PID at once; the job keeps nothing of this shell's
# stdin/stdout/stderr (an SSH channel would otherwise stay open until the job ends).
# No job control in `sh -c`, so the background child is not a process-group leader and setsid(1) calls setsid()
# in place instead of forking: "$!" is the job's PID, its process group and its session.
SUBMIT = (
    'cd "$2" || exit 1; '
    'for tool in setsid nohup; do command -v "$tool" >/dev/null || '
    '{ echo "$0: $tool is missing on this host" >&2; exit 127; }; done; '
    '[ -f "$1" ] || { echo "$0: no batch script at $1" >&2; exit 1; }; '
    'setsid nohup sh "$1" </dev/null >stdout.txt 2>stderr.txt & echo "$!"'
)

# "$@" the PIDs. Reads /proc/PID/stat (fields after the command name: state ppid pgrp session ...) and prints
# "PID STATE" for each PID that is alive, not a zombie (an unreaped job has ended: PID 1 in a container may never
# reap it) and still leads its own session (else the PID was recycled). Always exits 0 when it ran: absence is an
# answer. `ps -p` would exit 1 when none is left, indistinguishable from a failure.
STATUS = (
    'set -f; for pid do [ "$pid" = "$$" ] && continue; '
    '{ read -r stat < "/proc/$pid/stat"; } 2>/dev/null || continue; '
    "set -- ${stat##*) }; "
    '[ "$4" = "$pid" ] && [ "$1" != Z ] && [ "$1" != X ] && echo "$pid $1"; done; exit 0'
)

# "$1" the PID, which setsid made the process group id: the negative number signals the whole group (the wrapper and
# everything the case's script started). Not `kill -TERM -- -PID`: dash's built-in kill refuses "--", and procps'
# /usr/bin/kill reads "-PID" without "--" as a signal name and exits 0 having done nothing; inside `sh -c` the shell's
# built-in is always the one used.
CANCEL = 'kill -TERM -"$1"'


@register
class DirectScheduler(BatchScheduler):
    """Runs the job as a detached process on the target itself. No options: resources are not enforced here, there
    is nothing to set, so the script has no directives."""

    name = "direct"
    JOB_ID = PID
    ID_NAME = "job's process id"
    SUBMITTER = "the submit command"

    def submit_argv(self, script_path: str, job: Submission) -> list[str]:
        """Start the script detached, in its own session, output to `stdout.txt`/`stderr.txt`; print its PID."""
        check_submission(job)
        return ["sh", "-c", SUBMIT, "simgate-submit", script_path, job.job_dir]

    def status_command(self, ids: list[str]) -> list[str]:
        """One `sh` that looks up every PID in /proc."""
        return ["sh", "-c", STATUS, "simgate-status", *ids]

    def parse_status(self, stdout: str, ids: list[str]) -> dict[str, RemoteState]:
        """RUNNING for a PID listed, DONE for one not (the job's report or exit-code file tells how it ended)."""
        present = {line.split()[0] for line in stdout.splitlines() if line.strip()}
        return {i: RemoteState.RUNNING if i in present else RemoteState.DONE for i in ids}

    def cancel_command(self, scheduler_id: str) -> list[str]:
        """SIGTERM to the job's whole process group."""
        return ["sh", "-c", CANCEL, "simgate-cancel", scheduler_id]
