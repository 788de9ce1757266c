"""The shipped case catalog: every case loads, documents its fields, and renders with its defaults, with each
number at its minimum and at its maximum, and with each option, putting every value where it belongs in canonical
form. Also the pieces of the smoothie model that can be checked without running it."""

from __future__ import annotations

import importlib.util
import json
import math
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from core.cases import BoolField, Case, ChoiceField, FloatField, IntField, on_step_grid
from core.catalog import Catalog, load_catalog
from core.render import RenderedFile, render_case

CASES_DIR = Path(__file__).resolve().parents[2] / "cases"
# A title that would break a shell if it were pasted bare: templates must never do so.
JOB = {"id": "job-0001", "title": "Ann's run; $(rm -rf ~) `x` {{ values }}"}
FOAM_FOLDERS = ("system/", "constant/", "0/")


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(CASES_DIR)


def variants(case: Case) -> Iterator[tuple[str, dict[str, Any]]]:
    """Defaults, then each number at its min and max, each choice option and each switch position."""
    defaults = case.defaults()
    yield "defaults", defaults
    for field in case.leaves():
        if isinstance(field, FloatField | IntField):
            for bound in ("min", "max"):
                yield f"{field.name}={bound}", {**defaults, field.name: getattr(field, bound)}
        elif isinstance(field, ChoiceField):
            for option in field.options:
                yield f"{field.name}={option.value}", {**defaults, field.name: option.value}
        elif isinstance(field, BoolField):
            yield f"{field.name}={not field.default}", {**defaults, field.name: not field.default}


def all_variants() -> list[Any]:
    cases = load_catalog(CASES_DIR).cases
    return [
        pytest.param(c.slug, v, id=f"{c.slug}:{label}") for c in cases for label, v in variants(c)
    ]


def render(catalog: Catalog, slug: str, values: dict[str, Any]) -> dict[str, RenderedFile]:
    case = catalog.get(slug)
    return {f.path: f for f in render_case(catalog.folder(case), case, values, JOB)}


def number(value: float) -> str:
    """The canonical text of a number, as a regex: Python's shortest round-trip repr, as the renderer writes it."""
    return re.escape(repr(value))


def entry(key: str, value: str) -> str:
    """A regex for an OpenFOAM dictionary entry `key value;` on its own line."""
    return rf"(?m)^\s*{re.escape(key)}\s+{value};\s*$"


def sub_dictionary(text: str, name: str) -> str:
    """The body of the (non-nested) sub-dictionary `name { ... }`."""
    match = re.search(rf"(?m)^\s*{re.escape(name)}\s*\{{([^{{}}]*)\}}", text)
    assert match, f"no sub-dictionary {name!r}"
    return match.group(1)


def foam_value(text: str, key: str) -> str:
    match = re.search(rf"(?m)^\s*{re.escape(key)}\s+([^;]+);", text)
    assert match, f"no entry {key!r}"
    return match.group(1).strip()


def block_cells(block_mesh_dict: str) -> list[tuple[int, int, int]]:
    """The cell counts of every block of a blockMeshDict."""
    counts = re.findall(
        r"hex\s*\([\d\s]+\)\s*(?:\w+\s*)?\((\d+)\s+(\d+)\s+(\d+)\)", block_mesh_dict
    )
    return [(int(a), int(b), int(c)) for a, b, c in counts]


# --- the catalog -----------------------------------------------------------------------------------------------


def test_the_shipped_cases_load_with_their_ids_slugs_and_targets(catalog: Catalog) -> None:
    found = [(c.id, c.slug, c.target) for c in catalog.cases]
    assert found == [
        (1, "cavity", "cluster"),
        (2, "smoothie", "local"),
        (3, "dam-break", "cluster"),
    ]


def test_the_openfoam_cases_say_they_need_it(catalog: Catalog) -> None:
    # The smoothie needs only python3, which every target has (the wrapper runs on it).
    assert {c.slug: c.requires for c in catalog.cases} == {
        "cavity": ("openfoam",),
        "smoothie": (),
        "dam-break": ("openfoam",),
    }


