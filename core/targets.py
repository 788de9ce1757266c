"""Simulators the gateway dispatches to ("targets"), read from settings.

`SIMGATE_TARGETS` holds a JSON object, name → target, or `@path` to a file holding one (relative paths are from the
app root). A case names its target. Each target says how to reach it over SSH (host, port, user, the private key
and the pinned host keys: never trust-on-first-use) and how to run jobs there (scheduler, base folder, the
environment set-up lines, scheduler options), and optionally what software it provides (`provides`, matched
against the `requires` of the cases that run on it; left out, nothing is checked). In Azure the private key comes
from an app setting that is a Key Vault reference (`key_setting`); locally from a file made at set-up (`key_file`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.cases import Requirement, field_path
from core.config import APP_ROOT
from core.errors import CatalogError, NotFound
from core.schedulers import SCHEDULERS
from core.services import services


class Target(BaseModel):
    """One simulator reached over SSH."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9-]{0,62}$")
    host: str = Field(min_length=1, max_length=255)
    port: int = Field(default=22, ge=1, le=65535)
    user: str = Field(pattern=r"^[a-z_][a-z0-9_.-]{0,31}$")
    key_file: str | None = None
    key_setting: str | None = None
    known_hosts: str = Field(min_length=1)  # known_hosts lines pinning the host's key(s)
    scheduler: str = "direct"  # a name in core.schedulers.SCHEDULERS
    base_dir: str = Field(pattern=r"^/[A-Za-z0-9_./-]*$")  # absolute; job folders are made below it
    setup: tuple[str, ...] = ()  # shell lines run before the job (trusted: written by the operator)
    options: dict[str, str] = Field(default_factory=dict)
    # What the target has beyond python3 (`openfoam`, ...). None: not declared, so cases' `requires` are not checked
    # (operators' configs from before `provides` keep working); a list, even empty, is checked.
    provides: tuple[Requirement, ...] | None = None
    python: str = Field(default="python3", pattern=r"^[A-Za-z0-9_./-]+$")
    connect_timeout: float = Field(default=15, gt=0, le=300)
    command_timeout: float = Field(default=60, gt=0, le=3600)

    @field_validator("scheduler")
    @classmethod
    def _known_scheduler(cls, name: str) -> str:
        if name not in SCHEDULERS:
            raise ValueError(f"unknown scheduler {name!r}: use one of {', '.join(SCHEDULERS)}")
        return name

    @model_validator(mode="after")
    def _one_key(self) -> Self:
        if (self.key_file is None) == (self.key_setting is None):
            raise ValueError("give exactly one of key_file and key_setting")
        if ".." in self.base_dir.split("/"):
            raise ValueError("base_dir must not contain '..'")
        return self

    def lacks(self, requires: tuple[str, ...]) -> tuple[str, ...]:
        """What of `requires` this target is known not to provide (nothing when it does not declare `provides`)."""
        if self.provides is None:
            return ()
        return tuple(r for r in requires if r not in self.provides)

    def private_key(self) -> str:
        """The private key's PEM text (from its file, or from the app setting that holds it)."""
        if self.key_file:
            return _app_path(self.key_file).read_text(encoding="utf-8")
        return os.environ.get(self.key_setting or "", "")


def _app_path(text: str) -> Path:
    return (APP_ROOT / text).resolve()


def parse_targets(text: str) -> dict[str, Target]:
    """Targets from their JSON text; `CatalogError` naming the bad target and field."""
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise CatalogError(f"SIMGATE_TARGETS is not JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise CatalogError("SIMGATE_TARGETS must be a JSON object of name → target")
    targets = {}
    for name, spec in raw.items():
        try:
            targets[name] = Target.model_validate(
                {"name": name, **(spec if isinstance(spec, dict) else {})}
            )
        except ValidationError as exc:
            problems = "; ".join(f"{field_path(e['loc'])}: {e['msg']}" for e in exc.errors())
            raise CatalogError(f"SIMGATE_TARGETS target {name!r}: {problems}") from exc
    return targets


def read_targets(setting: str) -> dict[str, Target]:
    """The targets of the `SIMGATE_TARGETS` setting: JSON text, or "@path" to a file of it below the app root."""
    if setting.startswith("@"):
        setting = _app_path(setting[1:]).read_text(encoding="utf-8")
    return parse_targets(setting or "{}")


def get_targets() -> dict[str, Target]:
    """The worker's targets (`services().targets`), read once."""
    return services().targets


def get_target(name: str) -> Target:
    """The target called `name`; `NotFound` when the settings have none."""
    try:
        return get_targets()[name]
    except KeyError:
        raise NotFound(f"no simulator target {name!r} is configured") from None
