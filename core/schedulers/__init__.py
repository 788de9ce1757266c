"""Scheduler adapters: pure argv builders and text parsers, one module each (see `base.py` and `common.py`).

A new scheduler is one module in this package: a `BatchScheduler` subclass decorated with `@register`. Every module
here is imported below, which fills `SCHEDULERS`; `get_scheduler` and `Target.scheduler` read it, so there is no
list of names to edit anywhere else.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping

from core.errors import InvalidSubmission
from core.schedulers.base import Scheduler
from core.schedulers.common import SCHEDULERS

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")


def get_scheduler(name: str, options: Mapping[str, str] | None = None) -> Scheduler:
    """The adapter called `name`, made for a target with `options`; `InvalidSubmission` naming the allowed names
    otherwise.

    `options` are the target's options. Only PBS reads one here (`flavour`: its status command differs between PBS Pro
    and Torque), so whoever asks for status should pass them; batch scripts read each job's own options.
    """
    factory = SCHEDULERS.get(name)
    if factory is None:
        raise InvalidSubmission(f"unknown scheduler {name!r}: use one of {', '.join(SCHEDULERS)}")
    return factory(options or {})


__all__ = ["SCHEDULERS", "get_scheduler"]
