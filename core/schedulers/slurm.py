"""`slurm`: `sbatch` a script of `#SBATCH` directives, `squeue` many jobs at once, `scancel`.

Written against Slurm 22.05 (the one-node cluster of the integration tests) and checked there by hand: the directive
quoting, `--parsable`, and `squeue`'s answers for known, finished and forgotten ids.
"""

from __future__ import annotations

import re

from core.errors import InvalidSubmission
from core.schedulers.base import RemoteState, Submission
from core.schedulers.common import SIMPLE_VALUE, BatchScheduler, register

# sbatch reads `#SBATCH` lines with its own parser, not the shell's: whitespace splits arguments unless inside double
# quotes, "#" starts a comment even inside them, and slurmd later reads `--output`/`--error` as filename patterns
# ("%j", "\\"). So a path goes in double quotes and must hold none of `"`, `\`, `%`, `#` or control characters;
# anything else (spaces, `$(...)`, backquotes, `;`) is inert there: sbatch never runs a shell on it.
UNSAFE_IN_DIRECTIVE = re.compile(r'["\\%#\x00-\x1f\x7f]')
LIST = r"[A-Za-z0-9_.-]{1,64}(,[A-Za-z0-9_.-]{1,64})*"
OPTIONS = {
    "partition": re.compile(LIST),  # a comma list: the first that can start the job wins
    "account": SIMPLE_VALUE,
    "qos": SIMPLE_VALUE,
    "reservation": re.compile(LIST),
    "constraint": re.compile(
        r"[A-Za-z0-9_.,&|*()\[\]:!-]{1,256}"
    ),  # features: intel&ib, [rack1|rack2], gpu*2
}
SUBMITTED = re.compile(r"(\d+)(;[A-Za-z0-9_.-]+)?")  # --parsable: "id" or "id;cluster"
JOB_ID = re.compile(
    r"\d+([_+]\d+)?"
)  # a job, an array task (123_4) or a heterogeneous component (123+0)

# https://slurm.schedmd.com/squeue.html#SECTION_JOB-STATE-CODES (22.05 lists all of these)
STATES = {
    "PENDING": RemoteState.PENDING,
    "CONFIGURING": RemoteState.PENDING,  # resources allocated, nodes still booting: the script has not started
    "REQUEUED": RemoteState.PENDING,  # requeued jobs go back to waiting...
    "REQUEUE_HOLD": RemoteState.PENDING,
    "REQUEUE_FED": RemoteState.PENDING,
    "SPECIAL_EXIT": RemoteState.PENDING,  # ...and so do held ones: someone may release them
    "RESV_DEL_HOLD": RemoteState.PENDING,
    "RUNNING": RemoteState.RUNNING,
    # Started but paused, signalled or winding down: not ended, and the job must not move back to waiting.
    "SUSPENDED": RemoteState.RUNNING,
    "STOPPED": RemoteState.RUNNING,
    "SIGNALING": RemoteState.RUNNING,
    "RESIZING": RemoteState.RUNNING,
    "COMPLETING": RemoteState.RUNNING,  # some processes may still run; COMPLETED or FAILED is not decided yet
    "STAGE_OUT": RemoteState.RUNNING,
    "COMPLETED": RemoteState.DONE,
    "CANCELLED": RemoteState.CANCELLED,
    "FAILED": RemoteState.FAILED,  # non-zero exit or a launch failure (then there is no exit-code file at all)
    "TIMEOUT": RemoteState.FAILED,
    "NODE_FAIL": RemoteState.FAILED,
    "OUT_OF_MEMORY": RemoteState.FAILED,
    "BOOT_FAIL": RemoteState.FAILED,
    "DEADLINE": RemoteState.FAILED,
    "PREEMPTED": RemoteState.FAILED,  # ended by preemption; a requeued one shows REQUEUED/PENDING instead
    "REVOKED": RemoteState.UNKNOWN,  # federation: a sibling cluster runs it, this one no longer tracks it
}
# When one id stands for several rows (an array's tasks, a heterogeneous job's components), the job is as far along
# as its least finished part: still running if any part runs, failed if any part failed once all have ended.
PRECEDENCE = [
    RemoteState.RUNNING,
    RemoteState.PENDING,
    RemoteState.UNKNOWN,
    RemoteState.FAILED,
    RemoteState.CANCELLED,
    RemoteState.DONE,
]


