"""What a simulation case is: its typed fields, scripts, resources and outputs (pydantic models).

A case is data (`cases/<slug>/case.yaml`); these models are its schema. Every model forbids unknown keys, so a typo
in a case file fails at load instead of being ignored. Leaf fields carry a `name` unique within the case; groups
only nest fields for display (the original's "Water › density").
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import PurePosixPath
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.jobfolder import STDERR_LOG, STDOUT_LOG

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}$"
WALLTIME_PATTERN = r"^\d{1,3}:[0-5]\d:[0-5]\d$"
# What a case may need of its simulator beyond the wrapper's python3 (`requires`), and what a target says it has
# (`provides`, core/targets.py): names such as `openfoam`.
REQUIREMENT_PATTERN = r"^[a-z][a-z0-9_.-]{0,62}$"
Requirement = Annotated[str, Field(pattern=REQUIREMENT_PATTERN)]
# How the catalog names a requirement to users; others are shown as written.
REQUIREMENT_LABELS = {"openfoam": "OpenFOAM"}


def requirement_label(name: str) -> str:
    """A requirement as users read it: `openfoam` is "OpenFOAM"."""
    return REQUIREMENT_LABELS.get(name, name)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _FieldBase(_Strict):
    name: str = Field(pattern=NAME_PATTERN)
    label: str = Field(min_length=1, max_length=120)
    help: str = Field(default="", max_length=2000)
    units: str | None = Field(default=None, max_length=40)
    required: bool = True


def on_step_grid(value: float, origin: float, step: float) -> bool:
    """Whether `value` is `origin` plus a whole number of `step`s, judged in decimal so 0.1 steps work."""
    steps = (Decimal(repr(value)) - Decimal(repr(origin))) / Decimal(repr(step))
    return steps == steps.to_integral_value()


class _NumberField(_FieldBase):
    """Shared checks of float and int fields: the range is sane and the default sits inside it, on the grid."""

    @model_validator(mode="after")
    def _check_range(self) -> Self:
        lo, hi, step, default = (getattr(self, k) for k in ("min", "max", "step", "default"))
        if not all(v is None or math.isfinite(v) for v in (lo, hi, step, default)):
            raise ValueError("min, max, step and default must be finite numbers")
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"min ({lo}) is above max ({hi})")
        if step is not None and step <= 0:
            raise ValueError("step must be positive")
        if default is not None:
            _check_default_in_range(default, lo, hi, step)
        return self


def _check_default_in_range(
    default: float, lo: float | None, hi: float | None, step: float | None
) -> None:
    if (lo is not None and default < lo) or (hi is not None and default > hi):
        raise ValueError(f"default {default} is outside [{lo}, {hi}]")
    if step is not None and not on_step_grid(default, lo if lo is not None else 0, step):
        raise ValueError(f"default {default} is not on the step grid of {step}")


class FloatField(_NumberField):
    """A real number, e.g. a density in kg/m³."""

    type: Literal["float"]
    min: float | None = None
    max: float | None = None
    step: float | None = None
    default: float | None = None


class IntField(_NumberField):
    """A whole number, e.g. a cell count."""

    type: Literal["int"]
    min: int | None = None
    max: int | None = None
    step: int | None = None
    default: int | None = None


class BoolField(_FieldBase):
    """A switch."""

    type: Literal["bool"]
    default: bool | None = None


class ChoiceOption(_Strict):
    """One allowed value of a choice field and how it is shown."""

    value: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    label: str = Field(min_length=1, max_length=120)


class ChoiceField(_FieldBase):
    """One of a fixed list of options, e.g. a mesh resolution."""

    type: Literal["choice"]
    options: list[ChoiceOption] = Field(min_length=1)
    default: str | None = None

    @model_validator(mode="after")
    def _check_options(self) -> Self:
        values = [o.value for o in self.options]
        if len(set(values)) != len(values):
            raise ValueError("option values must be unique")
        if self.default is not None and self.default not in values:
            raise ValueError(f"default {self.default!r} is not one of the options {values}")
        return self


class StringField(_FieldBase):
    """Free text constrained by a pattern and a length."""

    type: Literal["string"]
    pattern: str | None = None
    min_length: int = Field(default=0, ge=0)
    max_length: int = Field(default=200, ge=1, le=10_000)
    default: str | None = None

    @model_validator(mode="after")
    def _check_pattern(self) -> Self:
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"pattern does not compile: {exc}") from None
        if self.default is not None and not self.accepts(self.default):
            raise ValueError(f"default {self.default!r} does not satisfy the pattern or length")
        return self

    def accepts(self, text: str) -> bool:
        """Whether `text` has an allowed length and matches the whole pattern."""
        if not self.min_length <= len(text) <= self.max_length:
            return False
        return self.pattern is None or re.fullmatch(self.pattern, text) is not None


LeafField = FloatField | IntField | BoolField | ChoiceField | StringField


class Group(_Strict):
    """A heading that nests fields (and groups) for display; it holds no value itself."""

    type: Literal["group"]
    name: str = Field(pattern=NAME_PATTERN)
    label: str = Field(min_length=1, max_length=120)
    help: str = Field(default="", max_length=2000)
    fields: list[Node] = Field(min_length=1)


NODE_TYPES = frozenset({"float", "int", "bool", "choice", "string", "group"})
Node = Annotated[
    FloatField | IntField | BoolField | ChoiceField | StringField | Group,
    Field(discriminator="type"),
]


def field_path(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as written in a document: `fields[0].fields[1].max`."""
    # pydantic puts a discriminator's tag after a list index (fields.0.float.max), and `[key]` after a bad dict
    # key (metrics.Bad.[key]); the document has neither.
    kept = [
        p
        for i, p in enumerate(loc)
        if p != "[key]" and not (i and isinstance(loc[i - 1], int) and p in NODE_TYPES)
    ]
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in kept).lstrip(".")


