#!/usr/bin/env python3
"""Smoothie blender: how fast a dollop of fruit purée mixes into milk or yoghurt.

Usage: python3 model.py params.json   (writes mixing_index.csv, concentration.csv and metrics.json in the working
directory)

The model is a 2-D advection-diffusion simulation of the fruit purée volume fraction c(r, θ) in a horizontal slice
of a blender jar (radius 55 mm) at the height of the blade (radius 25 mm). Plain Python 3, standard library only,
so that it runs on any HPC login node.

Physics, and where each number comes from:

* Rheology. Viscosities are entered as apparent viscosities at 50 s⁻¹ (the usual reference in food rheology).
  Fruit purée (flow index n = 0.35) and yoghurt (n = 0.4) are shear-thinning power-law fluids; milk is Newtonian.
  Each is evaluated at the blender's effective shear rate k_s·N (Metzner-Otto, k_s = 11, N in rev/s), and the
  mixture viscosity follows the logarithmic (Arrhenius) blending rule; the density is volume-weighted.
* Stirring. The blade sets the liquid swirling: solid-body rotation inside the blade radius, decaying outside it
  to zero at the jar wall (no slip), with a peak speed of 0.3 × the blade tip speed π·D·N (an unbaffled jar slips
  behind its blade). The swirl spins up and down with the viscous time R²/(j₁²·ν), j₁ = 3.832, ν including the
  eddy viscosity, so pulse mode (1 s on, 1 s off) lets the liquid coast.
* Turbulent dispersion. The vertical circulation and the eddies that the slice does not resolve are an eddy
  diffusivity D_t = C·u_tip·D·Re/(Re + Re_c) with the impeller Reynolds number Re = ρ·N·D²/μ, C = 0.01 and
  Re_c = 6000. In turbulent flow (Re ≫ Re_c) this makes the mixing time scale as 1/N independent of viscosity,
  in transitional flow as μ/(ρ·N²), as in Grenville's stirred-tank correlations; C puts the turbulent mixing
  time at the correlation's order of magnitude for this jar (0.1 s at 12 000 rpm). Sugars and pigments add a
  molecular diffusivity of 1e-9 m²/s.

Numerics, chosen so that fruit is conserved exactly and the swirl adds no numerical diffusion:

* Polar finite-volume grid. Rings rotate rigidly, each by its own angle, so advection is a shift of each ring's
  cells. The exact angle is accumulated and each ring is shifted by whole cells only, so the swirl never
  smears anything; a ring lags its true position by at most half a cell, and that lag does not accumulate.
* Diffusion is implicit (backward Euler), split into a radial tridiagonal solve and an azimuthal periodic solve,
  both conservative. Time steps grow geometrically (2 % of the elapsed time, 1 ms to duration/200) because the
  shear winds the purée into ever thinner spirals: this keeps the splitting error a fixed fraction.

Outputs: mixing_index.csv (time_s, mixing_index = 1 − σ/σ₀, coefficient_of_variation = σ/mean,
mean_concentration: constant, showing conservation) and concentration.csv (x_m, y_m, concentration: the final
field at the cell centres); metrics.json holds time_to_95_mixed_s, the first time the mixing index reached 0.95
(null when it did not). Exit status: 0 on success, 2 when params.json is missing or invalid, 1 otherwise.
"""

# The cluster's python3 may be as old as 3.8: no zip(strict=...) (3.10), no `X | Y` at run time (3.10).
# ruff: noqa: B905

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path

