"""Render a case's script templates with a job's values, safely.

Templates are Jinja2 in a sandbox with strict undefined variables, so a typo in a template fails instead of
rendering an empty string. Every `{{ expression }}` goes through `_finalize`: numbers come out in canonical form
(Python's shortest round-trip repr), booleans as `true`/`false`, and a string only when it is shell-inert or was
made safe by a filter (`sh` shell-quotes, `tojson` writes JSON). No value can reach a shell any other way.
(`without` drops keys from a mapping, for a program whose parameter file takes fewer.)
"""

from __future__ import annotations

import functools
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from core.cases import Case
from core.errors import CatalogError

# Words no shell, OpenFOAM dictionary or JSON string gives a meaning to when bare: no quoting, expansion or
# separators, no slash (so no path), no leading dash or dot (so no option and no `..`).
_INERT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.,:+=@%-]*$")


@dataclass(frozen=True)
class RenderedFile:
    """One file of the job folder: its relative path, text, and whether it is executable."""

    path: str
    text: str
    executable: bool


def _finalize(value: Any) -> Any:
    if isinstance(value, Markup):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str) and _INERT.match(value):
        return value
    raise TemplateError(f"refusing to render {value!r} bare: pass it through the 'sh' or 'tojson' filter")


def _shell_quote(value: Any) -> Markup:
    return Markup(shlex.quote(str(_finalize(value)) if not isinstance(value, str) else value))


@functools.cache
def environment(folder: Path) -> SandboxedEnvironment:
    """The sandboxed template environment for one case folder (kept, so its templates compile once a worker)."""
    env = SandboxedEnvironment(
        loader=FileSystemLoader(folder),
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        finalize=_finalize,
    )
    env.filters["sh"] = _shell_quote
    env.filters["without"] = _without
    return env


def _without(mapping: dict[str, Any], *keys: str) -> dict[str, Any]:
    """The mapping less some keys (e.g. values that a program's parameter file does not take)."""
    return {k: v for k, v in mapping.items() if k not in keys}


def render_case(folder: Path, case: Case, values: dict[str, Any], job: dict[str, Any]) -> list[RenderedFile]:
    """Render (or copy) every script of `case` with the job's validated `values` and its `job` facts."""
    env = environment(folder)
    context = {"values": values, "job": job, "case": {"slug": case.slug, "resources": case.resources.model_dump()}}
    files = []
    for script in case.scripts:
        try:
            text = (
                env.get_template(script.template).render(context)
                if script.render
                else (folder / script.template).read_text(encoding="utf-8")
            )
        except (TemplateError, OSError) as exc:
            raise CatalogError(f"{folder / script.template}: cannot render: {exc}") from exc
        files.append(RenderedFile(script.path, text, script.executable))
    return files
