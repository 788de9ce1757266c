"""What text a person reads may hold (F12 of the security review): titles, descriptions and string values refuse
the C0 and C1 controls and the invisible format characters that reorder or hide text ("Trojan Source"), and the
OpenAPI document declares the pattern that is enforced."""

from __future__ import annotations

import re
from typing import Any

import pytest

import function_app  # noqa: F401  (its blueprints declare the operations the document describes)
from blueprints.openapi import document
from core.bodies import JobCreate, JobPatch, parse_body
from core.cases import Case
from core.errors import InvalidBody, InvalidValues
from core.values import check_values

# Each one spoofs or hides text: C1 controls (U+0085 is a line break to some readers), bidi embeddings, overrides
# and isolates, the Arabic letter mark, the zero-width space and direction marks, line and paragraph separators,
# the BOM.
SPOOFING = [
    "\u0080",
    "\u0085",
    "\u009b",
    "\u009f",
    "\u061c",
    "\u200b",
    "\u200e",
    "\u200f",
    "\u2028",
    "\u2029",
    "\u202a",
    "\u202b",
    "\u202c",
    "\u202d",
    "\u202e",
    "\u2066",
    "\u2067",
    "\u2068",
    "\u2069",
    "\ufeff",
]
CONTROLS = ["\x00", "\x01", "\x1b", "\x1f", "\x7f"]
PRINTABLE = [
    "plain",
    "üñ中文🙂",
    'Ann\'s run "1" <b>',
    "\u00a0nbsp",
    "\u05d0\u05d1 Hebrew",
    "\u0627\u0644 Arabic",
    "\U0001f469\u200d\U0001f52c scientist",
    "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645 Persian",
]

CASE = Case.model_validate(
    {
        "id": 1,
        "slug": "tt",
        "title": "T",
        "description": "D",
        "target": "local",
        "entry": "run.sh",
        "scripts": [{"template": "run.sh.j2", "path": "run.sh", "executable": True}],
        "outputs": [{"name": "o", "glob": "o.csv", "label": "O"}],
        "fields": [{"type": "string", "name": "note", "label": "Note"}],
    }
)


def create(title: str, description: str = "") -> Any:
    return parse_body(JobCreate, {"case_id": 1, "job_title": title, "description": description})


@pytest.mark.parametrize("char", SPOOFING + CONTROLS, ids=lambda c: f"U+{ord(c):04X}")
def test_a_title_refuses_it_naming_the_field(char: str) -> None:
    with pytest.raises(InvalidBody) as caught:
        create(f"evil{char}title")
    assert [p.name for p in caught.value.errors] == ["job_title"]
    with pytest.raises(InvalidBody, match="job_title"):
        parse_body(JobPatch, {"job_title": f"a{char}b"})


@pytest.mark.parametrize("char", SPOOFING + CONTROLS, ids=lambda c: f"U+{ord(c):04X}")
def test_a_description_refuses_it_naming_the_field(char: str) -> None:
    with pytest.raises(InvalidBody) as caught:
        create("fine", f"line one{char}line two")
    assert [p.name for p in caught.value.errors] == ["description"]


@pytest.mark.parametrize("char", SPOOFING + CONTROLS, ids=lambda c: f"U+{ord(c):04X}")
def test_a_string_value_refuses_it_naming_the_field(char: str) -> None:
    with pytest.raises(InvalidValues) as caught:
        check_values(CASE, [{"name": "note", "value": f"a{char}b"}])
    assert [p.name for p in caught.value.errors] == ["note"]
    assert "control characters" in caught.value.errors[0].detail


@pytest.mark.parametrize("text", PRINTABLE)
def test_printable_text_in_any_script_is_kept(text: str) -> None:
    job = create(text, text)
    assert (job.job_title, job.description) == (text.strip(), text)
    assert check_values(CASE, [{"name": "note", "value": text}]) == {"note": text}


def test_a_description_keeps_its_line_breaks_and_tabs() -> None:
    text = "one\ntwo\r\nthree\tfour"
    assert create("fine", text).description == text
    for char in "\n\r\t":
        with pytest.raises(InvalidBody, match="job_title"):
            create(f"a{char}b")


def test_the_documented_patterns_are_the_ones_enforced() -> None:
    schemas = document()
    properties = schemas["components"]["schemas"]["JobCreate"]["properties"]
    found = {name: properties[name]["pattern"] for name in ("job_title", "description")}
    assert set(found) == {"job_title", "description"}
    for char in SPOOFING + CONTROLS + ["\n", "\t", "é", "中"]:
        for name, pattern in found.items():
            text = f"a{char}b"
            try:
                (create(text) if name == "job_title" else create("fine", text))
                accepted = True
            except InvalidBody:
                accepted = False
            assert bool(re.fullmatch(pattern, text)) == accepted, (name, f"U+{ord(char):04X}")
