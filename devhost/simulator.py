"""The embedded local simulator: an SSH server (asyncssh) on loopback that runs jobs as the current user.

`make run` dispatches to it through the `local` and `cluster` targets that set-up writes to `.local/targets.json`,
so the whole gateway runs without root or a system sshd:

    with EmbeddedSimulator(root, port=2022) as sim:
        ...  # ssh -p 2022 -i .local/ssh/id_ed25519 $USER@127.0.0.1 'echo hi'

It behaves like OpenSSH's sshd as far as the gateway can tell: public-key login only (keys from
`.local/ssh/authorized_keys`, for the current OS user only), `exec` requests run `/bin/sh -c <command>` with
stdin/stdout/stderr wired and the exit status returned, and the `sftp` subsystem serves files. Commands start in the
sandbox `.local/simulator` with a minimal environment: devhost's own settings (storage keys and the like, which it
holds in os.environ) never reach a job.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import pwd
import signal
import threading
from collections.abc import Coroutine
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import asyncssh

from devhost.setup import (
    AUTHORIZED_KEYS,
    SIMULATOR_DIR,
    SIMULATOR_HOST,
    SIMULATOR_HOST_KEY,
    SIMULATOR_PORT,
    current_user,
)

log = logging.getLogger(__name__)

SHELL = "/bin/sh"
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
CHUNK = 65536
KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL for a command whose client went away
LOOP_TIMEOUT = 15.0  # for start/stop to be done on the simulator's loop

_S = TypeVar("_S")


class SimulatorError(RuntimeError):
    """The simulator could not start (its key is missing, or the port is taken)."""


def session_environment(user: str) -> dict[str, str]:
    """The environment of every command: what sshd would give a login, nothing of devhost's own."""
    entry = pwd.getpwnam(user)
    return {
        "PATH": DEFAULT_PATH,
        "HOME": entry.pw_dir,
        "USER": user,
        "LOGNAME": user,
        "SHELL": SHELL,
        "LANG": os.environ.get("LANG") or "C.UTF-8",
    }


