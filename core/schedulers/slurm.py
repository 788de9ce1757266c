"""`slurm`: `sbatch` a script of `#SBATCH` directives, `squeue` many jobs at once, `scancel`.

Written against Slurm 22.05 (the one-node cluster of the integration tests) and checked there by hand: the directive
quoting, `--parsable`, and `squeue`'s answers for known, finished and forgotten ids.
"""

from __future__ import annotations

import re

from core.errors import InvalidSubmission
from core.schedulers.base import ArraySubmission, RemoteState, Submission
from core.schedulers.common import SIMPLE_VALUE, BatchScheduler, array_range, register

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

ARRAY_ID = re.compile(r"\d+")  # an array job's id, as `sbatch --parsable --array` prints it
# squeue's row of an array: one task (123_4), or the tasks still pending collapsed into one row: 123_[5-9%2],
# 123_[0,3,6,9] (a step of 3 printed as a list), 123_[0-99:2]; the %K is the running limit, not an index.
ARRAY_ROW = re.compile(r"(\d+)_(?:(\d+)|\[([0-9,:-]+)(?:%\d+)?\])")

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

    # --- arrays ---------------------------------------------------------------------------------------------

    NATIVE_ARRAYS = True
    ARRAY_INDEX = "SLURM_ARRAY_TASK_ID"

    def array_directives(self, array: ArraySubmission) -> list[str]:
        """As a job's, but the scheduler's logs are the array's, one pair per task (`%a`: the task index); the
        task's own output goes to its run's folder."""
        job = array.job
        lines = [d for d in _directives(job) if not d.startswith(("--output=", "--error="))]
        folder = _path(job.job_dir)[
            1:-1
        ]  # checked: nothing in it sbatch or slurmd would read as a pattern
        return [*lines, f'--output="{folder}/task-%a.out"', f'--error="{folder}/task-%a.err"']

    def array_submit_argv(self, script_path: str, array: ArraySubmission) -> list[str]:
        """`sbatch --parsable --array=0-{N-1}%K script`: prints the array job's id (and the cluster)."""
        return ["sbatch", "--parsable", f"--array={array_range(array)}", script_path]

    def task_ids(self, array_id: str, count: int) -> list[str]:
        """`123_0` ... `123_{count-1}`, as squeue and scancel name the tasks."""
        return [f"{_array_id(array_id)}_{i}" for i in range(count)]

    def array_status_argv(self, array_id: str, array_dir: str) -> list[str]:
        """The job status query for the array's id: squeue lists every task it still knows."""
        return self.status_argv([_array_id(array_id)])

    def parse_array_status(self, stdout: str, array_id: str, count: int) -> dict[str, RemoteState]:
        """Each task's state, from its own row or the collapsed row of pending tasks that holds its index;
        UNKNOWN for one squeue no longer lists (forgotten after MinJobAge, or cancelled before it started)."""
        states = {i: RemoteState.UNKNOWN for i in range(count)}
        for row_id, state in _rows(stdout):
            match = ARRAY_ROW.fullmatch(row_id)
            if match and match.group(1) == array_id:
                for index in _indices(match.group(2) or match.group(3), count):
                    states[index] = state
        return {f"{array_id}_{i}": state for i, state in states.items()}

    def array_cancel_argv(self, array_id: str, array_dir: str) -> list[str]:
        """`scancel 123`: every task of the array, running or pending, in one call."""
        return ["scancel", _array_id(array_id)]


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


def _array_id(text: str) -> str:
    if not ARRAY_ID.fullmatch(text):
        raise InvalidSubmission(f"{text!r} is not a Slurm array job id")
    return text


def _indices(spec: str, count: int) -> list[int]:
    """The task indices below `count` in `4`, `5-9`, `0,3,6,9` or `0-99:2` (none for a form this does not know)."""
    indices: list[int] = []
    for part in spec.split(","):
        bounds, _, step = part.partition(":")
        first, dash, last = bounds.partition("-")
        if not first.isdigit() or (dash and not last.isdigit()) or (step and not step.isdigit()):
            return []
        stop = min(
            int(last) if dash else int(first), count - 1
        )  # a junk row cannot make a huge range
        indices += range(int(first), stop + 1, int(step) if step and int(step) > 0 else 1)
    return indices


def _combined(states: list[RemoteState]) -> RemoteState:
    if not states:
        return RemoteState.UNKNOWN
    return min(states, key=PRECEDENCE.index)
