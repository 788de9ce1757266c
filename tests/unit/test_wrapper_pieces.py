"""The job wrapper's pure pieces, without a network: which files it would upload, block ids and sizes, the final
report, retries, grants, signals, and that the file stays standard-library Python 3.8 in step with the gateway."""

from __future__ import annotations

import ast
import base64
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from core import jobfolder
from core.bodies import MAX_OUTPUTS, OUTPUT_FILE, StatusReport, parse_body
from core.cases import LOG_OUTPUTS, MAX_METRICS
from tests.infra import load_wrapper

ROOT = Path(__file__).resolve().parents[2]
WRAPPER = ROOT / "simulator" / "wrapper.py"


w = load_wrapper()


def oldest_python() -> str | None:
    """A Python 3.8 interpreter that runs on this machine (pyenv's or on PATH), or None."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    for path in [
        *sorted(str(p) for p in pyenv.glob("3.8.*/bin/python3")),
        shutil.which("python3.8"),
    ]:
        check = "import sys; sys.exit(sys.version_info[:2] != (3, 8))"
        if (
            path
            and subprocess.run([path, "-c", check], capture_output=True, timeout=30).returncode == 0
        ):
            return path
    return None


# ------------------------------------------------------------------------------------------- the file itself


def test_the_wrapper_parses_as_python_3_8() -> None:
    ast.parse(WRAPPER.read_text(), feature_version=(3, 8))


def test_the_wrapper_imports_the_standard_library_only() -> None:
    tree = ast.parse(WRAPPER.read_text())
    modules = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    modules |= {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0
    }
    assert modules - {"__future__"} <= set(sys.stdlib_module_names)


def test_the_wrapper_compiles_and_loads_on_python_3_8() -> None:
    python = oldest_python()
    if python is None:
        pytest.skip(
            "no Python 3.8 here (the integration tests then run the wrapper on this Python)"
        )
    code = (
        "import importlib.util as u, sys; s = u.spec_from_file_location('w', sys.argv[1]); "
        "m = u.module_from_spec(s); s.loader.exec_module(m); print(m.block_id(1), m.end_report(0, [])['status'])"
    )
    done = subprocess.run(
        [python, "-c", code, str(WRAPPER)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [w.block_id(1), "COMPLETED"]


def test_the_wrapper_agrees_with_the_gateway_on_logs_and_limits() -> None:
    assert {name: file for name, file in w.LOGS} == {
        name: o.glob for name, o in LOG_OUTPUTS.items()
    }
    assert {o.content_type for o in LOG_OUTPUTS.values()} == {w.LOG_CONTENT_TYPE}
    assert w.MAX_OUTPUTS == MAX_OUTPUTS
    assert w.MAX_METRICS == MAX_METRICS


@pytest.mark.parametrize(
    "name",
    [
        "a.csv",
        "mixing_index.csv",
        "log.simpleFoam",
        "postProcessing/probes/0/U",
        "a/b/c/d/e.txt",
        "a/b/c/d/e/f.txt",
        ".hidden",
        "a/.hidden",
        "-x.csv",
        "with space.csv",
        "x" * 100,
        "x" * 101,
        "é.csv",
    ],
)
def test_a_name_the_wrapper_would_upload_is_one_the_gateway_accepts(name: str) -> None:
    parts = name.split("/")
    wrapper_accepts = len(parts) <= w.MAX_DEPTH and all(w.SEGMENT.match(p) for p in parts)
    assert wrapper_accepts == bool(re.match(OUTPUT_FILE, name))


# ------------------------------------------------------------------------------------------- which files


def make_folder(root: Path) -> None:
    """A job folder with outputs, internal files, odd names and links in and out of the folder."""
    (root / "sub" / "deeper").mkdir(parents=True)
    for name in (
        "mixing_index.csv",
        "b.csv",
        "log.solver",
        "log.mesh",
        "sub/c.csv",
        "sub/log.inner",
        "sub/deeper/d.csv",
        "run.sh",
        "simgate_job.json",
        "simgate_wrapper.py",
        "simgate_batch.sh",
        "simgate_ca.pem",
        "simgate-stdout.log",
        "simgate-stderr.log",
        ".simgate-exit-code",
        ".hidden.csv",
        "bad name.csv",
    ):
        (root / name).write_text(name)
    (root / "dir.csv").mkdir()  # a folder that matches a glob is not a file
    (root.parent / "outside.csv").write_text("not the job's")
    (root / "escape.csv").symlink_to(root.parent / "outside.csv")
    (root / "token.csv").symlink_to(root / "simgate_job.json")
    (root / "alias.csv").symlink_to("b.csv")
    (root / "dangling.csv").symlink_to("nowhere.csv")
    (root / "outdir").symlink_to(root.parent, target_is_directory=True)
    os.mkfifo(root / "pipe.csv")


def plan(root: Path, outputs: list[dict[str, str]], **kwargs: Any) -> list[tuple[str, str, str]]:
    return [
        (p.name, p.file, p.content_type) for p in w.select_files(str(root), outputs, **kwargs).files
    ]


def test_outputs_are_the_matching_files_in_output_order_then_the_logs(tmp_path: Path) -> None:
    root = tmp_path / "job"
    make_folder(root)
    outputs = [
        {"name": "mixing_index", "glob": "mixing_index.csv", "content_type": "text/csv"},
        {"name": "logs", "glob": "log.*", "content_type": "text/plain"},
        {"name": "tables", "glob": "*.csv"},
    ]
    assert plan(root, outputs, skip_files=("simgate_ca.pem",)) == [
        ("mixing_index", "mixing_index.csv", "text/csv"),
        ("logs", "log.mesh", "text/plain"),
        ("logs", "log.solver", "text/plain"),
        # fnmatch's * crosses folders, as the gateway's check does; a link inside the folder is a file there
        ("tables", "alias.csv", "application/octet-stream"),
        ("tables", "b.csv", "application/octet-stream"),
        ("tables", "sub/c.csv", "application/octet-stream"),
        ("tables", "sub/deeper/d.csv", "application/octet-stream"),
        ("stdout", "simgate-stdout.log", "text/plain"),
        ("stderr", "simgate-stderr.log", "text/plain"),
    ]


def test_a_catch_all_glob_never_takes_the_job_file_the_wrapper_or_what_lies_outside(
    tmp_path: Path,
) -> None:
    root = tmp_path / "job"
    make_folder(root)
    selection = w.select_files(
        str(root), [{"name": "all", "glob": "*"}], skip_files=("simgate_ca.pem",)
    )
    files = [p.file for p in selection.files]
    for never in (
        "simgate_job.json",
        "token.csv",
        "simgate_wrapper.py",
        "simgate_batch.sh",
        "simgate_ca.pem",
        "escape.csv",
        "dangling.csv",
        "pipe.csv",
        "dir.csv",
        ".hidden.csv",
        ".simgate-exit-code",
        "bad name.csv",
    ):
        assert never not in files
    assert not any(f.startswith("outdir") for f in files)
    assert files.count("simgate-stdout.log") == 1  # once, as the log
    assert files[-2:] == ["simgate-stdout.log", "simgate-stderr.log"]
    assert set(files) == {
        "alias.csv",
        "b.csv",
        "log.mesh",
        "log.solver",
        "mixing_index.csv",
        "run.sh",
        "sub/c.csv",
        "sub/deeper/d.csv",
        "sub/log.inner",
        "simgate-stdout.log",
        "simgate-stderr.log",
    }
    assert any("bad name.csv" in n for n in selection.notes)
    assert not any(
        "hidden" in n or "simgate-exit" in n for n in selection.notes
    )  # dot files are never outputs
    assert any("escape.csv" in n for n in selection.notes)


@pytest.mark.parametrize(
    "glob", ["../*", "../outside.csv", "/etc/passwd", "*/../*", str(Path("/") / "tmp" / "*")]
)
def test_a_glob_cannot_reach_out_of_the_folder(tmp_path: Path, glob: str) -> None:
    root = tmp_path / "job"
    make_folder(root)
    assert [p.file for p in w.select_files(str(root), [{"name": "x", "glob": glob}]).files] == [
        "simgate-stdout.log",
        "simgate-stderr.log",
    ]


def test_missing_logs_are_not_planned_and_outputs_are_capped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(5):
        (tmp_path / f"f{i}.dat").write_text("x")
    monkeypatch.setattr(w, "MAX_OUTPUTS", 5)
    selection = w.select_files(str(tmp_path), [{"name": "data", "glob": "*.dat"}])
    assert [p.file for p in selection.files] == ["f0.dat", "f1.dat", "f2.dat"]
    assert selection.notes == ["2 matching files not uploaded: at most 5 outputs per job"]


# ------------------------------------------------------------------------------------------- blocks


def test_block_ids_are_base64_of_the_same_length_and_distinct() -> None:
    ids = [w.block_id(i) for i in range(w.MAX_BLOCKS)]
    assert len(set(ids)) == len(ids)
    assert {len(i) for i in ids} == {len(ids[0])}
    assert all(len(base64.b64decode(i, validate=True)) <= 64 for i in (ids[0], ids[-1]))
    assert base64.b64decode(ids[7]) == b"simgate-block-000007"
    assert (
        quote(ids[0], safe="") != ids[0]
    )  # "=" must be escaped in the query: the wrapper quotes it


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (300 << 20, 8 << 20),
        (8 << 20, 8 << 20),
        (50_000 * (8 << 20), 8 << 20),
        (50_000 * (8 << 20) + 1, 9 << 20),
        (1 << 40, 21 << 20),
    ],
)
def test_block_size_keeps_under_the_block_count_limit(size: int, expected: int) -> None:
    block = w.block_size_for(size)
    assert block == expected
    assert -(-size // block) <= w.MAX_BLOCKS


# ------------------------------------------------------------------------------------------- the final report


def result(file: str, error: str | None = None, name: str = "out") -> Any:
    return w.UploadResult(w.Planned(name, file, "text/plain"), error)


def test_exit_0_with_every_upload_is_completed_with_the_list() -> None:
    report = w.end_report(
        0, [result("a.csv", name="mixing_index"), result("simgate-stdout.log", name="stdout")]
    )
    assert report == {
        "status": "COMPLETED",
        "outputs": [
            {"name": "mixing_index", "file": "a.csv"},
            {"name": "stdout", "file": "simgate-stdout.log"},
        ],
    }
    parse_body(StatusReport, report)


def test_a_non_zero_exit_fails_with_the_code_listing_what_uploaded() -> None:
    report = w.end_report(3, [result("simgate-stdout.log", name="stdout")])
    assert report == {
        "status": "FAILED",
        "exit_code": 3,
        "message": "exit code 3",
        "outputs": [{"name": "stdout", "file": "simgate-stdout.log"}],
    }
    parse_body(StatusReport, report)


def test_a_failed_upload_fails_the_job_naming_the_first_file() -> None:
    report = w.end_report(
        0,
        [
            result("a.csv", "HTTP 403 AuthorizationFailure"),
            result("b.csv"),
            result("c.csv", "put block: ConnectionResetError"),
        ],
    )
    assert report["status"] == "FAILED"
    assert report["exit_code"] == 0
    assert report["message"] == "upload failed: a.csv: HTTP 403 AuthorizationFailure (and 1 more)"
    assert report["outputs"] == [{"name": "out", "file": "b.csv"}]
    parse_body(StatusReport, report)


def test_a_missing_grant_and_notes_show_in_the_message() -> None:
    assert w.end_report(0, [], "no upload grant")["message"] == "no upload grant"
    assert w.end_report(137, [], "no upload grant", ("x not uploaded",))["message"] == (
        "exit code 137; no upload grant; x not uploaded"
    )
    completed = w.end_report(0, [result("a.csv")], None, ("bad\nname.csv not uploaded",))
    assert completed["status"] == "COMPLETED"
    assert completed["message"] == "bad name.csv not uploaded"  # no control characters in a message
    parse_body(StatusReport, completed)


def test_a_message_never_carries_a_secret_and_stays_short() -> None:
    w.remember_secret("s3cr3t-token-value-0123456789")
    report = w.end_report(0, [result("a.csv", "boom s3cr3t-token-value-0123456789 " + "x" * 5000)])
    assert "s3cr3t" not in report["message"]
    assert len(report["message"]) <= w.MAX_MESSAGE
    parse_body(StatusReport, report)


# ------------------------------------------------------------------------------------------- why it failed

# The cavity's run.sh on a target that did not load OpenFOAM (what `make run` did before set-up found it).
CAVITY_WITHOUT_ENV = """\
run.sh: warning: WM_PROJECT_DIR is unset; if OpenFOAM fails to find its etc files, source its etc/bashrc
run.sh: blockMesh failed with exit code 1; the end of log.blockMesh:
--> FOAM FATAL ERROR :
    Could not find mandatory etc entry (mode=ugo)
    'controlDict'