JAR_RADIUS_M = 0.055
BLADE_RADIUS_M = 0.025
SWIRL_FRACTION = 0.3  # liquid swirl speed at the blade tip as a fraction of the tip speed
METZNER_OTTO_KS = 11.0  # effective shear rate = k_s × N for a stirred vessel
REFERENCE_SHEAR_RATE = 50.0  # s⁻¹, where the entered apparent viscosities are measured
FLOW_INDEX = {"milk": 1.0, "yoghurt": 0.4}
FRUIT_FLOW_INDEX = 0.35
EDDY_COEFFICIENT = 0.01
TRANSITION_REYNOLDS = 6000.0
MOLECULAR_DIFFUSIVITY = 1e-9  # m²/s
BESSEL_J1_ZERO = 3.8317  # first zero of J1: slowest spin-down mode of a no-slip cylinder
PULSE_ON_S = 1.0
PULSE_OFF_S = 1.0
MIN_STEP_S = 1e-3
STEP_GROWTH = 0.02
MESHES = {"coarse": (16, 64), "medium": (32, 128), "fine": (64, 256)}  # (rings, cells per ring)
SUBSAMPLES = 4  # per cell and direction, for the initial purée coverage

NUMBER_FIELDS = {
    "fruit_density": (100.0, 5000.0),
    "fruit_viscosity": (1e-4, 1e3),
    "base_density": (100.0, 5000.0),
    "base_viscosity": (1e-4, 1e3),
    "fruit_fraction": (0.0, 1.0),
    "blade_speed": (1.0, 100_000.0),
    "blend_duration": (0.01, 3600.0),
}
CHOICE_FIELDS = {"base_liquid": tuple(FLOW_INDEX), "mesh": tuple(MESHES)}
BOOL_FIELDS = ("pulse",)


class InvalidParams(ValueError):
    """params.json is missing, unreadable or holds a value the model cannot use."""


@dataclass(frozen=True)
class Params:
    """The scientist's inputs, in SI units except the blade speed (rpm)."""

    fruit_density: float
    fruit_viscosity: float
    base_liquid: str
    base_density: float
    base_viscosity: float
    fruit_fraction: float
    blade_speed: float
    blend_duration: float
    pulse: bool
    mesh: str


@dataclass(frozen=True)
class Physics:
    """What the inputs mean for the flow, with the blade running."""

    density: float  # kg/m³, of the mixture
    viscosity: float  # Pa·s, apparent, of the mixture at the blender's shear rate
    reynolds: float  # impeller Reynolds number
    swirl_speed: float  # m/s, peak swirl at the blade tip radius
    eddy_diffusivity: float  # m²/s
    spin_time: float  # s, time constant of the swirl's spin-up and spin-down


@dataclass
class Grid:
    """The polar grid and the concentration on it; `conc[i][j]` is ring i (from the axis), cell j (from +x)."""

    rings: int
    cells: int
    conc: list[list[float]]
    phase: list[float]  # exact rotation angle of each ring since the start, rad
    shift: list[int]  # whole cells each ring has been shifted by

    @property
    def dr(self) -> float:
        """Ring width, m."""
        return JAR_RADIUS_M / self.rings

    @property
    def dtheta(self) -> float:
        """Cell angle, rad."""
        return 2 * math.pi / self.cells

    def radius(self, ring: int) -> float:
        """Radius of the centres of the cells of `ring`, m."""
        return (ring + 0.5) * self.dr


# --- input -----------------------------------------------------------------------------------------------------


