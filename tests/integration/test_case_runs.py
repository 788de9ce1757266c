"""The shipped cases, rendered into a temporary job folder and run for real: the smoothie model with python3, the
cavity and the dam break with OpenFOAM (marked `openfoam`: skipped without it, a failure without it in CI)."""

from __future__ import annotations

import csv
import itertools
import json
import math
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from core.catalog import load_catalog
from core.render import render_case
from tests.infra import load_wrapper

CASES_DIR = Path(__file__).resolve().parents[2] / "cases"
OPENFOAM_BASHRC = Path("/usr/share/openfoam/etc/bashrc")
JOB = {"id": "job-0001", "title": "Integration run"}


def render_job(folder: Path, slug: str, **overrides: Any) -> dict[str, Any]:
    """Write the case's rendered files into `folder` as the gateway will; the values used."""
    catalog = load_catalog(CASES_DIR)
    case = catalog.get(slug)
    values = {**case.defaults(), **overrides}
    for file in render_case(catalog.folder(case), case, values, JOB):
        path = folder / file.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(file.text, encoding="utf-8")
        path.chmod(0o755 if file.executable else 0o644)
    return values


def read_metrics(folder: Path, slug: str) -> dict[str, float]:
    """The case's metrics as the job wrapper reads them from the run's files (each declared one must be there)."""
    case = load_catalog(CASES_DIR).get(slug)
    declared = [m.model_dump(exclude_none=True) for m in case.metrics]
    found: dict[str, float] = load_wrapper().read_metrics(declared, str(folder))
    return found


def run(folder: Path, command: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=folder, capture_output=True, text=True, timeout=timeout, check=False
    )


def read_csv(path: Path) -> tuple[list[str], list[list[float]]]:
    """The header and the rows, as numbers (every cell must parse)."""
    with path.open(newline="", encoding="utf-8") as handle:
        header, *rows = list(csv.reader(handle))
    return header, [[float(cell) for cell in row] for row in rows]


@pytest.fixture
def openfoam() -> list[str]:
    """The command prefix that runs a job's entry script with OpenFOAM loaded, as a target's set-up will."""
    if not OPENFOAM_BASHRC.is_file():
        message = f"OpenFOAM is not installed ({OPENFOAM_BASHRC} is missing)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    # The bashrc prints harmless complaints about missing helper scripts on Debian: keep them out of the way.
    return ["bash", "-c", f"source {OPENFOAM_BASHRC} >/dev/null 2>&1; exec ./run.sh"]


# --- smoothie --------------------------------------------------------------------------------------------------


def run_smoothie(
    folder: Path, **overrides: Any
) -> tuple[dict[str, Any], list[list[float]], list[list[float]]]:
    folder.mkdir()
    values = render_job(folder, "smoothie", **overrides)
    result = run(folder, ["./run.sh"])
    assert result.returncode == 0, result.stderr
    assert "mixing index" in result.stdout  # progress lines
    series_header, series = read_csv(folder / "mixing_index.csv")
    field_header, field = read_csv(folder / "concentration.csv")
    assert series_header == [
        "time_s",
        "mixing_index",
        "coefficient_of_variation",
        "mean_concentration",
    ]
    assert field_header == ["x_m", "y_m", "concentration"]
    return values, series, field


