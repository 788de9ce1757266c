"""Real simulators for the integration tests: OpenSSH's sshd on loopback and a one-node Slurm.

`tests/conftest.py` turns these into the session fixtures `sshd`, `slurm` and `embedded_simulator`; the recipes and
their traps are in ../shared/reference/local-stack.md §6 and §7. The test process runs on the same machine as the
"remote" side, so `exists`/`read` look at the target's files directly to check what a command did.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from devhost.setup import (
    CLIENT_KEY,
    SIMULATOR_HOST_KEY,
    SIMULATOR_JOBS,
    SIMULATOR_STEPS,
    known_hosts_line,
    make_ssh_key,
    public_path,
    read_public_key,
    run_setup,
)
from devhost.simulator import EmbeddedSimulator

SSHD = Path("/usr/sbin/sshd")
SLURMCTLD = Path("/usr/sbin/slurmctld")
SLURMD = Path("/usr/sbin/slurmd")
MUNGED = Path("/usr/sbin/munged")
LOOPBACK = "127.0.0.1"
TEST_USER = "simgate"
START_TIMEOUT = 20.0


class InfraError(RuntimeError):
    """A test component did not come up; the message carries its log."""


# -- small helpers ------------------------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port free on loopback right now (the kernel's pick)."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = LOOPBACK) -> bool:
    """True when something accepts TCP connections on host:port."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def pid_alive(pid: int) -> bool:
    """True when `pid` runs (a zombie counts as gone: nobody may reap it in a container)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _run(argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv), capture_output=True, text=True, timeout=30, check=False, **kwargs
    )


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"({path} unreadable)"


def _wait_until(check: Any, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return bool(check())


# -- the login --------------------------------------------------------------------------------------------------


def ensure_test_user(name: str = TEST_USER) -> pwd.struct_passwd:
    """The dedicated login user, created when missing (needs root), with a usable (non-locked) password field."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        _check(_run(["useradd", "-m", "-s", "/bin/sh", name]), "useradd")
        entry = pwd.getpwnam(name)
    if _password_locked(name):
        # `useradd` leaves "!" and with `UsePAM no` sshd then refuses even key logins ("account is locked");
        # "*" means no password can match, but the account is not locked.
        _check(_run(["usermod", "-p", "*", name]), "usermod")
    return entry


def _password_locked(name: str) -> bool:
    for line in Path("/etc/shadow").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == name:
            return fields[1].startswith("!")
    return False


def _check(done: subprocess.CompletedProcess[str], what: str) -> None:
    if done.returncode != 0:
        raise InfraError(f"{what} failed ({done.returncode}): {done.stderr.strip()}")


def install_authorized_key(entry: pwd.struct_passwd, public_key: str) -> None:
    """Make `public_key` the only key in the user's ~/.ssh/authorized_keys, owned by the user (sshd reads it as them).

    The user is the tests' own, so its key file is too: the last session's key is replaced, not kept.
    """
    ssh_dir = Path(entry.pw_dir) / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    keys = ssh_dir / "authorized_keys"
    keys.write_text(public_key + "\n")
    for path in (ssh_dir, keys):
        os.chown(path, entry.pw_uid, entry.pw_gid)
    keys.chmod(0o600)


# -- a login on some SSH server ---------------------------------------------------------------------------------