def load_params(path: Path) -> Params:
    """Read and check params.json; `InvalidParams` says which value is wrong."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidParams(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidParams(f"{path} must hold a JSON object")
    expected = set(NUMBER_FIELDS) | set(CHOICE_FIELDS) | set(BOOL_FIELDS)
    if set(data) != expected:
        missing, unknown = sorted(expected - set(data)), sorted(set(data) - expected)
        raise InvalidParams(f"{path}: missing {missing}, unknown {unknown}")
    for name, (low, high) in NUMBER_FIELDS.items():
        _check_number(name, data[name], low, high)
    for name, allowed in CHOICE_FIELDS.items():
        if data[name] not in allowed:
            raise InvalidParams(f"{name} must be one of {list(allowed)}, not {data[name]!r}")
    for name in BOOL_FIELDS:
        if not isinstance(data[name], bool):
            raise InvalidParams(f"{name} must be true or false, not {data[name]!r}")
    return Params(**{name: data[name] for name in expected})


def _check_number(name: str, value: object, low: float, high: float) -> None:
    # bool is an int in Python; a JSON true is never a density.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidParams(f"{name} must be a finite number, not {value!r}")
    if not low < value < high:
        raise InvalidParams(
            f"{name} = {value} is outside the physically meaningful range ({low}, {high})"
        )


# --- physics ---------------------------------------------------------------------------------------------------


def apparent_viscosity(
    viscosity_at_reference: float, flow_index: float, shear_rate: float
) -> float:
    """Power-law viscosity at `shear_rate`, given its value at the reference shear rate, Pa·s."""
    return viscosity_at_reference * math.pow(shear_rate / REFERENCE_SHEAR_RATE, flow_index - 1.0)


def derive_physics(p: Params) -> Physics:
    """Mixture properties, swirl speed, eddy diffusivity and spin-up time with the blade running."""
    revs = p.blade_speed / 60.0
    shear_rate = METZNER_OTTO_KS * revs
    fruit_mu = apparent_viscosity(p.fruit_viscosity, FRUIT_FLOW_INDEX, shear_rate)
    base_mu = apparent_viscosity(p.base_viscosity, FLOW_INDEX[p.base_liquid], shear_rate)
    phi = p.fruit_fraction
    viscosity = math.exp(phi * math.log(fruit_mu) + (1 - phi) * math.log(base_mu))
    density = phi * p.fruit_density + (1 - phi) * p.base_density
    diameter = 2 * BLADE_RADIUS_M
    reynolds = density * revs * diameter**2 / viscosity
    tip_speed = math.pi * diameter * revs
    eddy = EDDY_COEFFICIENT * tip_speed * diameter * reynolds / (reynolds + TRANSITION_REYNOLDS)
    # Sc_t = 1: the eddies carry momentum as they carry fruit.
    spin_time = JAR_RADIUS_M**2 / (BESSEL_J1_ZERO**2 * (viscosity / density + eddy))
    return Physics(density, viscosity, reynolds, SWIRL_FRACTION * tip_speed, eddy, spin_time)


def angular_velocity(radius: float, swirl_speed: float) -> float:
    """Swirl angular velocity at `radius`: solid body inside the blade, vanishing at the wall, rad/s."""
    a, big_r = BLADE_RADIUS_M, JAR_RADIUS_M
    if radius <= a:
        return swirl_speed / a
    speed = swirl_speed * (a / radius) * (big_r**2 - radius**2) / (big_r**2 - a**2)
    return speed / radius


def pulse_phase(t: float) -> float:
    """Time since the current pulse cycle began, s; a clock a rounding error short of a new cycle is in it."""
    period = PULSE_ON_S + PULSE_OFF_S
    phase = t % period
    return 0.0 if period - phase < 1e-9 else phase


def blade_on(t: float, pulse: bool) -> bool:
    """Whether the blade runs during the step starting at `t`."""
    return not pulse or pulse_phase(t) < PULSE_ON_S - 1e-9


# --- grid and initial state ------------------------------------------------------------------------------------


def initial_grid(p: Params) -> Grid:
    """The purée as a round dollop touching the jar wall at +x, covering the fraction `fruit_fraction` of the slice."""
    rings, cells = MESHES[p.mesh]
    grid = Grid(rings, cells, [], [0.0] * rings, [0] * rings)
    dollop_r = JAR_RADIUS_M * math.sqrt(p.fruit_fraction)
    centre = JAR_RADIUS_M - dollop_r
    grid.conc = [
        [_coverage(grid, i, j, centre, dollop_r) for j in range(cells)] for i in range(rings)
    ]
    return grid


def _coverage(grid: Grid, ring: int, cell: int, centre: float, radius: float) -> float:
    """Area fraction of one cell inside the dollop, by area-weighted sub-sampling (cells straddle its edge)."""
    inside = total = 0.0
    for a in range(SUBSAMPLES):
        r = (ring + (a + 0.5) / SUBSAMPLES) * grid.dr
        for b in range(SUBSAMPLES):
            theta = (cell + (b + 0.5) / SUBSAMPLES) * grid.dtheta
            total += r
            if (r * math.cos(theta) - centre) ** 2 + (r * math.sin(theta)) ** 2 <= radius**2:
                inside += r
    return inside / total


# --- statistics ------------------------------------------------------------------------------------------------


def statistics(grid: Grid) -> tuple[float, float]:
    """Area-weighted mean and standard deviation of the concentration over the slice."""
    weights = [
        grid.radius(i) for i in range(grid.rings)
    ]  # a cell's area is proportional to its radius
    total_weight = sum(weights) * grid.cells
    mean = sum(w * math.fsum(row) for w, row in zip(weights, grid.conc)) / total_weight
    square = sum(w * math.fsum((c - mean) ** 2 for c in row) for w, row in zip(weights, grid.conc))
    return mean, math.sqrt(max(square / total_weight, 0.0))


# --- one time step ---------------------------------------------------------------------------------------------


def rotate(grid: Grid, swirl_angle_speed: float) -> None:
    """Turn every ring by its angular velocity × the step's swirl integral (m/s·s), in whole cells."""
    for i in range(grid.rings):
        grid.phase[i] += angular_velocity(grid.radius(i), 1.0) * swirl_angle_speed
        target = round(grid.phase[i] / grid.dtheta)
        k = (target - grid.shift[i]) % grid.cells
        if k:
            row = grid.conc[i]
            grid.conc[i] = row[-k:] + row[:-k]  # counter-clockwise: cell j receives cell j - k
        grid.shift[i] = target


