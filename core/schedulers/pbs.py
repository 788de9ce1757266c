"""`pbs`: PBS Professional / OpenPBS (flavour `pro`, the default) or Torque (`torque`), set by the target's option
`flavour`. `qsub` a script of `#PBS` directives, `qstat` many jobs at once, `qdel`.

The flavours differ in how resources are asked for (`select=` chunks or `nodes=:ppn=`) and in `qstat`: PBS Pro
answers in JSON and keeps finished jobs (`-x`, state F) while its history lasts; Torque only has text and keeps
finished jobs (state C) for `keep_completed` seconds. `parse_status` reads either form, whatever the flavour.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Self

from core.errors import InvalidSubmission, Unavailable
from core.schedulers.base import ArraySubmission, RemoteState, Submission
from core.schedulers.common import (
    SIMPLE_VALUE,
    BatchScheduler,
    array_body,
    array_range,
    last_line,
    register,
)

FLAVOURS = ("pro", "torque")
OPTIONS = {
    "queue": SIMPLE_VALUE,
    "account": SIMPLE_VALUE,
    "flavour": re.compile("|".join(FLAVOURS)),
}
# qsub reads `#PBS` lines itself and takes "host:path" for -o/-e; no manual here promises how it treats spaces or
# quotes, so a path in a directive is kept to characters that need neither.
SAFE_PATH = re.compile(r"/[A-Za-z0-9_./+-]*")
NAME_LIMIT = 15  # Torque and older PBS Pro refuse longer job names; both want a letter first
JOB_ID = re.compile(
    r"\d+(\[\d*\])?(\.[A-Za-z0-9_.-]+)?"
)  # 123, 123.server.domain, 123[].server (an array)

# PBS Professional Reference Guide, "Job States" (https://help.altair.com/2022.1.0/PBS%20Professional/
# PBSReferenceGuide2022.1.pdf, §8.1), plus Torque's C (https://docs.adaptivecomputing.com/torque/6-1-2/adminGuide/
# torque.htm#topics/torque/commands/qstat.htm).
STATES = {
    "Q": RemoteState.PENDING,  # queued
    "H": RemoteState.PENDING,  # held
    "W": RemoteState.PENDING,  # waiting for its start time or stage-in
    "T": RemoteState.PENDING,  # in transit to another queue or server
    "M": RemoteState.PENDING,  # moved to another server: alive there, and its own reports still arrive
    "R": RemoteState.RUNNING,
    "B": RemoteState.RUNNING,  # an array that has begun (some subjob ran)
    "E": RemoteState.RUNNING,  # exiting after having run: its end is not settled yet
    "S": RemoteState.RUNNING,  # suspended: started, so never back to waiting
    "U": RemoteState.RUNNING,  # suspended while the workstation is busy
    # Finished, expired (an array's subjob), completed (Torque): DONE even with a non-zero Exit_status; the job's
    # own report or exit-code file says how it ended, as for the other schedulers.
    "F": RemoteState.DONE,
    "X": RemoteState.DONE,
    "C": RemoteState.DONE,
}

# One `qstat` for all ids ("$@"), stdout untouched. qstat exits non-zero when any id is unknown (purged from history:
# "Unknown Job Id", 153), yet prints the others. That is an answer (the id is absent), so it exits 0 when every
# complaint is of that kind, and with qstat's own status otherwise (server down, bad option). stderr is passed on.
STATUS = (
    '{ err=$(qstat {args} "$@" 2>&1 >&3 3>&-); rc=$?; } 3>&1; '
    '[ -n "$err" ] && printf "%s\\n" "$err" >&2; '
    '[ "$rc" -eq 0 ] && exit 0; '
    'case "$err" in *"Unknown Job Id"*) '
    'printf "%s\\n" "$err" | grep -q -v -e "Unknown Job Id" -e "^\\$" || exit 0;; esac; '
    'exit "$rc"'
)
QSTAT_ARGS = {"pro": "-x -f -F json", "torque": "-f"}

# Arrays. PBS Pro/OpenPBS: `qsub -J 0-{N-1}%K`, the index in PBS_ARRAY_INDEX. The `%K` limit (it sets the array's
# `max_run_subjobs` attribute) came with OpenPBS 2020.1 / PBS Pro 2020 ("Limit on maximum number of subjobs that can
# run at a time", OpenPBS design document): an older qsub refuses the `%`, so the submission fails with qsub's error
# rather than running more than K. It is left out when K >= N, so small studies submit anywhere. Torque: `qsub -t
# 0-{N-1}%K` (its slot limit has been there since 2.x), the index in PBS_ARRAYID.
ARRAY_FLAG = {"pro": "-J", "torque": "-t"}
ARRAY_INDEX = {"pro": "PBS_ARRAY_INDEX", "torque": "PBS_ARRAYID"}
ARRAY_ID = re.compile(
    r"(\d+)\[\](\.[A-Za-z0-9_.-]+)?"
)  # what qsub prints for an array: 123[].server


@register
class PbsScheduler(BatchScheduler):
    """PBS Pro, OpenPBS or Torque through `qsub`, `qstat` and `qdel`."""

    name = "pbs"
    OPTIONS = OPTIONS
    JOB_ID = JOB_ID
    ID_NAME = "PBS job id"
    SUBMITTER = "qsub"
    DIRECTIVE = "#PBS"

    def __init__(self, flavour: str = "pro") -> None:
        """`flavour` picks the `qstat` form for status; scripts follow each job's own `flavour` option."""
        if flavour not in FLAVOURS:
            raise InvalidSubmission(f"PBS flavour {flavour!r} must be one of {', '.join(FLAVOURS)}")
        self.flavour = flavour

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> Self:
        """The adapter for the target's `flavour` (`pro` when it sets none): status commands differ between them."""
        return cls(options.get("flavour", "pro"))

    def directives(self, job: Submission) -> list[str]:
        """Shell, name, resources in the job's flavour, time, the log files, queue and account."""
        return _directives(job, job.options.get("flavour", self.flavour))

    def submit_argv(self, script_path: str, job: Submission) -> list[str]:
        """`qsub script`: prints the job id, `123.server`, or `123[].server` for an array."""
        return ["qsub", script_path]

    def status_command(self, ids: list[str]) -> list[str]:
        """One `qstat` (full, JSON with history for PBS Pro; full text for Torque) for all ids."""
        script = STATUS.replace("{args}", QSTAT_ARGS[self.flavour])
        return ["sh", "-c", script, "simgate-status", *ids]

    def parse_status(self, stdout: str, ids: list[str]) -> dict[str, RemoteState]:
        """Each id's state from `qstat -f` output, JSON or text; UNKNOWN when it is not listed.

        `Unavailable` when the output claims to be JSON and is not: a cut-off answer must not read as "all gone",
        and asking again may get a whole one.
        """
        states = _json_states(stdout) if stdout.lstrip().startswith("{") else _text_states(stdout)
        return {i: states.get(_sequence(i), RemoteState.UNKNOWN) for i in ids}

    def cancel_command(self, scheduler_id: str) -> list[str]:
        """`qdel id` (exits non-zero for a job that has already ended)."""
        return ["qdel", scheduler_id]

    # --- arrays ---------------------------------------------------------------------------------------------

    NATIVE_ARRAYS = True

    def array_directives(self, array: ArraySubmission) -> list[str]:
        """As a job's, with the scheduler's logs in the array's folder. They hold only what a task printed before
        it reached its run's folder, and all tasks name the same two files (the last one copied back stays): a
        per-task pattern differs between PBS Pro (`^array_index^`) and Torque (a `-index` suffix)."""
        return _directives(array.job, self._flavour(array.job), logs="task")

    def array_lines(self, array: ArraySubmission) -> list[str]:
        """The common array body, reading the index variable of the job's flavour."""
        return array_body(array, ARRAY_INDEX[self._flavour(array.job)])

    def array_submit_argv(self, script_path: str, array: ArraySubmission) -> list[str]:
        """`qsub -J 0-{N-1}%K script` (Torque: `-t`): prints the array's id, `123[].server`."""
        return ["qsub", ARRAY_FLAG[self._flavour(array.job)], array_range(array), script_path]

    def parse_array_submit(self, stdout: str) -> str:
        """The array's id, `123[]` or `123[].server`, from qsub's last line."""
        line = last_line(stdout, self.SUBMITTER)
        if not ARRAY_ID.fullmatch(line):
            raise InvalidSubmission(f"qsub printed no PBS array id: {line[:200]!r}")
        return line

    def task_ids(self, array_id: str, count: int) -> list[str]:
        """`123[0].server` ... : the subjobs, as qstat -t and qdel name them."""
        match = _array_match(array_id)
        server = match.group(2) or ""
        return [f"{match.group(1)}[{i}]{server}" for i in range(count)]

    def array_status_argv(self, array_id: str, array_dir: str) -> list[str]:
        """One `qstat -t` for the array: the array and each of its subjobs (PBS Pro: with history, in JSON)."""
        _array_match(array_id)
        script = STATUS.replace("{args}", f"{QSTAT_ARGS[self.flavour]} -t")
        return ["sh", "-c", script, "simgate-status", array_id]

    def parse_array_status(self, stdout: str, array_id: str, count: int) -> dict[str, RemoteState]:
        """Each subjob's state from `qstat -f -t`, JSON or text; UNKNOWN for one it does not list (the array's
        own row, state B, says nothing of any one subjob)."""
        states = _json_states(stdout) if stdout.lstrip().startswith("{") else _text_states(stdout)
        tasks = self.task_ids(array_id, count)
        return {t: states.get(_sequence(t), RemoteState.UNKNOWN) for t in tasks}

    def array_cancel_argv(self, array_id: str, array_dir: str) -> list[str]:
        """`qdel 123[].server`: the whole array, queued and running subjobs, in one call."""
        return ["qdel", _array_match(array_id).group(0)]

    def _flavour(self, job: Submission) -> str:
        return job.options.get("flavour", self.flavour)


