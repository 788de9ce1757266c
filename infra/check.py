"""Deployment checks, run by `make test` (tests/deploy) and by hand from the repository root.

    python infra/check.py checkov [FILE ...]    Checkov on Bicep files (default: every infra/bicep/**/*.bicep)
    python infra/check.py index [APP]            the Python worker's own indexer on APP (default: function_app.py)
    python infra/check.py functions [APP]        the functions azure-functions itself indexes in APP

`checkov` fails on any parsing error (Checkov exits 0 when a file does not parse: only its JSON summary says so),
any failed check, and any skip without a reason. It runs Checkov from `.venv-checkov` (`make deploy-tools`), or
the program named by the CHECKOV environment variable, with `--skip-download` (no call to the vendor's API).

`index` loads APP the way the Azure Functions Python worker does when the host asks for function metadata:
azure-functions-runtime's `loader.index_function_app` imports the module and lists its functions, and
`loader.process_indexed_function` registers each one (`Registry.add_indexed_function` checks every parameter
against its binding: names, directions, annotations) and builds the raw bindings the host receives. The gRPC
message classes are stand-ins; nothing else is. azure-functions-runtime declares Python >= 3.13, so `make
deploy-tools` installs it with --no-deps --ignore-requires-python; treat this as a faithful but best-effort check.

`index` and `functions` print a JSON list, one `{"name", "bindings"}` per function, or exit 1 naming the error.
They import APP, so run them in a process of their own (a second `get_functions()` on one app raises).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BICEP_DIR = ROOT / "infra" / "bicep"
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
NO_REASON = {"", "no comment provided"}  # what Checkov records for a skip written without a reason


class CheckError(Exception):
    """A check could not run, or found something wrong; the message says what."""


# ---- Checkov ----


@dataclass
class CheckovReport:
    """What one Checkov run over Bicep files found."""

    summary: dict[str, Any]
    parsing_errors: list[str] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    passed: list[dict[str, Any]] = field(default_factory=list)

    @property
    def unjustified_skips(self) -> list[dict[str, Any]]:
        """Skips whose inline comment gives no reason."""
        return [c for c in self.skipped if skip_reason(c).lower() in NO_REASON]

    def problems(self) -> list[str]:
        """Everything that fails the build, one line each; empty when the files pass."""
        lines = [f"parsing error: {path}" for path in self.parsing_errors]
        if self.summary.get("parsing_errors", 0) and not self.parsing_errors:
            lines.append(f"parsing errors: {self.summary['parsing_errors']}")
        lines += [f"failed {_describe(c)}" for c in self.failed]
        lines += [f"skipped without a reason {_describe(c)}" for c in self.unjustified_skips]
        return lines


def skip_reason(check: dict[str, Any]) -> str:
    """The reason written with a skip (Checkov keeps it in the check's result)."""
    return str(
        (check.get("check_result") or {}).get("suppress_comment")
        or check.get("suppress_comment")
        or ""
    ).strip()


def _describe(check: dict[str, Any]) -> str:
    return f"{check['check_id']} ({check.get('check_name', '')}) on {check.get('resource')} in {check.get('file_path')}"


def bicep_files(folder: Path = BICEP_DIR) -> list[Path]:
    """Every Bicep file under `folder` (parameters files, .bicepparam, are not templates and hold no resources)."""
    return sorted(folder.rglob("*.bicep"))


def checkov_program() -> Path:
    """The Checkov executable: CHECKOV if set, else the project's own venv."""
    return Path(os.environ.get("CHECKOV") or CHECKOV)


def run_checkov(files: list[Path], program: Path | None = None) -> CheckovReport:
    """Scan `files` in one Checkov run (`--framework bicep --skip-download -o json`) and read its JSON."""
    program = program or checkov_program()
    if not program.exists():
        raise CheckError(f"{program} is missing: run `make deploy-tools`")
    if not files:
        raise CheckError("no Bicep file to scan")
    argv = [str(program), "--framework", "bicep", "--skip-download", "-o", "json"]
    for path in files:
        argv += ["-f", str(path)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode not in (0, 1):
        raise CheckError(f"checkov exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    try:
        return parse_checkov_json(done.stdout)
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckError(f"unreadable Checkov output ({exc}): {done.stdout[:500]!r}") from exc


def parse_checkov_json(text: str) -> CheckovReport:
    """Checkov's JSON: one report, a list of them (one per framework), or a bare summary when nothing was found."""
    data = json.loads(text)
    reports = data if isinstance(data, list) else [data]
    merged = CheckovReport(
        summary={"passed": 0, "failed": 0, "skipped": 0, "parsing_errors": 0, "resource_count": 0}
    )
    for report in reports:
        summary = report.get(
            "summary", report
        )  # no results at all: Checkov prints the summary alone
        for key in merged.summary:
            merged.summary[key] += int(summary.get(key, 0))
        merged.summary["checkov_version"] = summary.get("checkov_version")
        results = report.get("results", {})
        merged.parsing_errors += results.get("parsing_errors", [])
        merged.failed += results.get("failed_checks", [])
        merged.skipped += results.get("skipped_checks", [])
        merged.passed += results.get("passed_checks", [])
    return merged


def checkov_main(paths: list[str]) -> int:
    files = [Path(p).resolve() for p in paths] or bicep_files()
    report = run_checkov(files)
    s = report.summary
    _say(
        f"checkov {s.get('checkov_version')}: {len(files)} files, {s['resource_count']} resources, "
        f"{s['passed']} passed, {s['failed']} failed, {s['skipped']} skipped, {s['parsing_errors']} parsing errors"
    )
    for check in report.skipped:
        _say(f"  skip {check['check_id']} on {check.get('resource')}: {skip_reason(check)}")
    for line in report.problems():
        _say(f"  FAIL {line}")
    return 1 if report.problems() else 0


# ---- The worker's indexer, and the SDK's ----


class _Message:
    """Stand-in for a gRPC message class of the worker's protos: it keeps the fields it is built with."""

    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)


def _protos() -> Any:
    """The parts of the worker's protos module that indexing touches (enum values as in the .proto files)."""
    binding_info = type(
        "BindingInfo",
        (_Message,),
        {
            "in": 0,
            "out": 1,
            "inout": 2,  # Direction
            "undefined": 0,
            "string": 1,
            "binary": 2,
            "stream": 3,
        },
    )
    names = (
        "RpcFunctionMetadata",
        "RpcRetryOptions",
        "NullableString",
        "NullableBool",
        "NullableDouble",
    )
    return type(
        "protos", (), {"BindingInfo": binding_info, **{n: type(n, (_Message,), {}) for n in names}}
    )


def _load(app: Path) -> None:
    """Make `app`'s folder importable first, as the worker does with the app's root."""
    sys.path.insert(0, str(app.parent))
    os.chdir(app.parent)


def worker_index(app: Path) -> list[dict[str, Any]]:
    """Index `app` with azure-functions-runtime's loader and registry; each function's name and raw bindings."""
    try:
        from azure_functions_runtime import functions, loader
        from azure_functions_runtime.bindings import meta
    except ImportError as exc:
        raise CheckError(
            f"azure-functions-runtime is missing ({exc}): run `make deploy-tools`"
        ) from exc
    _load(app)
    meta.load_binding_registry()  # the worker loads azure.functions' binding converters before indexing
    try:
        indexed = loader.index_function_app(str(app))
        metadata, _logs = loader.process_indexed_function(
            _protos(), functions.Registry(), indexed, str(app.parent)
        )
    except Exception as exc:  # the worker reports any error here as a failed metadata request
        raise CheckError(
            f"the worker cannot index {app.name}: {type(exc).__name__}: {exc}"
        ) from exc
    return [{"name": m.name, "bindings": [json.loads(b) for b in m.raw_bindings]} for m in metadata]


def sdk_functions(app: Path) -> list[dict[str, Any]]:
    """The functions azure-functions lists for `app` (no worker needed); each name and its bindings."""
    import importlib

    from azure.functions import FunctionRegister

    _load(app)
    try:
        module = importlib.import_module(app.stem)
        registers = [v for v in vars(module).values() if isinstance(v, FunctionRegister)]
        if len(registers) != 1:
            raise CheckError(
                f"{app.name} defines {len(registers)} function apps; the worker needs exactly one"
            )
        found = registers[0].get_functions()  # raises on a repeated function name
    except CheckError:
        raise
    except Exception as exc:
        raise CheckError(
            f"azure-functions cannot index {app.name}: {type(exc).__name__}: {exc}"
        ) from exc
    return [
        {"name": f.get_function_name(), "bindings": [json.loads(b) for b in f.get_raw_bindings()]}
        for f in found
    ]


def _say(line: str) -> None:
    sys.stderr.write(line + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("checkov", help="scan Bicep files with Checkov").add_argument("files", nargs="*")
    for name in ("index", "functions"):
        sub.add_parser(name).add_argument("app", nargs="?", default=str(ROOT / "function_app.py"))
    args = parser.parse_args(argv)
    try:
        if args.command == "checkov":
            return checkov_main(args.files)
        index = worker_index if args.command == "index" else sdk_functions
        listed = index(Path(args.app).resolve())
    except CheckError as exc:
        _say(f"FAIL {exc}")
        return 1
    sys.stdout.write(json.dumps(listed) + "\n")
    _say(f"{args.command}: {len(listed)} functions: {', '.join(f['name'] for f in listed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
