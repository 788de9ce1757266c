"""devhost's embedded SSH simulator and its set-up: what only it does (the SSH contract it shares with OpenSSH's
sshd is in tests/integration/test_simulators.py, run against both)."""

from __future__ import annotations

import asyncio
import json
import stat
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from core.targets import parse_targets
from devhost.__main__ import build_parser
from devhost.setup import (
    AUTHORIZED_KEYS,
    CLIENT_KEY,
    SIMULATOR_HOST_KEY,
    SIMULATOR_JOBS,
    SIMULATOR_STEPS,
    TARGETS_FILE,
    current_user,
    make_ssh_key,
    read_public_key,
    run_setup,
)
from devhost.simulator import EmbeddedSimulator, SimulatorError
from tests.infra import EmbeddedLogin, pid_alive


def connect(login: EmbeddedLogin | EmbeddedSimulator, root: Path, **overrides: Any) -> Any:
    """asyncssh.connect to a simulator of the checkout at `root`, with its client key and pinned host key."""
    pinned = f"[127.0.0.1]:{login.port} {read_public_key(root / SIMULATOR_HOST_KEY)}"
    options: dict[str, Any] = {
        "port": login.port,
        "username": login.user,
        "client_keys": [str(root / CLIENT_KEY)],
        "known_hosts": asyncssh.import_known_hosts(pinned),
        "config": None,
        "agent_path": None,
    }
    return asyncssh.connect("127.0.0.1", **{**options, **overrides})


async def run_one(
    login: EmbeddedLogin | EmbeddedSimulator, root: Path, command: str
) -> asyncssh.SSHCompletedProcess:
    """Run one command on a fresh connection."""
    async with connect(login, root) as conn:
        return await conn.run(command)


# -- set-up -------------------------------------------------------------------------------------------------------


def test_setup_makes_keys_and_targets_once(tmp_path: Path) -> None:
    assert all(r.ran for r in run_setup(tmp_path, SIMULATOR_STEPS))
    for secret in (CLIENT_KEY, SIMULATOR_HOST_KEY, AUTHORIZED_KEYS):
        assert stat.S_IMODE((tmp_path / secret).stat().st_mode) == 0o600, secret
    assert read_public_key(tmp_path / CLIENT_KEY) in (tmp_path / AUTHORIZED_KEYS).read_text()
    assert (tmp_path / SIMULATOR_JOBS).is_dir()
    before = (tmp_path / TARGETS_FILE).read_text()
    assert not any(r.ran for r in run_setup(tmp_path, SIMULATOR_STEPS))
    assert (tmp_path / TARGETS_FILE).read_text() == before


def test_targets_reach_the_simulator_with_its_pinned_key(tmp_path: Path) -> None:
    run_setup(tmp_path, SIMULATOR_STEPS)
    targets = parse_targets((tmp_path / TARGETS_FILE).read_text())
    assert sorted(targets) == ["cluster", "local"]
    for target in targets.values():
        assert (target.host, target.port, target.scheduler) == ("127.0.0.1", 2022, "direct")
        assert target.user == current_user()
        assert target.key_file == ".local/ssh/id_ed25519"
        assert (
            target.known_hosts
            == f"[127.0.0.1]:2022 {read_public_key(tmp_path / SIMULATOR_HOST_KEY)}"
        )
        assert target.base_dir == str((tmp_path / SIMULATOR_JOBS).resolve())


def test_a_new_host_key_rewrites_the_targets_and_keeps_other_ones(tmp_path: Path) -> None:
    run_setup(tmp_path, SIMULATOR_STEPS)
    targets_file = tmp_path / TARGETS_FILE
    targets = json.loads(targets_file.read_text())
    targets_file.write_text(json.dumps({**targets, "hpc": {"host": "hpc.example.org"}}))
    (
        tmp_path / SIMULATOR_HOST_KEY
    ).unlink()  # the developer deleted the host key: set-up makes a new one
    ran = {r.name for r in run_setup(tmp_path, SIMULATOR_STEPS) if r.ran}
    assert ran == {"simulator SSH host key", "simulator targets"}
    rewritten = json.loads(targets_file.read_text())
    assert rewritten["local"]["known_hosts"].endswith(
        read_public_key(tmp_path / SIMULATOR_HOST_KEY)
    )
    assert rewritten["hpc"] == {"host": "hpc.example.org"}


def test_targets_for_another_user_are_rewritten(tmp_path: Path) -> None:
    run_setup(tmp_path, SIMULATOR_STEPS)
    targets_file = tmp_path / TARGETS_FILE
    targets = json.loads(targets_file.read_text())
    targets["cluster"]["user"] = "someone-else"
    targets_file.write_text(json.dumps(targets))
    assert [r.name for r in run_setup(tmp_path, SIMULATOR_STEPS) if r.ran] == ["simulator targets"]
    assert json.loads(targets_file.read_text())["cluster"]["user"] == current_user()


