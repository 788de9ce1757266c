"""`python -m devhost [serve|setup] ...`: the local Functions host's command line.

    python -m devhost                      set up, start Azurite if needed and the SSH simulator (127.0.0.1:2022),
                                           serve on 127.0.0.1:7071
    python -m devhost serve --port 7072 --no-azurite --no-simulator
    python -m devhost setup                first-use set-up only (certificates, keys, local.settings.json, folders)
    python -m devhost token NAME [--admin] a bearer token for user NAME, signed with the development key
    python -m devhost demo [--url URL]     the seed chart's story against the running stack (`make demo`)

Each subcommand is a function taking the parsed arguments, registered in `build_parser`; adding one (say
`token NAME [--admin]`) is a parser entry and a function.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from devhost.azurite import AzuriteError, allow_browser_reads, ensure_azurite
from devhost.demo import DEFAULT_URL as DEMO_URL
from devhost.demo import DEFAULT_USER as DEMO_USER
from devhost.host import DevHost
from devhost.settings import SettingsError, read_local_settings
from devhost.setup import CERT_FILE, SIMULATOR_TARGETS, run_setup
from devhost.simulator import EmbeddedSimulator, SimulatorError
from devhost.tokens import DEV_AUDIENCE, DEV_ISSUER, SIGNING_KEY, mint

DEFAULT_ROOT = Path(__file__).resolve().parent.parent
SUBCOMMANDS = ("serve", "setup", "token", "demo")
DEFAULT_USER = "scientist"


def build_parser() -> argparse.ArgumentParser:
    """The CLI: `serve` (the default) and `setup`."""
    parser = argparse.ArgumentParser(
        prog="python -m devhost", description="Local Azure Functions host for simgate."
    )
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="the function app's folder")
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the app (the default)")
    serve.add_argument(
        "--app", default="function_app:app", help="module:attribute of the FunctionApp"
    )
    serve.add_argument(
        "--port", type=int, default=7071, help="HTTP port (default 7071, as Core Tools)"
    )
    serve.add_argument("--no-azurite", action="store_true", help="do not start Azurite")
    serve.add_argument(
        "--no-simulator", action="store_true", help="do not start the embedded SSH simulator"
    )
    serve.set_defaults(run=cmd_serve)
    setup = commands.add_parser("setup", help="first-use set-up only")
    setup.set_defaults(run=cmd_setup)
    token = commands.add_parser("token", help="print a development bearer token for a user")
    token.add_argument("name", help="the user's name (becomes sub and preferred_username)")
    token.add_argument("--admin", action="store_true", help="give the token the admin role")
    token.add_argument("--hours", type=float, default=12, help="lifetime in hours (default 12)")
    token.set_defaults(run=cmd_token)
    demo = commands.add_parser("demo", help="play the seed chart's story against the running stack")
    demo.add_argument("--url", default=DEMO_URL, help=f"the gateway (default {DEMO_URL})")
    demo.add_argument("--user", default=DEMO_USER, help=f"whose job it is (default {DEMO_USER})")
    demo.add_argument(
        "--downloads", type=Path, help="where the CSV goes (default .local/downloads)"
    )
    demo.set_defaults(run=cmd_demo)
    return parser


def with_default_command(argv: Sequence[str]) -> list[str]:
    """Insert `serve` when no subcommand is given (`python -m devhost --port 7072` serves)."""
    args = list(argv)
    if any(a in SUBCOMMANDS for a in args) or any(a in ("-h", "--help") for a in args):
        return args
    global_opts: list[str] = []
    # --root and --log-level belong before the subcommand; everything else is serve's.
    while args and args[0] in ("--root", "--log-level") and len(args) > 1:
        global_opts += args[:2]
        args = args[2:]
    return [*global_opts, "serve", *args]


def cmd_setup(args: argparse.Namespace) -> int:
    """Run the idempotent set-up steps and say what each did."""
    for result in run_setup(args.root):
        print(f"  {'made' if result.ran else 'kept'}  {result.name}")
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    """Print a bearer token for a named user, valid for this checkout's app."""
    run_setup(args.root)
    print(user_token(args.root, args.name, admin=args.admin, hours=args.hours))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Play the seed chart with the smoothie against a running stack; the downloaded CSV's path last."""
    from devhost import demo

    root: Path = args.root
    return demo.run(
        args.url,
        lambda: user_token(root, args.user),
        args.downloads or root / demo.DOWNLOADS,
        root / CERT_FILE,
        sys.stdout,
        sys.stderr,
    )