class SshLogin:
    """What a client needs to log in to one SSH server, and a look at the login's files from this machine."""

    host: str
    port: int
    user: str
    key_path: Path  # the client's private key
    host_key_path: Path  # the server's private host key (its .pub pins it)
    home: Path  # where commands start: the user's home (sshd) or the sandbox (embedded simulator)

    @property
    def known_hosts(self) -> str:
        """The known_hosts line pinning the server's host key at host:port."""
        return known_hosts_line(self.host, self.port, read_public_key(self.host_key_path))

    def path(self, path: str | Path) -> Path:
        """`path` on the target: absolute as is, relative from `home`."""
        return self.home / path

    def exists(self, path: str | Path) -> bool:
        """Whether `path` exists on the target (relative paths are from `home`)."""
        return self.path(path).exists()

    def read(self, path: str | Path) -> str:
        """The text of `path` on the target (relative paths are from `home`)."""
        return self.path(path).read_text()

    def read_if(self, path: str | Path) -> str | None:
        """The text of `path`, or None while it does not exist (for polling)."""
        try:
            return self.read(path)
        except FileNotFoundError:
            return None

    def mode(self, path: str | Path) -> int:
        """The permission bits of `path` (0o600, ...)."""
        return self.path(path).stat().st_mode & 0o7777

    def listdir(self, path: str | Path) -> list[str]:
        """The names in the folder `path` (sorted)."""
        return sorted(p.name for p in self.path(path).iterdir())

    @property
    def default_base_dir(self) -> Path:
        """Where job folders go unless a target says otherwise."""
        return self.home / "simgate-jobs"

    def target(
        self,
        name: str,
        scheduler: str = "direct",
        base_dir: str | None = None,
        setup: Iterable[str] = (),
        options: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """A target dict in core/targets.py's shape that reaches this login; `base_dir` defaults to
        `default_base_dir` (~/simgate-jobs on sshd, the set-up's .local/simulator/jobs on the embedded simulator)."""
        return {
            "name": name,
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "key_file": str(self.key_path),
            "known_hosts": self.known_hosts,
            "scheduler": scheduler,
            "base_dir": base_dir or str(self.default_base_dir),
            "setup": list(setup),
            "options": dict(options or {}),
        }


# -- OpenSSH's sshd ---------------------------------------------------------------------------------------------


SSHD_CONFIG = """\
# simgate test sshd (tests/infra.py): loopback only, keys only, its own host key.
Port {port}
ListenAddress 127.0.0.1
HostKey {host_key}
PidFile {state}/sshd.pid
AuthorizedKeysFile {authorized_keys}
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
# The temp dir lives under /tmp (mode 1777), which StrictModes refuses.
StrictModes no
UseDNS no
PrintMotd no
PrintLastLog no
Subsystem sftp internal-sftp
# A benchmark opens many connections and many sessions on each.
MaxSessions 100
MaxStartups 100:30:200
"""


class Sshd(SshLogin):
    """OpenSSH's sshd on 127.0.0.1 with its own config, keys and pid file in `state`.

    As root it logs in the dedicated user `simgate` (made if missing); otherwise the current user.
    `stop()` kills the listener (new connections are refused), `start()` brings it back on the same port and keys.
    """

    def __init__(self, state: Path) -> None:
        self.state_dir = state
        self.host = LOOPBACK
        self.port = free_port()
        self.key_path = state / "client_ed25519"
        self.host_key_path = state / "host_ed25519"
        self.config_path = state / "sshd_config"
        self.log_path = state / "sshd.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._prepare()

    def _prepare(self) -> None:
        make_ssh_key(self.host_key_path, "simgate-test-sshd")
        make_ssh_key(self.key_path, "simgate-test-client")
        public = public_path(self.key_path).read_text().strip()
        if os.geteuid() == 0:
            entry = ensure_test_user()
            install_authorized_key(entry, public)
            authorized_keys = ".ssh/authorized_keys"
        else:
            # sshd can only log in its own user; the key stays in the temp dir, out of the developer's ~/.ssh.
            entry = pwd.getpwuid(os.getuid())
            authorized_keys = str(self.state_dir / "authorized_keys")
            Path(authorized_keys).write_text(public + "\n")
        self.user, self.home = entry.pw_name, Path(entry.pw_dir)
        self.config_path.write_text(
            SSHD_CONFIG.format(
                port=self.port,
                host_key=self.host_key_path,
                state=self.state_dir,
                authorized_keys=authorized_keys,
            )
        )

    def start(self) -> Sshd:
        """Start sshd in the foreground (-D) and wait for its port; `InfraError` with its log when it fails."""
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(exist_ok=True)  # its privilege separation directory
        _check(_run([str(SSHD), "-t", "-f", str(self.config_path)]), "sshd -t")
        # Absolute path: sshd re-executes itself for every connection.
        self._process = subprocess.Popen(
            [str(SSHD), "-D", "-f", str(self.config_path), "-E", str(self.log_path)]
        )
        process = self._process
        if not _wait_until(
            lambda: process.poll() is not None or port_open(self.port), START_TIMEOUT
        ):
            self.stop()
            raise InfraError(f"sshd did not open port {self.port}:\n{_tail(self.log_path)}")
        if process.poll() is not None:
            raise InfraError(f"sshd exited with {process.returncode}:\n{_tail(self.log_path)}")
        return self

    def stop(self) -> None:
        """Kill the listening sshd (sessions already open live on in their own processes, as with a real restart)."""
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None


# -- the embedded simulator, as tests see it --------------------------------------------------------------------


class EmbeddedLogin(SshLogin):
    """devhost's embedded simulator for a throw-away checkout at `root`, on a free port."""

    def __init__(self, root: Path) -> None:
        run_setup(root, SIMULATOR_STEPS)
        self.root = root
        self.simulator = EmbeddedSimulator(root, port=0)
        self.host = LOOPBACK
        self.user = self.simulator.user
        self.key_path = root / CLIENT_KEY
        self.host_key_path = root / SIMULATOR_HOST_KEY
        self.home = self.simulator.sandbox

    @property
    def port(self) -> int:  # type: ignore[override]  # a property: the port is known once the server runs
        """The simulator's bound port."""
        return self.simulator.port

    @property
    def default_base_dir(self) -> Path:
        """The jobs folder set-up names in .local/targets.json."""
        return self.root / SIMULATOR_JOBS

    def start(self) -> EmbeddedLogin:
        """Start the simulator on its own thread."""
        self.simulator.start()
        return self

    def stop(self) -> None:
        """Stop the simulator."""
        self.simulator.stop()


# -- one-node Slurm ---------------------------------------------------------------------------------------------


SLURM_MARKER = "# simgate one-node test cluster: written by tests/infra.py (rewritten freely; delete to opt out)"
SLURM_CONF = Path("/etc/slurm/slurm.conf")
SLURM_STATE = Path("/var/lib/simgate-slurm")
TERMINAL_STATES = frozenset(
    {
        "COMPLETED",
        "FAILED",
        "CANCELLED",
        "TIMEOUT",
        "NODE_FAIL",
        "OUT_OF_MEMORY",
        "PREEMPTED",
        "BOOT_FAIL",
        "DEADLINE",
    }
)


def slurm_conf(node: str, cpus: int, memory_mb: int, state: Path = SLURM_STATE) -> str:
    """slurm.conf for one node that is also the controller; no cgroups, no accounting (local-stack.md §7)."""
    return f"""{SLURM_MARKER}
ClusterName=simgate
SlurmctldHost={node}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation={state}/state
SlurmdSpoolDir={state}/spool
SlurmctldPidFile={state}/slurmctld.pid
SlurmdPidFile={state}/slurmd.pid
SlurmctldLogFile={state}/slurmctld.log
SlurmdLogFile={state}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
# Schedule a batch job when it is submitted (by default it may wait up to 3 s).
SchedulerParameters=batch_sched_delay=0
ReturnToService=2
NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise InfraError("no MemTotal in /proc/meminfo")


class SlurmCluster:
    """munged, slurmctld and slurmd on this machine, configured in /etc/slurm/slurm.conf (so `sbatch` over SSH finds
    it without SLURM_CONF). Daemons already running are used and left running; those started here stop in `stop()`.
    """

    def __init__(self, conf: Path = SLURM_CONF, state: Path = SLURM_STATE) -> None:
        self.conf = conf
        self.state_dir = state
        self.node = socket.gethostname().split(".")[0]  # `hostname -s`: SlurmctldHost must match it
        self._started: list[Path] = []  # pid files of the daemons started here

    # -- lifecycle --------------------------------------------------------------------------------------------

    def start(self) -> SlurmCluster:
        """Bring munge and both Slurm daemons up and wait for the node to be idle."""
        self._ensure_munge()
        self._write_conf()
        for sub in ("state", "spool"):
            (self.state_dir / sub).mkdir(parents=True, exist_ok=True)
        started = self._ensure_daemon("slurmctld", SLURMCTLD)
        self._ensure_daemon("slurmd", SLURMD)
        self._wait_idle()
        if started:
            self._warm_up()
        return self

    def stop(self) -> None:
        """Stop the daemons this object started (newest first)."""
        for pid_file in reversed(self._started):
            pid = _read_pid(pid_file)
            if pid is not None and pid_alive(pid):
                os.kill(pid, signal.SIGTERM)
                if not _wait_until(lambda pid=pid: not pid_alive(pid), 10):
                    os.kill(pid, signal.SIGKILL)
        self._started = []

    def _ensure_munge(self) -> None:
        if _munge_works():
            return
        run_dir = Path("/run/munge")
        run_dir.mkdir(parents=True, exist_ok=True)
        shutil.chown(run_dir, "munge", "munge")
        _check(_run(["runuser", "-u", "munge", "--", str(MUNGED)]), "munged")
        self._started.append(run_dir / "munged.pid")
        if not _wait_until(_munge_works, START_TIMEOUT, 0.1):
            raise InfraError("munged started but `munge -n | unmunge` still fails")

    def _write_conf(self) -> None:
        text = slurm_conf(self.node, os.cpu_count() or 1, max(_memory_mb() // 2, 1), self.state_dir)
        if self.conf.exists():
            current = self.conf.read_text()
            if SLURM_MARKER not in current.splitlines():
                raise InfraError(
                    f"{self.conf} exists and is not the tests' own: refusing to replace it"
                )
            if current == text:
                return
        self.conf.parent.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(text)

    def _ensure_daemon(self, name: str, binary: Path) -> bool:
        pid_file = self.state_dir / f"{name}.pid"
        pid = _read_pid(pid_file)
        if pid is not None and pid_alive(pid) and _comm(pid) == name:
            return False
        _check(
            _run([str(binary), "-f", str(self.conf)]), name
        )  # it daemonizes once it has read the conf
        self._started.append(pid_file)
        return True

    def _warm_up(self) -> None:
        # A fresh slurmctld starts its first batch job about 3 s after it started, whatever the node says (later ones
        # within a second): pay that here, so a started cluster runs jobs now and tests' timeouts measure their jobs.
        done = _run(
            [
                "sbatch",
                "--parsable",
                "--job-name=simgate-warm-up",
                "--output=/dev/null",
                "--wrap=true",
            ]
        )
        _check(done, "sbatch (warm-up)")
        state = self.wait_done(done.stdout.strip().split(";")[0], START_TIMEOUT)
        if state != "COMPLETED":
            raise InfraError(
                f"the warm-up job ended {state}:\n{_tail(self.state_dir / 'slurmctld.log')}"
            )

    def _wait_idle(self) -> None:
        resumed = False
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            state = self.node_state()
            if state == "idle":
                return
            if state.rstrip("*") in ("down", "drain", "drained") and not resumed:
                # A node left DOWN by an unclean end of an earlier session: ReturnToService does not cover all cases.
                _run(["scontrol", "update", f"nodename={self.node}", "state=resume"])
                resumed = True
            time.sleep(0.2)
        raise InfraError(
            f"node {self.node} is {self.node_state()!r}, not idle, after {START_TIMEOUT:.0f} s\n"
            f"--- slurmctld.log\n{_tail(self.state_dir / 'slurmctld.log')}\n"
            f"--- slurmd.log\n{_tail(self.state_dir / 'slurmd.log')}"
        )

    # -- what tests ask ---------------------------------------------------------------------------------------

    def node_state(self) -> str:
        """The node's short state as sinfo prints it ("idle", "mix", "alloc", "down*", ...; "" when unknown)."""
        done = _run(["sinfo", "--noheader", f"--nodes={self.node}", "--format=%t"])
        return done.stdout.strip() if done.returncode == 0 else ""

    def jobs_named(self, name: str) -> list[str]:
        """Ids of every job called `name`, in any state (finished ones until slurmctld forgets them, 300 s)."""
        done = _run(["squeue", "--noheader", "--states=all", f"--name={name}", "--format=%i"])
        _check(done, "squeue")
        return done.stdout.split()

    def state(self, job_id: str) -> str:
        """The job's JobState (PENDING, RUNNING, COMPLETED, FAILED, ...); "UNKNOWN" when Slurm has no such job."""
        done = _run(["scontrol", "show", "job", "-o", job_id])
        match = re.search(r"\bJobState=(\S+)", done.stdout)
        return match.group(1) if done.returncode == 0 and match else "UNKNOWN"

    def wait_done(self, job_id: str, timeout: float = 30.0) -> str:
        """Wait until the job ends; its final JobState. `TimeoutError` naming the last state seen."""
        deadline = time.monotonic() + timeout
        while (state := self.state(job_id)) not in TERMINAL_STATES:
            if time.monotonic() > deadline:
                raise TimeoutError(f"Slurm job {job_id} still {state} after {timeout} s")
            time.sleep(0.1)
        return state


def _munge_works() -> bool:
    if shutil.which("munge") is None:
        return False
    credential = _run(["munge", "-n"])
    return credential.returncode == 0 and _run(["unmunge"], input=credential.stdout).returncode == 0


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


# -- the job wrapper --------------------------------------------------------------------------------------------

WRAPPER = Path(__file__).resolve().parent.parent / "simulator" / "wrapper.py"


def load_wrapper() -> ModuleType:
    """The job wrapper loaded from its file, as the cluster runs it (the app never imports it)."""
    spec = importlib.util.spec_from_file_location("simgate_wrapper_under_test", WRAPPER)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
