"""Render a case's script templates with a job's values, safely.

Templates are Jinja2 in a sandbox with strict undefined variables, so a typo in a template fails instead of
rendering an empty string. Every `{{ expression }}` goes through `_finalize`: numbers come out in canonical form
(Python's shortest round-trip repr), booleans as `true`/`false`, and a string only when it is shell-inert or was
quoted by this module's own filters: `sh` (shell-quoting, in any file) and `tojson` (only in a file whose path ends
in `.json`: its output is JSON, which a shell would read as code). What these return is a private type that no
other filter makes, so Jinja's `safe`, `e`/`escape` or any other `Markup` never passes, and those filters are
refused outright. No value can reach a shell any other way.
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
from jinja2.utils import htmlsafe_json_dumps

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


class _Quoted:
    """Text quoted by `sh` or `tojson` here: the only text `_finalize` lets through whatever it holds.

    Private, and not `Markup`: Jinja's own filters make `Markup` of anything (`safe`), so that proves nothing. Not
    a `str` either: the sandbox gives `str.format` results the receiver's type, so `("{}" | sh).format(value)` would
    pass off the value as quoted. Anything done to this (`~`, `replace`, `upper`) gives a plain `str` again, which
    must then be inert. The text is `_text`, which templates cannot read (the sandbox hides `_` names).
    """

    __slots__ = ("_text",)

    def __init__(self, text: str) -> None:
        self._text = text

    def __str__(self) -> str:
        return self._text


def _finalize(value: Any) -> Any:
    if isinstance(value, _Quoted):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str) and _INERT.match(value):
        return value
    raise TemplateError(
        f"refusing to render {value!r} bare: pass it through the 'sh' filter (or 'tojson' in a .json file)"
    )


def _shell_quote(value: Any) -> _Quoted:
    return _Quoted(shlex.quote(value if isinstance(value, str) else str(_finalize(value))))


def _json(value: Any) -> _Quoted:
    return _Quoted(
        str(htmlsafe_json_dumps(value, sort_keys=True))
    )  # as Jinja's own tojson writes it


# Jinja filters whose output is Markup ("already safe"), which means nothing for a shell or a dictionary.
REFUSED_FILTERS = ("safe", "e", "escape", "forceescape", "tojson", "xmlattr", "urlize")


def _refused(name: str) -> Any:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        where = "outside a .json file" if name == "tojson" else "in a case template"
        raise TemplateError(f"the {name!r} filter is not allowed {where}: quote values with 'sh'")

    return refuse


def is_json_path(path: str) -> bool:
    """Whether a rendered file is JSON, where `tojson` may write values."""
    return path.lower().endswith(".json")


@functools.cache
def environment(folder: Path, json_file: bool = False) -> SandboxedEnvironment:
    """The sandboxed template environment for one case folder (kept, so its templates compile once a worker).

    `json_file`: the environment for templates of `.json` files, the only one with `tojson`.
    """
    env = SandboxedEnvironment(
        loader=FileSystemLoader(folder),
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        finalize=_finalize,
    )
    for name in REFUSED_FILTERS:
        env.filters[name] = _refused(name)
    env.filters["sh"] = _shell_quote
    env.filters["without"] = _without
    if json_file:
        env.filters["tojson"] = _json
    return env


def _without(mapping: dict[str, Any], *keys: str) -> dict[str, Any]:
    """The mapping less some keys (e.g. values that a program's parameter file does not take)."""
    return {k: v for k, v in mapping.items() if k not in keys}


def render_case(
    folder: Path, case: Case, values: dict[str, Any], job: dict[str, Any]
) -> list[RenderedFile]:
    """Render (or copy) every script of `case` with the job's validated `values` and its `job` facts."""
    context = {
        "values": values,
        "job": job,
        "case": {"slug": case.slug, "resources": case.resources.model_dump()},
    }
    files = []
    for script in case.scripts:
        try:
            text = (
                environment(folder, is_json_path(script.path))
                .get_template(script.template)
                .render(context)
                if script.render
                else (folder / script.template).read_text(encoding="utf-8")
            )
        except Exception as exc:  # a template's own error (TemplateError, or a TypeError in an expression): the case's
            raise CatalogError(f"{folder / script.template}: cannot render: {exc}") from exc
        files.append(RenderedFile(script.path, text, script.executable))
    return files