class EmbeddedSimulator:
    """An SSH server on `host:port` for the checkout at `root` (its keys and sandbox live under `root/.local`).

    `start()` serves on `loop` when one is given (running in another thread), else on a thread of its own; inside a
    running loop use `async with` (or `astart()`/`astop()`) instead. `port=0` picks a free port: read `port`.
    """

    def __init__(
        self,
        root: Path,
        port: int = SIMULATOR_PORT,
        host: str = SIMULATOR_HOST,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.root = Path(root).resolve()
        self.host = host
        self._port = port
        self.user = current_user()
        self.sandbox = self.root / SIMULATOR_DIR
        self._loop = loop
        self._thread: threading.Thread | None = None
        self._acceptor: asyncssh.SSHAcceptor | None = None
        self._sessions = _Sessions(self.sandbox, session_environment(self.user))
        self._connections: set[asyncssh.SSHServerConnection] = set()

    # -- addresses ----------------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port it listens on (the bound one once started, so `port=0` reads back the real port)."""
        return self._acceptor.get_port() if self._acceptor is not None else self._port

    @property
    def address(self) -> str:
        """ "user@host:port", for the start-up banner."""
        return f"{self.user}@{self.host}:{self.port}"

    # -- lifecycle from synchronous code ------------------------------------------------------------------------

    def start(self) -> EmbeddedSimulator:
        """Start listening; returns once the port is open. `SimulatorError` when it cannot."""
        if self._loop is not None and _running_loop() is self._loop:
            raise RuntimeError(
                "EmbeddedSimulator.start() would block its own loop: use astart() (or async with)"
            )
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(
                target=self._loop.run_forever, name="devhost-simulator", daemon=True
            )
            self._thread.start()
        try:
            self._call(self.astart())
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop listening, close every connection and kill the commands still running; stop our own loop."""
        loop = self._loop
        if loop is None:
            return
        if loop.is_running():
            self._call(self.astop())
        if self._thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join(timeout=10)
            loop.close()
            self._thread = None
            self._loop = None

    def _call(self, coro: Coroutine[Any, Any, None]) -> None:
        assert self._loop is not None
        if _running_loop() is self._loop:
            coro.close()
            raise RuntimeError("EmbeddedSimulator.stop() would block its own loop: use astop()")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            future.result(timeout=LOOP_TIMEOUT)
        except concurrent.futures.TimeoutError as exc:
            raise SimulatorError("the simulator's event loop did not answer in time") from exc

    def __enter__(self) -> EmbeddedSimulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- lifecycle on a running loop ----------------------------------------------------------------------------

    async def astart(self) -> None:
        """Start listening on the running loop."""
        host_key = self.root / SIMULATOR_HOST_KEY
        if not host_key.is_file():
            raise SimulatorError(f"{host_key} is missing: run `python -m devhost setup`")
        self.sandbox.mkdir(parents=True, exist_ok=True)
        try:
            self._acceptor = await asyncssh.listen(
                self.host,
                self._port,
                server_host_keys=[str(host_key)],
                server_factory=self._server,
                process_factory=self._sessions.run,
                sftp_factory=self._sftp,
                encoding=None,
                allow_pty=False,
                agent_forwarding=False,
                x11_forwarding=False,
                config=None,
            )
        except OSError as exc:
            raise SimulatorError(
                f"cannot listen on {self.host}:{self._port}: {exc.strerror or exc}"
            ) from exc
        log.info("simulator serving SSH at %s (sandbox %s)", self.address, self.sandbox)

    async def astop(self) -> None:
        """Stop listening, close every connection and kill what still runs."""
        acceptor, self._acceptor = self._acceptor, None
        if acceptor is not None:
            acceptor.close()
        # Close the connections first: newer asyncio servers wait for them in wait_closed().
        connections = list(self._connections)
        for conn in connections:
            conn.close()
        await self._sessions.kill_all()
        if connections:
            await asyncio.wait(
                [asyncio.ensure_future(c.wait_closed()) for c in connections], timeout=KILL_GRACE
            )
        if acceptor is not None:
            await acceptor.wait_closed()

    async def __aenter__(self) -> EmbeddedSimulator:
        await self.astart()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.astop()

    # -- per connection -----------------------------------------------------------------------------------------

    def _server(self) -> asyncssh.SSHServer:
        return _Server(self.user, self.root / AUTHORIZED_KEYS, self._connections)

    def _sftp(self, chan: asyncssh.SSHServerChannel[bytes]) -> asyncssh.SFTPServer:
        return _SandboxSFTPServer(chan, self.sandbox)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class _Server(asyncssh.SSHServer):
    """Authentication for one connection: public keys from authorized_keys, for one user name only."""

    def __init__(
        self, user: str, authorized_keys: Path, connections: set[asyncssh.SSHServerConnection]
    ) -> None:
        self._user = user
        self._authorized_keys = authorized_keys
        self._connections = connections
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._connections.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._connections.discard(self._conn)

    def begin_auth(self, username: str) -> bool:
        # Any other user name gets no keys at all, so every attempt fails the way sshd fails an unknown user.
        # The file is read per login, so a key added to it works without a restart.
        if username == self._user and self._conn is not None and self._authorized_keys.is_file():
            self._conn.set_authorized_keys(str(self._authorized_keys))
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False


class _SandboxSFTPServer(asyncssh.SFTPServer):
    """asyncssh's SFTP server, with relative paths taken from the sandbox (sshd takes them from the home)."""

    def __init__(self, chan: asyncssh.SSHServerChannel[bytes], sandbox: Path) -> None:
        super().__init__(chan)
        self._sandbox = os.fsencode(sandbox)

    def map_path(self, path: bytes) -> bytes:
        return path if path.startswith(b"/") else os.path.join(self._sandbox, path)


class _Sessions:
    """Runs each exec (or shell) request as a `/bin/sh` child in the sandbox and tracks the children."""

    def __init__(self, sandbox: Path, env: dict[str, str]) -> None:
        self._sandbox = sandbox
        self._env = env
        self._running: set[asyncio.subprocess.Process] = set()

    async def run(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        """Serve one session: run its command, wire its streams, report its exit (or kill it if the client left)."""
        if process.subsystem is not None:
            process.stderr.write(f"subsystem {process.subsystem!r} is not supported\n".encode())
            process.exit(1)
            return
        argv = [SHELL, "-c", process.command] if process.command is not None else [SHELL]
        child = await asyncio.create_subprocess_exec(
            *argv,
            cwd=self._sandbox,
            env=self._env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own group, so a kill takes its children
        )
        self._running.add(child)
        try:
            await self._serve(process, child)
        finally:
            self._running.discard(child)

    async def _serve(
        self, process: asyncssh.SSHServerProcess[bytes], child: asyncio.subprocess.Process
    ) -> None:
        feeder = asyncio.ensure_future(_feed(process.stdin, _pipe(child.stdin)))
        finished = asyncio.ensure_future(_finish(child, process))
        closed = asyncio.ensure_future(process.channel.wait_closed())
        try:
            await asyncio.wait({finished, closed}, return_when=asyncio.FIRST_COMPLETED)
            if finished.done():
                _report_exit(process, finished.result())
            else:
                log.info("simulator: the client left; killing pid %d", child.pid)
                await _kill(child)
        finally:
            for task in (feeder, finished, closed):
                task.cancel()

    async def kill_all(self) -> None:
        """Kill every command still running (the simulator is stopping)."""
        await asyncio.gather(*(_kill(child) for child in list(self._running)))


def _pipe(stream: _S | None) -> _S:
    if stream is None:
        raise RuntimeError("the command's pipes were not created")
    return stream


async def _finish(
    child: asyncio.subprocess.Process, process: asyncssh.SSHServerProcess[bytes]
) -> int:
    # The exit status may go out only after all the output did, or the client could miss the end of it.
    drained = asyncio.gather(
        _drain(_pipe(child.stdout), process.stdout), _drain(_pipe(child.stderr), process.stderr)
    )
    status, _ = await asyncio.gather(child.wait(), drained)
    return status


async def _feed(source: asyncssh.SSHReader[bytes], sink: asyncio.StreamWriter) -> None:
    # Client stdin → the command; EOF from the client closes the command's stdin, as sshd does.
    try:
        while chunk := await source.read(CHUNK):
            sink.write(chunk)
            await sink.drain()
    except (BrokenPipeError, ConnectionResetError):
        pass  # the command stopped reading: the rest of the input has nowhere to go
    finally:
        sink.close()


async def _drain(source: asyncio.StreamReader, sink: asyncssh.SSHWriter[bytes]) -> None:
    # The command's output → the client. If the client is gone, keep reading so the command never blocks on a
    # full pipe before it is killed.
    while chunk := await source.read(CHUNK):
        with contextlib.suppress(BrokenPipeError, ConnectionError, asyncssh.Error):
            sink.write(chunk)
            await sink.drain()


def _report_exit(process: asyncssh.SSHServerProcess[bytes], returncode: int) -> None:
    # A command killed by a signal is reported as sshd does: exit-signal, not a made-up status.
    if returncode < 0:
        process.exit_with_signal(signal.Signals(-returncode).name.removeprefix("SIG"))
    else:
        process.exit(returncode)


async def _kill(child: asyncio.subprocess.Process) -> None:
    """SIGTERM the command's process group, then SIGKILL it if it has not gone after a grace period."""
    for sig, wait in ((signal.SIGTERM, KILL_GRACE), (signal.SIGKILL, None)):
        if child.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.pid, sig)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(child.wait(), wait)
