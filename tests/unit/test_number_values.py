"""Numbers no float holds (finding F3): a 422 naming the field, never an OverflowError (a 500)."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from core.cases import Case
from core.errors import InvalidValues
from core.values import MAX_WHOLE, check_values

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
            {"type": "float", "name": "density", "label": "D", "min": 900, "max": 1100},
            {"type": "int", "name": "cells", "label": "C", "min": 10, "max": 100},
            {"type": "float", "name": "anything", "label": "A", "required": False},
            {"type": "int", "name": "count", "label": "N", "required": False},
        ],
    }
)

HUGE = 10**400  # what `json.loads` makes of a JSON integer of 401 digits


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("density", HUGE, "finite"),
        ("density", -HUGE, "finite"),
        ("anything", HUGE, "finite"),
        ("anything", 2**1024, "finite"),
        ("cells", HUGE, "whole number from"),
        ("count", -HUGE, "whole number from"),
        ("count", MAX_WHOLE + 1, "whole number from"),
        ("count", float(2**60), "whole number from"),
        ("count", float("inf"), "whole number"),
        ("density", sys.float_info.max, "from 900"),
        ("density", 10**300, "from 900"),
        ("density", 5e-324, "from 900"),
    ],
)
def test_a_number_beyond_range_is_refused_naming_the_field(
    name: str, value: Any, says: str
) -> None:
    with pytest.raises(InvalidValues) as caught:
        check_values(CASE, [{"name": name, "value": value}])
    [problem] = caught.value.errors
    assert problem.name == name
    assert says in problem.detail
    assert len(problem.detail) < 120  # the digits of a huge number are not echoed


def test_numbers_within_range_still_pass() -> None:
    got = check_values(
        CASE,
        [
            {"name": "anything", "value": 10**300},
            {"name": "count", "value": MAX_WHOLE},
            {"name": "density", "value": 1000},
            {"name": "cells", "value": 50.0},
        ],
    )
    assert got == {"anything": 1e300, "count": MAX_WHOLE, "density": 1000.0, "cells": 50}