def _safe_relative_path(text: str) -> str:
    """Refuse absolute paths and `..`: case files name paths inside the case folder or the job folder only."""
    path = PurePosixPath(text)
    if path.is_absolute() or ".." in path.parts or text.strip() != text or not text:
        raise ValueError(f"{text!r} must be a relative path without '..'")
    return text


class Script(_Strict):
    """A file of the job: `template` (in the case folder) is rendered, or copied when `render` is false, to `path`."""

    template: str
    path: str
    executable: bool = False
    render: bool = True

    @model_validator(mode="after")
    def _check_paths(self) -> Self:
        _safe_relative_path(self.template)
        _safe_relative_path(self.path)
        return self


class Resources(_Strict):
    """What the job asks of the scheduler."""

    nodes: int = Field(default=1, ge=1, le=10_000)
    cpus: int = Field(default=1, ge=1, le=1_000_000)
    walltime: str = Field(default="00:30:00", pattern=WALLTIME_PATTERN)
    memory_mb: int | None = Field(default=None, ge=1)


class Output(_Strict):
    """A declared output: files in the job folder matching `glob`, shown as `label`."""

    name: str = Field(pattern=NAME_PATTERN)
    glob: str
    label: str = Field(min_length=1, max_length=120)
    content_type: str = Field(
        default="application/octet-stream", pattern=r"^[a-z]+/[A-Za-z0-9.+-]+$"
    )
    description: str = ""

    @model_validator(mode="after")
    def _check_glob(self) -> Self:
        _safe_relative_path(self.glob)
        return self


# How many metrics a case may declare, and a report carry (`core.bodies.StatusReport`, simulator/wrapper.py).
MAX_METRICS = 50