def test_the_smoothie_mixes_and_conserves_fruit(tmp_path: Path) -> None:
    values, series, field = run_smoothie(tmp_path / "job")
    times = [row[0] for row in series]
    mixing = [row[1] for row in series]
    means = [row[3] for row in series]
    assert len(series) >= 100
    assert times[0] == 0
    assert times[-1] == pytest.approx(values["blend_duration"])
    assert all(a < b for a, b in itertools.pairwise(times))
    assert mixing[0] == 0
    assert all(b >= a - 1e-6 for a, b in itertools.pairwise(mixing)), "mixing never undoes itself"
    assert mixing[-1] > 0.99
    assert max(means) - min(means) <= 2e-9, "fruit is conserved"
    assert means[0] == pytest.approx(values["fruit_fraction"], abs=0.005)
    # The final field: 32 rings × 128 cells inside the 55 mm jar, uniform at the series' mean once mixed.
    assert len(field) == 32 * 128
    assert all(math.hypot(x, y) < 0.055 for x, y, _ in field)
    assert all(abs(c - means[-1]) < 0.01 for _, _, c in field)
    # Cells are areas proportional to their radius: the area-weighted mean is the series' mean.
    weights = [math.hypot(x, y) for x, y, _ in field]
    weighted = sum(w * c for w, (_, _, c) in zip(weights, field, strict=True)) / sum(weights)
    assert weighted == pytest.approx(means[-1], abs=1e-5)
    # Its metrics: when it first reached 0.95, and where it ended.
    first_mixed = next(t for t, m in zip(times, mixing, strict=True) if m >= 0.95)
    assert read_metrics(tmp_path / "job", "smoothie") == {
        "time_to_95_mixed": pytest.approx(first_mixed, abs=1e-6),
        "final_mixing_index": mixing[-1],
    }


# A thick smoothie, blended briefly on the coarse mesh, so neither run is fully mixed at the end.
THICK = {
    "base_liquid": "yoghurt",
    "base_viscosity": 5.0,
    "fruit_viscosity": 10.0,
    "blend_duration": 2.0,
    "mesh": "coarse",
}


def test_a_faster_blade_mixes_better(tmp_path: Path) -> None:
    _, slow, _ = run_smoothie(tmp_path / "slow", **THICK, blade_speed=1000)
    _, fast, _ = run_smoothie(tmp_path / "fast", **THICK, blade_speed=4000)
    assert slow[-1][1] < 0.6
    assert fast[-1][1] > slow[-1][1] + 0.2
    # Not 95 % mixed: metrics.json says null, and that metric is left out rather than made up.
    assert json.loads((tmp_path / "slow" / "metrics.json").read_text()) == {
        "time_to_95_mixed_s": None
    }
    assert read_metrics(tmp_path / "slow", "smoothie") == {"final_mixing_index": slow[-1][1]}


def test_a_thinner_base_mixes_better(tmp_path: Path) -> None:
    _, thick, _ = run_smoothie(tmp_path / "thick", **{**THICK, "blade_speed": 2000})
    _, thin, _ = run_smoothie(
        tmp_path / "thin", **{**THICK, "blade_speed": 2000, "base_viscosity": 0.5}
    )
    assert thin[-1][1] > thick[-1][1] + 0.05


def test_the_smoothie_fails_on_bad_parameters(tmp_path: Path) -> None:
    render_job(tmp_path, "smoothie")
    (tmp_path / "params.json").write_text('{"blade_speed": "fast"}', encoding="utf-8")
    result = run(tmp_path, ["./run.sh"])
    assert result.returncode == 2
    assert "invalid parameters" in result.stderr
    assert not (tmp_path / "mixing_index.csv").exists()


