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
import shlex

from core.errors import InvalidSubmission
from core.schedulers.base import ArraySubmission, RemoteState, Submission
from core.schedulers.common import (
    BatchScheduler,
    array_body,
    check_array,
    check_submission,
    register,
)

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


# --- arrays -----------------------------------------------------------------------------------------------------
# No scheduler, so a supervisor: one detached session (its PID is the array's id) that runs K workers; worker w runs
# tasks w, w+K, w+2K ... one after the other, each in a session of its own as a single job is, so one task can be
# cancelled alone. At most K run at once; a long task holds back only its own worker's later tasks. The runs are
# not known by PID at submit (most have not started), so the submit prints the supervisor's PID, and each task
# records "index PID" in the array folder's STARTED file as it starts. Cancel leaves a marker first and reads the
# records second, and a task records itself first and checks the markers second, so no task escapes a cancel.
STARTED = "simgate-started.txt"
CANCEL_MARK = "simgate-cancel-"  # + "all" or a task index
ARRAY_INDEX = "SIMGATE_ARRAY_TASK_ID"
TASK_ID = re.compile(r"((?!1_)[1-9][0-9]{0,9})_(0|[1-9][0-9]{0,6})")  # supervisor PID _ task index

# "$1" the array's script, "$2" the array's folder, "$3" the number of tasks, "$4" at most that many at once,
# "$5" SUPERVISOR. Prints the supervisor's PID at once, as SUBMIT prints a job's.
SUBMIT_ARRAY = (
    'cd "$2" || exit 1; '
    'for tool in setsid nohup sed; do command -v "$tool" >/dev/null || '
    '{ echo "$0: $tool is missing on this host" >&2; exit 127; }; done; '
    '[ -f "$1" ] || { echo "$0: no batch script at $1" >&2; exit 1; }; '
    f": >{STARTED}; "
    'setsid nohup sh -c "$5" simgate-array "$1" "$3" "$4" </dev/null >stdout.txt 2>stderr.txt & echo "$!"'
)

# The supervisor, in the array's folder: "$1" the script, "$2" tasks, "$3" at most at once. A task's output before
# it reaches its run's folder goes to task-INDEX.out/.err here, as on Slurm.
SUPERVISOR = (
    'w=0; while [ "$w" -lt "$3" ] && [ "$w" -lt "$2" ]; do '
    '{ i=$w; while [ "$i" -lt "$2" ]; do '
    f"[ -e {CANCEL_MARK}all ] && exit 0; "
    f'if [ ! -e "{CANCEL_MARK}$i" ]; then '
    f'{ARRAY_INDEX}=$i setsid sh "$1" </dev/null >"task-$i.out" 2>"task-$i.err" & wait "$!"; fi; '
    "i=$((i + $3)); done; } & "
    "w=$((w + 1)); done; wait"
)

# Whether "$1" is a live, non-zombie session leader (as STATUS asks of a job's PID), for the array commands.
ALIVE = (
    'alive() { case $1 in ""|1|*[!0-9]*) return 1;; esac; '
    '{ read -r stat < "/proc/$1/stat"; } 2>/dev/null || return 1; '
    'set -- "$1" ${stat##*) }; [ "$5" = "$1" ] && [ "$2" != Z ] && [ "$2" != X ]; }; '
)

# "$1" the array's folder, "$2" the supervisor's PID. Prints "supervisor" while it runs, "cancelled INDEX|all" per
# marker and "running INDEX" or "ended INDEX" per task started. Exits 0 when it ran: absence is an answer.
STATUS_ARRAY = (
    'cd "$1" 2>/dev/null || exit 0; '
    f'for f in {CANCEL_MARK}*; do [ -e "$f" ] && echo "cancelled ${{f#{CANCEL_MARK}}}"; done; '
    f"set -f; {ALIVE}"
    'alive "$2" && echo supervisor; '
    'while read -r i pid; do if alive "$pid"; then echo "running $i"; else echo "ended $i"; fi; '
    f"done < {STARTED}; exit 0"
)

# "$1" the array's folder, "$2" the supervisor's PID: mark, stop the supervisor (no task starts after), stop every
# task that recorded itself.
CANCEL_ARRAY = (
    f'cd "$1" || exit 1; : >{CANCEL_MARK}all; set -f; {ALIVE}'
    'alive "$2" && kill -TERM -"$2"; '
    f'while read -r i pid; do alive "$pid" && kill -TERM -"$pid"; done < {STARTED}; exit 0'
)

