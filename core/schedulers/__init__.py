"""Scheduler adapters: pure argv builders and text parsers for `direct`, `slurm` and `pbs` (see `base.py`)."""

from __future__ import annotations

from collections.abc import Mapping

from core.schedulers.base import Scheduler
from core.schedulers.direct import DirectScheduler
from core.schedulers.pbs import PbsScheduler
from core.schedulers.slurm import SlurmScheduler

NAMES = ("direct", "slurm", "pbs")


def get_scheduler(name: str, options: Mapping[str, str] | None = None) -> Scheduler:
    """The adapter called `name`; `ValueError` naming the allowed names otherwise.

    `options` are the target's options. Only PBS reads one here (`flavour`: its status command differs between PBS Pro
    and Torque), so whoever asks for status should pass them; batch scripts read each job's own options.
    """
    if name == "direct":
        return DirectScheduler()
    if name == "slurm":
        return SlurmScheduler()
    if name == "pbs":
        return PbsScheduler((options or {}).get("flavour", "pro"))
    raise ValueError(f"unknown scheduler {name!r}: use one of {', '.join(NAMES)}")
