"""Catalog loading and validation, on case folders made in a temporary directory."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from blueprints._contract import plain
from core.cases import on_step_grid
from core.catalog import load_catalog, unavailable_note
from core.errors import CatalogError, NotFound
from core.targets import Target, parse_targets
from core.views import case_detail, case_header

GOOD: dict[str, Any] = {
    "id": 7,
    "slug": "tank",
    "title": "Mixing tank",
    "description": "Two fluids in a tank.",
    "target": "local",
    "entry": "run.sh",
    "scripts": [{"template": "run.sh.j2", "path": "run.sh", "executable": True}],
    "resources": {"nodes": 1, "cpus": 2, "walltime": "00:10:00"},
    "outputs": [
        {"name": "series", "glob": "series.csv", "label": "Series", "content_type": "text/csv"}
    ],
    "fields": [
        {
            "type": "group",
            "name": "water",
            "label": "Water",
            "fields": [
                {
                    "type": "float",
                    "name": "water_density",
                    "label": "Density",
                    "units": "kg/m³",
                    "min": 900,
                    "max": 1100,
                    "step": 0.5,
                    "default": 998.5,
                },
                {
                    "type": "choice",
                    "name": "mesh",
                    "label": "Mesh",
                    "options": [
                        {"value": "coarse", "label": "Coarse"},
                        {"value": "fine", "label": "Fine"},
                    ],
                    "default": "coarse",
                },
            ],
        },
        {"type": "int", "name": "steps", "label": "Steps", "min": 1, "max": 100, "default": 10},
        {"type": "bool", "name": "pulse", "label": "Pulse", "default": False},
        {
            "type": "string",
            "name": "note",
            "label": "Note",
            "pattern": "[a-z ]*",
            "required": False,
        },
    ],
}


def write_case(root: Path, data: dict[str, Any], slug: str | None = None) -> Path:
    folder = root / (slug or data["slug"])
    folder.mkdir(parents=True)
    (folder / "case.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    (folder / "run.sh.j2").write_text("#!/bin/sh\necho {{ values.steps }}\n", encoding="utf-8")
    return folder


def broken(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(GOOD)
    for path, value in changes.items():
        target = data
        keys = path.split("__")
        for key in keys[:-1]:
            target = target[int(key)] if key.isdigit() else target[key]
        target[int(keys[-1]) if keys[-1].isdigit() else keys[-1]] = value
    return data


def test_a_good_case_loads_with_its_field_tree(tmp_path: Path) -> None:
    write_case(tmp_path, GOOD)
    catalog = load_catalog(tmp_path)
    case = catalog.get(7)
    assert catalog.get("tank") is case
    assert [f.name for f in case.leaves()] == ["water_density", "mesh", "steps", "pulse", "note"]
    assert case.defaults() == {
        "water_density": 998.5,
        "mesh": "coarse",
        "steps": 10,
        "pulse": False,
    }


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"fields__0__fields__0__max": 800}, "fields[0].fields[0]"),
        ({"fields__0__fields__0__default": 998.7}, "step grid"),
        ({"fields__0__fields__0__default": 1200}, "outside"),
        ({"fields__0__fields__1__default": "medium"}, "not one of the options"),
        ({"fields__1__type": "integer"}, "fields[1]"),
        ({"fields__1__name": "Bad Name"}, "fields[1].name"),
        ({"fields__2__name": "steps"}, "repeated: ['steps']"),
        ({"fields__3__pattern": "(["}, "pattern does not compile"),
        ({"fields__0__fields__0__colour": "red"}, "colour"),
        ({"resources__walltime": "ten minutes"}, "resources.walltime"),
        ({"outputs__0__glob": "../secret"}, "outputs[0]"),
        ({"scripts__0__path": "/etc/passwd"}, "scripts[0]"),
        ({"entry": "start.sh"}, "entry 'start.sh'"),
        ({"id": 0}, "id"),
        ({"fields__0__fields__0__min": float("nan")}, "finite"),
        ({"requires": ["OpenFOAM 11"]}, "requires[0]"),
        ({"requires": ["openfoam", "openfoam"]}, "requirements must be unique"),
        ({"requires": "openfoam"}, "requires"),
    ],
)
def test_a_broken_case_file_names_the_file_and_the_field(
    tmp_path: Path, changes: dict[str, Any], named: str
) -> None:
    write_case(tmp_path, broken(**changes))
    with pytest.raises(CatalogError) as caught:
        load_catalog(tmp_path)
    message = str(caught.value)
    assert str(tmp_path / "tank" / "case.yaml") in message
    assert named in message


def test_a_missing_template_is_named(tmp_path: Path) -> None:
    (write_case(tmp_path, GOOD) / "run.sh.j2").unlink()
    with pytest.raises(CatalogError, match=r"scripts\[0\]\.template: no file 'run.sh.j2'"):
        load_catalog(tmp_path)


def test_unreadable_yaml_is_named(tmp_path: Path) -> None:
    (write_case(tmp_path, GOOD) / "case.yaml").write_text("id: [1,\n", encoding="utf-8")
    with pytest.raises(CatalogError, match=r"case\.yaml: cannot read"):
        load_catalog(tmp_path)


def test_slug_must_match_its_folder(tmp_path: Path) -> None:
    write_case(tmp_path, GOOD, slug="other")
    with pytest.raises(CatalogError, match="differs from its folder name 'other'"):
        load_catalog(tmp_path)


def test_ids_are_unique_across_the_catalog(tmp_path: Path) -> None:
    write_case(tmp_path, GOOD)
    write_case(tmp_path, {**GOOD, "slug": "tank-two"})
    with pytest.raises(CatalogError, match=r"ids must be unique; repeated: \[7\]"):
        load_catalog(tmp_path)


def test_an_empty_catalog_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match=r"no case\.yaml"):
        load_catalog(tmp_path)


def test_unknown_case_is_not_found(tmp_path: Path) -> None:
    write_case(tmp_path, GOOD)
    with pytest.raises(NotFound):
        load_catalog(tmp_path).get(8)


def test_public_views_never_expose_scripts_targets_or_globs(tmp_path: Path) -> None:
    write_case(tmp_path, GOOD)
    case = load_catalog(tmp_path).get(7)
    detail = plain(case_detail(case))  # as the route answers it
    text = repr(detail)
    for secret in ("run.sh", "local", "series.csv", "entry", "scripts", "target"):
        assert secret not in text
    assert detail["fields"][0]["fields"][0]["units"] == "kg/m³"
    assert plain(case_header(case))["links"] == {"self": "/case/7"}
    assert set(plain(case_header(case))) <= set(detail)


@pytest.mark.parametrize(
    ("value", "origin", "step", "expected"),
    [
        (0.3, 0.1, 0.1, True),
        (0.35, 0.1, 0.1, False),
        (1e-05, 1e-06, 1e-06, True),
        (7, 1, 2, True),
        (8, 1, 2, False),
    ],
)
def test_step_grid_is_judged_in_decimal(
    value: float, origin: float, step: float, expected: bool
) -> None:
    assert on_step_grid(value, origin, step) is expected


# --- what a case needs and what its target provides ------------------------------------------------------------


def target(**extra: Any) -> Target:
    spec = {
        "host": "hpc.example.org",
        "user": "sim",
        "key_file": "k",
        "known_hosts": "hpc.example.org ssh-ed25519 A",
        "base_dir": "/scratch/sim",
        **extra,
    }
    return parse_targets(json.dumps({"local": spec}))["local"]


def needing(tmp_path: Path, *requires: str) -> Any:
    write_case(tmp_path, {**GOOD, "requires": list(requires)})
    return load_catalog(tmp_path).get(7)


def test_a_case_declares_what_it_requires(tmp_path: Path) -> None:
    assert needing(tmp_path, "openfoam", "gnuplot").requires == ("openfoam", "gnuplot")
    write_case(tmp_path / "plain", GOOD)
    assert load_catalog(tmp_path / "plain").get(7).requires == ()


def test_a_target_lacking_a_requirement_makes_the_case_unavailable_naming_what_is_missing(
    tmp_path: Path,
) -> None:
    case = needing(tmp_path, "openfoam", "gnuplot")
    note = unavailable_note(case, {"local": target(provides=["gnuplot"])})
    assert note == "This case needs OpenFOAM, which its simulator does not provide."
    both = unavailable_note(case, {"local": target(provides=[])})
    assert both == "This case needs OpenFOAM and gnuplot, which its simulator does not provide."
    view = case_detail(case, note)
    assert (view.available, view.note) == (False, note)
    assert (
        "local" not in note
    )  # the note never names the target (the public views keep targets private)


@pytest.mark.parametrize(
    "targets",
    [
        {"local": target(provides=["openfoam", "gnuplot"])},
        {"local": target()},  # `provides` not declared: not checked, as before it existed
        {},  # no such target: the run says so (503), the catalog does not guess
    ],
)
def test_a_case_is_available_unless_its_target_is_known_to_lack_something(
    tmp_path: Path, targets: dict[str, Target]
) -> None:
    case = needing(tmp_path, "openfoam", "gnuplot")
    assert unavailable_note(case, targets) is None
    assert case_header(case, None).available is True


def test_provides_is_none_unless_declared_and_checked_when_declared() -> None:
    assert target().provides is None
    assert target().lacks(("openfoam",)) == ()
    assert target(provides=[]).lacks(("openfoam",)) == ("openfoam",)
    assert target(provides=["openfoam"]).lacks(("openfoam",)) == ()
    with pytest.raises(CatalogError, match=r"provides\[0\]"):
        target(provides=["Open FOAM"])
