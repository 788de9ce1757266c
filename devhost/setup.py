"""First-use set-up (`python -m devhost setup`): generate the local secrets and folders, once.

Set-up is a list of `Step`s. Each step names the files it makes and is skipped when they already exist, so running
set-up again is harmless and later secrets (a dev JWT signing key, SSH keys) are one more `Step` in `STEPS`.
"""

from __future__ import annotations

import datetime as dt
import glob
import ipaddress
import json
import logging
import os
import pwd
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from devhost.settings import EXAMPLE_SETTINGS, LOCAL_SETTINGS
from devhost.tokens import JWKS_FILE, SIGNING_KEY, make_key_pair

log = logging.getLogger(__name__)

CERT_FILE = Path(".local/certs/azurite.pem")
KEY_FILE = Path(".local/certs/azurite-key.pem")
AZURITE_DIR = Path(".local/azurite")
CERT_DAYS = 365
# Renew the certificate this long before it expires, so a long-lived checkout never starts with a dead cert.
CERT_RENEW_BEFORE = dt.timedelta(days=14)

# The embedded SSH simulator (devhost/simulator.py) and the gateway's key to it.
SSH_DIR = Path(".local/ssh")
SIMULATOR_HOST_KEY = SSH_DIR / "simulator_host_ed25519"
CLIENT_KEY = SSH_DIR / "id_ed25519"
AUTHORIZED_KEYS = SSH_DIR / "authorized_keys"
SIMULATOR_DIR = Path(".local/simulator")  # the sandbox: commands run here
SIMULATOR_JOBS = SIMULATOR_DIR / "jobs"
TARGETS_FILE = Path(".local/targets.json")
SIMULATOR_HOST = "127.0.0.1"
SIMULATOR_PORT = 2022
SIMULATOR_TARGETS = ("local", "cluster")
# What identifies the embedded simulator in its targets: set-up's, rewritten at every set-up. Anything else in
# those entries (set-up lines, options, ...) is the developer's and survives set-up.
SIMULATOR_IDENTITY = ("host", "port", "user", "known_hosts", "key_file", "base_dir")
# Where an installed OpenFOAM's etc/bashrc is looked for (after $WM_PROJECT_DIR's), in this order.
OPENFOAM_PLACES = (
    "/usr/share/openfoam/etc/bashrc",  # Debian's and Ubuntu's `openfoam` package (what `make test` installs)
    "/usr/lib/openfoam/openfoam*/etc/bashrc",  # openfoam.com's packages
    "/opt/openfoam*/etc/bashrc",  # openfoam.org's packages
    "~/OpenFOAM/OpenFOAM-*/etc/bashrc",  # built from source
)
OPENFOAM = "openfoam"  # what the targets then provide (the cases' `requires`)
GENERATED_MARK = "# devhost setup's own line: rewritten at each set-up"
CLIENT_KEY_COMMENT = "simgate-gateway"


@dataclass(frozen=True)
class Step:
    """One idempotent set-up step: `make(root)` runs only when `is_done(root)` says the output is missing."""

    name: str
    outputs: tuple[Path, ...]
    make: Callable[[Path], None]
    is_fresh: Callable[[Path], bool] | None = None

    def is_done(self, root: Path) -> bool:
        """True when every output exists (and, if the step checks it, is still fresh)."""
        if not all((root / p).exists() for p in self.outputs):
            return False
        return self.is_fresh is None or self.is_fresh(root)


@dataclass(frozen=True)
class StepResult:
    """What a set-up run did with one step."""

    name: str
    ran: bool


def write_private(path: Path, data: bytes) -> None:
    """Write a secret readable by the owner only (0600), creating parent folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)  # O_CREAT's mode does not apply to a file that already existed


def make_self_signed_cert(cert_path: Path, key_path: Path, days: int = CERT_DAYS) -> None:
    """Make a self-signed TLS certificate for localhost/127.0.0.1 that is its own CA (a trust anchor for clients)."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _build_cert(key, days)
    write_private(
        key_path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _build_cert(key: ec.EllipticCurvePrivateKey, days: int) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    public = key.public_key()
    # CA:TRUE lets the file be the client's trust anchor; the key identifiers keep strict verifiers
    # (Python 3.13's VERIFY_X509_STRICT) happy.
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_san(), critical=False)
        .add_extension(_key_usage(), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
    )
    return builder.sign(key, hashes.SHA256())


def _san() -> x509.SubjectAlternativeName:
    return x509.SubjectAlternativeName(
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.IPv4Address("127.0.0.1"))]
    )


