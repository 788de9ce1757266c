"""App settings and host.json, read the way the Functions host reads them.

`local.settings.json` `Values` become environment variables (Core Tools does the same for the worker), and
`host.json` is read with the real host's defaults filled in for every key it leaves out.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

LOCAL_SETTINGS = "local.settings.json"
EXAMPLE_SETTINGS = "local.settings.example.json"

# .NET TimeSpan's invariant "[d.]hh:mm[:ss[.fffffff]]" format, the one host.json uses.
_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d{1,7}))?)?$")


class SettingsError(ValueError):
    """A settings file or value that cannot be read."""


def parse_timespan(text: str) -> timedelta:
    """Parse a .NET TimeSpan string such as "00:00:10", "1.02:00:00" or "00:00:00.500"."""
    m = _TIMESPAN.match(text.strip())
    if not m:
        raise SettingsError(f"not a TimeSpan (expected [d.]hh:mm[:ss[.fff]]): {text!r}")
    days, hours, minutes, seconds, fraction = m.groups()
    if int(hours) > 23 or int(minutes) > 59 or int(seconds or 0) > 59:
        raise SettingsError(f"TimeSpan field out of range: {text!r}")
    return timedelta(
        days=int(days or 0),
        hours=int(hours),
        minutes=int(minutes),
        seconds=int(seconds or 0),
        microseconds=int((fraction or "0").ljust(7, "0")) // 10,
    )


def read_local_settings(root: Path) -> dict[str, str]:
    """The `Values` of `local.settings.json` over those of the example file.

    The example fills in what the local file lacks, so settings added to the project after a checkout's first
    set-up still reach it, while anything the developer changed locally wins.
    """
    values: dict[str, str] = {}
    for name in (EXAMPLE_SETTINGS, LOCAL_SETTINGS):
        path = root / name
        if path.is_file():
            values.update(_values_of(path))
    return values


def _values_of(path: Path) -> dict[str, str]:
    data = _read_json(path)
    if data.get("IsEncrypted"):
        raise SettingsError(f"{path} is encrypted; devhost only reads plain settings")
    values = data.get("Values") or {}
    if not isinstance(values, dict):
        raise SettingsError(f"{path}: Values must be an object")
    # The host hands every value to the worker as a string, booleans and numbers included.
    return {str(k): _as_setting(v) for k, v in values.items()}


def _as_setting(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def load_local_settings(root: Path) -> dict[str, str]:
    """Put local settings into `os.environ`, never replacing a variable that is already set.

    Returns the values that were applied. Variables set by the shell win, as with `func start`.
    """
    applied = {k: v for k, v in read_local_settings(root).items() if k not in os.environ}
    os.environ.update(applied)
    return applied


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, json.JSONDecodeError) as exc:
        raise SettingsError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise SettingsError(f"{path}: expected a JSON object")
    return data


@dataclass(frozen=True)
class QueueOptions:
    """`extensions.queues` of host.json, with the host's defaults."""

    max_dequeue_count: int = 5
    visibility_timeout: timedelta = timedelta(0)
    max_polling_interval: timedelta = timedelta(minutes=1)
    batch_size: int = 16
    # The host's default is batchSize/2 per core; None means "compute that".
    new_batch_threshold: int | None = None
    message_encoding: str = "base64"

    def batch_threshold(self) -> int:
        """The in-flight count at or below which the next batch is fetched."""
        if self.new_batch_threshold is not None:
            return self.new_batch_threshold
        return (self.batch_size // 2) * (os.cpu_count() or 1)


@dataclass(frozen=True)
class HostConfig:
    """The parts of host.json that devhost honours."""

    route_prefix: str = "api"
    queues: QueueOptions = field(default_factory=QueueOptions)
    function_timeout: timedelta | None = None


def load_host_config(source: Path | Mapping[str, Any] | None) -> HostConfig:
    """Read host.json from a path or an already-parsed mapping; None or a missing file gives the defaults."""
    if source is None:
        return HostConfig()
    if isinstance(source, Path):
        if not source.is_file():
            log.warning("no host.json at %s; using the host's defaults", source)
            return HostConfig()
        source = _read_json(source)
    return _host_config_from(source)


def _host_config_from(data: Mapping[str, Any]) -> HostConfig:
    extensions = data.get("extensions") or {}
    http = extensions.get("http") or {}
    timeout = data.get("functionTimeout")
    return HostConfig(
        route_prefix=str(http.get("routePrefix", "api")).strip("/"),
        queues=_queue_options_from(extensions.get("queues") or {}),
        function_timeout=parse_timespan(timeout) if timeout else None,
    )


def _queue_options_from(q: Mapping[str, Any]) -> QueueOptions:
    defaults = QueueOptions()
    encoding = str(q.get("messageEncoding", defaults.message_encoding)).lower()
    if encoding not in ("base64", "none"):
        raise SettingsError(
            f"host.json queues.messageEncoding must be base64 or none, not {encoding!r}"
        )
    threshold = q.get("newBatchThreshold")
    return QueueOptions(
        max_dequeue_count=int(q.get("maxDequeueCount", defaults.max_dequeue_count)),
        visibility_timeout=_timespan_or(q.get("visibilityTimeout"), defaults.visibility_timeout),
        max_polling_interval=_timespan_or(
            q.get("maxPollingInterval"), defaults.max_polling_interval
        ),
        batch_size=int(q.get("batchSize", defaults.batch_size)),
        new_batch_threshold=None if threshold is None else int(threshold),
        message_encoding=encoding,
    )


def _timespan_or(value: Any, default: timedelta) -> timedelta:
    if value is None:
        return default
    if isinstance(value, int | float) and not isinstance(value, bool):
        # Functions v1 wrote these as milliseconds; the v2+ host still accepts a number.
        return timedelta(milliseconds=value)
    return parse_timespan(str(value))


def resolve_setting_expression(text: str, env: Mapping[str, str] | None = None) -> str:
    """Replace `%NAME%` parts of a binding expression with app settings, as the host does for queue names."""
    env = os.environ if env is None else env

    def lookup(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in env:
            raise SettingsError(f"app setting {name!r} (used as %{name}%) is not set")
        return env[name]

    return re.sub(r"%([^%]+)%", lookup, text)
