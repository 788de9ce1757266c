"""The simulators the gateway dispatches to, driven with asyncssh the way core/ssh.py drives them.

The SSH contract runs against both devhost's embedded simulator and OpenSSH's sshd, so the local default behaves
like the real thing where the gateway can tell; then Slurm over the real sshd, and an sshd outage.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from devhost.setup import known_hosts_line, make_ssh_key, read_public_key
from tests.infra import SlurmCluster, Sshd, SshLogin


@pytest.fixture(params=["embedded_simulator", pytest.param("sshd", marks=pytest.mark.ssh)])
def server(request: pytest.FixtureRequest) -> SshLogin:
    """Each SSH server in turn."""
    login: SshLogin = request.getfixturevalue(request.param)
    return login


def connect(login: SshLogin, **overrides: Any) -> Any:
    """asyncssh.connect to `login`, pinned to its host key; `overrides` replace any option."""
    options: dict[str, Any] = {
        "port": login.port,
        "username": login.user,
        "client_keys": [str(login.key_path)],
        "known_hosts": asyncssh.import_known_hosts(login.known_hosts),
        "config": None,
        "agent_path": None,
    }
    return asyncssh.connect(login.host, **{**options, **overrides})


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def other_key(tmp_path: Path) -> Path:
    make_ssh_key(tmp_path / "other_ed25519", "not-the-right-one")
    return tmp_path / "other_ed25519"


# -- the SSH contract, on both servers ----------------------------------------------------------------------------


def test_a_command_returns_its_output_and_status(server: SshLogin) -> None:
    async def go() -> asyncssh.SSHCompletedProcess:
        async with connect(server) as conn:
            return await conn.run("echo out; echo err >&2; whoami")

    done = run(go())
    assert (done.exit_status, done.stdout, done.stderr) == (0, f"out\n{server.user}\n", "err\n")


def test_exit_code_3_comes_back_as_3(server: SshLogin) -> None:
    async def go() -> int:
        async with connect(server) as conn:
            return (await conn.run("exit 3")).exit_status

    assert run(go()) == 3


def test_stdin_reaches_the_command(server: SshLogin) -> None:
    async def go() -> str:
        async with connect(server) as conn:
            return (await conn.run("tr a-z A-Z", input="tar archive\n")).stdout

    assert run(go()) == "TAR ARCHIVE\n"


def test_sftp_upload_keeps_mode_0600(server: SshLogin) -> None:
    name = f"token-{uuid.uuid4().hex[:8]}"

    async def go() -> None:
        private = asyncssh.SFTPAttrs(permissions=0o600)
        async with (
            connect(server) as conn,
            conn.start_sftp_client() as sftp,
            sftp.open(name, "w", private) as remote,
        ):
            await remote.write("job token\n")

    run(go())
    path = server.path(name)
    assert server.read(name) == "job token\n"
    assert path.stat().st_mode & 0o777 == 0o600
    path.unlink()


def test_twenty_commands_at_once_on_one_connection(server: SshLogin) -> None:
    async def go() -> list[asyncssh.SSHCompletedProcess]:
        async with connect(server) as conn:
            return await asyncio.gather(*(conn.run(f"sleep 0.2; echo {i}") for i in range(20)))

    results = run(go())
    assert [(r.exit_status, r.stdout) for r in results] == [(0, f"{i}\n") for i in range(20)]


def test_a_wrong_host_key_is_refused_before_any_command(server: SshLogin, tmp_path: Path) -> None:
    marker = f"marker-{uuid.uuid4().hex[:8]}"
    wrong = known_hosts_line(server.host, server.port, read_public_key(other_key(tmp_path)))

    async def go() -> None:
        async with connect(server, known_hosts=asyncssh.import_known_hosts(wrong)) as conn:
            await conn.run(f"touch {marker}")

    with pytest.raises(asyncssh.HostKeyNotVerifiable):
        run(go())
    assert not server.exists(marker)
    run(
        _touch(server, marker)
    )  # the control: the same command with the right key does leave the marker
    assert server.exists(marker)
    server.path(marker).unlink()


async def _touch(server: SshLogin, name: str) -> None:
    async with connect(server) as conn:
        await conn.run(f"touch {name}", check=True)


def test_a_wrong_client_key_is_refused(server: SshLogin, tmp_path: Path) -> None:
    with pytest.raises(asyncssh.PermissionDenied):
        run(_open(server, client_keys=[str(other_key(tmp_path))]))


async def _open(server: SshLogin, **overrides: Any) -> None:
    async with connect(server, **overrides):
        pass


# -- OpenSSH only -------------------------------------------------------------------------------------------------


def test_the_target_helper_makes_a_valid_target(server: SshLogin) -> None:
    from core.targets import Target

    target = Target.model_validate(
        server.target("hpc", scheduler="slurm", options={"partition": "debug"})
    )
    assert (target.port, target.user, target.base_dir) == (
        server.port,
        server.user,
        str(server.default_base_dir),
    )
    assert target.private_key().startswith("-----BEGIN OPENSSH PRIVATE KEY-----")


@pytest.mark.ssh
def test_an_sshd_outage_refuses_connections_until_it_is_back(sshd: Sshd) -> None:
    async def echo() -> str:
        async with connect(sshd) as conn:
            return (await conn.run("echo back")).stdout

    sshd.stop()
    try:
        with pytest.raises(ConnectionRefusedError):
            run(_open(sshd))
    finally:
        sshd.start()
    assert run(echo()) == "back\n"


# -- Slurm over the real sshd -------------------------------------------------------------------------------------

JOB_SCRIPT = '#!/bin/sh\necho "hello from $SLURM_JOB_ID as $(whoami)" > result.txt\n'


@pytest.mark.ssh
@pytest.mark.slurm
def test_sbatch_over_ssh_runs_the_job_as_the_login_user(sshd: Sshd, slurm: SlurmCluster) -> None:
    name = f"simgate-{uuid.uuid4().hex[:10]}"
    folder = f"simgate-jobs/{name}"

    async def submit() -> asyncssh.SSHCompletedProcess:
        async with connect(sshd) as conn:
            await conn.run(f"mkdir -p {folder}", check=True)
            async with (
                conn.start_sftp_client() as sftp,
                sftp.open(f"{folder}/job.sh", "w") as remote,
            ):
                await remote.write(JOB_SCRIPT)
            return await conn.run(
                f"cd {folder} && sbatch --parsable --job-name={name} --output=slurm.out job.sh"
            )

    done = run(submit())
    assert done.exit_status == 0, done.stderr
    job_id = done.stdout.strip().split(";")[0]  # --parsable prints "id" or "id;cluster"
    assert job_id.isdigit()
    assert slurm.wait_done(job_id, timeout=20) == "COMPLETED"
    assert sshd.read(f"{folder}/result.txt") == f"hello from {job_id} as {sshd.user}\n"
    assert slurm.jobs_named(name) == [job_id]
    shutil.rmtree(sshd.path(folder))