# "$1" the array's folder, "$2" the task's index: mark (the supervisor skips it, or it stops itself as it starts),
# then stop it if it has started.
CANCEL_TASK = (
    f'cd "$1" || exit 1; : >"{CANCEL_MARK}$2"; set -f; {ALIVE}'
    'while read -r i pid; do [ "$i" = "$2" ] && alive "$pid" && kill -TERM -"$pid"; '
    f"done < {STARTED}; exit 0"
)


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

    # --- arrays: emulated by a supervisor (see SUPERVISOR) ------------------------------------------------------

    def array_lines(self, array: ArraySubmission) -> list[str]:
        """The common body; before the `cd`, the task records its PID and stops if it was cancelled meanwhile."""
        folder = array.job.job_dir.rstrip("/")
        started = shlex.quote(f"{folder}/{STARTED}")
        mark = shlex.quote(f"{folder}/{CANCEL_MARK}")
        prologue = (
            f'echo "$task $$" >>{started}',
            f'if [ -e {mark}all ] || [ -e {mark}"$task" ]; then exit 143; fi',
        )
        return array_body(array, ARRAY_INDEX, prologue)

    def array_submit_argv(self, script_path: str, array: ArraySubmission) -> list[str]:
        """Start the supervisor detached in the array's folder; it prints its PID, the array's id."""
        check_array(array)
        count, limit = str(len(array.run_ids)), str(array.max_running)
        job_dir = array.job.job_dir
        return [
            "sh",
            "-c",
            SUBMIT_ARRAY,
            "simgate-submit",
            script_path,
            job_dir,
            count,
            limit,
            SUPERVISOR,
        ]

    def task_ids(self, array_id: str, count: int) -> list[str]:
        """`PID_0` ... : the supervisor's PID and the task's index."""
        return [f"{self.job_id(array_id)}_{i}" for i in range(count)]

    def array_status_argv(self, array_id: str, array_dir: str) -> list[str]:
        """One `sh` that reads the array folder's records and looks up the supervisor and each task in /proc."""
        return [
            "sh",
            "-c",
            STATUS_ARRAY,
            "simgate-status",
            _folder(array_dir),
            self.job_id(array_id),
        ]

    def parse_array_status(self, stdout: str, array_id: str, count: int) -> dict[str, RemoteState]:
        """RUNNING while a task's session lives; when it has ended, CANCELLED if it was cancelled and DONE
        otherwise; not started, CANCELLED if cancelled, PENDING while the supervisor lives and UNKNOWN after
        (it was stopped or lost before starting the task, which will never run)."""
        seen: dict[str, set[str]] = {}
        supervisor = False
        for line in stdout.splitlines():
            word, _, arg = line.strip().partition(" ")
            if word == "supervisor":
                supervisor = True
            elif word in ("cancelled", "running", "ended"):
                seen.setdefault(arg, set()).add(word)
        every = seen.get("all", set())
        return {
            f"{array_id}_{i}": _task_state(seen.get(str(i), set()) | every, supervisor)
            for i in range(count)
        }

    def array_cancel_argv(self, array_id: str, array_dir: str) -> list[str]:
        """One `sh`: mark the array cancelled, stop the supervisor and every task that has started."""
        return [
            "sh",
            "-c",
            CANCEL_ARRAY,
            "simgate-cancel",
            _folder(array_dir),
            self.job_id(array_id),
        ]

    def task_cancel_argv(self, task_id: str, array_dir: str) -> list[str]:
        """One `sh`: mark the task cancelled (it will not start) and stop it if it has."""
        match = TASK_ID.fullmatch(task_id)
        if not match:
            raise InvalidSubmission(f"{task_id!r} is not a direct array task id (PID_INDEX)")
        return ["sh", "-c", CANCEL_TASK, "simgate-cancel", _folder(array_dir), match.group(2)]


def _folder(path: str) -> str:
    if not path.startswith("/") or "\x00" in path:
        raise InvalidSubmission(f"array folder {path!r} must be an absolute path")
    return path


def _task_state(words: set[str], supervisor: bool) -> RemoteState:
    if "running" in words:
        return RemoteState.RUNNING
    if "cancelled" in words:
        return RemoteState.CANCELLED
    if "ended" in words:
        return RemoteState.DONE
    return RemoteState.PENDING if supervisor else RemoteState.UNKNOWN