@pytest.mark.parametrize("slug", ["cavity", "smoothie", "dam-break"])
def test_every_field_is_documented_and_bounded(catalog: Catalog, slug: str) -> None:
    for field in catalog.get(slug).leaves():
        assert field.label.strip(), field.name
        assert len(field.help) > 40, f"{field.name}: help text a scientist can use"
        assert field.default is not None, f"{field.name}: needs a default"
        if isinstance(field, FloatField | IntField):
            assert field.units, f"{field.name}: needs units"
            assert None not in (field.min, field.max, field.step), (
                f"{field.name}: needs min, max and step"
            )
            assert field.min is not None
            assert field.step is not None
            assert on_step_grid(field.default, field.min, field.step)


@pytest.mark.parametrize("slug", ["cavity", "smoothie", "dam-break"])
def test_every_case_declares_resources_and_csv_outputs(catalog: Catalog, slug: str) -> None:
    case = catalog.get(slug)
    assert case.resources.walltime != "00:00:00"
    assert any(o.content_type == "text/csv" for o in case.outputs)
    assert all(o.description and o.label for o in case.outputs)
    entry_script = next(s for s in case.scripts if s.path == case.entry)
    assert entry_script.executable


def test_the_original_bugs_are_gone(catalog: Catalog) -> None:
    # The original defaulted air to 1000 kg/m³ and labelled kinematic viscosities "m/s²".
    dam = catalog.get("dam-break")
    air = next(f for f in dam.leaves() if f.name == "air_density")
    assert isinstance(air, FloatField)
    assert air.default is not None
    assert air.default < 5
    viscosities = [f for c in catalog.cases for f in c.leaves() if "viscosity" in f.name]
    assert {f.units for f in viscosities} <= {"m²/s", "Pa·s"}


# --- rendering -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("slug", "values"), all_variants())
def test_every_variant_renders_without_leftover_template_syntax(
    catalog: Catalog, slug: str, values: dict[str, Any]
) -> None:
    files = render(catalog, slug, values)
    for path, file in files.items():
        for marker in ("{{", "{%", "{#", "#}"):
            assert marker not in file.text, f"{path} keeps {marker!r}"
        assert JOB["title"] not in file.text
        if path.startswith(FOAM_FOLDERS):
            assert_foam_dictionary(path, file.text)
    check_values(slug, values, files)


def assert_foam_dictionary(path: str, text: str) -> None:
    """An OpenFOAM dictionary: a FoamFile header, and brackets that balance once the comments are gone."""
    assert re.search(r"(?m)^FoamFile\s*\{", text), f"{path}: no FoamFile header"
    code = re.sub(r"//[^\n]*", "", re.sub(r"/\*.*?\*/", "", text, flags=re.S))
    for opening, closing in ("{}", "()", "[]"):
        depth = 0
        for char in code:
            depth += (char == opening) - (char == closing)
            assert depth >= 0, f"{path}: unbalanced {opening}{closing}"
        assert depth == 0, f"{path}: unbalanced {opening}{closing}"


def check_values(slug: str, values: dict[str, Any], files: dict[str, RenderedFile]) -> None:
    texts = {path: f.text for path, f in files.items()}
    {"cavity": check_cavity, "smoothie": check_smoothie, "dam-break": check_dam_break}[slug](
        values, texts
    )


def check_cavity(values: dict[str, Any], texts: dict[str, str]) -> None:
    nu, lid, end = values["kinematic_viscosity"], values["lid_velocity"], values["end_time"]
    assert re.search(
        entry("nu", rf"\[0 2 -1 0 0 0 0\] {number(nu)}"), texts["constant/transportProperties"]
    )
    moving_wall = sub_dictionary(texts["0/U"], "movingWall")
    assert re.search(entry("value", rf"uniform \({number(lid)} 0 0\)"), moving_wall)
    control = texts["system/controlDict"]
    assert re.search(entry("endTime", number(end)), control)
    assert re.search(
        entry("writeInterval", number(end)), control
    )  # written once, at the end, for the sampling
    assert re.search(
        rf"(?m)^lid_velocity={number(lid)}$", texts["run.sh"]
    )  # the divergence check's bound
    check_cavity_numerics(values, texts)


