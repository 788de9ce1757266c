"""Hostile values through every shipped template (F5 of the security review): a user's text is printed exactly as
it was typed and never runs, and no other field can carry text into a script at all.

The smoothie's `run.sh` is rendered with each hostile run label and run for real under `sh` (dash on Debian, whose
`echo` reads backslash escapes): its first line must be the label, byte for byte, and no marker file may appear.
The OpenFOAM cases take numbers and choices only: a hostile value is refused by the value check, and, given to the
renderer directly, refused by it too; their scripts are checked with `sh -n`.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from core.cases import StringField
from core.catalog import load_catalog
from core.errors import CatalogError, InvalidValues
from core.render import render_case
from core.values import check_values
from tests.integration.test_case_runs import CASES_DIR, JOB, render_job

MARKER = "PWNED"
HOSTILE = [
    f"$(touch {MARKER})",
    f"`touch {MARKER}`",
    f"'; touch {MARKER}; echo '",
    f'"; touch {MARKER}; echo "',
    f"a\\'$(touch {MARKER})",
    "\\nsimgate: FAKE REPORT line \\0033[31mRED\\0033[0m tail\\c hidden",
    'simgate: {"status": "COMPLETED"}',
    "\\x41\\101\\e[0m \\\\ \\",
    "%s%n%x%p {0} %(a)s %",
    "{{ 7*7 }} {% raw %}x{% endraw %} {{ ''.__class__.__mro__ }} {# c #}",
    f"-n -e $HOME ${{IFS}} ~ * ? [a] ; | & > {MARKER} < /etc/passwd",
    "-n",
    "-e",
    "--",
    "$((6*7)) ${PATH} $0 $$ !! \\$",
    "",
    "  leading and trailing spaces  ",
    "üñ中文🙂",
]


@pytest.fixture(scope="module")
def catalog() -> Any:
    return load_catalog(CASES_DIR)


def markers(folder: Path) -> list[Path]:
    return list(folder.rglob(f"*{MARKER}*"))


@pytest.mark.parametrize("label", HOSTILE, ids=range(len(HOSTILE)))
def test_the_smoothie_prints_a_hostile_label_exactly_and_runs_none_of_it(
    catalog: Any, tmp_path: Path, label: str
) -> None:
    smoothie = catalog.get("smoothie")
    assert check_values(smoothie, [{"name": "label", "value": label}]) == {
        "label": label
    }  # a user may send it
    job = tmp_path / "job"
    job.mkdir()
    render_job(job, "smoothie", label=label, mesh="coarse", blend_duration=1.0)
    done = subprocess.run(
        ["sh", "./run.sh"], cwd=job, capture_output=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    lines = done.stdout.split(b"\n")
    assert (
        lines[0] == b"run.sh: run label: " + label.encode()
    )  # byte-identical: no escape read, nothing cut
    assert not [line for line in lines if line.startswith(b"simgate:")]  # no forged wrapper line
    assert b"\x1b" not in done.stdout
    assert markers(tmp_path) == []


@pytest.mark.parametrize("slug", ["cavity", "dam-break", "smoothie"])
def test_no_field_but_a_string_takes_text_and_only_json_renders_it(catalog: Any, slug: str) -> None:
    """A value the check refuses may still reach the renderer through a bug: then it fails to render, or lands in
    a JSON file as a JSON string (the smoothie's params.json), never in a script or an OpenFOAM dictionary."""
    case = catalog.get(slug)
    folder = catalog.folder(case)
    plain = {f.path: f.text for f in render_case(folder, case, case.defaults(), JOB)}
    for field in case.leaves():
        if isinstance(field, StringField):
            continue
        for value in HOSTILE:
            with pytest.raises(InvalidValues):
                check_values(case, [{"name": field.name, "value": value}])
            try:
                files = render_case(folder, case, {**case.defaults(), field.name: value}, JOB)
            except CatalogError:
                continue  # refused: what the renderer should do with text bound for a script
            changed = [f for f in files if f.text != plain[f.path]]
            assert [f.path for f in changed if not f.path.endswith(".json")] == [], (
                field.name,
                value,
            )
            assert all(json.loads(f.text)[field.name] == value for f in changed)


@pytest.mark.parametrize("slug", ["cavity", "dam-break", "smoothie"])
def test_every_shell_script_parses_and_prints_no_value_with_echo(
    catalog: Any, slug: str, tmp_path: Path
) -> None:
    case = catalog.get(slug)
    folder = catalog.folder(case)
    for script in case.scripts:
        if script.path.endswith(".sh") and script.render:
            for number, line in enumerate((folder / script.template).read_text().splitlines(), 1):
                assert not ("echo" in line and "{{" in line), (
                    f"{script.template}:{number} echoes a value: {line}"
                )
    for file in render_case(folder, case, case.defaults(), JOB):
        if file.path.endswith(".sh"):
            (tmp_path / "run.sh").write_text(file.text, encoding="utf-8")
            checked = subprocess.run(
                ["sh", "-n", "run.sh"], cwd=tmp_path, capture_output=True, text=True, check=False
            )
            assert checked.returncode == 0, checked.stderr