class Metric(_Strict):
    """A named scalar result the run writes: `key` of the JSON object in `file`, or `column` of the CSV `file`'s
    last row. The wrapper reads it after the entry ends and reports it with the job's end (numbers only)."""

    name: str = Field(pattern=NAME_PATTERN)
    label: str = Field(min_length=1, max_length=120)
    units: str | None = Field(default=None, max_length=40)
    description: str = Field(default="", max_length=2000)
    file: str = Field(max_length=300)
    key: str | None = Field(default=None, min_length=1, max_length=200)
    column: str | None = Field(default=None, min_length=1, max_length=200)

    @model_validator(mode="after")
    def _check_source(self) -> Self:
        _safe_relative_path(self.file)
        if (self.key is None) == (self.column is None):
            raise ValueError(
                f"metric {self.name!r} needs either a `key` (JSON file) or a `column` (CSV file)"
            )
        return self


# The wrapper captures the entry script's stdout and stderr in these files and uploads them with every job.
LOG_OUTPUTS = {
    "stdout": Output(
        name="stdout", glob=STDOUT_LOG, label="Job output log", content_type="text/plain"
    ),
    "stderr": Output(
        name="stderr", glob=STDERR_LOG, label="Job error log", content_type="text/plain"
    ),
}


class Case(_Strict):
    """A simulation case: a template with typed parameters, run on a named target."""

    id: int = Field(ge=1)
    slug: str = Field(pattern=SLUG_PATTERN)
    title: str = Field(min_length=1, max_length=120)
    description: str = Field(min_length=1, max_length=4000)
    thumbnail: str | None = None
    target: str = Field(pattern=r"^[a-z][a-z0-9-]{0,62}$")
    requires: tuple[
        Requirement, ...
    ] = ()  # software the target must provide (checked against its `provides`)
    entry: str
    scripts: list[Script] = Field(min_length=1)
    resources: Resources = Resources()
    outputs: list[Output] = Field(min_length=1)
    metrics: list[Metric] = Field(default_factory=list, max_length=MAX_METRICS)
    fields: list[Node] = Field(min_length=1)

    @model_validator(mode="after")
    def _check_names(self) -> Self:
        _ensure_unique("field name", [f.name for f in self.leaves()])
        _ensure_unique("group name", [g.name for g in _groups(self.fields)])
        _ensure_unique("output name", [o.name for o in self.outputs])
        _ensure_unique("metric name", [m.name for m in self.metrics])
        reserved = {o.name for o in self.outputs} & set(LOG_OUTPUTS)
        if reserved:
            raise ValueError(f"output names {sorted(reserved)} are reserved for the job's logs")
        _ensure_unique("script path", [s.path for s in self.scripts])
        _ensure_unique("requirement", list(self.requires))
        if self.entry not in {s.path for s in self.scripts}:
            raise ValueError(f"entry {self.entry!r} is not the path of one of the scripts")
        return self

    def output_specs(self) -> list[Output]:
        """The declared outputs and the job's two logs, which every job uploads."""
        return [*self.outputs, *LOG_OUTPUTS.values()]

    def metric(self, name: str) -> Metric | None:
        """The declared metric called `name`, or None."""
        return next((m for m in self.metrics if m.name == name), None)

    def leaves(self) -> list[LeafField]:
        """Every leaf field, in display order."""
        return list(_leaves(self.fields))

    def defaults(self) -> dict[str, float | int | bool | str]:
        """The default value of every field that has one."""
        return {f.name: f.default for f in self.leaves() if f.default is not None}


def _leaves(nodes: list[Node]) -> Iterator[LeafField]:
    for node in nodes:
        if isinstance(node, Group):
            yield from _leaves(node.fields)
        else:
            yield node


def _groups(nodes: list[Node]) -> Iterator[Group]:
    for node in nodes:
        if isinstance(node, Group):
            yield node
            yield from _groups(node.fields)


def _ensure_unique(what: str, names: list[str]) -> None:
    seen = {n for n in names if names.count(n) > 1}
    if seen:
        raise ValueError(f"{what}s must be unique within the case; repeated: {sorted(seen)}")


Group.model_rebuild()
