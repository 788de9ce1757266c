"""`lazy_module`: a module imported on first use, so that importing the app (a cold start) loads no service module.

The blueprints name their core modules at the top, and the worker imports the app to index its functions before
the first request: a plain import would load pydantic, the SDK or asyncssh into every cold start, for functions
that may never run in that worker. A blueprint writes

    if TYPE_CHECKING:
        from core import catalog
    else:
        catalog = lazy_module("core.catalog")

so mypy sees the module itself, and the code imports it the first time it reads `catalog.<name>`. The proxy calls
`importlib.import_module`, which takes the import lock: two threads reaching it at once import the module once
(`importlib.util.LazyLoader` is not thread-safe before Python 3.12's fix).
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import Any


class LazyModule(ModuleType):
    """A stand-in for the module `name`, importing it when one of its attributes is first read."""

    def __getattr__(self, attr: str) -> Any:
        # Every read goes to the real module (a dict look-up once it is imported), so a name it rebinds later, or a
        # test patches, is seen.
        return getattr(importlib.import_module(self.__name__), attr)


def lazy_module(name: str) -> Any:
    """The module `name`, imported on first attribute access (at once if it is imported already)."""
    return sys.modules[name] if name in sys.modules else LazyModule(name)
