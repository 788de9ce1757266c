"""The sandboxed renderer: canonical numbers, strings only when inert or quoted, strict undefined, no escapes."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from core.cases import Case
from core.errors import CatalogError
from core.render import render_case


def make_case(folder: Path, template: str) -> Case:
    folder.mkdir(exist_ok=True)
    (folder / "run.sh.j2").write_text(template, encoding="utf-8")
    return Case.model_validate(
        {
            "id": 1, "slug": "tt", "title": "T", "description": "D", "target": "local", "entry": "run.sh",
            "scripts": [{"template": "run.sh.j2", "path": "run.sh", "executable": True}],
            "outputs": [{"name": "o", "glob": "o.csv", "label": "O"}],
            "fields": [{"type": "string", "name": "note", "label": "Note"}],
        }
    )


def render(tmp_path: Path, template: str, **values: object) -> str:
    case = make_case(tmp_path / "case", template)
    return render_case(tmp_path / "case", case, dict(values), {"id": "j1", "title": "Test 1"})[0].text


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.001, "0.001"), (1e-06, "1e-06"), (1000.0, "1000.0"), (3, "3"), (True, "true"), (False, "false")],
)
def test_numbers_and_bools_render_canonically(tmp_path: Path, value: object, text: str) -> None:
    assert render(tmp_path, "{{ values.x }}", x=value) == text


HOSTILE = ["$(touch PWNED)", "`touch PWNED`", "a; touch PWNED", "a\ntouch PWNED", "it's \"quoted\"", "../../etc"]


@pytest.mark.parametrize("value", HOSTILE)
def test_a_hostile_string_is_refused_bare(tmp_path: Path, value: str) -> None:
    with pytest.raises(CatalogError, match="refusing to render"):
        render(tmp_path, "echo {{ values.note }}", note=value)


@pytest.mark.parametrize("value", HOSTILE)
def test_a_quoted_hostile_string_is_inert_in_a_real_shell(tmp_path: Path, value: str) -> None:
    script = render(tmp_path, "printf '%s' {{ values.note | sh }}", note=value)
    done = subprocess.run(["sh", "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert done.stdout == value
    assert not (tmp_path / "PWNED").exists()
    assert shlex.split(script)[-1] == value


def test_tojson_is_allowed_and_exact(tmp_path: Path) -> None:
    assert render(tmp_path, "{{ values | tojson }}", note="a\"b", x=0.1) == '{"note": "a\\"b", "x": 0.1}'


def test_an_undefined_name_fails_instead_of_rendering_empty(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot render"):
        render(tmp_path, "{{ values.missing }}")


def test_the_sandbox_refuses_python_internals(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot render"):
        render(tmp_path, "{{ values.__class__.__mro__[1].__subclasses__() }}")


def test_job_facts_are_in_the_context(tmp_path: Path) -> None:
    assert render(tmp_path, "{{ job.id }} {{ job.title | sh }} {{ case.resources.cpus }}") == "j1 'Test 1' 1"