def check_cavity_numerics(values: dict[str, Any], texts: dict[str, str]) -> None:
    [(nx, ny, nz)] = block_cells(texts["system/blockMeshDict"])
    assert (nx, ny, nz) == ({"coarse": 20, "medium": 40, "fine": 80}[values["mesh"]],) * 2 + (1,)
    delta_t = float(foam_value(texts["system/controlDict"], "deltaT"))
    dx = 0.1 / nx
    assert 2.0 * delta_t / dx <= 0.5 + 1e-12, "Courant number above 0.5 at the fastest lid"
    assert on_step_grid(0.1, 0.0, delta_t), (
        "end times (multiples of 0.1 s) must fall on a time step"
    )
    # Correctors icoFoam v1912 was measured to need at each diffusion number ν·Δt/Δx² (fewer diverge).
    diffusion = values["kinematic_viscosity"] * delta_t / dx**2
    needed = next(
        n
        for limit, n in ((10, 2), (20, 3), (50, 4), (100, 6), (200, 10))
        if diffusion <= limit * 1.0001
    )
    assert int(foam_value(texts["system/fvSolution"], "nCorrectors")) >= needed


def check_smoothie(values: dict[str, Any], texts: dict[str, str]) -> None:
    params = json.loads(texts["params.json"])
    model_values = {
        k: v for k, v in values.items() if k != "label"
    }  # the label is the log's, not the model's
    assert params == model_values
    assert {k: type(v) for k, v in params.items()} == {k: type(v) for k, v in model_values.items()}
    assert f"printf 'run.sh: run label: %s\\n' {shlex.quote(values['label'])}\n" in texts["run.sh"]
    assert texts["model.py"] == (CASES_DIR / "smoothie" / "model.py").read_text(encoding="utf-8")


def check_dam_break(values: dict[str, Any], texts: dict[str, str]) -> None:
    transport = texts["constant/transportProperties"]
    for phase in ("water", "air"):
        body = sub_dictionary(transport, phase)
        assert re.search(entry("nu", number(values[f"{phase}_viscosity"])), body)
        assert re.search(entry("rho", number(values[f"{phase}_density"])), body)
    assert re.search(entry("sigma", number(values["surface_tension"])), transport)
    assert re.search(entry("endTime", number(values["end_time"])), texts["system/controlDict"])
    cells = block_cells(texts["system/blockMeshDict"])
    assert sum(a * b * c for a, b, c in cells) == {"standard": 2268, "fine": 9072}[values["mesh"]]