def diffuse_radially(grid: Grid, kappa: float) -> None:
    """Backward-Euler radial diffusion, all columns at once; `kappa` = D·Δt/Δr². No flux at the axis or the wall."""
    n = grid.rings
    lower = [
        -kappa * i / (i + 0.5) for i in range(n)
    ]  # faces have radius i·Δr, centres (i + 0.5)·Δr
    upper = [-kappa * (i + 1) / (i + 0.5) if i < n - 1 else 0.0 for i in range(n)]
    factors: list[float] = []
    rows: list[list[float]] = []
    previous_factor, previous_row = 0.0, [0.0] * grid.cells
    for i in range(n):  # Thomas algorithm, forward sweep
        inverse = 1.0 / (1.0 - lower[i] - upper[i] - lower[i] * previous_factor)
        previous_factor = upper[i] * inverse
        a = lower[i]
        previous_row = [(x - a * y) * inverse for x, y in zip(grid.conc[i], previous_row)]
        factors.append(previous_factor)
        rows.append(previous_row)
    for i in range(n - 2, -1, -1):  # back substitution
        f = factors[i]
        rows[i] = [x - f * y for x, y in zip(rows[i], rows[i + 1])]
    grid.conc = rows


def diffuse_around(grid: Grid, diffusivity_step: float) -> None:
    """Backward-Euler azimuthal diffusion in every ring; `diffusivity_step` = D·Δt in m²."""
    for i in range(grid.rings):
        beta = diffusivity_step / (grid.radius(i) * grid.dtheta) ** 2
        if beta > 0:
            grid.conc[i] = solve_periodic(grid.conc[i], beta)


def solve_periodic(x: Sequence[float], beta: float) -> list[float]:
    """Solve (1 + 2β)·y_j − β·(y_{j−1} + y_{j+1}) = x_j on a ring of cells.

    The matrix factors as (β/ρ)(1 − ρS)(1 − ρS⁻¹), S the shift by one cell and ρ < 1 the small root of
    βρ² − (1 + 2β)ρ + β = 0, so two first-order recursions solve it; each starts from its exact periodic value.
    """
    n = len(x)
    rho = (
        2 * beta / (1 + 2 * beta + math.sqrt(1 + 4 * beta))
    )  # this form does not cancel when β is small
    if n * (1.0 - rho) < 1e-9:  # diffusion so strong that the ring is uniform to rounding
        return [math.fsum(x) / n] * n
    wrap = 1.0 / (1.0 - rho**n)
    depth = min(n, 1 + int(math.log(1e-18) / math.log(rho)))  # later terms are below rounding
    start = wrap * sum(rho**k * x[-k] for k in range(depth))
    forward = list(accumulate(x[1:], lambda acc, v: v + rho * acc, initial=start))
    end = wrap * sum(rho**k * forward[k - 1] for k in range(depth))  # u_{n-1+k}, wrapped
    backward = list(accumulate(reversed(forward[:-1]), lambda acc, v: v + rho * acc, initial=end))
    scale = rho / beta
    y = [scale * v for v in reversed(backward)]
    # The recursions lose a few digits when β is huge (ρ near 1); hand the rounding drift back evenly.
    drift = (math.fsum(x) - math.fsum(y)) / n
    return [v + drift for v in y]


