"""DevHost: the app's functions served in-process, with the host's HTTP, queue and timer behaviour.

    with DevHost("function_app:app", root=Path("."), port=0) as host:
        urllib.request.urlopen(host.url + "/case")

`port=0` binds a free port (read it back from `host.port` / `host.url`). Tests can pass the app object itself,
a host.json path or dict, and `settings` that override app settings for the host's lifetime.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from devhost.http import FunctionsHTTPServer
from devhost.invoke import Invoker
from devhost.queues import QueuePump, resolve_binding
from devhost.routing import IndexedFunction, RouteOrder, RouteTable, index_functions
from devhost.settings import HostConfig, load_host_config, load_local_settings
from devhost.timers import TimerPump, resolve_schedule

log = logging.getLogger(__name__)

STORAGE_CA_SETTING = "SIMGATE_STORAGE_CA"
SUPPORTED_TRIGGERS = ("httpTrigger", "queueTrigger", "timerTrigger")


def load_app(app_ref: str, root: Path) -> Any:
    """Import "module:attribute" with `root` on sys.path, as the worker imports function_app.py."""
    module_name, _, attribute = app_ref.partition(":")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    target: Any = importlib.import_module(module_name)
    for name in (attribute or "app").split("."):
        target = getattr(target, name)
    return target


def unsupported_binding(function: IndexedFunction) -> str | None:
    """Why devhost cannot run `function`, or None: it passes the trigger and an HTTP return value only."""
    for binding in function.bindings:
        kind = str(binding.get("type"))
        if kind.endswith("Trigger") and kind not in SUPPORTED_TRIGGERS:
            return f"devhost does not run {kind} functions"
        if not kind.endswith("Trigger") and kind != "http":
            return f"devhost does not provide the {kind!r} binding {binding.get('name')!r}"
    return None


class DevHost:
    """A local Functions host for one FunctionApp."""

    def __init__(
        self,
        app_ref: str | Any = "function_app:app",
        root: Path | str = ".",
        port: int = 7071,
        *,
        host: str = "127.0.0.1",
        host_json: Path | Mapping[str, Any] | None = None,
        settings: Mapping[str, str] | None = None,
        load_settings: bool = True,
        queues: bool = True,
        timers: bool = True,
        route_order: RouteOrder = "host",
        dev_sign_in: bool = True,
    ) -> None:
        self.app_ref = app_ref
        self.root = Path(root).resolve()
        self.bind = (host, port)
        self._host_json = self.root / "host.json" if host_json is None else host_json
        self._settings = dict(settings or {})
        self._load_settings = load_settings
        self._enabled = {"queueTrigger": queues, "timerTrigger": timers}
        self._route_order = route_order
        self._dev_sign_in = (
            dev_sign_in  # devhost's own /dev/sign-in (devhost/signin.py), never in the app
        )
        self.config = HostConfig()
        self.functions: tuple[IndexedFunction, ...] = ()
        self.function_errors: dict[str, str] = {}
        self.routes = RouteTable((), "")
        self._invoker = Invoker()
        self._server: FunctionsHTTPServer | None = None
        self._pumps: list[QueuePump | TimerPump] = []
        self._saved_env: dict[str, str | None] = {}

    # -- lifecycle ----------------------------------------------------------------------------------------------

    def start(self) -> DevHost:
        """Load settings, import and index the app, then start HTTP, queue pumps and timers."""
        try:
            self._prepare()
            self._invoker.start()
            self._start_http()
            self._start_pumps()
        except BaseException:
            self.stop()
            raise
        log.info("devhost serving %d function(s) at %s", len(self.functions), self.url)
        return self

    def stop(self) -> None:
        """Stop timers and pumps (running invocations finish), then HTTP and the invoker; restore settings."""
        for pump in self._pumps:
            pump.signal_stop()
        for pump in self._pumps:
            pump.stop()
        self._pumps = []
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self._invoker.stop()
        self._restore_env()

    def __enter__(self) -> DevHost:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- what is being served -----------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound HTTP port."""
        if self._server is None:
            raise RuntimeError("DevHost is not started")
        return self._server.port

    @property
    def url(self) -> str:
        """The server's base URL, e.g. "http://127.0.0.1:7071" (the route prefix not included)."""
        return f"http://{self.bind[0]}:{self.port}"

    @property
    def api_url(self) -> str:
        """The base URL with host.json's route prefix, e.g. "http://127.0.0.1:7071/api"."""
        prefix = self.config.route_prefix
        return f"{self.url}/{prefix}" if prefix else self.url

    def describe(self) -> list[str]:
        """One line per function, in the style of `func start`'s listing."""
        lines = []
        for route in self.routes.routes:
            methods = ",".join(sorted(route.methods)) if route.methods else "ALL"
            lines.append(f"{route.function.name}: [{methods}] {self.url}/{route.template.text}")
        for fn in self.functions:
            if fn.trigger_type != "httpTrigger":
                lines.append(f"{fn.name}: {fn.trigger_type}")
        lines.extend(f"{name}: in error: {why}" for name, why in self.function_errors.items())
        return lines

    # -- start-up steps -----------------------------------------------------------------------------------------

    def _prepare(self) -> None:
        self._apply_settings()
        host_json = self._host_json
        self.config = load_host_config(
            Path(host_json) if isinstance(host_json, str | Path) else host_json
        )
        app = load_app(self.app_ref, self.root) if isinstance(self.app_ref, str) else self.app_ref
        self.functions = index_functions(app)
        if self._dev_sign_in:
            from devhost import signin

            self.functions += index_functions(signin.app)
        runnable = [f for f in self.functions if not self._in_error(f, unsupported_binding(f))]
        self.routes = RouteTable(runnable, self.config.route_prefix, self._route_order)

    def _apply_settings(self) -> None:
        for name, value in self._settings.items():
            self._saved_env.setdefault(name, os.environ.get(name))
            os.environ[name] = value
        if self._load_settings:
            for name in load_local_settings(self.root):
                self._saved_env.setdefault(name, None)

    def _restore_env(self) -> None:
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env = {}

    def _in_error(self, function: IndexedFunction, problem: str | None) -> bool:
        if problem is None:
            return False
        # Core Tools' wording, so the log reads the same as `func start`'s.
        log.error("The '%s' function is in error: %s", function.name, problem)
        self.function_errors[function.name] = problem
        return True

    def _start_http(self) -> None:
        self._server = FunctionsHTTPServer(self.bind, self.routes, self._invoker)
        thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="devhost-http",
            daemon=True,
        )
        thread.start()

    def _start_pumps(self) -> None:
        makers: dict[str, Callable[[IndexedFunction], QueuePump | TimerPump]] = {
            "queueTrigger": self._queue_pump,
            "timerTrigger": self._timer_pump,
        }
        for fn in self.functions:
            make = makers.get(fn.trigger_type)
            if (
                make is None
                or fn.name in self.function_errors
                or not self._enabled[fn.trigger_type]
            ):
                continue
            try:
                pump = make(fn)
            except ValueError as exc:  # BindingError, ScheduleError, a malformed connection string
                self._in_error(fn, str(exc))
                continue
            pump.start()
            self._pumps.append(pump)

    def _queue_pump(self, function: IndexedFunction) -> QueuePump:
        return QueuePump(
            resolve_binding(function, os.environ),
            self.config.queues,
            self._invoker,
            self._ca_path(),
        )

    def _timer_pump(self, function: IndexedFunction) -> TimerPump:
        schedule = resolve_schedule(function, os.environ)
        schedule.next_after(
            datetime.now()
        )  # a schedule that never fires is an error now, not in the timer thread
        return TimerPump(function, schedule, self._invoker)

    def _ca_path(self) -> str | None:
        value = os.environ.get(STORAGE_CA_SETTING)
        return str(self.root / value) if value else None