def _array_match(array_id: str) -> re.Match[str]:
    match = ARRAY_ID.fullmatch(array_id)
    if not match:
        raise InvalidSubmission(f"{array_id!r} is not a PBS array id (123[] or 123[].server)")
    return match


def _directives(job: Submission, flavour: str, logs: str = "") -> list[str]:
    # -S: PBS runs the script with the user's login shell unless told otherwise, and a csh login shell would
    # misread this POSIX sh script whatever its #! line says.
    lines = [
        "-S /bin/sh",
        f"-N {_name(job.name)}",
        *_resources(job, flavour),
        f"-l walltime={job.walltime}",
        f"-o {_path(job.job_dir, f'{logs}.out' if logs else 'stdout.txt')}",
        f"-e {_path(job.job_dir, f'{logs}.err' if logs else 'stderr.txt')}",
    ]
    if "queue" in job.options:
        lines.append(f"-q {job.options['queue']}")
    if "account" in job.options:
        lines.append(f"-A {job.options['account']}")
    return lines


def _resources(job: Submission, flavour: str) -> list[str]:
    if flavour == "torque":
        # Torque's mem is for the whole job (its nodes spec takes no memory), so it is the per-node amount times nodes.
        memory = [] if job.memory_mb is None else [f"-l mem={job.memory_mb * job.nodes}mb"]
        return [f"-l nodes={job.nodes}:ppn={job.cpus}", *memory]
    chunk = f"select={job.nodes}:ncpus={job.cpus}"
    if job.memory_mb is not None:
        chunk += f":mem={job.memory_mb}mb"  # per chunk, so per node; PBS sizes are written in lower case (mb, gb)
    # One chunk per host, as Slurm's --nodes means; PBS would otherwise pack chunks onto one host if they fit.
    return [f"-l {chunk}", *(["-l place=scatter"] if job.nodes > 1 else [])]


