"""Just enough reading of the Bicep templates for the deployment tests: declarations, app settings, skips.

Not a Bicep parser: it relies on the templates' own layout (one declaration per line, the app settings as a list of
`{ name: 'X', value: ... }` in main.bicep's `appSettings` and the Function App module's `ownSettings`), which the
tests below would notice changing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BICEP_DIR = ROOT / "infra" / "bicep"
MAIN = BICEP_DIR / "main.bicep"


def text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def templates() -> list[Path]:
    """Every Bicep template (main and modules)."""
    return sorted(BICEP_DIR.rglob("*.bicep"))


def parameter_files() -> list[Path]:
    """One parameters file per environment."""
    return sorted(BICEP_DIR.glob("*.bicepparam"))


def block(source: str, opening: str) -> str:
    """The text from `opening` to the bracket that closes the last bracket `opening` opens."""
    start = source.index(opening)
    depth = 0
    for i in range(start + len(opening) - 1, len(source)):
        depth += {"[": 1, "{": 1, "(": 1, "]": -1, "}": -1, ")": -1}.get(source[i], 0)
        if depth == 0:
            return source[start : i + 1]
    raise ValueError(f"{opening!r} is never closed")


@dataclass(frozen=True)
class Param:
    name: str
    has_default: bool


def params(source: str) -> dict[str, Param]:
    """The `param` declarations of a template."""
    found = re.findall(r"^param\s+(\w+)\s+[\w.]+(\s*=)?", source, flags=re.MULTILINE)
    return {name: Param(name, bool(default)) for name, default in found}


def outputs(source: str) -> set[str]:
    return set(re.findall(r"^output\s+(\w+)\s", source, flags=re.MULTILINE))


def assigned_params(source: str) -> set[str]:
    """The parameters a .bicepparam file sets."""
    return set(re.findall(r"^param\s+(\w+)\s*=", source, flags=re.MULTILINE))


FUNCTION_APP = BICEP_DIR / "modules" / "functionapp.bicep"


def app_settings() -> dict[str, str]:
    """The app settings: main.bicep's, and the few the Function App module adds itself (its own address), as
    name → the Bicep expression of its value."""
    listed = block(text(MAIN), "var appSettings = concat([") + block(
        text(FUNCTION_APP), "var ownSettings = ["
    )
    return dict(
        re.findall(r"\{\s*name:\s*'([^']+)',\s*value:\s*(.+?)\s*\}\s*$", listed, flags=re.MULTILINE)
    )


def ssh_key_settings() -> dict[Path, set[str]]:
    """The SSH-key settings each parameters file adds (main.bicep's `sshKeys` loop)."""
    return {p: set(re.findall(r"setting:\s*'([^']+)'", text(p))) for p in parameter_files()}


def resource_types() -> set[str]:
    """Every resource type a template declares or references, without API version."""
    return {
        t
        for p in templates()
        for t in re.findall(r"^\s*resource\s+\w+\s+'([^@']+)@", text(p), re.MULTILINE)
    }


def skip_comments(path: Path) -> list[tuple[str, str]]:
    """Inline Checkov skips in a template: (check id, reason)."""
    return re.findall(
        r"//\s*checkov:skip=([A-Z0-9_]+)\s*:?\s*(.*)$", text(path), flags=re.MULTILINE
    )


def strings(path: Path) -> set[str]:
    """Every string literal of a template or parameters file, comments left out (names of resources, roles...)."""
    code = re.sub(r"(^|\s)//.*$", "", text(path), flags=re.MULTILINE)
    return {m.replace("\\'", "'") for m in re.findall(r"'((?:[^'\\]|\\.)*)'", code)}


def all_strings() -> set[str]:
    return {s for p in templates() + parameter_files() for s in strings(p)}
