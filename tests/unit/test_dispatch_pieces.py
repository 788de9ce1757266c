"""The pure pieces of dispatch: state order, targets from settings, and the submit-once remote command (run here)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from core.errors import CatalogError, DispatchRefused
from core.records import Job
from core.remote import REMOVE_FOLDER, SUBMIT_ONCE, JobFile, archive, callback_base
from core.states import JobState, advances, parse_state
from core.targets import parse_targets
from core.transitions import advanced

S = JobState


@pytest.mark.parametrize(
    ("current", "incoming", "expected"),
    [
        (S.DRAFT, S.SUBMITTED, True),
        (S.SUBMITTED, S.QUEUED, True),
        (S.QUEUED, S.RUNNING, True),
        (S.RUNNING, S.QUEUED, False),  # the dispatcher's QUEUED after the job said RUNNING
        (S.FINALIZING, S.RUNNING, False),
        (S.RUNNING, S.RUNNING, False),
        (S.RUNNING, S.FAILED, True),
        (S.SUBMITTED, S.FAILED, True),
        (S.DRAFT, S.FAILED, False),
        (S.COMPLETED, S.FAILED, False),
        (S.FAILED, S.RUNNING, False),
        (S.CANCELLING, S.CANCELLED, True),
        (S.CANCELLING, S.RUNNING, False),
        (S.QUEUED, S.CANCELLING, True),
        (S.CANCELLED, S.COMPLETED, False),
    ],
)
def test_states_only_move_forwards(current: JobState, incoming: JobState, expected: bool) -> None:
    assert advances(current, incoming) is expected


@pytest.mark.parametrize(
    ("text", "state"), [("clean up", S.FINALIZING), ("Done", S.COMPLETED), ("running", S.RUNNING)]
)
def test_seed_words_are_state_aliases(text: str, state: JobState) -> None:
    assert parse_state(text) is state


def test_a_move_is_stamped_and_kept_in_history() -> None:
    then = "2020-01-01T00:00:00.000Z"
    job = Job("0" * 16 + "-" + "0" * 13 + "-abcdef", "u", "u", 2, "t", "", S.SUBMITTED, then, then)
    moved = advanced(job, S.QUEUED, "dispatcher", scheduler_id="42")
    assert moved is not None
    assert (moved.status, moved.scheduler_id, moved.history[-1].by) == (
        S.QUEUED,
        "42",
        "dispatcher",
    )
    assert moved.updated_at > job.updated_at
    assert advanced(moved, S.SUBMITTED, "late") is None
    failed = advanced(moved, S.FAILED, "dispatcher", "exit code 3")
    assert failed is not None
    assert failed.reason == "exit code 3"


GOOD_TARGET = {
    "host": "hpc.example.org",
    "user": "sim",
    "key_file": "k",
    "scheduler": "slurm",
    "known_hosts": "hpc.example.org ssh-ed25519 AAAA",
    "base_dir": "/scratch/sim",
}


def test_targets_parse_from_settings() -> None:
    target = parse_targets(json.dumps({"cluster": GOOD_TARGET}))["cluster"]
    assert (target.name, target.port, target.scheduler) == ("cluster", 22, "slurm")


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"scheduler": "lsf"}, "scheduler"),
        ({"base_dir": "relative"}, "base_dir"),
        ({"base_dir": "/a/../b"}, ".."),
        ({"key_setting": "X"}, "exactly one"),
        ({"port": 0}, "port"),
        ({"colour": 1}, "colour"),
        ({"known_hosts": ""}, "known_hosts"),
    ],
)
def test_a_bad_target_names_itself_and_the_field(change: dict[str, object], says: str) -> None:
    with pytest.raises(CatalogError, match="'cluster'") as caught:
        parse_targets(json.dumps({"cluster": {**GOOD_TARGET, **change}}))
    assert says in str(caught.value)


def run_submit_once(
    job_dir: Path, files: list[JobFile], submit: list[str]
) -> subprocess.CompletedProcess[bytes]:
    argv = ["sh", "-c", SUBMIT_ONCE, "simgate", str(job_dir), *submit]
    return subprocess.run(argv, input=archive(files), capture_output=True, check=False)


def test_submit_once_unpacks_privately_and_submits_once(tmp_path: Path) -> None:
    job_dir = tmp_path / "jobs with space" / "j1"
    counter = tmp_path / "submits"
    submit = ["sh", "-c", 'echo x >> "$0"; echo 4242', str(counter)]
    files = [
        JobFile("run.sh", b"#!/bin/sh\n", 0o755),
        JobFile("system/controlDict", b"endTime 1;\n"),
        JobFile("simgate_job.json", b'{"token": "first"}', 0o600),
    ]
    first = run_submit_once(job_dir, files, submit)
    assert (first.returncode, first.stdout) == (0, b"4242\n")
    assert oct((job_dir / "run.sh").stat().st_mode & 0o777) == "0o700"
    assert oct((job_dir / "system" / "controlDict").stat().st_mode & 0o777) == "0o600"
    assert oct((job_dir / "simgate_job.json").stat().st_mode & 0o777) == "0o600"
    files[2] = JobFile("simgate_job.json", b'{"token": "second"}', 0o600)
    files[1] = JobFile("system/controlDict", b"endTime 999;\n")
    again = run_submit_once(job_dir, files, submit)
    assert (again.returncode, again.stdout) == (
        0,
        b"4242\n",
    )  # the first submission's answer, not a new one
    assert counter.read_text() == "x\n"  # submitted once
    assert (
        job_dir / "simgate_job.json"
    ).read_bytes() == b'{"token": "second"}'  # the token is refreshed
    assert (
        job_dir / "system" / "controlDict"
    ).read_bytes() == b"endTime 1;\n"  # nothing else is touched


def test_a_failing_submit_leaves_no_marker_and_can_be_retried(tmp_path: Path) -> None:
    files = [JobFile("simgate_job.json", b"{}", 0o600)]
    failed = run_submit_once(
        tmp_path / "j", files, ["sh", "-c", "echo 'sbatch: error: no partition' >&2; exit 1"]
    )
    assert failed.returncode == 1
    assert b"no partition" in failed.stderr
    assert not (tmp_path / "j" / ".simgate-submitted").exists()
    assert run_submit_once(tmp_path / "j", files, ["echo", "7"]).stdout == b"7\n"


@pytest.mark.parametrize(
    "url",
    [
        "https://simgate.example.org",
        "https://simgate.example.org:8443/api",
        "http://127.0.0.1:7071",
        "http://127.3.4.5",
        "http://localhost:7071",
        "http://[::1]:7071",
    ],
)
def test_callbacks_are_https_or_to_this_machine(url: str) -> None:
    assert callback_base(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "http://simgate.example.org",
        "http://10.0.0.4:7071",
        "http://localhost.evil.org",
        "ftp://simgate.example.org",
        "https://",
        "",
        "simgate.example.org",
    ],
)
def test_a_callback_that_would_carry_the_token_in_clear_is_refused(url: str) -> None:
    with pytest.raises(DispatchRefused) as caught:
        callback_base(url)
    assert "SIMGATE_CALLBACK_URL" in caught.value.detail


def test_remove_folder_removes_the_folder_and_only_it(tmp_path: Path) -> None:
    folder = tmp_path / "jobs" / "0123456789abcdef-1234567890123-abcdef"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "out.csv").write_text("x")
    (tmp_path / "jobs" / "other").mkdir()
    done = subprocess.run(
        ["sh", "-c", REMOVE_FOLDER, "simgate-clean", str(folder)], capture_output=True, check=False
    )
    assert done.returncode == 0
    assert sorted(p.name for p in (tmp_path / "jobs").iterdir()) == ["other"]
    again = subprocess.run(
        ["sh", "-c", REMOVE_FOLDER, "simgate-clean", str(folder)], capture_output=True, check=False
    )
    assert again.returncode == 0  # already gone: nothing to do