@register
class SlurmScheduler(BatchScheduler):
    """Slurm through `sbatch`, `squeue` and `scancel`."""

    name = "slurm"
    OPTIONS = OPTIONS
    JOB_ID = JOB_ID
    ID_NAME = "Slurm job id"
    SUBMITTER = "sbatch"
    DIRECTIVE = "#SBATCH"

    def directives(self, job: Submission) -> list[str]:
        """Resources, time, the log files and the folder, then the job's options in `OPTIONS` order."""
        return _directives(job)

    def submit_argv(self, script_path: str, job: Submission) -> list[str]:
        """`sbatch --parsable script`: prints only the id (and the cluster, when not the local one)."""
        return ["sbatch", "--parsable", script_path]

    def submitted_id(self, line: str) -> str:
        """The job id from `id` or `id;cluster` (the cluster is dropped: squeue and scancel read the same
        SLURM_CLUSTERS/-M setting of the target as sbatch did)."""
        match = SUBMITTED.fullmatch(line)
        if not match:
            raise InvalidSubmission(f"{self.SUBMITTER} printed no {self.ID_NAME}: {line[:200]!r}")
        return match.group(1)

    def status_command(self, ids: list[str]) -> list[str]:
        """One `squeue` for all ids, every state, no header, `id|STATE` per row."""
        # squeue asks slurmctld for a lone id directly and exits 1 ("Invalid job id specified") once the job is
        # forgotten (MinJobAge); with two or more ids it lists and filters, exiting 0 with the known ones. Naming a
        # lone id twice keeps "forgotten" an answer (the id is absent) and a non-zero exit a real failure.
        if len(ids) == 1:
            ids = ids * 2
        return ["squeue", "--noheader", "--states=all", "--format=%i|%T", f"--jobs={','.join(ids)}"]

    def parse_status(self, stdout: str, ids: list[str]) -> dict[str, RemoteState]:
        """Each id's state; UNKNOWN when squeue no longer lists it (or lists a state this table does not know)."""
        rows = _rows(stdout)
        return {i: _combined([state for row_id, state in rows if _belongs(row_id, i)]) for i in ids}

    def cancel_command(self, scheduler_id: str) -> list[str]:
        """`scancel id` (exits 0 for a job that has already ended, too)."""
        return ["scancel", scheduler_id]


def _directives(job: Submission) -> list[str]:
    # One task per node with all the cpus: `--ntasks=1` with `--nodes=2` makes sbatch warn "can't run 1 processes on
    # 2 nodes, setting nnodes to 1" and drop the extra nodes.
    lines = [
        f"--job-name={job.name}",
        f"--nodes={job.nodes}",
        "--ntasks-per-node=1",
        f"--cpus-per-task={job.cpus}",
        f"--time={job.walltime}",
    ]
    if job.memory_mb is not None:
        lines.append(f"--mem={job.memory_mb}")  # per node, in MB (sbatch's default unit)
    lines += [
        f"--output={_path(job.job_dir, 'stdout.txt')}",
        f"--error={_path(job.job_dir, 'stderr.txt')}",
        f"--chdir={_path(job.job_dir)}",
    ]
    return lines + [f"--{key}={job.options[key]}" for key in OPTIONS if key in job.options]


def _path(job_dir: str, name: str | None = None) -> str:
    path = f"{job_dir.rstrip('/')}/{name}" if name else job_dir
    if UNSAFE_IN_DIRECTIVE.search(path):
        raise InvalidSubmission(
            f'job_dir {job_dir!r} cannot go in an #SBATCH line (no ", \\, %, # or control characters)'
        )
    return f'"{path}"'


def _rows(stdout: str) -> list[tuple[str, RemoteState]]:
    """(id, state) of each `id|STATE` line; anything else (a login banner, a warning) is skipped."""
    rows = []
    for line in stdout.splitlines():
        row_id, bar, state = line.strip().partition("|")
        words = state.split()
        if bar and row_id and words:
            rows.append((row_id, STATES.get(words[0], RemoteState.UNKNOWN)))
    return rows


def _belongs(row_id: str, asked: str) -> bool:
    """Whether a row is the asked job or one of its parts: 123_4, 123_[5-9%1] (pending tasks) and 123+0 are 123's."""
    return row_id == asked or re.split(r"[_+]", row_id, maxsplit=1)[0] == asked


def _combined(states: list[RemoteState]) -> RemoteState:
    if not states:
        return RemoteState.UNKNOWN
    return min(states, key=PRECEDENCE.index)