"""
# The same with OpenFOAM loaded and a broken controlDict: the banner, a FATAL IO ERROR, its trace and the end.
CAVITY_IO_ERROR = """\
run.sh: blockMesh failed with exit code 1; the end of log.blockMesh:
/*---------------------------------------------------------------------------*\\
| =========                 |                                                 |
| \\\\      /  F ield         | OpenFOAM: The Open Source CFD Toolbox           |
\\*---------------------------------------------------------------------------*/
Build  : OPENFOAM=1912 patch=200626
Exec   : blockMesh
Case   : /tmp/of2
// * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * //
Create time



--> FOAM FATAL IO ERROR: (openfoam-2306)
Entry 'deltaT' not found in dictionary "/tmp/of2/system/controlDict"


file: /tmp/of2/system/controlDict from line 13 to line 64.

    From function bool Foam::dictionary::readEntry(const Foam::word&, T&, Foam::keyType::option, bool) const
    in file /build/openfoam-1912/src/OpenFOAM/lnInclude/dictionaryTemplates.C at line 334.

FOAM exiting

"""


def summary_of(tmp_path: Path, text: str | bytes) -> str | None:
    log = tmp_path / w.STDERR_LOG
    log.write_bytes(text.encode() if isinstance(text, str) else text)
    return w.failure_summary(str(log))


def test_an_openfoam_error_is_told_by_its_fatal_block_and_program(tmp_path: Path) -> None:
    said = summary_of(tmp_path, CAVITY_WITHOUT_ENV)
    assert said == "blockMesh: Could not find mandatory etc entry (mode=ugo) 'controlDict'"
    assert summary_of(tmp_path, CAVITY_IO_ERROR) == (
        "blockMesh: Entry 'deltaT' not found in dictionary \"/tmp/of2/system/controlDict\" "
        "file: /tmp/of2/system/controlDict from line 13 to line 64."
    )
    bare = '--> FOAM FATAL ERROR:\ncannot find file "0/U"\n\n    From function x\n\nFOAM aborting\n'
    assert summary_of(tmp_path, bare) == 'FOAM FATAL ERROR: cannot find file "0/U"'


@pytest.mark.parametrize(
    ("log", "said"),
    [
        (
            'Traceback (most recent call last):\n  File "model.py", line 3\nValueError: blade_speed is not a number\n',
            "ValueError: blade_speed is not a number",
        ),
        (
            "run.sh: icoFoam diverged\n\n   \n--------------\n*** ***\n// * * //\n",
            "run.sh: icoFoam diverged",
        ),
        ("solving 10%\rsolving 50%\rerror: out of disk space\n", "error: out of disk space"),
        (
            "\x1b[1;31merror:\x1b[0m \x1b]0;title\x07bad\u202e mesh \x9d!\tnow\n",
            "error: bad mesh ! now",
        ),
        ("model crashed", "model crashed"),
    ],
)
def test_otherwise_the_last_line_that_says_something(tmp_path: Path, log: str, said: str) -> None:
    assert summary_of(tmp_path, log) == said


@pytest.mark.parametrize("log", ["", "\n\n", "=====\n", b"\xff\xfe\n"])
def test_a_log_that_says_nothing_gives_no_summary(tmp_path: Path, log: str | bytes) -> None:
    assert summary_of(tmp_path, log) is None
    assert w.failure_summary(str(tmp_path / "missing.log")) is None


def test_the_summary_is_one_bounded_line_without_secrets(tmp_path: Path) -> None:
    w.remember_secret("sig=s3cr3t-sas-signature-0123456789")
    said = summary_of(
        tmp_path,
        "upload to https://x/c?sv=1&sig=s3cr3t-sas-signature-0123456789 failed: " + "é" * 900,
    )
    assert said is not None
    assert "s3cr3t" not in said
    assert len(said) <= w.SUMMARY_MAX
    assert said.isprintable()


def test_only_the_end_of_a_huge_log_is_read(tmp_path: Path) -> None:
    # 20 MB of output, and a first line cut in the middle of a multi-byte character, do not matter.
    log = ("ü" * 40 + "\n") * 250_000 + "error: the last words\n"
    assert summary_of(tmp_path, log) == "error: the last words"


def test_a_failed_report_carries_what_the_entry_said(tmp_path: Path) -> None:
    why = summary_of(tmp_path, CAVITY_WITHOUT_ENV)
    report = w.end_report(1, [result("simgate-stderr.log", name="stderr")], None, (), why)
    assert (
        report["message"]
        == "exit code 1: blockMesh: Could not find mandatory etc entry (mode=ugo) 'controlDict'"
    )
    parse_body(StatusReport, report)
    assert w.end_report(0, [result("a.csv")], None, (), "ignored")["status"] == "COMPLETED"
    assert w.end_report(3, [], None, (), None)["message"] == "exit code 3"


# ------------------------------------------------------------------------------------------- small helpers


def test_retry_delays_double_up_to_the_cap_and_honour_retry_after() -> None:
    retry = w.Retry(attempts=8, first_delay=1, max_delay=60)
    delays = [retry.delay(n) for n in range(8)]
    for n, (got, base) in enumerate(zip(delays, [1, 2, 4, 8, 16, 32, 60, 60])):  # noqa: B905 (same length)
        assert base <= got <= base * 1.1, n
    assert 30 <= retry.delay(0, "30") <= 33
    assert w.Retry.from_job({"retry": {"attempts": 2, "first_delay": 0.01}}).attempts == 2
    assert w.Retry.from_job({}).attempts == w.RETRY_ATTEMPTS


@pytest.mark.parametrize(
    ("status", "again"),
    [
        (500, True),
        (503, True),
        (408, True),
        (429, True),
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (409, False),
        (200, False),
    ],
)
def test_which_answers_are_retried(status: int, again: bool) -> None:
    assert w.retryable(status) is again


def test_exit_status_of_a_signal_is_128_plus_its_number() -> None:
    assert [w.exit_status(c) for c in (0, 3, -15, -9)] == [0, 3, 143, 137]


def test_progress_is_a_number_from_0_to_100(tmp_path: Path) -> None:
    path = tmp_path / "p"
    assert w.read_progress(str(path)) is None
    for text, value in [
        ("42\n", 42.0),
        ("12.345", 12.35),
        ("100", 100.0),
        ("101", None),
        ("-1", None),
        ("half", None),
        ("nan", None),
        ("", None),
    ]:
        path.write_text(text)
        assert w.read_progress(str(path)) == value, text


def test_the_log_blots_out_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    w.remember_secret("tok/en+with=odd-chars")
    w._remember_sas("sv=2026-06-06&sp=cw&sig=SiGnAtUrE%2Babc%3D")
    w.log(
        "token tok/en+with=odd-chars, quoted tok%2Fen%2Bwith%3Dodd-chars, sig SiGnAtUrE+abc=, SiGnAtUrE%2Babc%3D"
    )
    err = capsys.readouterr().err
    assert "tok" not in err.replace("token", "")
    assert "SiGnAtUrE" not in err


def test_expiry_times_parse_as_utc() -> None:
    assert w.parse_time("1970-01-02T00:00:00.000Z") == 86400
    assert w.parse_time("2025-06-01T12:00:00Z") == 1748779200
    assert w.parse_time("soon") is None


def test_a_grant_is_renewed_shortly_before_it_expires() -> None:
    soon = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() + 60))
    later = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() + 3600))
    renewals: list[int] = []

    def renew() -> dict[str, Any]:
        renewals.append(1)
        return {
            "upload": {"url": "https://h/c2/", "sas": "sv=1&sig=new-signature", "expires_on": later}
        }

    grant = w.Grant("https://h/c", "?sv=1&sig=old-signature", soon, renew)
    assert grant.current() == ("https://h/c2", "sv=1&sig=new-signature")
    assert grant.current() == ("https://h/c2", "sv=1&sig=new-signature")
    assert len(renewals) == 1
    assert w.Grant("https://h/c", "sv=1&sig=x", later, renew).current() == (
        "https://h/c",
        "sv=1&sig=x",
    )
    assert len(renewals) == 1


def test_a_failed_renewal_keeps_the_old_grant_and_waits_before_asking_again() -> None:
    soon = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() + 60))
    calls: list[int] = []
    grant = w.Grant("https://h/c", "sv=1&sig=old-signature", soon, lambda: calls.append(1))
    assert grant.current() == grant.current() == ("https://h/c", "sv=1&sig=old-signature")
    assert calls == [1]


def test_grants_come_from_finalizing_replies_only_when_complete() -> None:
    assert w.Grant.from_reply(None) is None
    assert w.Grant.from_reply({"status": "FINALIZING"}) is None
    assert w.Grant.from_reply({"upload": {"url": "https://h/c"}}) is None
    grant = w.Grant.from_reply(
        {"upload": {"url": "https://h/c", "sas": "sv=1&sig=abcdefgh", "expires_on": "x"}}
    )
    assert grant is not None
    assert grant.current() == ("https://h/c", "sv=1&sig=abcdefgh")


@pytest.mark.parametrize(
    ("env", "scheme", "host", "expected"),
    [
        ({}, "https", "example.org", None),
        ({"https_proxy": "http://proxy:3128"}, "https", "example.org", ("proxy", 3128, {})),
        ({"https_proxy": "proxy:3128"}, "https", "example.org", ("proxy", 3128, {})),
        (
            {"https_proxy": "http://proxy:3128", "no_proxy": "example.org"},
            "https",
            "example.org",
            None,
        ),
        (
            {"https_proxy": "http://proxy:3128", "no_proxy": ".example.org"},
            "https",
            "a.example.org",
            None,
        ),
        ({"http_proxy": "http://proxy:8080"}, "https", "example.org", None),
        (
            {"http_proxy": "http://u%40x:p%3Aw@proxy:8080"},
            "http",
            "example.org",
            (
                "proxy",
                8080,
                {"Proxy-Authorization": "Basic " + base64.b64encode(b"u@x:p:w").decode()},
            ),
        ),
    ],
)
def test_proxies_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], scheme: str, host: str, expected: Any
) -> None:
    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert w.proxy_for(scheme, host) == expected


def test_the_entry_group_is_killed_when_it_outlives_sigterm(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proc = subprocess.Popen(
        ["sh", "-c", "trap '' TERM; sleep 60 & wait; sleep 60"], start_new_session=True
    )
    try:
        forwarder = w.SignalForwarder(proc)
        time.sleep(0.2)
        forwarder._forward(signal.SIGTERM, None)
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=0.5)  # it ignores SIGTERM
        forwarder.escalate_if_due()
        assert not forwarder.killed  # not before the grace time
        monkeypatch.setattr(w, "KILL_GRACE", 0.0)
        forwarder.escalate_if_due()
        assert w.exit_status(proc.wait(timeout=10)) == 137
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_exit_code_file_is_the_number_and_a_newline(tmp_path: Path) -> None:
    w.write_exit_code(143, str(tmp_path / ".simgate-exit-code"))
    assert (tmp_path / ".simgate-exit-code").read_text() == "143\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".simgate-exit-code"]


def test_outputs_may_lie_at_most_five_names_deep(tmp_path: Path) -> None:
    for rel in ("a/b/c/d/e.txt", "a/b/c/d/e/f.txt", "a/.cache/g.txt", "a/b c/h.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    selection = w.select_files(str(tmp_path), [{"name": "text", "glob": "*.txt"}])
    assert [p.file for p in selection.files] == [
        "a/b/c/d/e.txt"
    ]  # as the gateway's claim pattern allows


def test_the_wrapper_and_the_gateway_name_the_job_folder_alike() -> None:
    """The cross-process contract of `core.jobfolder`: the wrapper keeps its own copies, and they must agree."""
    assert (
        w.JOB_FILE,
        w.WRAPPER_FILE,
        w.BATCH_FILE,
        w.EXIT_CODE_FILE,
        w.STDOUT_LOG,
        w.STDERR_LOG,
    ) == (
        jobfolder.JOB_FILE,
        jobfolder.WRAPPER_FILE,
        jobfolder.BATCH_FILE,
        jobfolder.EXIT_CODE_FILE,
        jobfolder.STDOUT_LOG,
        jobfolder.STDERR_LOG,
    )
    assert w.API_VERSION == jobfolder.STORAGE_API_VERSION
