"""The local stack the benchmarks measure: a private Azurite and devhost serving the app on it, in this process."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from devhost.azurite import AzuriteProcess, start_private_azurite
from devhost.host import DevHost
from devhost.tokens import DEV_AUDIENCE, DEV_ISSUER, make_key_pair

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Stack:
    """The gateway's URL, the key that signs its users' tokens, and its Azurite."""

    url: str
    signing_key: Path
    azurite: AzuriteProcess


@contextlib.contextmanager
def local_stack(
    folder: Path, *, queues: bool = False, settings: dict[str, str] | None = None
) -> Iterator[Stack]:
    """Azurite (HTTPS, basic OAuth) and devhost on free ports, the app's callbacks pointing at it; stopped after."""
    azurite = start_private_azurite(ROOT, folder / "azurite")
    try:
        make_key_pair(folder / "key.pem", folder / "jwks.json")
        app_settings = {
            "AzureWebJobsStorage": azurite.connection_string,
            "SIMGATE_STORAGE_CA": str(azurite.ca_path),
            "SIMGATE_STORAGE_CREDENTIAL": "azurite",
            "AUTH_ISSUER": DEV_ISSUER,
            "AUTH_AUDIENCE": DEV_AUDIENCE,
            "AUTH_JWKS": str(folder / "jwks.json"),
            **(settings or {}),
        }
        with DevHost(
            "function_app:app",
            root=ROOT,
            port=0,
            settings=app_settings,
            load_settings=False,
            queues=queues,
            timers=False,
        ) as host:
            url = host.url.rstrip("/")
            os.environ["SIMGATE_CALLBACK_URL"] = url  # known once the host listens
            from core.services import reset_services

            reset_services()
            yield Stack(url, folder / "key.pem", azurite)
    finally:
        azurite.stop()
