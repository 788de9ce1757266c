"""Scheduler adapters: directives and argv for given resources, parsers on captured output (tests/data/schedulers,
README there says where each file came from), hostile values refused or inert. Only `direct` is run for real, here;
Slurm and PBS are read as strings (the real Slurm runs in tests/integration)."""

from __future__ import annotations

import json
import os
import pkgutil
import re
import shlex
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import pytest

import core.schedulers
from core.errors import CatalogError, DispatchRefused, InvalidSubmission, Unavailable
from core.schedulers import SCHEDULERS, get_scheduler
from core.schedulers import direct as direct_module
from core.schedulers import pbs as pbs_module
from core.schedulers.base import ArraySubmission, RemoteState, Scheduler, Submission
from core.schedulers.common import BatchScheduler, register
from core.schedulers.direct import DirectScheduler
from core.schedulers.pbs import PbsScheduler
from core.schedulers.slurm import STATES as SLURM_STATES
from core.schedulers.slurm import SlurmScheduler
from core.targets import parse_targets

DATA = Path(__file__).resolve().parent.parent / "data" / "schedulers"
JOB_ID = "0f1e2d3c4b5a6978-8234567890123-a1b2c3"
JOB_DIR = f"/home/alice/simgate-jobs/{JOB_ID}"
SAMPLE = Submission(
    name=JOB_ID,
    job_dir=JOB_DIR,
    command="python3 simgate_wrapper.py",
    nodes=2,
    cpus=4,
    walltime="01:30:00",
    memory_mb=4000,
    setup=("module load openfoam/11",),
)
# A folder name a shell would act on in every way it can: none of it may run.
HOSTILE = "job dir $(touch PWNED1) `touch PWNED2`; touch PWNED3 & 'q' \"dq\" | > x\ntouch PWNED4"
PENDING, RUNNING, DONE = RemoteState.PENDING, RemoteState.RUNNING, RemoteState.DONE
CANCELLED, FAILED, UNKNOWN = RemoteState.CANCELLED, RemoteState.FAILED, RemoteState.UNKNOWN
REGISTERED = tuple(SCHEDULERS)  # as the package registered them, before any test adds one


def sample(**changes: Any) -> Submission:
    return replace(SAMPLE, **changes)