@pytest.mark.parametrize("slug", ["cavity", "smoothie", "dam-break"])
def test_the_entry_script_is_posix_sh_that_stops_on_errors(
    catalog: Catalog, slug: str, tmp_path: Path
) -> None:
    case = catalog.get(slug)
    script = render(catalog, slug, case.defaults())[case.entry].text
    assert script.startswith("#!/bin/sh\n")
    assert re.search(r"(?m)^set -eu$", script)
    (tmp_path / "run.sh").write_text(script, encoding="utf-8")
    checked = subprocess.run(
        ["sh", "-n", str(tmp_path / "run.sh")], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stderr


def test_a_value_outside_a_choice_fails_to_render(catalog: Catalog) -> None:
    # Guards the lookup tables in the templates: an unknown mesh must not render as an empty cell count.
    from core.errors import CatalogError

    with pytest.raises(CatalogError):
        render(catalog, "cavity", {**catalog.get("cavity").defaults(), "mesh": "huge"})


# --- the smoothie model, piece by piece ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "smoothie_model", CASES_DIR / "smoothie" / "model.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def smoothie_params(catalog: Catalog) -> dict[str, Any]:
    return {
        k: v for k, v in catalog.get("smoothie").defaults().items() if k != "label"
    }  # params.json has no label


@pytest.mark.parametrize(
    "change",
    [
        {"fruit_density": True},
        {"fruit_viscosity": -1.0},
        {"fruit_fraction": 1.0},
        {"blade_speed": "fast"},
        {"blend_duration": None},
        {"base_liquid": "orange juice"},
        {"mesh": "huge"},
        {"pulse": "yes"},
        {"extra": 1},
    ],
    ids=lambda change: next(iter(change)),
)
def test_the_model_refuses_invalid_parameters(
    model: ModuleType, smoothie_params: dict[str, Any], tmp_path: Path, change: dict[str, Any]
) -> None:
    path = tmp_path / "params.json"
    path.write_text(json.dumps({**smoothie_params, **change}), encoding="utf-8")
    with pytest.raises(model.InvalidParams):
        model.load_params(path)


def test_the_model_refuses_a_missing_field_or_a_nan(
    model: ModuleType, smoothie_params: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "params.json"
    path.write_text(
        json.dumps({k: v for k, v in smoothie_params.items() if k != "mesh"}), encoding="utf-8"
    )
    with pytest.raises(model.InvalidParams, match="mesh"):
        model.load_params(path)
    path.write_text(json.dumps({**smoothie_params, "fruit_density": math.nan}), encoding="utf-8")
    with pytest.raises(model.InvalidParams, match="fruit_density"):
        model.load_params(path)
    assert model.main(["model.py", str(tmp_path / "absent.json")]) == 2


@pytest.mark.parametrize("beta", [1e-9, 0.3, 7.0, 1e4, 1e9])
def test_the_periodic_diffusion_solve_is_exact_and_conservative(
    model: ModuleType, beta: float
) -> None:
    x = [math.sin(3 * j) ** 2 + (j % 7) / 7 for j in range(64)]
    y = model.solve_periodic(x, beta)
    n = len(x)
    residual = max(
        abs((1 + 2 * beta) * y[j] - beta * (y[j - 1] + y[(j + 1) % n]) - x[j]) for j in range(n)
    )
    assert residual <= 1e-9 * max(1.0, beta)
    assert math.fsum(y) == pytest.approx(math.fsum(x), rel=1e-12)
    # Diffusion creates no new extremes.
    assert min(y) >= min(x) - 1e-12
    assert max(y) <= max(x) + 1e-12


def test_radial_diffusion_conserves_fruit_and_keeps_it_bounded(
    model: ModuleType, smoothie_params: dict[str, Any]
) -> None:
    grid = model.initial_grid(model.Params(**{**smoothie_params, "mesh": "coarse"}))
    mean, sigma = model.statistics(grid)
    model.diffuse_radially(grid, 50.0)
    after_mean, after_sigma = model.statistics(grid)
    assert after_mean == pytest.approx(mean, rel=1e-12)
    assert after_sigma < sigma
    assert all(-1e-12 <= c <= 1 + 1e-12 for row in grid.conc for c in row)


def test_the_initial_dollop_holds_the_fruit_fraction(
    model: ModuleType, smoothie_params: dict[str, Any]
) -> None:
    for fraction in (0.05, 0.4, 0.95):
        grid = model.initial_grid(model.Params(**{**smoothie_params, "fruit_fraction": fraction}))
        mean, _ = model.statistics(grid)
        assert mean == pytest.approx(fraction, abs=0.005)


@pytest.mark.parametrize(
    ("field", "low", "high", "faster_when_higher"),
    [
        ("blade_speed", 1000, 20000, True),
        ("base_viscosity", 0.002, 5.0, False),
        ("fruit_viscosity", 0.1, 20.0, False),
    ],
)
def test_stirring_grows_with_blade_speed_and_falls_with_viscosity(
    model: ModuleType,
    smoothie_params: dict[str, Any],
    field: str,
    low: float,
    high: float,
    faster_when_higher: bool,
) -> None:
    def physics(value: float) -> Any:
        return model.derive_physics(model.Params(**{**smoothie_params, field: value}))

    slow, fast = (
        (physics(low), physics(high)) if faster_when_higher else (physics(high), physics(low))
    )
    assert fast.eddy_diffusivity > slow.eddy_diffusivity
    assert fast.reynolds > slow.reynolds
    assert fast.swirl_speed >= slow.swirl_speed


def test_yoghurt_thins_under_shear_and_milk_does_not(model: ModuleType) -> None:
    assert model.apparent_viscosity(1.0, model.FLOW_INDEX["milk"], 2000.0) == 1.0
    assert model.apparent_viscosity(1.0, model.FLOW_INDEX["yoghurt"], 2000.0) < 0.2
