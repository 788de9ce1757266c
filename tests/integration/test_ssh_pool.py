"""The SSH pool against devhost's embedded simulator: one connection reused, re-opened when it breaks."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from core.errors import Unavailable
from core.ssh import SshPool
from core.targets import Target
from devhost.simulator import EmbeddedSimulator
from tests.infra import EmbeddedLogin, free_port

pytestmark = pytest.mark.ssh


def test_one_connection_serves_many_commands_and_is_reopened_after_a_break(tmp_path: Path) -> None:
    login = EmbeddedLogin(tmp_path)
    login.simulator = EmbeddedSimulator(
        tmp_path, port=free_port()
    )  # a fixed port, so a restart comes back on it
    login.start()
    target = Target.model_validate(login.target("local"))
    pool = SshPool()

    async def run_all() -> list[str]:
        return [(await pool.run(target, ["echo", str(i)])).stdout for i in range(20)]

    async def scenario() -> None:
        assert await run_all() == [f"{i}\n" for i in range(20)]
        assert pool.opened == 1
        await asyncio.to_thread(login.stop)  # the server goes away: the open connection breaks
        with pytest.raises(Unavailable):
            await pool.run(target, ["true"])
        await asyncio.to_thread(login.start)
        assert (await pool.run(target, ["sh", "-c", "exit 3"])).exit_status == 3
        assert pool.opened == 2
        await pool.close()

    try:
        asyncio.run(scenario())
    finally:
        login.stop()