def test_a_new_client_key_replaces_only_its_own_authorized_line(tmp_path: Path) -> None:
    run_setup(tmp_path, SIMULATOR_STEPS)
    keys = tmp_path / AUTHORIZED_KEYS
    keys.write_text(keys.read_text() + "ssh-ed25519 AAAAhandmade developer@laptop\n")
    make_ssh_key(tmp_path / CLIENT_KEY, "simgate-gateway")
    assert [r.name for r in run_setup(tmp_path, SIMULATOR_STEPS) if r.ran] == [
        "gateway SSH client key"
    ]
    lines = keys.read_text().splitlines()
    assert lines == [
        "ssh-ed25519 AAAAhandmade developer@laptop",
        f"{read_public_key(tmp_path / CLIENT_KEY)} simgate-gateway",
    ]


# -- what only the embedded simulator does ------------------------------------------------------------------------


def test_commands_start_in_the_sandbox(embedded_simulator: EmbeddedLogin) -> None:
    done = asyncio.run(run_one(embedded_simulator, embedded_simulator.root, "pwd"))
    assert done.stdout.strip() == str(embedded_simulator.simulator.sandbox)


def test_devhost_settings_do_not_reach_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_setup(tmp_path, SIMULATOR_STEPS)
    monkeypatch.setenv("AzureWebJobsStorage", "AccountKey=secret")
    monkeypatch.setenv("SIMGATE_TARGETS", "@.local/targets.json")
    with EmbeddedSimulator(tmp_path, port=0) as sim:
        done = asyncio.run(run_one(sim, tmp_path, "env"))
    env = dict(line.split("=", 1) for line in done.stdout.splitlines())
    assert "AzureWebJobsStorage" not in env
    assert "SIMGATE_TARGETS" not in env
    assert {"PATH", "HOME", "LANG"} <= set(env)


def test_only_the_current_user_may_log_in(embedded_simulator: EmbeddedLogin) -> None:
    with pytest.raises(asyncssh.PermissionDenied):
        asyncio.run(run_one_as(embedded_simulator, username="not-" + embedded_simulator.user))


def test_passwords_are_not_accepted(embedded_simulator: EmbeddedLogin) -> None:
    with pytest.raises(asyncssh.PermissionDenied):
        asyncio.run(
            run_one_as(
                embedded_simulator, client_keys=None, password="anything", preferred_auth="password"
            )
        )


async def run_one_as(login: EmbeddedLogin, **overrides: Any) -> None:
    async with connect(login, login.root, **overrides) as conn:
        await conn.run("true")


def test_a_command_killed_by_a_signal_reports_the_signal(embedded_simulator: EmbeddedLogin) -> None:
    done = asyncio.run(run_one(embedded_simulator, embedded_simulator.root, "kill -TERM $$"))
    assert done.exit_signal is not None
    assert done.exit_signal[0] == "TERM"


def test_the_command_is_killed_when_the_client_goes(embedded_simulator: EmbeddedLogin) -> None:
    pid_file = f"pid-{uuid.uuid4().hex[:8]}"

    async def start_and_leave() -> None:
        async with connect(embedded_simulator, embedded_simulator.root) as conn:
            await conn.create_process(f"echo $$ > {pid_file}; sleep 60; echo never")
            await _wait_for(lambda: embedded_simulator.exists(pid_file))

    asyncio.run(start_and_leave())
    pid = int(embedded_simulator.read(pid_file))
    deadline = time.monotonic() + 5
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(pid)


async def _wait_for(check: Any, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def test_it_serves_on_a_running_loop(tmp_path: Path) -> None:
    run_setup(tmp_path, SIMULATOR_STEPS)

    async def go() -> str:
        async with EmbeddedSimulator(tmp_path, port=0) as sim:
            return str((await run_one(sim, tmp_path, "echo inside")).stdout)

    assert asyncio.run(go()) == "inside\n"


def test_it_serves_on_a_loop_it_is_given(tmp_path: Path) -> None:
    run_setup(tmp_path, SIMULATOR_STEPS)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        with EmbeddedSimulator(tmp_path, port=0, loop=loop) as sim:
            assert asyncio.run(run_one(sim, tmp_path, "echo given")).stdout == "given\n"
        assert loop.is_running()  # the loop is the caller's: it keeps running
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


def test_blocking_start_on_its_own_loop_is_refused(tmp_path: Path) -> None:
    run_setup(tmp_path, SIMULATOR_STEPS)

    async def go() -> None:
        EmbeddedSimulator(tmp_path, port=0, loop=asyncio.get_running_loop()).start()

    with pytest.raises(RuntimeError, match="astart"):
        asyncio.run(go())


def test_a_taken_port_is_a_simulator_error(embedded_simulator: EmbeddedLogin) -> None:
    with pytest.raises(SimulatorError, match="cannot listen"):
        EmbeddedSimulator(embedded_simulator.root, port=embedded_simulator.port).start()


def test_a_missing_host_key_is_a_simulator_error(tmp_path: Path) -> None:
    with pytest.raises(SimulatorError, match="setup"):
        EmbeddedSimulator(tmp_path, port=0).start()


def test_serve_can_skip_the_simulator() -> None:
    args = build_parser().parse_args(["serve", "--no-simulator"])
    assert args.no_simulator
    assert not build_parser().parse_args(["serve"]).no_simulator
