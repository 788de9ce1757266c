"""The dispatch queue: `POST /job/{id}` puts `{"job_id": ...}` on it; the queue-triggered dispatcher takes it off.

Messages are base64 text, the Functions host's default encoding (host.json says so explicitly).
"""

from __future__ import annotations

import contextlib
import json

from azure.core.exceptions import AzureError, ResourceExistsError
from azure.storage.queue import QueueClient, TextBase64EncodePolicy

from core.config import DISPATCH_QUEUE, Settings
from core.errors import Unavailable
from core.storage import API_VERSION, client_options, managed_identity, uses_key


class QueueDispatch:
    """The dispatch queue on one `QueueClient`."""

    def __init__(self, client: QueueClient) -> None:
        self._client = client

    @classmethod
    def connect(cls, settings: Settings) -> QueueDispatch:
        """The dispatch queue of these settings' account (the queue created if missing)."""
        options = {**client_options(settings), "api_version": API_VERSION}
        options["message_encode_policy"] = TextBase64EncodePolicy()
        if uses_key(settings):
            client = QueueClient.from_connection_string(
                settings.storage_connection, DISPATCH_QUEUE, **options
            )
        else:
            url = f"https://{settings.storage_account}.queue.core.windows.net"
            client = QueueClient(url, DISPATCH_QUEUE, credential=managed_identity(), **options)
        with contextlib.suppress(ResourceExistsError):
            client.create_queue()
        return cls(client)

    def send(self, job_id: str, action: str | None = None, target: str | None = None) -> None:
        """Ask the dispatch worker to submit a job (or, with `action="cancel"`, to stop it; with `action="clean"`,
        to remove a deleted job's folder from `target`)."""
        body = (
            {"job_id": job_id}
            | ({"action": action} if action else {})
            | ({"target": target} if target else {})
        )
        try:
            self._client.send_message(json.dumps(body))
        except AzureError as exc:
            raise Unavailable("the dispatch queue cannot be reached") from exc
