"""The case catalog: read `cases/*/case.yaml` once, validate it, and answer the public case routes from memory.

The catalog ships inside the deployment package, so it is read from disk on first use and kept for the life of the
worker: the case routes cost no storage round trip. A broken case file is a deployment bug and fails loudly with
the file and the field named. Whether a case can run (its `requires` against its target's `provides`) is judged
from the targets setting, which is also read once per worker: still no storage round trip.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from core.cases import Case, field_path, requirement_label
from core.errors import CatalogError, NotFound
from core.services import services
from core.targets import Target, get_targets
from core.views import CaseDetail, CaseHeader, case_detail, case_header

log = logging.getLogger(__name__)

CASE_FILE = "case.yaml"


@dataclass(frozen=True)
class Catalog:
    """Every case, ordered by id, with lookups by id and by slug."""

    cases: tuple[Case, ...]
    root: Path

    def get(self, ref: int | str) -> Case:
        """The case with this id (an int) or slug (a str); `NotFound` otherwise."""
        for case in self.cases:
            if ref in (case.id, case.slug):
                return case
        raise NotFound(f"there is no case {ref!r}")

    def folder(self, case: Case) -> Path:
        """The folder holding the case's file and script templates."""
        return self.root / case.slug


def load_catalog(root: Path) -> Catalog:
    """Read and validate every case folder below `root`; `CatalogError` names the first broken file and field."""
    cases = [
        _load_case(folder / CASE_FILE)
        for folder in sorted(root.iterdir())
        if (folder / CASE_FILE).is_file()
    ]
    if not cases:
        raise CatalogError(f"{root}: no {CASE_FILE} found in any case folder")
    _check_catalog(root, cases)
    return Catalog(tuple(sorted(cases, key=lambda c: c.id)), root)


def _load_case(path: Path) -> Case:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise CatalogError(f"{path}: cannot read the case file: {exc}") from exc
    try:
        case = Case.model_validate(data)
    except ValidationError as exc:
        raise CatalogError(f"{path}: {_describe(exc)}") from exc
    _check_files(path.parent, case)
    return case


def _describe(exc: ValidationError) -> str:
    """Name each bad field by its path in the file, e.g. `fields[0].fields[1].max: ...`."""
    return "; ".join(f"{field_path(err['loc']) or '(top)'}: {err['msg']}" for err in exc.errors())


def _check_files(folder: Path, case: Case) -> None:
    if case.slug != folder.name:
        raise CatalogError(
            f"{folder / CASE_FILE}: slug: {case.slug!r} differs from its folder name {folder.name!r}"
        )
    for index, script in enumerate(case.scripts):
        if not (folder / script.template).is_file():
            raise CatalogError(
                f"{folder / CASE_FILE}: scripts[{index}].template: no file {script.template!r}"
            )


def _check_catalog(root: Path, cases: list[Case]) -> None:
    for key in ("id", "slug"):
        values = [getattr(c, key) for c in cases]
        repeated = sorted({v for v in values if values.count(v) > 1})
        if repeated:
            raise CatalogError(f"{root}: case {key}s must be unique; repeated: {repeated}")


def get_catalog() -> Catalog:
    """The worker's catalog (`services().catalog`), loaded on first use from `SIMGATE_CASES_DIR` or `cases/`."""
    return services().catalog


def unavailable_note(case: Case, targets: Mapping[str, Target]) -> str | None:
    """Why `case` cannot run on its target, in a user's words (naming what is missing, never the target); None
    when nothing is known to be missing (the target provides it, declares nothing, or is not configured)."""
    target = targets.get(case.target)
    missing = target.lacks(case.requires) if target is not None else ()
    if not missing:
        return None
    return f"This case needs {' and '.join(map(requirement_label, missing))}, which its simulator does not provide."


def _targets() -> Mapping[str, Target]:
    """The configured targets; none when the setting is broken (the catalog still answers: runs will say why)."""
    try:
        return get_targets()
    except CatalogError as exc:
        log.warning("case availability not judged: %s", exc.detail)
        return {}


def list_cases(page: int, per_page: int) -> tuple[list[CaseHeader], int]:
    """One page of case headers (pages count from 1) and the total number of cases."""
    cases, targets = get_catalog().cases, _targets()
    start = (page - 1) * per_page
    return [
        case_header(c, unavailable_note(c, targets)) for c in cases[start : start + per_page]
    ], len(cases)


def show_case(ref: int | str) -> CaseDetail:
    """The public detail of the case with this id or slug."""
    case = get_catalog().get(ref)
    return case_detail(case, unavailable_note(case, _targets()))
