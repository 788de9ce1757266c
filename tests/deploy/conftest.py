"""Deployment checks: Checkov and the Functions worker's indexer, installed by `make deploy-tools`.

Without them the tests that need them skip, except under CI (`CI=true`), where a missing tool is a failure.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from infra import check
from tests.conftest import _missing_component

ROOT = Path(__file__).resolve().parents[2]
CHECK = ROOT / "infra" / "check.py"


@pytest.fixture(scope="session")
def checkov() -> Path:
    """The Checkov program the checks run."""
    program = check.checkov_program()
    if not program.exists():
        _missing_component(f"{program} is missing: run `make deploy-tools`")
    return program


@pytest.fixture(scope="session")
def worker_runtime() -> None:
    """azure-functions-runtime, the Python worker's library, in this venv."""
    if importlib.util.find_spec("azure_functions_runtime") is None:
        _missing_component("azure-functions-runtime is missing: run `make deploy-tools`")


def run_check(command: str, app: Path) -> subprocess.CompletedProcess[str]:
    """`infra/check.py COMMAND APP` in a process of its own (indexing imports the app)."""
    return subprocess.run(
        [sys.executable, str(CHECK), command, str(app)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=app.parent,
    )


def listed_functions(command: str, app: Path) -> list[dict[str, Any]]:
    """The functions `check.py COMMAND` lists for `app`; the test fails with the checker's message otherwise."""
    done = run_check(command, app)
    assert done.returncode == 0, done.stderr
    listed: list[dict[str, Any]] = json.loads(done.stdout)
    return listed
