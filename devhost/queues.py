"""Queue triggers with the Functions host's semantics (the Storage Queues extension's QueueListener/QueueProcessor).

Per queue-triggered function, a pump thread:

* creates the queue and `<queue>-poison` when missing;
* receives up to `batchSize` messages with a 10-minute lease, and fetches the next batch once the messages still
  running drop to `newBatchThreshold`;
* decodes each per host.json `messageEncoding` and calls the function with an `azure.functions.queue.QueueMessage`
  (it carries `dequeue_count`, which `func.QueueMessage` cannot);
* on success deletes the message; on failure (an exception, or a body that does not decode) moves it to
  `<queue>-poison` when `dequeue_count >= maxDequeueCount`, else makes it visible again after `visibilityTimeout`.
  A message received with a dequeue count already above the maximum is moved without being run, as the host does;
* polls again at once after a message and backs off exponentially from 100 ms to `maxPollingInterval` when idle.

Not mirrored: the host renews the lease of a long-running message and enforces `functionTimeout`; devhost does not.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import re
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, cast

from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from azure.functions.queue import QueueMessage as FuncQueueMessage
from azure.storage.queue import QueueClient
from azure.storage.queue import QueueMessage as SdkQueueMessage

from devhost.azurite import client_kwargs
from devhost.invoke import Invoker
from devhost.routing import IndexedFunction
from devhost.settings import QueueOptions, SettingsError, resolve_setting_expression

log = logging.getLogger(__name__)

LEASE_SECONDS = 600  # the host receives with a 10-minute visibility timeout
MIN_POLL_SECONDS = 0.1
STOP_GRACE_SECONDS = 30.0
_QUEUE_NAME = re.compile(r"^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$")


class BindingError(ValueError):
    """A queue trigger the host would put in error at start-up (bad queue name, missing connection)."""


@dataclass(frozen=True)
class QueueBinding:
    """A queue trigger resolved against the app settings."""

    function: IndexedFunction
    queue_name: str
    connection_string: str

    @property
    def poison_name(self) -> str:
        """The host's poison queue for this queue."""
        return f"{self.queue_name}-poison"


def resolve_binding(function: IndexedFunction, env: Mapping[str, str]) -> QueueBinding:
    """Resolve `%SETTING%` in the queue name and the connection setting, as the host does at start-up."""
    trigger = function.trigger
    try:
        name = resolve_setting_expression(str(trigger["queueName"]), env).lower()
    except SettingsError as exc:
        raise BindingError(f"{function.name}: {exc}") from exc
    if not _QUEUE_NAME.match(name):
        raise BindingError(f"{function.name}: {name!r} is not a valid queue name")
    return QueueBinding(
        function, name, connection_string(str(trigger.get("connection") or ""), env)
    )


def connection_string(setting: str, env: Mapping[str, str]) -> str:
    """Look a connection up as WebJobs does: `AzureWebJobs<name>` first, then `<name>`; empty means "Storage"."""
    name = setting or "Storage"
    for candidate in (f"AzureWebJobs{name}", name):
        if env.get(candidate):
            return env[candidate]
    raise BindingError(
        f"storage connection {setting or 'AzureWebJobsStorage'!r} is not set "
        f"(looked for AzureWebJobs{name} and {name})"
    )


def decode_body(content: str, encoding: str) -> bytes:
    """The message body as the function sees it; raises ValueError when base64 text does not decode."""
    if encoding == "none":
        return content.encode("utf-8")
    try:
        # .NET's Convert.FromBase64String skips whitespace but rejects anything else outside the alphabet.
        return base64.b64decode(re.sub(r"\s", "", content), validate=True)
    except binascii.Error as exc:
        raise ValueError(f"message is not valid base64: {exc}") from exc


def dequeues(msg: SdkQueueMessage) -> int:
    """How many times the message has been received, this time included."""
    return msg.dequeue_count or 1