def data(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


def lines_after_directives(script: str) -> list[str]:
    return [line for line in script.splitlines() if not line.startswith("#")]


# --- all adapters ----------------------------------------------------------------------------------------------


def test_get_scheduler_knows_three_names() -> None:
    assert isinstance(get_scheduler("direct"), DirectScheduler)
    assert isinstance(get_scheduler("slurm"), SlurmScheduler)
    assert isinstance(get_scheduler("pbs"), PbsScheduler)
    with pytest.raises(InvalidSubmission, match="direct, pbs, slurm"):
        get_scheduler("sge")


# --- the registry: a new scheduler is one module ----------------------------------------------------------------


@pytest.fixture
def registry() -> Iterator[None]:
    """The registry, restored after the test: a scheduler a test registers does not outlive it."""
    saved = dict(SCHEDULERS)
    yield
    SCHEDULERS.clear()
    SCHEDULERS.update(saved)


def moab() -> type[BatchScheduler]:
    """A whole adapter in a few lines, as dask-jobqueue's moab.py is: its data, its directives, its commands."""

    @register
    class MoabScheduler(BatchScheduler):
        name = "moab"
        OPTIONS: ClassVar[Mapping[str, re.Pattern[str]]] = {"queue": re.compile(r"[a-z]+")}
        JOB_ID = re.compile(r"\d+")
        ID_NAME = "Moab job id"
        SUBMITTER = "msub"
        DIRECTIVE = "#MSUB"

        def directives(self, job: Submission) -> list[str]:
            return [
                f"-N {job.name}",
                f"-l nodes={job.nodes}:ppn={job.cpus}",
                f"-l walltime={job.walltime}",
            ]

        def submit_argv(self, script_path: str, job: Submission) -> list[str]:
            return ["msub", script_path]

        def status_command(self, ids: list[str]) -> list[str]:
            return ["checkjob", "--format=json", *ids]

        def parse_status(self, stdout: str, ids: list[str]) -> dict[str, RemoteState]:
            states = json.loads(stdout)
            return {i: RemoteState(states[i]) if i in states else UNKNOWN for i in ids}

        def cancel_command(self, scheduler_id: str) -> list[str]:
            return ["canceljob", scheduler_id]

    return MoabScheduler


def target_spec(scheduler: str) -> str:
    return json.dumps(
        {
            "hpc": {
                "host": "hpc.example.org",
                "user": "sim",
                "key_file": "k",
                "known_hosts": "h k",
                "base_dir": "/home/sim/jobs",
                "scheduler": scheduler,
            }
        }
    )


def test_a_new_scheduler_is_one_registered_class(registry: None) -> None:
    adapter = moab()
    assert isinstance(get_scheduler("moab", {}), adapter)
    assert parse_targets(target_spec("moab"))["hpc"].scheduler == "moab"
    moab_scheduler = get_scheduler("moab")
    # The base class wrote the script around its directives and checked the job and its options...
    assert moab_scheduler.batch_script(sample(options={"queue": "batch"})).splitlines()[:5] == [
        "#!/bin/sh",
        f"#MSUB -N {JOB_ID}",
        "#MSUB -l nodes=2:ppn=4",
        "#MSUB -l walltime=01:30:00",
        "set -eu",
    ]
    with pytest.raises(InvalidSubmission, match="moab does not know the option 'partition'"):
        moab_scheduler.batch_script(sample(options={"partition": "debug"}))
    with pytest.raises(InvalidSubmission, match="walltime"):
        moab_scheduler.batch_script(sample(walltime="1h"))
    # ...and checks every id, reads the submit command's last line and refuses an empty status call.
    assert moab_scheduler.parse_submit("Welcome\n4242\n") == "4242"
    with pytest.raises(InvalidSubmission, match="msub printed no Moab job id"):
        moab_scheduler.parse_submit("msub: rejected\n")
    assert moab_scheduler.status_argv(["1", "2"]) == ["checkjob", "--format=json", "1", "2"]
    assert moab_scheduler.parse_status('{"1": "RUNNING"}', ["1", "2"]) == {
        "1": RUNNING,
        "2": UNKNOWN,
    }
    with pytest.raises(InvalidSubmission, match="no moab job ids"):
        moab_scheduler.status_argv([])
    with pytest.raises(InvalidSubmission, match="'1; id' is not a Moab job id"):
        moab_scheduler.cancel_argv("1; id")
    assert moab_scheduler.cancel_argv("4242") == ["canceljob", "4242"]
    with pytest.raises(ValueError, match="'moab' is registered already"):
        moab()
    del SCHEDULERS["moab"]
    with pytest.raises(
        CatalogError, match=r"scheduler: .*unknown scheduler 'moab': use one of direct, pbs, slurm"
    ):
        parse_targets(target_spec("moab"))


def test_every_adapter_class_in_the_package_is_registered() -> None:
    adapters = []
    for module in pkgutil.iter_modules(core.schedulers.__path__):
        namespace = vars(__import__(f"core.schedulers.{module.name}", fromlist=["_"]))
        adapters += [
            c
            for c in namespace.values()
            if isinstance(c, type)
            and issubclass(c, BatchScheduler)
            and c is not BatchScheduler
            and c.__module__ == f"core.schedulers.{module.name}"
        ]
    assert sorted(a.name for a in adapters) == sorted(REGISTERED) == ["direct", "pbs", "slurm"]
    for adapter in adapters:
        assert type(get_scheduler(adapter.name)) is adapter


@pytest.mark.parametrize("name", REGISTERED)
def test_every_registered_scheduler_has_captured_output_that_a_test_reads(name: str) -> None:
    files = sorted(p.name for p in (DATA / name).glob("*"))
    assert files, f"tests/data/schedulers/{name}/ holds no captured output of {name}"
    readme, tests = (
        (DATA / "README.md").read_text(encoding="utf-8"),
        Path(__file__).read_text(encoding="utf-8"),
    )
    for file in files:
        assert f"`{name}/{file}`" in readme, (
            f"{name}/{file} is not in tests/data/schedulers/README.md"
        )
        assert f'data("{name}/{file}")' in tests, f"no test reads {name}/{file}"


def test_an_invalid_submission_fails_the_job_for_good() -> None:
    # Dispatch fails a job on a non-transient GatewayError and retries a transient one; a bug (ValueError) is neither.
    assert issubclass(InvalidSubmission, DispatchRefused)
    assert not InvalidSubmission.transient
    assert not issubclass(InvalidSubmission, ValueError)
    assert Unavailable.transient  # a status answer cut off (PBS's JSON): asking again may do


def test_pbs_takes_its_flavour_from_the_target_options() -> None:
    pbs = get_scheduler("pbs", {"flavour": "torque", "queue": "batch"})
    assert isinstance(pbs, PbsScheduler)
    assert pbs.flavour == "torque"
    assert PbsScheduler().flavour == "pro"
    with pytest.raises(InvalidSubmission, match="flavour"):
        PbsScheduler("slurm")


# Every registered scheduler, made as for a target without options, plus PBS's other flavour.
ADAPTERS = [pytest.param(get_scheduler(name), id=name) for name in REGISTERED] + [
    pytest.param(PbsScheduler("torque"), id="torque")
]


@pytest.mark.parametrize("scheduler", ADAPTERS)
@pytest.mark.parametrize(
    "changes",
    [
        {"name": "a b"},
        {"name": "a\nb"},
        {"name": ""},
        {"name": "x" * 129},
        {"job_dir": "relative/dir"},
        {"job_dir": "/a\x00b"},
        {"walltime": "30"},
        {"walltime": "1:2:3"},
        {"walltime": "00:60:00"},
        {"walltime": "01:00:00; id"},
        {"nodes": 0},
        {"cpus": -1},
        {"cpus": True},
        {"memory_mb": 0},
        {"memory_mb": 1.5},
    ],
)
def test_a_submission_that_cannot_go_into_a_script_is_refused(
    scheduler: Scheduler, changes: dict[str, object]
) -> None:
    with pytest.raises(InvalidSubmission, match=next(iter(changes))):
        scheduler.batch_script(sample(options={}, **changes))


@pytest.mark.parametrize(
    ("scheduler", "job_dir"),
    [
        (DirectScheduler(), f"/tmp/{HOSTILE}"),
        (SlurmScheduler(), "/tmp/job dir $(touch PWNED1) `touch PWNED2`; touch PWNED3 & 'q' | > x"),
        (PbsScheduler(), "/scratch/alice/simgate-jobs/abc+1"),
    ],
    ids=["direct", "slurm", "pbs"],
)
def test_the_job_folder_is_one_quoted_word_and_the_script_parses(
    scheduler: Scheduler, job_dir: str, tmp_path: Path
) -> None:
    script = scheduler.batch_script(sample(job_dir=job_dir, options={}))
    body = "\n".join(lines_after_directives(script))
    assert f"\ncd {shlex.quote(job_dir)}\n" in f"\n{body}\n"
    assert shlex.split(body)[2:4] == ["cd", job_dir]  # one word, whatever it holds
    path = tmp_path / "batch.sh"
    path.write_text(script, encoding="utf-8")
    checked = subprocess.run(["sh", "-n", str(path)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr


@pytest.mark.parametrize("scheduler", ADAPTERS)
def test_status_needs_at_least_one_id(scheduler: Scheduler) -> None:
    with pytest.raises(InvalidSubmission, match="no"):
        scheduler.status_argv([])


@pytest.mark.parametrize(
    "text",
    [
        direct_module.SUBMIT,
        direct_module.STATUS,
        direct_module.CANCEL,
        *PbsScheduler().status_argv(["1"])[2:3],
        *PbsScheduler("torque").status_argv(["1"])[2:3],
    ],
    ids=["direct-submit", "direct-status", "direct-cancel", "pbs-pro-status", "pbs-torque-status"],
)
def test_every_fixed_shell_text_parses_and_is_one_line(text: str) -> None:
    checked = subprocess.run(["sh", "-n", "-c", text], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr
    assert "\n" not in text  # a csh-family login shell refuses newlines inside quotes


# --- direct: strings -------------------------------------------------------------------------------------------


def test_direct_script() -> None:
    assert DirectScheduler().batch_script(SAMPLE) == (
        "#!/bin/sh\n"
        "set -eu\n"
        f"cd {JOB_DIR}\n"
        "module load openfoam/11\n"
        "exec python3 simgate_wrapper.py\n"
    )


def test_direct_takes_no_options() -> None:
    with pytest.raises(InvalidSubmission, match="partition"):
        DirectScheduler().batch_script(sample(options={"partition": "debug"}))


def test_direct_argv() -> None:
    direct = DirectScheduler()
    script = f"{JOB_DIR}/simgate_batch.sh"
    assert direct.submit_argv(script, SAMPLE) == [
        "sh",
        "-c",
        direct_module.SUBMIT,
        "simgate-submit",
        script,
        JOB_DIR,
    ]
    assert direct.status_argv(["123", "4567"]) == [
        "sh",
        "-c",
        direct_module.STATUS,
        "simgate-status",
        "123",
        "4567",
    ]
    assert direct.cancel_argv("4567") == ["sh", "-c", 'kill -TERM -"$1"', "simgate-cancel", "4567"]


def test_direct_parse_submit() -> None:
    direct = DirectScheduler()
    assert direct.parse_submit("20972\n") == "20972"
    assert direct.parse_submit("Welcome to the workstation\n20972\n\n") == "20972"


@pytest.mark.parametrize(
    "stdout", ["", "\n \n", "abc", "0", "1", "-5", "12 34", "12345;x", "020972", "9" * 11]
)
def test_direct_parse_submit_refuses_junk(stdout: str) -> None:
    with pytest.raises(InvalidSubmission, match=r"nothing|process id"):
        DirectScheduler().parse_submit(stdout)


@pytest.mark.parametrize("pid", ["1", "0", "-1", "", "12; rm -rf ~", "$(id)", "12 13"])
def test_direct_refuses_what_is_not_a_job_pid(pid: str) -> None:
    # "kill -TERM -1" would signal every process of the user
    with pytest.raises(InvalidSubmission, match="process id"):
        DirectScheduler().cancel_argv(pid)
    with pytest.raises(InvalidSubmission, match="process id"):
        DirectScheduler().status_argv(["20972", pid])


def test_direct_parse_status_on_captured_output() -> None:
    ids = [
        "20972",
        "20973",
        "20974",
        "31999",
    ]  # live leader, zombie leader, live non-leader, unused
    assert DirectScheduler().parse_status(data("direct/direct_status.txt"), ids) == {
        "20972": RUNNING,
        "20973": DONE,
        "20974": DONE,
        "31999": DONE,
    }
    assert DirectScheduler().parse_status("", ["5"]) == {"5": DONE}


# --- direct: for real, on this machine -------------------------------------------------------------------------


def wait_for(probe: Callable[[], object], what: str, timeout: float = 15) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := probe():
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    # A timeout, so a submit that kept the job's stdout open (or waited for it) fails instead of hanging.
    return subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=10, check=False)


def state_of(pid: str, cwd: Path) -> RemoteState:
    done = run(DirectScheduler().status_argv([pid]), cwd)
    assert done.returncode == 0, done.stderr
    return DirectScheduler().parse_status(done.stdout, [pid])[pid]


def live_group_members(pgid: int) -> list[int]:
    """Processes (zombies excluded) whose process group is `pgid`."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if fields[0] not in ("Z", "X") and int(fields[2]) == pgid:
            members.append(int(stat.parent.name))
    return members


def submit_direct(tmp_path: Path, command: str, setup: tuple[str, ...] = ()) -> tuple[str, Path]:
    job_dir = tmp_path / HOSTILE
    job_dir.mkdir()
    job = Submission(name=JOB_ID, job_dir=str(job_dir), command=command, setup=setup)
    direct = DirectScheduler()
    script = job_dir / "simgate_batch.sh"
    script.write_text(direct.batch_script(job), encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = run(direct.submit_argv(str(script), job), elsewhere)
    assert done.returncode == 0, done.stderr
    return direct.parse_submit(done.stdout), job_dir


def test_direct_runs_the_job_detached_in_a_hostile_folder_and_nothing_else(tmp_path: Path) -> None:
    command = "sh -c 'pwd > ran.txt; echo \"setup=$SIMGATE_SETUP\"; sleep 3'"
    pid, job_dir = submit_direct(
        tmp_path, command, setup=("SIMGATE_SETUP=yes; export SIMGATE_SETUP",)
    )
    wait_for(lambda: (job_dir / "ran.txt").exists(), "the job to start")
    assert os.getsid(int(pid)) == int(
        pid
    )  # its own session and process group: cancel can reach all of it
    assert os.getpgid(int(pid)) == int(pid)
    assert state_of(pid, tmp_path) is RUNNING
    wait_for(lambda: state_of(pid, tmp_path) is DONE, "the job to end")
    assert (job_dir / "ran.txt").read_text().strip() == os.path.realpath(job_dir)
    assert (job_dir / "stdout.txt").read_text() == "setup=yes\n"
    assert (job_dir / "stderr.txt").read_text() == ""
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith("PWNED")]


def test_direct_cancel_stops_the_whole_process_group(tmp_path: Path) -> None:
    pid, _ = submit_direct(tmp_path, "sh -c 'sleep 60 & sleep 60'")
    wait_for(lambda: len(live_group_members(int(pid))) >= 3, "the job and its two sleeps")
    done = run(DirectScheduler().cancel_argv(pid), tmp_path)
    assert done.returncode == 0, done.stderr
    wait_for(lambda: not live_group_members(int(pid)), "every process of the job to end")
    assert state_of(pid, tmp_path) is DONE


def test_direct_counts_a_zombie_or_a_recycled_pid_as_ended(tmp_path: Path) -> None:
    leader = subprocess.Popen(["sleep", "30"], start_new_session=True)
    zombie = subprocess.Popen(["true"], start_new_session=True)
    follower = subprocess.Popen(
        ["sleep", "30"]
    )  # alive, but not leading a session: not one of our jobs
    try:
        wait_for(
            lambda: (
                Path(f"/proc/{zombie.pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
            ),
            "the unreaped process to become a zombie",
        )
        ids = [str(leader.pid), str(zombie.pid), str(follower.pid)]
        done = run(DirectScheduler().status_argv(ids), tmp_path)
        assert done.returncode == 0, done.stderr
        assert DirectScheduler().parse_status(done.stdout, ids) == dict(
            zip(ids, [RUNNING, DONE, DONE], strict=True)
        )
    finally:
        for process in (leader, follower):
            process.kill()
        for process in (leader, zombie, follower):
            process.wait()


# --- Slurm -----------------------------------------------------------------------------------------------------


def test_slurm_script() -> None:
    job = sample(options={"qos": "normal", "partition": "debug,long", "account": "proj-42"})
    assert SlurmScheduler().batch_script(job) == (
        "#!/bin/sh\n"
        f"#SBATCH --job-name={JOB_ID}\n"
        "#SBATCH --nodes=2\n"
        "#SBATCH --ntasks-per-node=1\n"
        "#SBATCH --cpus-per-task=4\n"
        "#SBATCH --time=01:30:00\n"
        "#SBATCH --mem=4000\n"
        f'#SBATCH --output="{JOB_DIR}/stdout.txt"\n'
        f'#SBATCH --error="{JOB_DIR}/stderr.txt"\n'
        f'#SBATCH --chdir="{JOB_DIR}"\n'
        "#SBATCH --partition=debug,long\n"
        "#SBATCH --account=proj-42\n"
        "#SBATCH --qos=normal\n"
        "set -eu\n"
        f"cd {JOB_DIR}\n"
        "module load openfoam/11\n"
        "exec python3 simgate_wrapper.py\n"
    )


def test_slurm_asks_for_memory_only_when_the_case_does() -> None:
    script = SlurmScheduler().batch_script(sample(memory_mb=None))
    assert "--mem" not in script
    assert "#SBATCH --reservation=maint\n" in SlurmScheduler().batch_script(
        sample(options={"reservation": "maint"})
    )
    constraint = SlurmScheduler().batch_script(
        sample(options={"constraint": "intel&[rack1|rack2]"})
    )
    assert "#SBATCH --constraint=intel&[rack1|rack2]\n" in constraint


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("partition", "debug --qos=high"),
        ("partition", "debug\n#SBATCH --account=theirs"),
        ("account", "$(id)"),
        ("qos", "a;b"),
        ("constraint", "a b"),
        ("constraint", 'x"y'),
        ("reservation", ""),
        ("partition", "x" * 65),
        ("account", "a,b"),
        ("partition", "debug,"),
        ("nodelist", "cn01"),
        ("flavour", "pro"),
        ("queue", "batch"),
    ],
)
def test_slurm_refuses_unknown_options_and_hostile_values(key: str, value: str) -> None:
    with pytest.raises(InvalidSubmission, match=key):
        SlurmScheduler().batch_script(sample(options={key: value}))


def test_slurm_quotes_a_folder_sbatch_can_read_and_refuses_one_it_cannot() -> None:
    odd = "/tmp/run 1 $(touch PWNED) `touch PWNED2`; 'x'"  # as tried on Slurm 22.05: the job ran there, inert
    script = SlurmScheduler().batch_script(sample(job_dir=odd))
    assert f'#SBATCH --chdir="{odd}"\n' in script
    assert f'#SBATCH --output="{odd}/stdout.txt"\n' in script
    for bad in ('/tmp/a"b', "/tmp/a\\b", "/tmp/a%j", "/tmp/a #b", "/tmp/a\nb", "/tmp/a\tb"):
        with pytest.raises(InvalidSubmission, match="SBATCH"):
            SlurmScheduler().batch_script(sample(job_dir=bad))


def test_slurm_argv() -> None:
    slurm = SlurmScheduler()
    assert slurm.submit_argv("/x/simgate_batch.sh", SAMPLE) == [
        "sbatch",
        "--parsable",
        "/x/simgate_batch.sh",
    ]
    assert slurm.status_argv(["22", "27", "28+1", "27_3"]) == [
        "squeue",
        "--noheader",
        "--states=all",
        "--format=%i|%T",
        "--jobs=22,27,28+1,27_3",
    ]
    # A lone id is named twice: squeue then exits 0 (not 1) once Slurm has forgotten the job.
    assert slurm.status_argv(["22"])[-1] == "--jobs=22,22"
    assert slurm.cancel_argv("22") == ["scancel", "22"]


@pytest.mark.parametrize(
    "job_id", ["abc", "12;x", "-1", "12 13", "12_", "--me", "", "12,13", "12_[1-3]"]
)
def test_slurm_refuses_what_is_not_a_job_id(job_id: str) -> None:
    with pytest.raises(InvalidSubmission, match="Slurm job id"):
        SlurmScheduler().status_argv(["22", job_id])
    with pytest.raises(InvalidSubmission, match="Slurm job id"):
        SlurmScheduler().cancel_argv(job_id)


def test_slurm_parse_submit() -> None:
    slurm = SlurmScheduler()
    assert slurm.parse_submit(data("slurm/sbatch_ok.txt")) == "32"
    assert slurm.parse_submit(data("slurm/sbatch_cluster.txt")) == "32"
    assert slurm.parse_submit("Last login: yesterday\n32\n") == "32"


@pytest.mark.parametrize(
    "stdout",
    [
        data("slurm/sbatch_error.txt"),
        "",
        "  \n",
        "Submitted batch job 32",
        "32;",
        "32;a b",
        "32 33",
        "sbatch: error: x\n",
    ],
)
def test_slurm_parse_submit_refuses_junk_and_errors(stdout: str) -> None:
    with pytest.raises(InvalidSubmission, match="sbatch"):
        SlurmScheduler().parse_submit(stdout)


def test_slurm_parse_status_on_captured_output() -> None:
    ids = ["22", "23", "24", "25", "26", "27", "28", "30", "99999", "27_1", "28+1"]
    assert SlurmScheduler().parse_status(data("slurm/squeue_mixed.txt"), ids) == {
        "22": FAILED,  # TIMEOUT
        "23": DONE,  # COMPLETED
        "24": FAILED,  # exit 3
        "25": CANCELLED,
        "26": PENDING,  # held
        "27": RUNNING,  # an array: task 1 runs, 2-4 wait
        "28": PENDING,  # both components of a heterogeneous job wait
        "30": PENDING,
        "99999": UNKNOWN,  # not listed
        "27_1": RUNNING,
        "28+1": PENDING,
    }
    assert SlurmScheduler().parse_status(
        data("slurm/squeue_suspended.txt"), ["26", "27", "28", "30"]
    ) == {
        "26": PENDING,
        "27": CANCELLED,
        "28": CANCELLED,
        "30": RUNNING,
    }


def test_slurm_reads_rows_defensively() -> None:
    stdout = "motd: be nice\n41|CANCELLED by 1000\n42|SOMETHING_NEW\n43|\n|RUNNING\n44_1|COMPLETED\n44_2|FAILED\n"
    assert SlurmScheduler().parse_status(stdout, ["41", "42", "43", "44"]) == {
        "41": CANCELLED,
        "42": UNKNOWN,
        "43": UNKNOWN,
        "44": FAILED,
    }


def test_slurm_maps_every_state_of_the_manual() -> None:
    # https://slurm.schedmd.com/squeue.html#SECTION_JOB-STATE-CODES, as listed by Slurm 22.05's squeue(1)
    manual = [
        "BOOT_FAIL",
        "CANCELLED",
        "COMPLETED",
        "CONFIGURING",
        "COMPLETING",
        "DEADLINE",
        "FAILED",
        "NODE_FAIL",
        "OUT_OF_MEMORY",
        "PENDING",
        "PREEMPTED",
        "RUNNING",
        "RESV_DEL_HOLD",
        "REQUEUE_FED",
        "REQUEUE_HOLD",
        "REQUEUED",
        "RESIZING",
        "REVOKED",
        "SIGNALING",
        "SPECIAL_EXIT",
        "STAGE_OUT",
        "STOPPED",
        "SUSPENDED",
        "TIMEOUT",
    ]
    assert sorted(SLURM_STATES) == sorted(manual)


# --- PBS -------------------------------------------------------------------------------------------------------


def test_pbs_pro_script() -> None:
    job = sample(options={"queue": "workq", "account": "proj-42"})
    assert PbsScheduler().batch_script(job) == (
        "#!/bin/sh\n"
        "#PBS -S /bin/sh\n"
        "#PBS -N s7890123-a1b2c3\n"
        "#PBS -l select=2:ncpus=4:mem=4000mb\n"
        "#PBS -l place=scatter\n"
        "#PBS -l walltime=01:30:00\n"
        f"#PBS -o {JOB_DIR}/stdout.txt\n"
        f"#PBS -e {JOB_DIR}/stderr.txt\n"
        "#PBS -q workq\n"
        "#PBS -A proj-42\n"
        "set -eu\n"
        f"cd {JOB_DIR}\n"
        "module load openfoam/11\n"
        "exec python3 simgate_wrapper.py\n"
    )


def test_pbs_torque_script() -> None:
    job = sample(options={"flavour": "torque", "queue": "batch"})
    directives = [
        line for line in PbsScheduler().batch_script(job).splitlines() if line.startswith("#PBS")
    ]
    assert directives == [
        "#PBS -S /bin/sh",
        "#PBS -N s7890123-a1b2c3",
        "#PBS -l nodes=2:ppn=4",
        "#PBS -l mem=8000mb",  # Torque's mem is for the whole job: 2 nodes x 4000 MB
        "#PBS -l walltime=01:30:00",
        f"#PBS -o {JOB_DIR}/stdout.txt",
        f"#PBS -e {JOB_DIR}/stderr.txt",
        "#PBS -q batch",
    ]


def test_pbs_one_node_without_memory() -> None:
    script = PbsScheduler().batch_script(sample(nodes=1, memory_mb=None))
    assert "#PBS -l select=1:ncpus=4\n" in script
    assert "place=" not in script
    assert "#PBS -l nodes=1:ppn=4\n" in PbsScheduler("torque").batch_script(
        sample(nodes=1, memory_mb=None)
    )


@pytest.mark.parametrize(
    ("name", "pbs_name"),
    [
        ("demo", "demo"),
        ("run-15-chars-ok", "run-15-chars-ok"),
        ("1abc", "s1abc"),
        (JOB_ID, "s7890123-a1b2c3"),
        ("a" * 16, "s" + "a" * 14),
    ],
)
def test_pbs_names_fit_fifteen_characters_and_start_with_a_letter(name: str, pbs_name: str) -> None:
    assert f"#PBS -N {pbs_name}\n" in PbsScheduler().batch_script(sample(name=name))
    assert len(pbs_name) <= 15
    assert pbs_name[0].isalpha()


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("queue", "workq -A theirs"),
        ("queue", "workq\n#PBS -A theirs"),
        ("account", "$(id)"),
        ("account", ""),
        ("flavour", "slurm"),
        ("flavour", "pro "),
        ("partition", "debug"),
        ("select", "1:ncpus=64"),
    ],
)
def test_pbs_refuses_unknown_options_and_hostile_values(key: str, value: str) -> None:
    with pytest.raises(InvalidSubmission, match=key):
        PbsScheduler().batch_script(sample(options={key: value}))


@pytest.mark.parametrize(
    "job_dir", ["/tmp/job dir", "/tmp/a:b", "/tmp/$(id)", "/tmp/a\nb", "/tmp/a%j", "/tmp/é"]
)
def test_pbs_refuses_a_folder_a_directive_might_misread(job_dir: str) -> None:
    with pytest.raises(InvalidSubmission, match="#PBS"):
        PbsScheduler().batch_script(sample(job_dir=job_dir))


def test_pbs_argv() -> None:
    assert PbsScheduler().submit_argv("/x/simgate_batch.sh", SAMPLE) == [
        "qsub",
        "/x/simgate_batch.sh",
    ]
    assert PbsScheduler().cancel_argv("4101.pbs01") == ["qdel", "4101.pbs01"]
    pro = PbsScheduler().status_argv(["4101.pbs01", "4106[].pbs01"])
    assert pro[:2] == ["sh", "-c"]
    assert pro[3:] == ["simgate-status", "4101.pbs01", "4106[].pbs01"]
    assert 'qstat -x -f -F json "$@"' in pro[2]
    assert 'qstat -f "$@"' in PbsScheduler("torque").status_argv(["5201"])[2]


def test_pbs_status_tolerates_unknown_ids_only() -> None:
    # qstat exits 153 (PBSE_UNKJOBID) when any id was purged, yet prints the rest: absence is the answer there.
    text = pbs_module.STATUS
    assert "Unknown Job Id" in text
    assert 'exit "$rc"' in text  # anything else keeps qstat's own exit status


@pytest.mark.parametrize(
    "job_id", ["abc", "4101; rm -rf ~", "-x", "4101 4102", "", "4101[", "4101.pbs 01"]
)
def test_pbs_refuses_what_is_not_a_job_id(job_id: str) -> None:
    with pytest.raises(InvalidSubmission, match="PBS job id"):
        PbsScheduler().status_argv(["4101", job_id])
    with pytest.raises(InvalidSubmission, match="PBS job id"):
        PbsScheduler().cancel_argv(job_id)


def test_pbs_parse_submit() -> None:
    assert PbsScheduler().parse_submit(data("pbs/qsub_ok.txt")) == "4101.pbs01.example.org"
    assert PbsScheduler().parse_submit(data("pbs/qsub_array.txt")) == "4106[].pbs01.example.org"
    assert PbsScheduler().parse_submit("4101\n") == "4101"


@pytest.mark.parametrize(
    "stdout",
    [
        "",
        "qsub: Unknown queue",
        "qsub: Job rejected by all possible destinations",
        "4101.pbs01 extra",
        "x.y",
    ],
)
def test_pbs_parse_submit_refuses_junk_and_errors(stdout: str) -> None:
    with pytest.raises(InvalidSubmission, match="qsub"):
        PbsScheduler().parse_submit(stdout)


def test_pbs_parse_status_json() -> None:
    # ids as qsub printed them: the server part may be shorter than qstat's
    ids = [
        "4101.pbs01",
        "4102.pbs01.example.org",
        "4103",
        "4104.pbs01",
        "4105.pbs01",
        "4106[].pbs01",
        "4107.pbs01",
        "4199.pbs01",
    ]
    assert (
        PbsScheduler().parse_status(data("pbs/qstat_pro.json"), ids)
        == {
            "4101.pbs01": RUNNING,
            "4102.pbs01.example.org": PENDING,
            "4103": PENDING,
            "4104.pbs01": DONE,
            "4105.pbs01": DONE,  # Exit_status 271 (SIGTERM): still DONE, the job's own report says how it ended
            "4106[].pbs01": RUNNING,  # an array that has begun
            "4107.pbs01": RUNNING,  # exiting: its end is not settled yet
            "4199.pbs01": UNKNOWN,
        }
    )


def test_pbs_parse_status_text() -> None:
    ids = ["5201.torque01", "5202.torque01", "5203.torque01", "5204.torque01", "5299.torque01"]
    assert PbsScheduler("torque").parse_status(data("pbs/qstat_torque.txt"), ids) == {
        "5201.torque01": RUNNING,
        "5202.torque01": PENDING,
        "5203.torque01": DONE,
        "5204.torque01": PENDING,
        "5299.torque01": UNKNOWN,
    }


def test_pbs_parse_status_when_nothing_is_listed_and_when_the_output_is_broken() -> None:
    pbs = PbsScheduler()
    empty = '{"timestamp":1732806000,"pbs_version":"2022.1.5","pbs_server":"pbs01"}'  # no "Jobs" when none is listed
    assert pbs.parse_status(empty, ["4101"]) == {"4101": UNKNOWN}
    assert pbs.parse_status("", ["4101"]) == {"4101": UNKNOWN}
    assert pbs.parse_status(
        '{"Jobs":{"4101.s":{"job_state":"Z"},"4102.s":{}}}', ["4101", "4102"]
    ) == {
        "4101": UNKNOWN,
        "4102": UNKNOWN,
    }
    for broken in (data("pbs/qstat_pro.json")[:300], '{"Jobs": []}', "{[1]"):
        with pytest.raises(Unavailable, match="JSON"):
            pbs.parse_status(broken, ["4101"])


def test_pbs_maps_every_state_of_the_manual() -> None:
    # PBS Professional Reference Guide, "Job States": B E F H M Q R S T U W X; Torque adds C
    assert sorted(pbs_module.STATES) == sorted("BEFHMQRSTUWXC")


# --- arrays: many runs in one submission ------------------------------------------------------------------------

ARRAY_DIR = "/home/alice/simgate-jobs/arrays/a1"
BASE_DIR = "/home/alice/simgate-jobs"
RUN_IDS = tuple(f"0f1e2d3c4b5a6978-823456789012{i}-a1b2c3" for i in range(6))


def array(count: int = 6, max_running: int = 2, **changes: Any) -> ArraySubmission:
    job = sample(**{"name": "a1", "job_dir": ARRAY_DIR, **changes})
    return ArraySubmission(
        job=job, base_dir=BASE_DIR, run_ids=RUN_IDS[:count], max_running=max_running
    )


def test_which_schedulers_have_arrays_natively() -> None:
    assert SlurmScheduler().native_arrays
    assert PbsScheduler().native_arrays
    assert not DirectScheduler().native_arrays  # emulated by a supervisor of its own


def test_the_runs_file_lists_the_run_ids_in_task_order() -> None:
    for scheduler in (SlurmScheduler(), PbsScheduler(), DirectScheduler()):
        assert scheduler.array_runs(array()) == "".join(f"{r}\n" for r in RUN_IDS)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"run_ids": ()}, "at least one run"),
        ({"run_ids": ("../../etc",)}, "run id"),
        ({"run_ids": (RUN_IDS[0], RUN_IDS[0])}, "must differ"),
        ({"max_running": 0}, "max_running"),
        ({"max_running": True}, "max_running"),
        ({"base_dir": "relative"}, "base_dir"),
        ({"base_dir": "/a\x00b"}, "base_dir"),
    ],
)
def test_an_array_that_cannot_go_into_a_script_is_refused(
    changes: dict[str, Any], match: str
) -> None:
    bad = replace(array(), **changes)
    for scheduler in (SlurmScheduler(), PbsScheduler(), DirectScheduler()):
        with pytest.raises(InvalidSubmission, match=match):
            scheduler.array_script(bad)
        with pytest.raises(InvalidSubmission, match=match):
            scheduler.array_runs(bad)


def test_slurm_array_script_and_argv() -> None:
    slurm = SlurmScheduler()
    script = slurm.array_script(array(options={"partition": "short"}))
    directives = [line for line in script.splitlines() if line.startswith("#SBATCH")]
    assert directives == [
        "#SBATCH --job-name=a1",
        "#SBATCH --nodes=2",
        "#SBATCH --ntasks-per-node=1",
        "#SBATCH --cpus-per-task=4",
        "#SBATCH --time=01:30:00",
        "#SBATCH --mem=4000",
        f'#SBATCH --chdir="{ARRAY_DIR}"',
        "#SBATCH --partition=short",
        f'#SBATCH --output="{ARRAY_DIR}/task-%a.out"',
        f'#SBATCH --error="{ARRAY_DIR}/task-%a.err"',
    ]
    assert "task=${SLURM_ARRAY_TASK_ID:-}" in script
    assert f'cd {BASE_DIR}/"$run"' in script
    assert lines_after_directives(script)[-2:] == [
        "module load openfoam/11",
        "exec python3 simgate_wrapper.py",
    ]
    assert slurm.array_submit_argv(f"{ARRAY_DIR}/b.sh", array()) == [
        "sbatch",
        "--parsable",
        "--array=0-5%2",
        f"{ARRAY_DIR}/b.sh",
    ]
    # No limit to ask for when every task may run at once.
    assert "--array=0-5" in slurm.array_submit_argv("b.sh", array(max_running=6))
    assert "--array=0-0" in slurm.array_submit_argv("b.sh", array(count=1))


def test_slurm_array_refuses_a_folder_sbatch_would_misread() -> None:
    with pytest.raises(InvalidSubmission, match="#SBATCH"):
        SlurmScheduler().array_script(array(job_dir="/home/alice/100%"))


def test_slurm_array_submit_status_and_cancel_on_captured_output() -> None:
    slurm = SlurmScheduler()
    array_id = slurm.parse_array_submit(data("slurm/sbatch_array.txt"))
    assert array_id == "86"
    assert slurm.task_ids("86", 3) == ["86_0", "86_1", "86_2"]
    assert slurm.array_status_argv("86", ARRAY_DIR) == [
        "squeue",
        "--noheader",
        "--states=all",
        "--format=%i|%T",
        "--jobs=86,86",
    ]
    # 86 is --array=0-5%2 and 87 --array=0-9:3, both asked about in one squeue.
    first = data("slurm/squeue_array.txt")
    assert slurm.parse_array_status(first, "86", 6) == {
        "86_0": RUNNING,
        "86_1": RUNNING,
        **{f"86_{i}": PENDING for i in range(2, 6)},
    }
    assert slurm.parse_array_status(first, "87", 10) == {
        f"87_{i}": PENDING if i in (0, 3, 6, 9) else UNKNOWN for i in range(10)
    }
    later = data("slurm/squeue_array_later.txt")  # after scancel 87_3, which was still pending
    assert slurm.parse_array_status(later, "86", 6) == {
        "86_0": DONE,
        "86_1": DONE,
        "86_2": RUNNING,
        "86_3": RUNNING,
        "86_4": PENDING,
        "86_5": PENDING,
    }
    assert slurm.parse_array_status(later, "87", 10)["87_3"] is UNKNOWN  # gone, not listed
    cancelled = data("slurm/squeue_array_cancelled.txt")  # after scancel 87
    assert [
        s for t, s in slurm.parse_array_status(cancelled, "87", 10).items() if s is not UNKNOWN
    ] == [CANCELLED] * 3
    assert slurm.array_cancel_argv("87", ARRAY_DIR) == ["scancel", "87"]
    assert slurm.task_cancel_argv("87_3", ARRAY_DIR) == ["scancel", "87_3"]


@pytest.mark.parametrize(
    ("row", "states"),
    [
        ("9_[0-99:50]|PENDING", {0: PENDING, 50: PENDING}),
        ("9_[1,3-4%1]|PENDING", {1: PENDING, 3: PENDING, 4: PENDING}),
        ("9_7|RUNNING", {7: RUNNING}),
        (
            "9_[0-999999999]|PENDING",
            {i: PENDING for i in range(100)},
        ),  # bounded by the array's size
        ("9_[x-2]|PENDING", {}),
        ("9|PENDING", {}),
        ("19_1|RUNNING", {}),
        ("9+0|RUNNING", {}),
    ],
)
def test_slurm_array_rows_in_every_form(row: str, states: dict[int, RemoteState]) -> None:
    parsed = SlurmScheduler().parse_array_status(f"banner\n{row}\n", "9", 100)
    assert {int(t.split("_")[1]): s for t, s in parsed.items() if s is not UNKNOWN} == states


@pytest.mark.parametrize("array_id", ["86_1", "", "86;c", "-1"])
def test_slurm_array_commands_refuse_what_is_not_an_array_id(array_id: str) -> None:
    slurm = SlurmScheduler()
    for build in (slurm.array_status_argv, slurm.array_cancel_argv):
        with pytest.raises(InvalidSubmission):
            build(array_id, ARRAY_DIR)
    with pytest.raises(InvalidSubmission):
        slurm.task_ids(array_id, 2)


def test_pbs_array_script_and_argv_per_flavour() -> None:
    pro, torque = PbsScheduler(), PbsScheduler("torque")
    script = pro.array_script(array(options={"queue": "workq"}))
    assert f"#PBS -o {ARRAY_DIR}/task.out" in script.splitlines()
    assert "#PBS -q workq" in script.splitlines()
    assert "task=${PBS_ARRAY_INDEX:-}" in script
    assert "task=${PBS_ARRAYID:-}" in torque.array_script(array())
    assert "task=${PBS_ARRAYID:-}" in pro.array_script(array(options={"flavour": "torque"}))
    assert pro.array_submit_argv("b.sh", array()) == ["qsub", "-J", "0-5%2", "b.sh"]
    assert pro.array_submit_argv("b.sh", array(max_running=9)) == ["qsub", "-J", "0-5", "b.sh"]
    assert torque.array_submit_argv("b.sh", array()) == ["qsub", "-t", "0-5%2", "b.sh"]


def test_pbs_array_submit_status_and_cancel_on_written_output() -> None:
    pro = PbsScheduler()
    array_id = pro.parse_array_submit(data("pbs/qsub_array.txt"))
    assert array_id == "4106[].pbs01.example.org"
    with pytest.raises(InvalidSubmission, match="array"):
        pro.parse_array_submit(data("pbs/qsub_ok.txt"))  # a plain job is not an array
    assert pro.task_ids(array_id, 2) == ["4106[0].pbs01.example.org", "4106[1].pbs01.example.org"]
    assert pro.task_ids("4106[]", 1) == ["4106[0]"]
    argv = pro.array_status_argv(array_id, ARRAY_DIR)
    assert "qstat -x -f -F json -t " in argv[2]
    assert argv[-1] == array_id
    assert "qstat -f -t " in PbsScheduler("torque").array_status_argv(array_id, ARRAY_DIR)[2]
    assert pro.parse_array_status(data("pbs/qstat_pro_array.json"), array_id, 5) == {
        "4106[0].pbs01.example.org": DONE,
        "4106[1].pbs01.example.org": RUNNING,
        "4106[2].pbs01.example.org": PENDING,
        "4106[3].pbs01.example.org": PENDING,
        "4106[4].pbs01.example.org": UNKNOWN,
    }
    assert pro.parse_array_status(data("pbs/qstat_torque_array.txt"), "5210[]", 3) == {
        "5210[0]": DONE,
        "5210[1]": RUNNING,
        "5210[2]": PENDING,
    }
    assert pro.array_cancel_argv(array_id, ARRAY_DIR) == ["qdel", array_id]
    assert pro.task_cancel_argv("4106[3].pbs01.example.org", ARRAY_DIR) == [
        "qdel",
        "4106[3].pbs01.example.org",
    ]
    for bad in ("4106", "4106[3]", "4106[].x y"):
        with pytest.raises(InvalidSubmission):
            pro.array_cancel_argv(bad, ARRAY_DIR)


@pytest.mark.parametrize(
    "text",
    [
        direct_module.SUBMIT_ARRAY,
        direct_module.SUPERVISOR,
        direct_module.STATUS_ARRAY,
        direct_module.CANCEL_ARRAY,
        direct_module.CANCEL_TASK,
        *PbsScheduler().array_status_argv("1[]", ARRAY_DIR)[2:3],
    ],
    ids=["submit", "supervisor", "status", "cancel", "cancel-task", "pbs-status"],
)
def test_every_array_shell_text_parses_and_is_one_line(text: str) -> None:
    checked = subprocess.run(["sh", "-n", "-c", text], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr
    assert "\n" not in text


def test_every_array_script_parses() -> None:
    for scheduler in (SlurmScheduler(), PbsScheduler(), PbsScheduler("torque"), DirectScheduler()):
        # The base is only ever in the shell's part of the script (quoted), never in a directive.
        script = scheduler.array_script(replace(array(), base_dir=f"/{HOSTILE}"))
        assert f'cd {shlex.quote("/" + HOSTILE)}/"$run"' in script
        checked = subprocess.run(["sh", "-n"], input=script, capture_output=True, text=True)
        assert checked.returncode == 0, checked.stderr


def test_direct_array_status_on_captured_output() -> None:
    direct = DirectScheduler()
    # Captured: 5 tasks, at most 2 at once; task 0 ended by itself, task 1 was cancelled while it ran, so its
    # worker went on to 3 and the other worker to 2; 4 waits.
    assert direct.parse_array_status(data("direct/direct_array_status.txt"), "700", 5) == {
        "700_0": DONE,
        "700_1": CANCELLED,
        "700_2": RUNNING,
        "700_3": RUNNING,
        "700_4": PENDING,
    }
    # The supervisor gone (cancelled or lost): what never started never will.
    assert direct.parse_array_status("ended 0\ncancelled all\n", "700", 2) == {
        "700_0": CANCELLED,
        "700_1": CANCELLED,
    }
    assert direct.parse_array_status("ended 0\n", "700", 2) == {"700_0": DONE, "700_1": UNKNOWN}
    with pytest.raises(InvalidSubmission):
        direct.task_cancel_argv("700", ARRAY_DIR)
    with pytest.raises(InvalidSubmission):
        direct.array_cancel_argv("1", ARRAY_DIR)  # never PID 1: kill -TERM -1 signals everything
    with pytest.raises(InvalidSubmission):
        direct.array_status_argv("700", "relative")


def direct_array(
    tmp_path: Path, command: str, count: int, max_running: int
) -> tuple[str, Path, Path]:
    base = tmp_path / HOSTILE
    base.mkdir()
    for run_id in RUN_IDS[:count]:
        (base / run_id).mkdir()
    array_dir = base / "array"
    array_dir.mkdir()
    job = Submission(name="a1", job_dir=str(array_dir), command=command)
    submission = ArraySubmission(job, str(base), RUN_IDS[:count], max_running)
    direct = DirectScheduler()
    script = array_dir / "simgate_batch.sh"
    script.write_text(direct.array_script(submission), encoding="utf-8")
    (array_dir / "simgate_runs.txt").write_text(direct.array_runs(submission), encoding="utf-8")
    done = run(direct.array_submit_argv(str(script), submission), tmp_path)
    assert done.returncode == 0, done.stderr
    return direct.parse_array_submit(done.stdout), base, array_dir


def array_states(pid: str, array_dir: Path, count: int) -> list[RemoteState]:
    direct = DirectScheduler()
    done = run(direct.array_status_argv(pid, str(array_dir)), array_dir)
    assert done.returncode == 0, done.stderr
    return list(direct.parse_array_status(done.stdout, pid, count).values())


def test_direct_array_runs_each_task_in_its_folder_at_most_k_at_once(tmp_path: Path) -> None:
    # The status, polled while the tasks run, never shows more than 2 running (and does show 2).
    command = "sh -c 'pwd > ran.txt; sleep 1'"
    pid, base, array_dir = direct_array(tmp_path, command, count=5, max_running=2)
    seen_running = []
    for _ in range(60):
        states = array_states(pid, array_dir, 5)
        seen_running.append(states.count(RUNNING))
        if all(s is DONE for s in states):
            break
        time.sleep(0.2)
    assert all(s is DONE for s in states)
    assert max(seen_running) == 2
    for run_id in RUN_IDS[:5]:
        assert (base / run_id / "ran.txt").read_text().strip() == os.path.realpath(base / run_id)
        assert (base / run_id / "stderr.txt").read_text() == ""
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith("PWNED")]


def test_direct_array_cancel_of_one_task_and_of_all(tmp_path: Path) -> None:
    pid, _base, array_dir = direct_array(tmp_path, "sh -c 'sleep 60 & sleep 60'", 4, 2)
    direct = DirectScheduler()
    try:
        wait_for(lambda: array_states(pid, array_dir, 4)[:2] == [RUNNING, RUNNING], "two tasks")
        # Worker 0 runs tasks 0 then 2, worker 1 tasks 1 then 3. Cancel 2 before it starts and 0 while it runs:
        # worker 0 skips 2 and has nothing left, task 1 runs on and 3 waits behind it.
        assert run(direct.task_cancel_argv(f"{pid}_2", str(array_dir)), tmp_path).returncode == 0
        assert run(direct.task_cancel_argv(f"{pid}_0", str(array_dir)), tmp_path).returncode == 0
        wait_for(
            lambda: array_states(pid, array_dir, 4) == [CANCELLED, RUNNING, CANCELLED, PENDING],
            "task 0 stopped and task 2 skipped",
        )
        started = dict(
            line.split() for line in (array_dir / "simgate-started.txt").read_text().splitlines()
        )
        assert "2" not in started
        assert not live_group_members(int(started["0"]))
        assert run(direct.array_cancel_argv(pid, str(array_dir)), tmp_path).returncode == 0
        wait_for(
            lambda: set(array_states(pid, array_dir, 4)) == {CANCELLED}, "every task cancelled"
        )
        for task_pid in dict(
            line.split() for line in (array_dir / "simgate-started.txt").read_text().splitlines()
        ).values():
            wait_for(lambda p=int(task_pid): not live_group_members(p), "every task's processes")
        assert not live_group_members(int(pid))
    finally:  # a failed test must not leave tasks running
        run(direct.array_cancel_argv(pid, str(array_dir)), tmp_path)
