"""Queue triggers against a real (private) Azurite: encoding, dequeue counts, retries and the poison queue."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from devhost.host import DevHost
from devhost.queues import BindingError, connection_string, decode_body
from tests.conftest import AzuriteFixture
from tests.devhost import sample_app

MAX_DEQUEUE = 3
# Small timings so a message's whole life (three failures, then poison) takes well under a second.
HOST_JSON = {
    "version": "2.0",
    "extensions": {
        "queues": {
            "maxDequeueCount": MAX_DEQUEUE,
            "visibilityTimeout": "00:00:00",
            "maxPollingInterval": "00:00:00.200",
            "batchSize": 4,
        }
    },
}


def wait_for(condition: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    """Poll until `condition()` is truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture(scope="module")
def queues(
    azurite: AzuriteFixture, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    names = {
        "SAMPLE_QUEUE": azurite.unique_name("jobs"),
        "SAMPLE_FAILING_QUEUE": azurite.unique_name("bad"),
    }
    root = tmp_path_factory.mktemp("queue-root")
    # As in local.settings.json, the CA path is relative to the app's root.
    shutil.copy(azurite.ca_path, root / "storage-ca.pem")
    settings = {**azurite.app_settings(), "SIMGATE_STORAGE_CA": "storage-ca.pem", **names}
    with DevHost(
        sample_app.app, root=root, port=0, host_json=HOST_JSON, settings=settings, timers=False
    ) as host:
        assert host.function_errors == {}
        yield names


@pytest.mark.azurite
def test_base64_message_reaches_the_function_unchanged(
    azurite: AzuriteFixture, queues: dict[str, str]
) -> None:
    document = {"job_id": "j-1", "case": "cavity", "values": {"nu": 0.01, "label": "ü ✓"}}
    text = json.dumps(document)
    azurite.queue(queues["SAMPLE_QUEUE"]).send_message(
        text
    )  # TextBase64EncodePolicy, as our producer sends
    seen = wait_for(
        lambda: [c for c in sample_app.calls["queue"] if c["body"] == text.encode()],
        what="the message",
    )
    assert json.loads(seen[0]["body"]) == document
    assert seen[0]["dequeue_count"] == 1
    # Success deletes the message.
    wait_for(
        lambda: not azurite.queue(queues["SAMPLE_QUEUE"]).peek_messages(), what="the queue to empty"
    )


@pytest.mark.azurite
def test_failing_message_is_retried_then_poisoned(
    azurite: AzuriteFixture, queues: dict[str, str]
) -> None:
    name = queues["SAMPLE_FAILING_QUEUE"]
    text = json.dumps({"job_id": "j-doomed"})
    azurite.queue(name).send_message(text)
    poison = azurite.queue(f"{name}-poison")
    poisoned = wait_for(lambda: poison.peek_messages(), what="the poison queue")
    assert [m.content for m in poisoned] == [text]  # the original content
    assert sample_app.calls["failing"] == [
        1,
        2,
        3,
    ]  # exactly maxDequeueCount attempts, each counted
    assert not azurite.queue(name).peek_messages()


@pytest.mark.azurite
def test_undecodable_message_counts_as_a_failure(
    azurite: AzuriteFixture, queues: dict[str, str]
) -> None:
    name = queues["SAMPLE_QUEUE"]
    before = len(sample_app.calls["queue"])
    azurite.queue(name, base64=False).send_message("this is not base64!")
    poisoned = wait_for(
        lambda: azurite.queue(f"{name}-poison", base64=False).peek_messages(), what="poison"
    )
    assert [m.content for m in poisoned] == ["this is not base64!"]
    assert len(sample_app.calls["queue"]) == before  # the function never ran


def test_decode_body() -> None:
    assert decode_body("eyJhIjogMX0=", "base64") == b'{"a": 1}'
    assert (
        decode_body("eyJhIjog\nMX0=", "base64") == b'{"a": 1}'
    )  # whitespace is skipped, as in .NET
    assert decode_body('{"a": 1}', "none") == b'{"a": 1}'
    with pytest.raises(ValueError, match="base64"):
        decode_body('{"a": 1}', "base64")


def test_connection_lookup_follows_webjobs() -> None:
    env = {"AzureWebJobsStorage": "default", "AzureWebJobsOther": "prefixed", "Plain": "plain"}
    assert connection_string("", env) == "default"
    assert connection_string("AzureWebJobsStorage", env) == "default"
    assert connection_string("Other", env) == "prefixed"
    assert connection_string("Plain", env) == "plain"
    with pytest.raises(BindingError, match="Missing"):
        connection_string("Missing", env)


def test_missing_settings_put_the_function_in_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("SAMPLE_QUEUE", "SAMPLE_FAILING_QUEUE", "AzureWebJobsStorage"):
        monkeypatch.delenv(name, raising=False)
    with DevHost(sample_app.app, root=tmp_path, port=0, timers=False) as host:
        assert set(host.function_errors) == {"record_queue", "always_fails"}
        assert "SAMPLE_QUEUE" in host.function_errors["record_queue"]