def _key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def cert_is_fresh(cert_path: Path, renew_before: dt.timedelta = CERT_RENEW_BEFORE) -> bool:
    """True when the certificate parses and does not expire within `renew_before`."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError):
        return False
    return cert.not_valid_after_utc - renew_before > dt.datetime.now(dt.UTC)


def _make_azurite_cert(root: Path) -> None:
    make_self_signed_cert(root / CERT_FILE, root / KEY_FILE)


def _copy_local_settings(root: Path) -> None:
    source = root / EXAMPLE_SETTINGS
    if not source.is_file():
        raise FileNotFoundError(f"{source} is missing; cannot create {LOCAL_SETTINGS}")
    write_private(root / LOCAL_SETTINGS, source.read_bytes())


def _make_azurite_dir(root: Path) -> None:
    (root / AZURITE_DIR).mkdir(parents=True, exist_ok=True)


def _make_signing_key(root: Path) -> None:
    make_key_pair(root / SIGNING_KEY, root / JWKS_FILE)


def current_user() -> str:
    """The OS user this process runs as (by uid, not $USER, which the environment can fake)."""
    return pwd.getpwuid(os.getuid()).pw_name


def public_path(private: Path) -> Path:
    """Where the OpenSSH public key of the private key file `private` lives (`<name>.pub`)."""
    return private.with_name(private.name + ".pub")


def make_ssh_key(path: Path, comment: str) -> None:
    """Make an Ed25519 key pair in OpenSSH format: `path` (0600) and `path.pub`."""
    key = ed25519.Ed25519PrivateKey.generate()
    write_private(
        path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        ),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    public_path(path).write_bytes(public + f" {comment}\n".encode())


def read_public_key(private: Path) -> str:
    """ "ssh-ed25519 AAAA..." (type and key, no comment) of the private key file `private`."""
    key = serialization.load_ssh_private_key(private.read_bytes(), password=None)
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return public.decode()


def known_hosts_line(host: str, port: int, public_key: str) -> str:
    """The known_hosts line pinning `public_key` for host:port (OpenSSH writes "[host]:port" off port 22)."""
    name = host if port == 22 else f"[{host}]:{port}"
    return f"{name} {public_key}"


def _make_simulator_host_key(root: Path) -> None:
    make_ssh_key(root / SIMULATOR_HOST_KEY, "simgate-simulator-host")


def _make_client_key(root: Path) -> None:
    # Keep an existing client key (only authorized_keys may be missing or stale). In authorized_keys only our own
    # line (by its comment) is replaced, so keys a developer added by hand (to `ssh -p 2022` in) stay.
    if not (root / CLIENT_KEY).exists():
        make_ssh_key(root / CLIENT_KEY, CLIENT_KEY_COMMENT)
    authorized = root / AUTHORIZED_KEYS
    lines = authorized.read_text().splitlines() if authorized.exists() else []
    kept = [line for line in lines if line.split()[2:3] != [CLIENT_KEY_COMMENT]]
    ours = f"{read_public_key(root / CLIENT_KEY)} {CLIENT_KEY_COMMENT}"
    write_private(authorized, "".join(f"{line}\n" for line in [*kept, ours]).encode())


def _client_key_is_authorized(root: Path) -> bool:
    try:
        wanted = read_public_key(root / CLIENT_KEY)
        lines = (root / AUTHORIZED_KEYS).read_text().splitlines()
    except (OSError, ValueError):
        return False
    return any(line.split()[:2] == wanted.split() for line in lines if line.strip())


def _make_simulator_dirs(root: Path) -> None:
    (root / SIMULATOR_JOBS).mkdir(parents=True, exist_ok=True)


def simulator_target(root: Path) -> dict[str, object]:
    """A target (core/targets.py shape) reaching the embedded simulator of the checkout at `root`."""
    public = read_public_key(root / SIMULATOR_HOST_KEY)
    return {
        "host": SIMULATOR_HOST,
        "port": SIMULATOR_PORT,
        "user": current_user(),
        "key_file": str(CLIENT_KEY),
        "known_hosts": known_hosts_line(SIMULATOR_HOST, SIMULATOR_PORT, public),
        "scheduler": "direct",
        "base_dir": str((root / SIMULATOR_JOBS).resolve()),
    }


def find_openfoam(places: Sequence[str] | None = None) -> Path | None:
    """The etc/bashrc of an installed OpenFOAM: the one already loaded ($WM_PROJECT_DIR), else the first of
    `places` (globs, OPENFOAM_PLACES by default; of several matches the newest-named) that exists; or None."""
    found = (
        [Path(os.environ["WM_PROJECT_DIR"]) / "etc/bashrc"]
        if os.environ.get("WM_PROJECT_DIR")
        else []
    )
    for place in OPENFOAM_PLACES if places is None else places:
        found += sorted((Path(p) for p in glob.glob(os.path.expanduser(place))), reverse=True)
    # Absolute but not resolved: the bashrc finds its project folder from the path it is loaded by.
    return next((path.absolute() for path in found if path.is_file()), None)


def openfoam_setup_line(bashrc: Path) -> str:
    """The set-up line that loads OpenFOAM into a job's batch script, marked as set-up's own.

    The batch script is POSIX sh with `set -eu` (README, "Running jobs"): the bashrc reads unset variables and
    finds its own folder through BASH_SOURCE, which only bash sets, so `-u` is off while it runs and BASH_SOURCE
    is named. Its complaints about helper scripts Debian does not ship are harmless and kept out of the job's log.
    """
    rc = shlex.quote(str(bashrc))
    return f"set +u; BASH_SOURCE={rc}; . {rc} >/dev/null 2>&1; unset BASH_SOURCE; set -u  {GENERATED_MARK}"


def embedded_target(root: Path, existing: object, openfoam: Path | None) -> dict[str, object]:
    """What the generated target `existing` (as read from the file) becomes at this set-up.

    The keys that identify the simulator are set-up's and rewritten; so are the set-up line that ends with
    GENERATED_MARK and `openfoam` in `provides`, which come and go with the OpenFOAM set-up finds, unless you
    provide `openfoam` yourself (without set-up's line): then both are yours. Everything else (your own set-up
    lines, options, provides, any other key) is kept as you left it.
    """
    entry = existing if isinstance(existing, dict) else {}
    target = {
        **simulator_target(root),
        **{k: v for k, v in entry.items() if k not in SIMULATOR_IDENTITY},
    }
    setup, provides = entry.get("setup", []), entry.get("provides", [])
    if not (_strings(setup) and _strings(provides)):
        return (
            target  # not set-up's to mend: the gateway names the bad field when it reads the file
        )
    yours = [line for line in setup if not line.rstrip().endswith(GENERATED_MARK)]
    ours_before = len(yours) < len(setup)
    if OPENFOAM in provides and not ours_before:
        return {
            **target,
            "setup": setup,
            "provides": provides,
        }  # an OpenFOAM of your own: set-up keeps out of it
    if openfoam is None:
        return {**target, "setup": yours, "provides": [p for p in provides if p != OPENFOAM]}
    # First: your lines may build on OpenFOAM's environment.
    return {
        **target,
        "setup": [openfoam_setup_line(openfoam), *yours],
        "provides": provides if OPENFOAM in provides else [*provides, OPENFOAM],
    }


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _read_targets(root: Path) -> dict[str, object]:
    try:
        data = json.loads((root / TARGETS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _wanted_targets(root: Path, openfoam: Path | None) -> dict[str, object]:
    """The targets file as this set-up leaves it: other targets as they are, ours brought up to date."""
    targets = _read_targets(root)
    return {
        **targets,
        **{name: embedded_target(root, targets.get(name), openfoam) for name in SIMULATOR_TARGETS},
    }


def _write_targets(root: Path) -> None:
    openfoam = find_openfoam()
    targets = _wanted_targets(root, openfoam)
    if openfoam is None:
        log.warning(
            "set-up: OpenFOAM not found (%s): the cases that need it show as unavailable; install it "
            "(`make test` as root does) and start again",
            ", ".join(OPENFOAM_PLACES),
        )
    else:
        log.info("set-up: the simulator targets load OpenFOAM from %s", openfoam)
    (root / TARGETS_FILE).write_text(json.dumps(targets, indent=2) + "\n")


def _targets_are_current(root: Path) -> bool:
    # Rewritten only when something set-up owns has changed (the simulator's host key, the user, where it listens,
    # an OpenFOAM installed or removed): what a developer changed in the entries is theirs and stays either way.
    return (root / TARGETS_FILE).is_file() and _read_targets(root) == _wanted_targets(
        root, find_openfoam()
    )


# The embedded simulator's keys, sandbox and the targets that reach it (in this order: each needs the one before).
SIMULATOR_STEPS: tuple[Step, ...] = (
    Step(
        "simulator SSH host key",
        (SIMULATOR_HOST_KEY, public_path(SIMULATOR_HOST_KEY)),
        _make_simulator_host_key,
    ),
    Step(
        "gateway SSH client key",
        (CLIENT_KEY, AUTHORIZED_KEYS),
        _make_client_key,
        is_fresh=_client_key_is_authorized,
    ),
    Step("simulator sandbox", (SIMULATOR_JOBS,), _make_simulator_dirs),
    Step("simulator targets", (TARGETS_FILE,), _write_targets, is_fresh=_targets_are_current),
)

STEPS: tuple[Step, ...] = (
    Step(
        "Azurite TLS certificate",
        (CERT_FILE, KEY_FILE),
        _make_azurite_cert,
        is_fresh=lambda root: cert_is_fresh(root / CERT_FILE),
    ),
    Step(LOCAL_SETTINGS, (Path(LOCAL_SETTINGS),), _copy_local_settings),
    Step("Azurite data folder", (AZURITE_DIR,), _make_azurite_dir),
    Step("development token signing key", (SIGNING_KEY, JWKS_FILE), _make_signing_key),
    *SIMULATOR_STEPS,
)


def run_setup(root: Path, steps: Sequence[Step] = STEPS) -> list[StepResult]:
    """Run every step whose output is missing; return what ran and what was skipped."""
    results = []
    for step in steps:
        if step.is_done(root):
            log.debug("set-up: %s already present", step.name)
            results.append(StepResult(step.name, ran=False))
            continue
        log.info("set-up: making %s", step.name)
        step.make(root)
        results.append(StepResult(step.name, ran=True))
    return results
