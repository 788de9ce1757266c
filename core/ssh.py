"""SSH to simulator targets: the one module that imports asyncssh.

One connection per target per event loop is opened on first use and reused for every command after it (the
original opened one per command); a connection that broke is dropped and opened again once. Host keys are
pinned from the target's settings, never learned. asyncssh's errors are translated here: an unreachable target is
`Unavailable` (transient: the queue retries), a target that refuses us for good is `DispatchRefused`.
"""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncssh

from core.errors import DispatchRefused, Unavailable
from core.ports import CommandResult
from core.targets import Target

T = TypeVar("T")


class SshPool:
    """The open connections of one event loop, by target name."""

    def __init__(self) -> None:
        self._connections: dict[str, asyncssh.SSHClientConnection] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.opened = 0  # connections opened so far (benchmarks and tests read it)

    async def run(
        self, target: Target, argv: list[str], stdin: bytes | None = None
    ) -> CommandResult:
        """Run `argv` (quoted for the remote shell) and collect its output; a non-zero exit is returned, not raised."""
        command = shlex.join(argv)

        async def attempt(conn: asyncssh.SSHClientConnection) -> CommandResult:
            done = await conn.run(
                command, input=stdin, encoding=None, check=False, timeout=target.command_timeout
            )
            status = done.exit_status if done.exit_status is not None else -1
            return CommandResult(status, _text(done.stdout), _text(done.stderr))

        return await self._with_connection(target, attempt)

    async def close(self) -> None:
        """Close every connection."""
        for conn in self._connections.values():
            conn.close()
        self._connections.clear()

    async def _with_connection(
        self, target: Target, action: Callable[[asyncssh.SSHClientConnection], Awaitable[T]]
    ) -> T:
        for tries_left in (1, 0):
            conn = await self._connection(target)
            try:
                return await action(conn)
            except (
                asyncssh.ConnectionLost,
                asyncssh.ChannelOpenError,
                BrokenPipeError,
                ConnectionResetError,
            ) as exc:
                self._drop(target, conn)
                if not tries_left:
                    raise Unavailable(f"ssh {target.name}: the connection broke: {exc}") from exc
            except (TimeoutError, asyncssh.TimeoutError) as exc:
                raise Unavailable(f"ssh {target.name}: the command timed out") from exc
        raise AssertionError("unreachable")

    async def _connection(self, target: Target) -> asyncssh.SSHClientConnection:
        key = _key(target)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:  # concurrent dispatches to one target share the one connection
            conn = self._connections.get(key)
            if conn is None or conn.is_closed():
                conn = self._connections[key] = await connect(target)
                self.opened += 1
            return conn

    def _drop(self, target: Target, conn: asyncssh.SSHClientConnection) -> None:
        if self._connections.get(_key(target)) is conn:
            del self._connections[_key(target)]
        conn.close()


def _key(target: Target) -> str:
    # The whole target, not just its name: one whose settings (address, pinned host key, ...) change is connected
    # to again, and checked against what it now pins.
    return target.model_dump_json()


async def connect(target: Target) -> asyncssh.SSHClientConnection:
    """A new connection to `target`, its host key checked against the pinned one."""
    if not target.known_hosts.strip():
        raise DispatchRefused(f"ssh {target.name}: no pinned host key: refusing to connect")
    try:
        key = asyncssh.import_private_key(target.private_key())
        return await asyncssh.connect(
            target.host,
            target.port,
            username=target.user,
            client_keys=[key],
            known_hosts=asyncssh.import_known_hosts(target.known_hosts),
            config=None,
            agent_path=None,
            preferred_auth="publickey",
            connect_timeout=target.connect_timeout,
            keepalive_interval=30,
        )
    except asyncssh.HostKeyNotVerifiable as exc:
        raise DispatchRefused(
            f"ssh {target.name}: the host key does not match the pinned key"
        ) from exc
    except asyncssh.PermissionDenied as exc:
        raise DispatchRefused(f"ssh {target.name}: authentication refused") from exc
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise DispatchRefused(
            f"ssh {target.name}: the private key or known_hosts setting is unusable"
        ) from exc
    except (OSError, TimeoutError, asyncssh.Error) as exc:
        raise Unavailable(f"ssh {target.name}: cannot connect: {_reason(exc)}") from exc


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}"


def _text(output: Any) -> str:
    if isinstance(output, bytes):
        return output.decode("utf-8", "replace")
    return str(output or "")
