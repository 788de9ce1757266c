"""host.json defaults, TimeSpans and local settings."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import pytest

from devhost.settings import (
    HostConfig,
    SettingsError,
    load_host_config,
    load_local_settings,
    parse_timespan,
    resolve_setting_expression,
)

PROJECT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("00:00:10", timedelta(seconds=10)),
        ("00:01:00", timedelta(minutes=1)),
        ("1.02:03:04", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ("00:00:00.250", timedelta(milliseconds=250)),
        ("01:30", timedelta(hours=1, minutes=30)),
    ],
)
def test_parse_timespan(text: str, expected: timedelta) -> None:
    assert parse_timespan(text) == expected


@pytest.mark.parametrize("text", ["10", "00:60:00", "24:00:00", "1:2:3:4", "soon"])
def test_bad_timespans(text: str) -> None:
    with pytest.raises(SettingsError):
        parse_timespan(text)


def test_host_defaults_fill_every_missing_key(tmp_path: Path) -> None:
    config = load_host_config({"version": "2.0"})
    assert config == HostConfig()
    assert config.route_prefix == "api"
    q = config.queues
    assert (q.max_dequeue_count, q.batch_size, q.message_encoding) == (5, 16, "base64")
    assert (q.visibility_timeout, q.max_polling_interval) == (timedelta(0), timedelta(minutes=1))
    assert q.batch_threshold() == 8 * (os.cpu_count() or 1)
    assert load_host_config(tmp_path / "missing.json") == HostConfig()


def test_the_projects_host_json() -> None:
    config = load_host_config(PROJECT / "host.json")
    assert config.route_prefix == ""
    assert config.queues.max_dequeue_count == 5
    assert config.queues.visibility_timeout == timedelta(seconds=10)
    assert config.queues.max_polling_interval == timedelta(seconds=2)
    assert (config.queues.batch_size, config.queues.batch_threshold()) == (8, 4)
    assert config.function_timeout == timedelta(minutes=10)


def test_bad_message_encoding_is_refused() -> None:
    with pytest.raises(SettingsError, match="messageEncoding"):
        load_host_config({"extensions": {"queues": {"messageEncoding": "utf8"}}})


def unset(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """Unset variables so that whatever the test sets is undone afterwards (delenv alone forgets absent ones)."""
    for name in names:
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)


def write_settings(path: Path, values: dict[str, object]) -> None:
    path.write_text(json.dumps({"IsEncrypted": False, "Values": values}))


def test_local_settings_never_override_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    values: dict[str, object] = {"DEVHOST_T_A": "file", "DEVHOST_T_B": "file", "DEVHOST_T_C": True}
    write_settings(tmp_path / "local.settings.json", values)
    monkeypatch.setenv("DEVHOST_T_A", "shell")
    unset(monkeypatch, "DEVHOST_T_B", "DEVHOST_T_C")
    applied = load_local_settings(tmp_path)
    assert applied == {"DEVHOST_T_B": "file", "DEVHOST_T_C": "true"}
    assert os.environ["DEVHOST_T_A"] == "shell"
    assert os.environ["DEVHOST_T_B"] == "file"


def test_example_settings_are_the_fallback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    unset(monkeypatch, "DEVHOST_T_EXAMPLE")
    write_settings(tmp_path / "local.settings.example.json", {"DEVHOST_T_EXAMPLE": "example"})
    assert load_local_settings(tmp_path) == {"DEVHOST_T_EXAMPLE": "example"}
    assert load_local_settings(tmp_path / "nothing-here") == {}


def test_setting_expressions() -> None:
    env = {"QUEUE": "jobs", "ENV": "dev"}
    assert resolve_setting_expression("%QUEUE%", env) == "jobs"
    assert resolve_setting_expression("%QUEUE%-%ENV%", env) == "jobs-dev"
    assert resolve_setting_expression("plain", env) == "plain"
    with pytest.raises(SettingsError, match="MISSING"):
        resolve_setting_expression("%MISSING%", env)