def user_token(root: Path, name: str, *, admin: bool = False, hours: float = 12) -> str:
    """A token signed with the development key, for the issuer and audience the local settings name."""
    settings = read_local_settings(root)
    return mint(
        root / SIGNING_KEY,
        name,
        admin=admin,
        ttl_seconds=int(hours * 3600),
        issuer=settings.get("AUTH_ISSUER", DEV_ISSUER),
        audience=settings.get("AUTH_AUDIENCE", DEV_AUDIENCE),
    )


def cmd_serve(args: argparse.Namespace) -> int:
    """Set up, make sure Azurite and the SSH simulator run, serve until Ctrl-C or SIGTERM, then shut all down."""
    root: Path = args.root
    # Before anything starts: a SIGTERM during start-up (a test that stops us as soon as we answer) then still
    # shuts down cleanly, instead of killing the process with Azurite and the simulator's jobs left behind.
    stop = _stop_on_signal()
    run_setup(root)
    os.chdir(root)  # the Python worker runs functions with the app folder as the working directory
    azurite = None if args.no_azurite else ensure_azurite(root)
    simulator = None
    try:
        simulator = None if args.no_simulator else _start_simulator(root)
        with DevHost(args.app, root=root, port=args.port) as host:
            _allow_ui_previews(root, host)
            _print_banner(host, simulator)
            _print_token(root)
            while not stop.wait(1.0):
                pass
            print("\nShutting down...")
    finally:
        if simulator is not None:
            simulator.stop()
        if azurite is not None:
            azurite.stop()
    return 0


def _start_simulator(root: Path) -> EmbeddedSimulator | None:
    # Not fatal: the HTTP side is still useful, and a stranger on the port cannot pass for our simulator (the
    # targets pin our host key), so dispatches fail safely until the port is free.
    try:
        return EmbeddedSimulator(root).start()
    except SimulatorError as exc:
        print(
            f"devhost: warning: the SSH simulator is not running: {exc}",
            file=sys.stderr,
            flush=True,
        )
        return None


def _allow_ui_previews(root: Path, host: DevHost) -> None:
    # The UI previews a CSV output by fetching its download URL from Azurite: a CORS rule must allow the page.
    settings = read_local_settings(root)
    ca = settings.get("SIMGATE_STORAGE_CA")
    try:
        allow_browser_reads(
            settings.get("AzureWebJobsStorage", ""),
            root / ca if ca else None,
            [host.url, f"http://localhost:{host.port}"],
        )
    except Exception as exc:  # a preview is not worth failing start-up for
        print(
            f"devhost: warning: the UI cannot preview outputs (no CORS rule on Azurite): {exc}",
            file=sys.stderr,
        )


def _print_banner(host: DevHost, simulator: EmbeddedSimulator | None) -> None:
    print(
        f"\ndevhost listening on {host.url}  (route prefix: {host.config.route_prefix or '(none)'})"
    )
    print("\nFunctions:\n")
    for line in host.describe():
        print(f"\t{line}\n")
    if simulator is not None:
        print(
            f"SSH simulator for targets {', '.join(SIMULATOR_TARGETS)}: {simulator.address} "
            f"(jobs run in {simulator.sandbox})\n"
        )
    print(f"The UI: {host.url}/ui/  (development sign-in: {host.url}/dev/sign-in)\n")
    print("Press Ctrl-C to stop.", flush=True)


def _print_token(root: Path) -> None:
    token = user_token(root, DEFAULT_USER)
    print(
        f"\nA token for user '{DEFAULT_USER}' (12 h; `python -m devhost token NAME` makes others):\n"
    )
    print(f"\texport TOKEN={token}\n")
    print('\tcurl -s -H "Authorization: Bearer $TOKEN" http://127.0.0.1:7071/job\n', flush=True)


def _stop_on_signal() -> threading.Event:
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)
    return stop


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = build_parser().parse_args(with_default_command(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)-7s %(name)s: %(message)s"
    )
    # The SDK logs every storage request at INFO; that drowns the host's own lines.
    logging.getLogger("azure").setLevel(logging.WARNING)
    logging.getLogger("asyncssh").setLevel(logging.WARNING)  # it logs every channel at INFO
    try:
        return int(args.run(args))
    except (AzuriteError, SettingsError, OSError) as exc:
        print(f"devhost: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
