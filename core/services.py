"""The composition root: the one place that builds the real adapters behind the ports, and hands them out.

`services()` is the worker's `Services`, made on first use from the environment. Each adapter is built on first use
too (a `cached_property`), which is where the heavy modules (the Azure SDK, asyncssh, pydantic's case models) load:
importing this module, or any service module, loads none of them, so a cold start stays cheap. Tests give their
own: `use_services(Services(settings, jobs=FakeJobs(), ...))` swaps in fakes, and `reset_services()` makes the next
call read the environment again.

Everything that lives as long as the worker lives here, in one object: settings, the catalog, the targets, the
storage and queue clients (with the delegation key), the JWKS cache, and one SSH pool per event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Iterator
from functools import cached_property
from typing import TYPE_CHECKING, Any

from core.config import Settings, read_settings

if TYPE_CHECKING:
    from core.auth import KeyCache
    from core.catalog import Catalog
    from core.ports import DispatchQueue, JobRepo, OutputStore, RemoteRunner, StudyRepo
    from core.targets import Target


class Services:
    """The worker's settings and adapters; any of them may be given (a fake), the rest are built on first use."""

    def __init__(self, settings: Settings, **given: Any) -> None:
        self.settings = settings
        unknown = set(given) - {
            "jobs",
            "studies",
            "outputs",
            "queue",
            "remote",
            "catalog",
            "targets",
            "keys",
        }
        if unknown:
            raise TypeError(f"Services has no {sorted(unknown)}")
        self.__dict__.update(given)  # a given adapter shadows its cached_property
        self._pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, RemoteRunner] = (
            weakref.WeakKeyDictionary()
        )

    @cached_property
    def jobs(self) -> JobRepo:
        """The job repository: Table Storage."""
        from core.storage.jobs_table import JobsTable, make_client

        return JobsTable(make_client(self.settings))

    @cached_property
    def studies(self) -> StudyRepo:
        """The study repository: Table Storage, a table of its own."""
        from core.storage.jobs_table import make_client
        from core.storage.studies_table import StudiesTable

        return StudiesTable(make_client(self.settings, self.settings.studies_table))

    @cached_property
    def outputs(self) -> OutputStore:
        """The output store: Blob Storage, with the worker's cached delegation key."""
        from core.storage.outputs import JobOutputs, make_service

        return JobOutputs(make_service(self.settings))

    @cached_property
    def queue(self) -> DispatchQueue:
        """The dispatch queue: Queue Storage."""
        from core.storage.queues import QueueDispatch

        return QueueDispatch.connect(self.settings)

    @cached_property
    def catalog(self) -> Catalog:
        """The case catalog, read from disk once."""
        from core.catalog import load_catalog

        return load_catalog(self.settings.cases_dir)

    @cached_property
    def targets(self) -> dict[str, Target]:
        """The configured targets, read once from `SIMGATE_TARGETS`."""
        from core.targets import read_targets

        return read_targets(self.settings.targets)

    @cached_property
    def keys(self) -> KeyCache:
        """The identity provider's signing keys, fetched on first use."""
        from core.auth import KeyCache

        return KeyCache()

    @property
    def remote(self) -> RemoteRunner:
        """The running event loop's SSH pool (asyncio connections belong to the loop that opened them); a given
        runner serves every loop."""
        given = self.__dict__.get("remote")
        if given is not None:
            return given  # type: ignore[no-any-return]
        loop = asyncio.get_running_loop()
        if loop not in self._pools:
            from core.ssh import SshPool

            self._pools[loop] = SshPool()
        return self._pools[loop]


_current: Services | None = None


def services() -> Services:
    """The worker's services, made from the environment on first use."""
    global _current
    if _current is None:
        _current = Services(read_settings())
    return _current


def get_settings() -> Settings:
    """The worker's settings (`services().settings`)."""
    return services().settings


def reset_services(new: Services | None = None) -> None:
    """Replace the worker's services: `new`, or (None) fresh ones read from the environment on next use."""
    global _current
    _current = new


@contextlib.contextmanager
def use_services(new: Services) -> Iterator[Services]:
    """Use `new` for the duration of the block (tests), then what was there before."""
    before = _current
    reset_services(new)
    try:
        yield new
    finally:
        reset_services(before)
