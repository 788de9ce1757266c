"""Value checks against typed field specs: every rule, and one error listing every bad field."""

from __future__ import annotations

from typing import Any

import pytest

from core.cases import Case
from core.errors import InvalidValues
from core.values import check_values, effective_values, missing_required

CASE = Case.model_validate(
    {
        "id": 1,
        "slug": "tank",
        "title": "T",
        "description": "D",
        "target": "local",
        "entry": "run.sh",
        "scripts": [{"template": "run.sh.j2", "path": "run.sh"}],
        "outputs": [{"name": "o", "glob": "o.csv", "label": "O"}],
        "fields": [
            {
                "type": "group",
                "name": "water",
                "label": "Water",
                "fields": [
                    {
                        "type": "float",
                        "name": "density",
                        "label": "D",
                        "units": "kg/m³",
                        "min": 900,
                        "max": 1100,
                        "step": 0.5,
                        "default": 1000,
                    },
                    {
                        "type": "float",
                        "name": "viscosity",
                        "label": "V",
                        "units": "m²/s",
                        "min": 1e-06,
                        "max": 1e-04,
                        "step": 1e-06,
                    },
                ],
            },
            {
                "type": "int",
                "name": "cells",
                "label": "C",
                "min": 10,
                "max": 100,
                "step": 5,
                "default": 20,
            },
            {"type": "bool", "name": "pulse", "label": "P", "default": False},
            {
                "type": "choice",
                "name": "mesh",
                "label": "M",
                "options": [
                    {"value": "coarse", "label": "Coarse"},
                    {"value": "fine", "label": "Fine"},
                ],
            },
            {
                "type": "string",
                "name": "tag",
                "label": "Tag",
                "pattern": "[a-z0-9-]+",
                "max_length": 16,
                "required": False,
            },
            {"type": "string", "name": "note", "label": "Note", "required": False},
        ],
    }
)


def check(**values: Any) -> dict[str, Any]:
    return check_values(CASE, [{"name": k, "value": v} for k, v in values.items()])


def test_good_values_are_normalised() -> None:
    got = check(
        density=998,
        viscosity=1.5e-05,
        cells=35.0,
        pulse=True,
        mesh="fine",
        tag="run-1",
        note="ça va",
    )
    assert got == {
        "density": 998.0,
        "viscosity": 1.5e-05,
        "cells": 35,
        "pulse": True,
        "mesh": "fine",
        "tag": "run-1",
        "note": "ça va",
    }
    assert isinstance(got["density"], float)
    assert isinstance(got["cells"], int)


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("density", float("nan"), "finite"),
        ("density", float("inf"), "finite"),
        ("density", "1000", "must be a number"),
        ("density", True, "must be a number"),
        ("density", None, "must be a number"),
        ("density", [1000], "must be a number"),
        ("density", 899.5, "from 900"),
        ("density", 1100.5, "from 900"),
        ("density", 1000.25, "multiple of 0.5"),
        ("viscosity", 1.5e-06, "multiple of 1e-06"),
        ("cells", 12, "multiple of 5"),
        ("cells", 20.5, "whole number"),
        ("pulse", 1, "true or false"),
        ("pulse", "true", "true or false"),
        ("mesh", "medium", "one of ['coarse', 'fine']"),
        ("mesh", 1, "one of"),
        ("tag", "Bad Tag", "matching"),
        ("tag", "x" * 17, "0 to 16 characters"),
        ("tag", "$(touch x)", "matching"),
        ("note", "a\nb", "control characters"),
        ("note", "a\x00b", "control characters"),
        ("note", {"a": 1}, "must be a string"),
        ("colour", "red", "not a field"),
    ],
)
def test_each_rule_refuses_with_a_reason(name: str, value: Any, says: str) -> None:
    with pytest.raises(InvalidValues) as caught:
        check(**{name: value})
    [problem] = caught.value.errors
    assert problem.name == name
    assert says in problem.detail


def test_every_bad_field_is_listed_at_once() -> None:
    with pytest.raises(InvalidValues) as caught:
        check(density=-1, cells="x", mesh="huge", colour=1, pulse=False)
    assert [p.name for p in caught.value.errors] == ["density", "cells", "mesh", "colour"]


def test_units_must_match_when_sent() -> None:
    assert check_values(CASE, [{"name": "density", "value": 1000, "units": "kg/m³"}]) == {
        "density": 1000.0
    }
    with pytest.raises(InvalidValues, match="density"):
        check_values(CASE, [{"name": "density", "value": 1000, "units": "g/cm³"}])
    with pytest.raises(InvalidValues):
        check_values(CASE, [{"name": "pulse", "value": True, "units": "kg"}])


def test_a_value_set_twice_is_refused() -> None:
    with pytest.raises(InvalidValues, match="density"):
        check_values(CASE, [{"name": "density", "value": 1000}, {"name": "density", "value": 1001}])


def test_defaults_fill_and_required_fields_without_one_are_missing() -> None:
    assert missing_required(CASE, {}) == ["viscosity", "mesh"]
    assert missing_required(CASE, {"viscosity": 1e-05, "mesh": "fine"}) == []
    assert effective_values(CASE, {"cells": 50}) == {"density": 1000, "cells": 50, "pulse": False}
