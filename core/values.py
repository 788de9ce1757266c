"""Check job values against their case's typed field specs.

Values arrive as JSON (`[{name, value, units?}]`). Each is checked against its field: finite numbers within
min and max and on the step grid, whole numbers for int fields, one of the options for choice fields, the pattern
for string fields; unknown names and wrong units are refused. Every problem is collected, so one 422 can list them
all at once.
"""

from __future__ import annotations

import math
import re
from typing import Any

from core.cases import (
    BoolField,
    Case,
    ChoiceField,
    FloatField,
    IntField,
    LeafField,
    StringField,
    on_step_grid,
)
from core.errors import FieldProblem, InvalidValues

Value = float | int | bool | str
# Text a person reads (titles, descriptions, string values) holds none of these: DEL and the C1 controls (U+0085
# is a line break to some readers), and the invisible format characters that reorder or hide text: the bidi
# embeddings, overrides and isolates and the Arabic letter mark ("Trojan Source" spoofing of titles in lists and
# labels in logs), the zero-width space and direction marks, the line and paragraph separators, and the BOM. The
# zero-width joiner and non-joiner (U+200C, U+200D) stay: Persian and Indic words and emoji sequences need them.
# Written as regex escapes that Python's re, pydantic's Rust regex and JSON Schema (ECMAScript) all read alike.
INVISIBLE = r"\x7f-\x9f\u061c\u200b\u200e\u200f\u2028-\u202e\u2066-\u2069\ufeff"
UNPRINTABLE = r"\x00-\x1f" + INVISIBLE  # and the C0 controls: what a one-line text refuses
_CONTROL = re.compile(f"[{UNPRINTABLE}]")


def check_values(case: Case, items: list[dict[str, Any]]) -> dict[str, Value]:
    """The checked values of `items` by field name; `InvalidValues` listing every bad item otherwise."""
    fields = {f.name: f for f in case.leaves()}
    checked: dict[str, Value] = {}
    problems: list[FieldProblem] = []
    for item in items:
        name = item["name"]
        try:
            if name in checked:
                raise ValueError("is set more than once")
            if name not in fields:
                raise ValueError(f"is not a field of case {case.slug!r}")
            checked[name] = check_value(fields[name], item["value"], item.get("units"))
        except ValueError as exc:
            problems.append(FieldProblem(name, str(exc)))
    if problems:
        names = ", ".join(p.name for p in problems)
        raise InvalidValues(
            f"{len(problems)} field value(s) are not valid: {names}", errors=problems
        )
    return checked


def check_value(field: LeafField, value: Any, units: str | None = None) -> Value:
    """`value` normalised for `field` (ints as int, floats as float); `ValueError` says what is wrong."""
    if units is not None and units != field.units:
        raise ValueError(
            f"units must be {field.units!r}, not {units!r}" if field.units else "takes no units"
        )
    if isinstance(field, FloatField | IntField):
        return _check_number(field, value)
    if isinstance(field, BoolField):
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value
    if isinstance(field, ChoiceField):
        return _check_choice(field, value)
    return _check_string(field, value)


# JSON's interoperable whole numbers (RFC 8259 §6, I-JSON): past them an integer has no exact double, in Python's
# float or in a browser's Number.
MAX_WHOLE = 2**53 - 1


def _check_number(field: FloatField | IntField, raw: Any) -> float | int:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ValueError("must be a number")
    value = _whole(raw) if isinstance(field, IntField) else _real(raw)
    if (field.min is not None and value < field.min) or (
        field.max is not None and value > field.max
    ):
        raise ValueError(f"must be from {field.min} to {field.max}{_units(field)}, not {value}")
    if field.step is not None and not on_step_grid(value, field.min or 0, field.step):
        raise ValueError(f"must be a multiple of {field.step} from {field.min or 0}")
    return value


def _whole(raw: int | float) -> int:
    if isinstance(raw, float) and not raw.is_integer():  # NaN and infinities too
        raise ValueError("must be a whole number")
    if (
        abs(raw) > MAX_WHOLE
    ):  # checked before any float(): an int of hundreds of digits overflows one
        raise ValueError(f"must be a whole number from {-MAX_WHOLE} to {MAX_WHOLE}")
    return int(raw)


def _real(raw: int | float) -> float:
    try:
        value = float(raw)
    except (
        OverflowError
    ):  # an int of hundreds of digits: no ValueError, so it would leave check_values as a 500
        raise ValueError("must be a finite number (at most about 1.8e308 in size)") from None
    if not math.isfinite(value):  # NaN, or JSON's 1e400, which reads as infinity
        raise ValueError("must be a finite number")
    return value


def _check_choice(field: ChoiceField, value: Any) -> str:
    allowed = [o.value for o in field.options]
    if value not in allowed:
        raise ValueError(f"must be one of {allowed}")
    return str(value)


def _check_string(field: StringField, value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    if _CONTROL.search(value):
        raise ValueError(
            "must not contain control characters or invisible format characters (bidi, zero-width)"
        )
    if not field.accepts(value):
        pattern = f" matching {field.pattern!r}" if field.pattern else ""
        raise ValueError(f"must be {field.min_length} to {field.max_length} characters{pattern}")
    return value


def _units(field: FloatField | IntField) -> str:
    return f" {field.units}" if field.units else ""


def missing_required(case: Case, values: dict[str, Value]) -> list[str]:
    """Required fields that have neither a value nor a default."""
    return [
        f.name for f in case.leaves() if f.required and f.name not in values and f.default is None
    ]


def effective_values(case: Case, values: dict[str, Value]) -> dict[str, Value]:
    """The values a run uses: the defaults, overridden by what the user set."""
    return {**case.defaults(), **values}
