"""The sandboxed renderer: canonical numbers, strings only when inert or quoted, strict undefined, no escapes."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from core.cases import Case
from core.errors import CatalogError
from core.render import render_case


def make_case(folder: Path, template: str, path: str = "run.sh") -> Case:
    folder.mkdir(exist_ok=True)
    (folder / f"{path}.j2").write_text(template, encoding="utf-8")
    scripts = [{"template": f"{path}.j2", "path": path, "executable": path == "run.sh"}]
    if path != "run.sh":
        (folder / "run.sh").write_text("#!/bin/sh\n", encoding="utf-8")
        scripts.append(
            {"template": "run.sh", "path": "run.sh", "executable": True, "render": False}
        )
    return Case.model_validate(
        {
            "id": 1,
            "slug": "tt",
            "title": "T",
            "description": "D",
            "target": "local",
            "entry": "run.sh",
            "scripts": scripts,
            "outputs": [{"name": "o", "glob": "o.csv", "label": "O"}],
            "fields": [{"type": "string", "name": "note", "label": "Note"}],
        }
    )


def render(tmp_path: Path, template: str, path: str = "run.sh", **values: object) -> str:
    case = make_case(tmp_path / "case", template, path)
    return render_case(tmp_path / "case", case, dict(values), {"id": "j1", "title": "Test 1"})[
        0
    ].text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.001, "0.001"),
        (1e-06, "1e-06"),
        (1000.0, "1000.0"),
        (3, "3"),
        (True, "true"),
        (False, "false"),
    ],
)
def test_numbers_and_bools_render_canonically(tmp_path: Path, value: object, text: str) -> None:
    assert render(tmp_path, "{{ values.x }}", x=value) == text


HOSTILE = [
    "$(touch PWNED)",
    "`touch PWNED`",
    "a; touch PWNED",
    "a\ntouch PWNED",
    'it\'s "quoted"',
    "../../etc",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_a_hostile_string_is_refused_bare(tmp_path: Path, value: str) -> None:
    with pytest.raises(CatalogError, match="refusing to render"):
        render(tmp_path, "echo {{ values.note }}", note=value)


@pytest.mark.parametrize("value", HOSTILE)
def test_a_quoted_hostile_string_is_inert_in_a_real_shell(tmp_path: Path, value: str) -> None:
    script = render(tmp_path, "printf '%s' {{ values.note | sh }}", note=value)
    done = subprocess.run(
        ["sh", "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert done.stdout == value
    assert not (tmp_path / "PWNED").exists()
    assert shlex.split(script)[-1] == value


def test_tojson_is_allowed_in_a_json_file_and_exact(tmp_path: Path) -> None:
    text = render(tmp_path, "{{ values | tojson }}", "params.json", note='a"b', x=0.1)
    assert text == '{"note": "a\\"b", "x": 0.1}'


# Review C10: Jinja's tojson, e/escape, safe (and every filter that returns Markup) mark their output "safe", which
# means HTML-safe; each pasted `$(...)` into a shell line. None may render in a shell template.
MARKUP_FILTERS = [
    "tojson",
    "e",
    "escape",
    "forceescape",
    "safe",
    "xmlattr",
    "urlize",
    "sh | safe",
    "string | e",
]


@pytest.mark.parametrize("expression", MARKUP_FILTERS)
def test_no_filter_but_sh_quotes_a_value_for_a_shell(tmp_path: Path, expression: str) -> None:
    with pytest.raises(CatalogError, match=r"not allowed|refusing"):
        render(tmp_path, f"printf '%s' {{{{ values.note | {expression} }}}}", note="$(touch PWNED)")


@pytest.mark.parametrize("expression", MARKUP_FILTERS)
def test_no_filter_but_sh_and_tojson_quotes_a_value_in_a_json_file(
    tmp_path: Path, expression: str
) -> None:
    if expression == "tojson":
        return  # the one that belongs here: the test above
    with pytest.raises(CatalogError, match=r"not allowed|refusing"):
        render(
            tmp_path, f"{{{{ values.note | {expression} }}}}", "params.json", note="$(touch PWNED)"
        )


@pytest.mark.parametrize(
    "template",
    [
        "{{ ('{}' | sh).format(values.note) }}",  # the sandbox keeps a str subclass's type through format()
        "{{ (values.note | sh) ~ values.note }}",
        "{{ (values.note | sh) | replace(\"'\", '') }}",
        "{{ (values.note | sh)[1:-1] }}",
        "{{ [values.note | sh] | join }}",
    ],
)
def test_text_made_from_quoted_text_is_plain_again(tmp_path: Path, template: str) -> None:
    with pytest.raises(CatalogError, match=r"refusing|has no attribute|not subscriptable"):
        render(tmp_path, template, note="$(touch PWNED)")


def test_quoting_twice_still_runs_as_text(tmp_path: Path) -> None:
    script = render(tmp_path, "printf '%s' {{ values.note | sh | sh }}", note="$(touch PWNED)")
    done = subprocess.run(
        ["sh", "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert done.stdout == "'$(touch PWNED)'"
    assert not (tmp_path / "PWNED").exists()


def test_an_undefined_name_fails_instead_of_rendering_empty(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot render"):
        render(tmp_path, "{{ values.missing }}")


def test_the_sandbox_refuses_python_internals(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot render"):
        render(tmp_path, "{{ values.__class__.__mro__[1].__subclasses__() }}")


def test_job_facts_are_in_the_context(tmp_path: Path) -> None:
    assert (
        render(tmp_path, "{{ job.id }} {{ job.title | sh }} {{ case.resources.cpus }}")
        == "j1 'Test 1' 1"
    )