def to_function_message(msg: SdkQueueMessage, body: bytes) -> FuncQueueMessage:
    """The `azure.functions.queue.QueueMessage` the worker builds from a received message."""
    make = cast(Any, FuncQueueMessage)  # its __init__ is unannotated
    return cast(
        FuncQueueMessage,
        make(
            id=msg.id,
            body=body,
            dequeue_count=msg.dequeue_count,
            insertion_time=msg.inserted_on,
            expiration_time=msg.expires_on,
            time_next_visible=msg.next_visible_on,
            pop_receipt=msg.pop_receipt,
        ),
    )


class QueuePump:
    """Feeds one queue-triggered function from its queue until stopped."""

    def __init__(
        self,
        binding: QueueBinding,
        options: QueueOptions,
        invoker: Invoker,
        ca_path: str | None = None,
    ) -> None:
        self.binding = binding
        self.options = options
        self._invoker = invoker
        # The storage SDK's default retries back off 15 s and more; the pump's own polling already retries.
        kwargs = {
            **client_kwargs(ca_path),
            "retry_total": 2,
            "initial_backoff": 1,
            "increment_base": 2,
        }
        self._queue = QueueClient.from_connection_string(
            binding.connection_string, binding.queue_name, **kwargs
        )
        self._poison = QueueClient.from_connection_string(
            binding.connection_string, binding.poison_name, **kwargs
        )
        self._threshold = options.batch_threshold()
        self._workers = ThreadPoolExecutor(
            options.batch_size + self._threshold,
            thread_name_prefix=f"devhost-queue-{binding.function.name}",
        )
        self._in_flight = 0
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"devhost-pump-{binding.function.name}", daemon=True
        )
        self._failing = False
        self._queues_ready = False

    @property
    def name(self) -> str:
        """The function this pump feeds."""
        return self.binding.function.name

    def start(self) -> None:
        """Create the queues (so a producer can send as soon as the host is up), then poll in the background."""
        try:
            self._ensure_queues(
                retry_total=0
            )  # fail fast when storage is down; the poll loop retries
        except AzureError as exc:
            self._storage_trouble(exc)
        self._thread.start()

    def signal_stop(self) -> None:
        """Ask the pump to stop polling, without waiting (so several pumps wind down together)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """Stop polling and wait up to `grace` seconds for running messages to finish."""
        self.signal_stop()
        self._thread.join(timeout=grace)
        self._workers.shutdown(
            wait=False
        )  # queued messages still run and settle; none wait in practice
        with self._cond:
            if not self._cond.wait_for(lambda: self._in_flight == 0, timeout=grace):
                log.warning(
                    "%s: %d message(s) still running at shutdown", self.name, self._in_flight
                )
        if not self._thread.is_alive():  # a stuck poll still holds the clients
            self._queue.close()
            self._poison.close()

    # -- polling ------------------------------------------------------------------------------------------------

    def _run(self) -> None:
        delay = MIN_POLL_SECONDS
        while not self._stop.is_set():
            messages = self._poll()
            if messages:
                delay = MIN_POLL_SECONDS
                self._dispatch(messages)
                continue
            self._stop.wait(delay)
            delay = min(
                delay * 2, max(self.options.max_polling_interval.total_seconds(), MIN_POLL_SECONDS)
            )

    def _poll(self) -> list[SdkQueueMessage]:
        if not self._wait_for_capacity():
            return []
        try:
            self._ensure_queues(retry_total=0)
            batch = self.options.batch_size
            messages = list(
                self._queue.receive_messages(
                    messages_per_page=batch,
                    max_messages=batch,
                    visibility_timeout=LEASE_SECONDS,
                    retry_total=0,
                )
            )
        except AzureError as exc:
            self._storage_trouble(exc)
            return []
        except Exception:
            log.exception(
                "%s: unexpected error while polling %s", self.name, self.binding.queue_name
            )
            return []
        self._failing = False
        return messages

    def _storage_trouble(self, exc: AzureError) -> None:
        # Say it once per outage, not on every poll.
        level = logging.DEBUG if self._failing else logging.WARNING
        log.log(level, "%s: cannot read queue %s: %s", self.name, self.binding.queue_name, exc)
        self._failing = True

    def _ensure_queues(self, **kwargs: Any) -> None:
        if self._queues_ready:
            return
        for client in (self._queue, self._poison):
            with contextlib.suppress(ResourceExistsError):
                client.create_queue(**kwargs)
        self._queues_ready = True

    def _wait_for_capacity(self) -> bool:
        with self._cond:
            self._cond.wait_for(lambda: self._in_flight <= self._threshold or self._stop.is_set())
        return not self._stop.is_set()

    def _dispatch(self, messages: list[SdkQueueMessage]) -> None:
        for msg in messages:
            with self._cond:
                self._in_flight += 1
            try:
                self._workers.submit(self._process, msg)
            except RuntimeError:  # shutting down: the lease runs out and the message comes back
                self._done()

    def _done(self) -> None:
        with self._cond:
            self._in_flight -= 1
            self._cond.notify_all()

    # -- one message --------------------------------------------------------------------------------------------

    def _process(self, msg: SdkQueueMessage) -> None:
        try:
            if dequeues(msg) > self.options.max_dequeue_count:
                self._to_poison(msg, "dequeue count above maxDequeueCount on arrival")
            elif self._invoke(msg):
                self._settle(self._queue.delete_message, msg.id, msg.pop_receipt)
                self._log(msg, "succeeded")
            else:
                self._after_failure(msg)
        except Exception:
            log.exception("%s: could not settle message %s", self.name, msg.id)
        finally:
            self._done()

    def _invoke(self, msg: SdkQueueMessage) -> bool:
        fn = self.binding.function
        try:
            body = decode_body(msg.content, self.options.message_encoding)
        except ValueError as exc:
            log.error("%s: message %s: %s", self.name, msg.id, exc)
            return False
        try:
            self._invoker.call(
                fn.user_function, {str(fn.trigger["name"]): to_function_message(msg, body)}
            )
        except Exception:
            log.exception(
                "%s: message %s (dequeue count %d) failed", self.name, msg.id, dequeues(msg)
            )
            return False
        return True

    def _after_failure(self, msg: SdkQueueMessage) -> None:
        if dequeues(msg) >= self.options.max_dequeue_count:
            self._to_poison(msg, f"failed {dequeues(msg)} time(s)")
            return
        seconds = max(0, round(self.options.visibility_timeout.total_seconds()))
        self._settle(
            self._queue.update_message,
            msg.id,
            pop_receipt=msg.pop_receipt,
            visibility_timeout=seconds,
        )
        self._log(msg, f"failed; visible again in {seconds} s")

    def _to_poison(self, msg: SdkQueueMessage, why: str) -> None:
        # The host copies the message text as stored (still base64 if encoded) and then deletes the original.
        self._poison.send_message(msg.content)
        self._settle(self._queue.delete_message, msg.id, msg.pop_receipt)
        self._log(msg, f"moved to {self.binding.poison_name} ({why})", logging.WARNING)

    def _settle(self, operation: Any, *args: Any, **kwargs: Any) -> None:
        try:
            operation(*args, **kwargs)
        except ResourceNotFoundError:
            log.debug("%s: message or queue already gone", self.name)
        except HttpResponseError as exc:
            if getattr(exc, "error_code", None) != "PopReceiptMismatch":
                raise
            log.debug("%s: pop receipt mismatch; someone else owns the message now", self.name)

    def _log(self, msg: SdkQueueMessage, outcome: str, level: int = logging.INFO) -> None:
        log.log(
            level, "%s: message %s (dequeue count %d) %s", self.name, msg.id, dequeues(msg), outcome
        )