# --- OpenFOAM cases --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("slug", ["cavity", "dam-break"])
def test_an_openfoam_case_fails_clearly_without_openfoam(tmp_path: Path, slug: str) -> None:
    render_job(tmp_path, slug)
    result = subprocess.run(
        ["/bin/sh", "./run.sh"],
        cwd=tmp_path,
        env={"PATH": "/nonexistent"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 127
    assert "blockMesh is not on PATH" in result.stderr


@pytest.mark.openfoam
def test_the_cavity_runs_and_samples_the_centre_line(tmp_path: Path, openfoam: list[str]) -> None:
    values = render_job(tmp_path, "cavity", lid_velocity=1.5)
    result = run(tmp_path, openfoam)
    assert result.returncode == 0, result.stdout + result.stderr
    header, rows = read_csv(tmp_path / "centreline.csv")
    assert header == ["y_m", "u_m_per_s", "v_m_per_s", "p_m2_per_s2"]
    assert len(rows) == 21  # every face crossing of the 20 × 20 mesh, floor and lid included
    ys, us = [r[0] for r in rows], [r[1] for r in rows]
    assert ys[0] == 0
    assert ys[-1] == pytest.approx(0.1)
    assert all(a < b for a, b in itertools.pairwise(ys))
    assert us[-1] == pytest.approx(values["lid_velocity"], abs=1e-9)  # the lid
    assert us[0] == pytest.approx(0, abs=1e-9)  # the floor
    # The primary vortex: return flow below the centre, at most a fraction of the lid speed.
    assert -0.5 * values["lid_velocity"] < min(us) < -0.05 * values["lid_velocity"]
    assert ys[us.index(min(us))] < 0.07
    assert all(abs(u) <= values["lid_velocity"] for u in us)
    assert read_metrics(tmp_path, "cavity") == {
        "min_centreline_u": pytest.approx(min(us), rel=1e-8),
        "min_centreline_u_height": pytest.approx(ys[us.index(min(us))], rel=1e-8),
    }
    assert (tmp_path / "log.blockMesh").is_file()
    assert (tmp_path / "log.icoFoam").read_text(encoding="utf-8").rstrip().endswith("End")


@pytest.mark.openfoam
def test_the_most_viscous_cavity_on_the_fine_mesh_stays_stable(
    tmp_path: Path, openfoam: list[str]
) -> None:
    # With two PISO correctors this diverges within 0.1 s (diffusion number 200): the correctors must scale.
    values = render_job(
        tmp_path, "cavity", mesh="fine", kinematic_viscosity=1.0, lid_velocity=0.1, end_time=0.1
    )
    result = run(tmp_path, openfoam)
    assert result.returncode == 0, result.stdout + result.stderr
    _, rows = read_csv(tmp_path / "centreline.csv")
    assert len(rows) == 81
    assert rows[-1][1] == pytest.approx(values["lid_velocity"], abs=1e-9)
    assert all(abs(r[1]) <= values["lid_velocity"] for r in rows)


@pytest.mark.openfoam
def test_the_dam_break_runs_and_records_the_water(tmp_path: Path, openfoam: list[str]) -> None:
    values = render_job(tmp_path, "dam-break", end_time=0.5)
    result = run(tmp_path, openfoam)
    assert result.returncode == 0, result.stdout + result.stderr
    header, rows = read_csv(tmp_path / "water_volume.csv")
    assert header == [
        "time_s",
        "water_volume_m3",
        "downstream_water_volume_m3",
        "downstream_fraction",
    ]
    times = [r[0] for r in rows]
    assert len(rows) == round(values["end_time"] / 0.01)
    assert times == pytest.approx([0.01 * (i + 1) for i in range(len(rows))])
    by_time = {round(r[0], 2): r for r in rows}
    column = 0.1461 * 0.292 * 0.0146  # the water column of setFieldsDict, in the 0.0146 m deep tank
    assert by_time[0.01][1] == pytest.approx(column, rel=0.05)
    # No water leaves before the splash reaches the open top.
    assert by_time[0.3][1] == pytest.approx(by_time[0.01][1], rel=1e-4)
    # The surge reaches the obstacle at about 0.15 s; by the end a good part of the water has passed it.
    assert by_time[0.1][2] < 1e-9
    assert by_time[0.2][2] > 0
    assert by_time[0.5][3] > 0.2
    assert by_time[0.5][2] > by_time[0.3][2] > by_time[0.2][2]
    assert all(r[3] == pytest.approx(r[2] / r[1], abs=1e-6) for r in rows)
    assert read_metrics(tmp_path, "dam-break") == {"final_downstream_fraction": rows[-1][3]}
    for log in ("log.blockMesh", "log.setFields", "log.interFoam"):
        assert (tmp_path / log).read_text(encoding="utf-8").rstrip().endswith("End"), log