def _name(name: str) -> str:
    """A job name PBS accepts everywhere: at most 15 characters, a letter first. The gateway's ids begin with the
    owner's key, shared by all of a user's jobs, so a long one keeps its tail (time and random part) instead."""
    if len(name) <= NAME_LIMIT and name[0].isalpha():
        return name
    return "s" + name[-(NAME_LIMIT - 1) :]


def _path(job_dir: str, name: str) -> str:
    path = f"{job_dir.rstrip('/')}/{name}"
    if not SAFE_PATH.fullmatch(path):
        raise InvalidSubmission(
            f"job_dir {job_dir!r} cannot go in a #PBS line (only letters, digits and _ . / + -)"
        )
    return path


def _sequence(job_id: str) -> str:
    """The part before the server name: qsub may print `123.pbs01` while qstat says `123.pbs01.example.org`."""
    return job_id.split(".", 1)[0]


def _json_states(stdout: str) -> dict[str, RemoteState]:
    try:
        report = json.loads(stdout)
    except ValueError as exc:
        raise Unavailable(f"qstat's JSON does not parse: {exc}") from exc
    jobs = (
        report.get("Jobs", {}) if isinstance(report, dict) else None
    )  # no "Jobs" at all when none is listed
    if not isinstance(jobs, Mapping):
        raise Unavailable("qstat's JSON has no object of jobs")
    return {
        _sequence(key): _state(job.get("job_state"))
        for key, job in jobs.items()
        if isinstance(job, Mapping)
    }


def _text_states(stdout: str) -> dict[str, RemoteState]:
    """`qstat -f` text: a `Job Id: 123.server` line, then indented `name = value` lines (long values wrap onto
    tab-indented lines, which hold no `job_state`)."""
    states: dict[str, RemoteState] = {}
    current = None
    for line in stdout.splitlines():
        if line.startswith("Job Id:"):
            current = _sequence(line.partition(":")[2].strip())
            states[current] = RemoteState.UNKNOWN
        elif current and line.strip().startswith("job_state ="):
            states[current] = _state(line.partition("=")[2].strip())
    return states


def _state(code: object) -> RemoteState:
    return STATES.get(code, RemoteState.UNKNOWN) if isinstance(code, str) else RemoteState.UNKNOWN
