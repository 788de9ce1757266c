"""Shared fixtures. `azurite`: a private, throw-away Azurite (HTTPS, basic OAuth, in memory) for the whole session.

Tests that use it are marked `@pytest.mark.azurite`. Without `node_modules/.bin/azurite` they skip, except under
CI (`CI=true`), where a missing component is a failure. The same goes for `sshd` (`@pytest.mark.ssh`: OpenSSH's
sshd on loopback) and `slurm` (`@pytest.mark.slurm`: a one-node Slurm; needs root). `embedded_simulator` is
devhost's own SSH simulator and needs nothing. The simulators' helpers live in `tests/infra.py`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devhost.azurite import (
    ACCOUNT,
    AZURITE_BIN,
    AzuriteProcess,
    Ports,
    client_kwargs,
    start_private_azurite,
)
from tests.infra import SLURMCTLD, SSHD, EmbeddedLogin, SlurmCluster, Sshd

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class AzuriteFixture:
    """A running private Azurite and ready-made clients for it (all pinned to its API version and CA)."""

    process: AzuriteProcess

    @property
    def connection_string(self) -> str:
        """HTTPS connection string with the well-known dev account key."""
        return self.process.connection_string

    @property
    def ca_path(self) -> Path:
        """The instance's self-signed certificate, to pass as `connection_verify`."""
        return self.process.ca_path

    @property
    def ports(self) -> Ports:
        """Blob, queue and table ports."""
        return self.process.ports

    @property
    def blob_url(self) -> str:
        """Blob endpoint, e.g. https://127.0.0.1:PORT/devstoreaccount1."""
        return f"https://127.0.0.1:{self.ports.blob}/{ACCOUNT}"

    @property
    def queue_url(self) -> str:
        """Queue endpoint."""
        return f"https://127.0.0.1:{self.ports.queue}/{ACCOUNT}"

    @property
    def table_url(self) -> str:
        """Table endpoint."""
        return f"https://127.0.0.1:{self.ports.table}/{ACCOUNT}"

    @property
    def client_kwargs(self) -> dict[str, Any]:
        """`api_version` and `connection_verify` for Blob and Queue clients."""
        return client_kwargs(self.ca_path)

    def app_settings(self) -> dict[str, str]:
        """App settings that point a function app (or DevHost) at this instance."""
        return {
            "AzureWebJobsStorage": self.connection_string,
            "SIMGATE_STORAGE_CA": str(self.ca_path),
            "SIMGATE_STORAGE_CREDENTIAL": "azurite",
        }

    def queue(self, name: str, *, base64: bool = True) -> Any:
        """A QueueClient for `name`; base64 (the host's default encoding) unless `base64=False`."""
        from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

        policies: dict[str, Any] = (
            {
                "message_encode_policy": TextBase64EncodePolicy(),
                "message_decode_policy": TextBase64DecodePolicy(),
            }
            if base64
            else {}
        )
        return QueueClient.from_connection_string(
            self.connection_string, name, **self.client_kwargs, **policies
        )

    def blob_service(self) -> Any:
        """A BlobServiceClient with the account key."""
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(
            self.connection_string, **self.client_kwargs
        )

    def table_service(self) -> Any:
        """A TableServiceClient with the account key (azure-data-tables needs no API-version pin)."""
        from azure.data.tables import TableServiceClient

        return TableServiceClient.from_connection_string(
            self.connection_string, connection_verify=str(self.ca_path)
        )

    @staticmethod
    def unique_name(prefix: str = "t") -> str:
        """A fresh lower-case name that is valid for queues, containers and (without dashes) tables."""
        return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _missing_component(message: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI=true: a missing component is a failure)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzuriteFixture]:
    """A private Azurite on free ports, in memory, stopped at the end of the session."""
    if not (ROOT / AZURITE_BIN).exists():
        _missing_component(f"{AZURITE_BIN} is missing: run `npm ci`")
    process = start_private_azurite(ROOT, tmp_path_factory.mktemp("azurite"))
    try:
        yield AzuriteFixture(process)
    finally:
        process.stop()


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    """OpenSSH's sshd on 127.0.0.1 (a free port), logging in `simgate` as root or the current user otherwise."""
    if not SSHD.exists():
        _missing_component(
            f"{SSHD} is missing: install openssh-server (`make system-deps` as root)"
        )
    server = Sshd(tmp_path_factory.mktemp("sshd")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def slurm() -> Iterator[SlurmCluster]:
    """A one-node Slurm (munged, slurmctld, slurmd) configured in /etc/slurm/slurm.conf; daemons it started stop."""
    if not SLURMCTLD.exists():
        _missing_component(
            f"{SLURMCTLD} is missing: install slurm-wlm and munge (`make system-deps` as root)"
        )
    if os.geteuid() != 0:
        _missing_component(
            "the one-node Slurm needs root (it writes /etc/slurm and runs the daemons)"
        )
    cluster = SlurmCluster()
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def embedded_simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedLogin]:
    """devhost's embedded SSH simulator for a throw-away checkout, on a free port."""
    login = EmbeddedLogin(tmp_path_factory.mktemp("checkout")).start()
    try:
        yield login
    finally:
        login.stop()


# The gateway (devhost over real HTTP on this session's Azurite), once for every test folder. Imported last: it
# builds on the fixtures above.
from tests.gateway import gateway, use_targets  # noqa: E402, F401