# --- time loop -------------------------------------------------------------------------------------------------


@dataclass
class Blender:
    """The running simulation: grid, swirl state (0 at rest, 1 at full speed) and clock."""

    params: Params
    physics: Physics
    grid: Grid
    swirl: float = 0.0
    t: float = 0.0

    def next_step(self) -> float:
        """The next time step: geometric growth, capped by the output spacing, the pulse edges and the end."""
        end = self.params.blend_duration
        step = min(max(STEP_GROWTH * self.t, MIN_STEP_S), end / 200)
        if self.params.pulse:  # steps end on the blade's on/off edges and resolve each half-cycle
            phase = pulse_phase(self.t)
            edge = PULSE_ON_S if blade_on(self.t, pulse=True) else PULSE_ON_S + PULSE_OFF_S
            step = min(step, 0.25, edge - phase)
        return min(step, end - self.t)

    def advance(self, dt: float) -> None:
        """Spin the swirl towards the blade state, turn the rings, then diffuse."""
        target = 1.0 if blade_on(self.t, self.params.pulse) else 0.0
        tau = self.physics.spin_time
        decay = math.exp(-dt / tau)
        # Exact integral of the swirl fraction over the step, for exponential relaxation towards `target`.
        swirl_integral = target * dt + (self.swirl - target) * tau * (1.0 - decay)
        self.swirl = target + (self.swirl - target) * decay
        rotate(self.grid, self.physics.swirl_speed * swirl_integral)
        # Eddies live as long as the swirl that feeds them: scale them with its mean over the step.
        diffusivity = MOLECULAR_DIFFUSIVITY + self.physics.eddy_diffusivity * swirl_integral / dt
        diffuse_radially(self.grid, diffusivity * dt / self.grid.dr**2)
        diffuse_around(self.grid, diffusivity * dt)
        self.t += dt


def simulate(blender: Blender) -> list[tuple[float, float, float, float]]:
    """Run to the blend duration; rows of (time, mixing index, coefficient of variation, mean concentration)."""
    mean0, sigma0 = statistics(blender.grid)
    rows = [(0.0, 0.0, sigma0 / mean0, mean0)]
    end = blender.params.blend_duration
    next_report = min(
        0.01, 0.1 * end
    )  # doubling at first, where mixing is fastest, then every tenth
    while end - blender.t > 1e-9:
        blender.advance(blender.next_step())
        mean, sigma = statistics(blender.grid)
        rows.append((blender.t, 1.0 - sigma / sigma0, sigma / mean, mean))
        if blender.t >= next_report - 1e-9:
            print(
                f"t = {blender.t:8.3f} s   mixing index {rows[-1][1]:.4f}   mean {mean:.9f}",
                flush=True,
            )
            next_report = min(2 * next_report, next_report + 0.1 * end)
    _check_conservation(mean0, rows[-1][3])
    return rows


def _check_conservation(initial: float, final: float) -> None:
    # Both solvers conserve exactly in exact arithmetic; more drift than rounding means a bug, not a result.
    if not math.isfinite(final) or abs(final - initial) > 1e-9 * max(initial, 1e-12):
        raise RuntimeError(
            f"fruit is not conserved: mean concentration {initial!r} became {final!r}"
        )


# --- output ----------------------------------------------------------------------------------------------------


