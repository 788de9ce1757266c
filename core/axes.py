"""A study's runs from its axes: every value an axis gives, combined as a grid or side by side, checked before any
run is made.

An axis varies one field of the case: a list of values, a range by `step` (both ends included when the step lands
on `to`), or `count` values from `from` to `to`, evenly spaced on a linear or a log scale. `grid` makes every
combination (the first axis varies slowest), `zip` pairs the axes' values by position (they must be as long).
Every value is checked against its field as a job's value is (`core.values.check_value`), and every problem is
named by where it was written (`axes[1].values[3]`, `axes[0].to`), so one 422 lists them all.

Ranges are computed in decimal, so `0.1` to `0.3` by `0.1` gives 0.1, 0.2 and 0.3, never 0.30000000000000004.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from core.cases import Case, IntField, LeafField
from core.errors import FieldProblem, InvalidValues
from core.values import Value, check_value


@dataclass(frozen=True)
class Axis:
    """One varied field, as the request gives it: `values`, or `start`/`stop` with `step` or `count`/`scale`."""

    name: str
    values: tuple[Any, ...] | None = None
    start: float | None = None
    stop: float | None = None
    step: float | None = None
    count: int | None = None
    scale: str = "linear"


def expand(case: Case, axes: list[Axis], combine: str, max_runs: int) -> list[dict[str, Value]]:
    """The varied values of every run, in order; `InvalidValues` listing every bad axis or value."""
    fields = {f.name: f for f in case.leaves()}
    problems: list[FieldProblem] = []
    columns: list[list[Value]] = []
    for index, axis in enumerate(axes):
        column, found = _axis_values(fields, axis, f"axes[{index}]", max_runs, axes[:index])
        columns.append(column)
        problems += found
    if not problems:
        problems += _combined_problems(columns, combine, max_runs)
    if problems:
        named = ", ".join(p.name for p in problems)
        raise InvalidValues(f"the study's axes are not valid: {named}", errors=problems)
    names = [axis.name for axis in axes]
    rows = zip(*columns, strict=True) if combine == "zip" else itertools.product(*columns)
    return [dict(zip(names, row, strict=True)) for row in rows]


def run_count(columns: list[list[Value]], combine: str) -> int:
    """How many runs the axes' values make."""
    if not columns:
        return 1
    return len(columns[0]) if combine == "zip" else math.prod(len(c) for c in columns)


def _combined_problems(
    columns: list[list[Value]], combine: str, max_runs: int
) -> list[FieldProblem]:
    if combine == "zip" and len({len(c) for c in columns}) > 1:
        lengths = ", ".join(str(len(c)) for c in columns)
        return [
            FieldProblem(
                "axes", f"zip pairs values by position: the axes must be as long ({lengths})"
            )
        ]
    runs = run_count(columns, combine)
    if runs > max_runs:
        return [FieldProblem("axes", f"make {runs} runs; a study has at most {max_runs}")]
    return []


def _axis_values(
    fields: dict[str, LeafField], axis: Axis, where: str, max_runs: int, before: list[Axis]
) -> tuple[list[Value], list[FieldProblem]]:
    """The checked values of one axis, or the problems with it."""
    field = fields.get(axis.name)
    if field is None:
        return [], [FieldProblem(f"{where}.name", f"{axis.name!r} is not a field of this case")]
    if any(b.name == axis.name for b in before):
        return [], [
            FieldProblem(f"{where}.name", f"{axis.name!r} is varied by another axis already")
        ]
    try:
        raw, located = _raw_values(field, axis, max_runs)
    except ValueError as exc:
        return [], [FieldProblem(where, str(exc))]
    values: list[Value] = []
    problems: list[FieldProblem] = []
    for position, value in enumerate(raw):
        try:
            values.append(check_value(field, value))
        except ValueError as exc:
            name = f"{where}.values[{position}]" if located else f"{where} (value {value!r})"
            problems.append(FieldProblem(name, str(exc)))
    if len(set(map(repr, values))) != len(values):
        problems.append(FieldProblem(where, "gives a value more than once"))
    return values, problems


def _raw_values(field: LeafField, axis: Axis, max_runs: int) -> tuple[list[Any], bool]:
    """The values an axis writes, before they are checked, and whether they were written as a list."""
    if axis.values is not None:
        return list(axis.values), True
    if axis.start is None or axis.stop is None:
        raise ValueError("needs `values`, or `from` and `to` with `step` or `count`")
    whole = isinstance(field, IntField)
    if axis.step is not None:
        return _stepped(axis.start, axis.stop, axis.step, max_runs, whole), False
    if axis.count is not None:
        return _counted(axis.start, axis.stop, axis.count, axis.scale, whole), False
    raise ValueError("a range needs `step` or `count`")


def _stepped(start: float, stop: float, step: float, max_runs: int, whole: bool) -> list[Any]:
    first, last, by = Decimal(str(start)), Decimal(str(stop)), Decimal(str(step))
    if by == 0 or (last - first) * by < 0:
        raise ValueError("`step` must be non-zero and lead from `from` to `to`")
    steps = int((last - first) / by)
    if steps + 1 > max_runs:
        raise ValueError(f"gives {steps + 1} values; a study has at most {max_runs} runs")
    return [_number(first + by * i, whole) for i in range(steps + 1)]


def _counted(start: float, stop: float, count: int, scale: str, whole: bool) -> list[Any]:
    if count == 1:
        return [_number(Decimal(str(start)), whole)]
    if scale == "log":
        if start <= 0 or stop <= 0:
            raise ValueError("a log scale needs `from` and `to` above zero")
        ratio = (stop / start) ** (1 / (count - 1))
        raw = [start * ratio**i for i in range(count)]
        raw[-1] = stop  # exactly the end the user wrote
        return [_number(Decimal(repr(float(f"{v:.12g}"))), whole) for v in raw]
    first, last = Decimal(str(start)), Decimal(str(stop))
    return [_number(first + (last - first) * i / (count - 1), whole) for i in range(count)]


def _number(value: Decimal, whole: bool) -> Any:
    """A computed value as the field takes it: a whole number for an int field (refused later if it is not one)."""
    if whole and value == value.to_integral_value():
        return int(value)
    return float(value)
