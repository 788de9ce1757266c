"""The layout rules of architecture §9, checked on the source so a violation fails the build."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = (
    "asyncssh",
    "jinja2",
    "azure.storage",
    "azure.data",
    "azure.identity",
    "yaml",
    "jwt",
    "pydantic",
)


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, at any depth (local imports included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


def sources(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def importers(prefix: str) -> set[str]:
    return {
        str(p.relative_to(ROOT))
        for folder in ("core", "blueprints", "devhost")
        for p in sources(folder)
        if any(m == prefix or m.startswith(prefix + ".") for m in imports_of(p))
    } | (
        {"function_app.py"}
        if any(m.startswith(prefix) for m in imports_of(ROOT / "function_app.py"))
        else set()
    )


def test_core_never_imports_azure_functions() -> None:
    assert not {p for p in importers("azure.functions") if p.startswith("core/")}


@pytest.mark.parametrize("sdk", ["azure.storage", "azure.data", "azure.identity", "azure.core"])
def test_only_storage_adapters_import_the_azure_sdk(sdk: str) -> None:
    offenders = {
        p for p in importers(sdk) if p.startswith(("core/", "blueprints/", "function_app"))
    }
    assert {p for p in offenders if not p.startswith("core/storage/")} == set()


def test_only_the_ssh_adapter_imports_asyncssh() -> None:
    assert {p for p in importers("asyncssh") if not p.startswith("devhost/")} <= {"core/ssh.py"}


def test_blueprints_depend_on_core_never_the_reverse() -> None:
    assert not {p for p in importers("blueprints") if p.startswith("core/")}
    # The OpenAPI document is built from the operations the blueprints declare, not from the app that holds them.
    assert not {p for p in importers("function_app") if not p.startswith("devhost/")}


def test_blueprints_import_nothing_inside_functions() -> None:
    """Service modules load on first use through `blueprints._lazy.lazy_module`, named at the top of the file."""
    inside = {
        f"{path.name}:{node.lineno}"
        for path in sources("blueprints")
        for fn in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef)
        for node in ast.walk(fn)
        if isinstance(node, ast.Import | ast.ImportFrom)
    }
    assert inside == set()


def test_importing_the_app_loads_no_heavy_module() -> None:
    probe = "import json, sys; import function_app; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    loaded = set(json.loads(out.stdout))
    assert [h for h in HEAVY if any(m == h or m.startswith(h + ".") for m in loaded)] == []


def test_no_account_key_signs_anything_in_the_app() -> None:
    """Every SAS is a user-delegation SAS: no account-key signature, no account SAS (architecture §6)."""
    offenders = set()
    for folder in ("core", "blueprints"):
        for path in sources(folder):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.keyword)
                    and node.arg in ("account_key", "credential")
                    and isinstance(node.value, ast.Constant)
                ):
                    offenders.add(f"{path.name}: {node.arg}=")
                if isinstance(node, ast.Name | ast.Attribute) and getattr(
                    node, "id", getattr(node, "attr", "")
                ) in ("generate_account_sas", "AccountSasPermissions", "account_key"):
                    offenders.add(f"{path.name}: {getattr(node, 'id', getattr(node, 'attr', ''))}")
                if isinstance(node, ast.Call) and getattr(node.func, "id", "") in (
                    "generate_blob_sas",
                    "generate_container_sas",
                ):
                    keywords = {k.arg for k in node.keywords}
                    if "user_delegation_key" not in keywords or "account_key" in keywords:
                        offenders.add(f"{path.name}: {node.func.id} without user_delegation_key")  # type: ignore[attr-defined]
    assert offenders == set()


def test_the_http_paths_never_reach_the_ssh_or_template_modules() -> None:
    """Status reports, outputs and the job routes run in HTTP workers: SSH and templates belong to dispatch."""
    worker_only = {"core.dispatch", "core.ssh", "core.render", "asyncssh", "jinja2"}
    for module in (
        "core/reports.py",
        "core/outputs.py",
        "core/job_operations.py",
        "core/auth.py",
        "core/records.py",
    ):
        assert imports_of(ROOT / module) & worker_only == set(), module


def calls_in(path: Path) -> set[str]:
    """The plain names a file calls (`f(...)`, and `dataclasses.f(...)`), not methods (`text.replace(...)`)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            found.add(node.func.id)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and getattr(node.func.value, "id", "") == "dataclasses"
        ):
            found.add(node.func.attr)
    return found


def test_only_the_transitions_move_a_job() -> None:
    """Services only apply events (`core.transitions`): no other module of core edits a job's fields itself."""
    edits = {
        str(p.relative_to(ROOT))
        for p in sources("core")
        if p.name != "transitions.py"
        and "storage" not in p.parts
        and {"replace", "advanced"} & calls_in(p)
    }
    assert edits == set()


def test_one_module_runs_remote_programs() -> None:
    """`core.remote` is the only caller of the remote runner; only the composition root builds the SSH pool."""
    runners = set()
    for path in sources("core"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr == "remote":
                runners.add(str(path.relative_to(ROOT)))
    assert runners == {"core/remote.py"}
    assert {p for p in importers("core.ssh") if p.startswith("core/")} == {"core/services.py"}