def write_csv(path: Path, header: str, lines: Iterable[str]) -> None:
    """Write a CSV atomically: a reader never sees half a file."""
    part = path.with_name(path.name + ".part")
    with part.open("w", encoding="utf-8", newline="\n") as out:
        out.write(header + "\n")
        out.writelines(line + "\n" for line in lines)
    os.replace(part, path)


def write_outputs(folder: Path, rows: list[tuple[float, float, float, float]], grid: Grid) -> None:
    """mixing_index.csv (the time series) and concentration.csv (the final field), plain decimals."""
    write_csv(
        folder / "mixing_index.csv",
        "time_s,mixing_index,coefficient_of_variation,mean_concentration",
        (f"{t:.6f},{m:.6f},{cov:.6f},{mean:.9f}" for t, m, cov, mean in rows),
    )
    write_csv(folder / "concentration.csv", "x_m,y_m,concentration", _field_lines(grid))


def time_to_mixed(
    rows: list[tuple[float, float, float, float]], level: float = 0.95
) -> float | None:
    """The first time the mixing index reached `level`, s; None when it never did."""
    return next((t for t, m, _, _ in rows if m >= level), None)


def write_metrics(folder: Path, rows: list[tuple[float, float, float, float]]) -> None:
    """metrics.json, the run's scalar results (the case's metrics read it), written atomically."""
    part = folder / "metrics.json.part"
    part.write_text(
        json.dumps({"time_to_95_mixed_s": time_to_mixed(rows)}) + "\n", encoding="utf-8"
    )
    os.replace(part, folder / "metrics.json")


def _field_lines(grid: Grid) -> Iterable[str]:
    for i, row in enumerate(grid.conc):
        r = grid.radius(i)
        for j, c in enumerate(row):
            theta = (j + 0.5) * grid.dtheta
            yield f"{r * math.cos(theta):.6f},{r * math.sin(theta):.6f},{c:.6f}"


def describe(p: Params, ph: Physics, grid: Grid) -> None:
    """Print what the inputs mean, so a surprising result can be traced to its cause."""
    # The usual stirred-tank regimes of the impeller Reynolds number.
    regime = "turbulent" if ph.reynolds > 1e4 else "laminar" if ph.reynolds < 10 else "transitional"
    print(
        f"smoothie: {p.fruit_fraction:.0%} fruit purée in {p.base_liquid}, {p.blade_speed:g} rpm"
        f"{' (pulse)' if p.pulse else ''}, {p.blend_duration:g} s, {grid.rings} × {grid.cells} cells"
    )
    print(
        f"mixture: {ph.density:.1f} kg/m³, apparent viscosity {ph.viscosity:.4g} Pa·s, "
        f"Re = {ph.reynolds:.3g} ({regime})"
    )
    print(
        f"swirl {ph.swirl_speed:.3g} m/s at the blade tip, eddy diffusivity {ph.eddy_diffusivity:.3g} m²/s, "
        f"spin-up time {ph.spin_time:.3g} s",
        flush=True,
    )


def main(argv: list[str]) -> int:
    """Run the model on the params.json named in `argv`; the exit status."""
    if len(argv) != 2:
        print("usage: python3 model.py params.json", file=sys.stderr)
        return 2
    try:
        params = load_params(Path(argv[1]))
    except InvalidParams as exc:
        print(f"model.py: invalid parameters: {exc}", file=sys.stderr)
        return 2
    started = time.monotonic()
    physics = derive_physics(params)
    blender = Blender(params, physics, initial_grid(params))
    describe(params, physics, blender.grid)
    rows = simulate(blender)
    write_outputs(Path.cwd(), rows, blender.grid)
    write_metrics(Path.cwd(), rows)
    mixed = time_to_mixed(rows)
    verdict = f"95 % mixed at t = {mixed:.3f} s" if mixed is not None else "not yet 95 % mixed"
    print(
        f"done: mixing index {rows[-1][1]:.4f}, {verdict}; {len(rows) - 1} steps in "
        f"{time.monotonic() - started:.1f} s; wrote mixing_index.csv, concentration.csv and metrics.json"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
