"""Cold-start cost of the Function App: importing `function_app` against importing `azure.functions` alone.

Each figure is the median of several fresh interpreters, because a cold start is a fresh interpreter: the worker
imports the app to index its functions before the first request. Also lists which heavy modules the import pulls
in (none of them should be: they load where they are used).

    .venv/bin/python -m bench.cold_start [--runs 15]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = (
    "asyncssh",
    "jinja2",
    "azure.storage.blob",
    "azure.storage.queue",
    "azure.data.tables",
    "azure.identity",
    "yaml",
    "jwt",
    "pydantic",
)

PROBE = """
import json, sys, time
t = time.perf_counter()
import {module}
elapsed = time.perf_counter() - t
print(json.dumps({{"seconds": elapsed, "modules": sorted(sys.modules)}}))
"""


def import_once(module: str) -> tuple[float, set[str]]:
    """Import `module` in a fresh interpreter; its import time and the modules loaded by then."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result = json.loads(out)
    return float(result["seconds"]), set(result["modules"])


def median_imports(modules: tuple[str, ...], runs: int) -> tuple[list[float], set[str]]:
    """Median import time of each module over `runs` rounds, and the modules the last one loaded.

    The modules take turns within each round, so a busy moment on the machine hits both alike.
    """
    times: list[list[float]] = [[] for _ in modules]
    loaded: set[str] = set()
    for _ in range(runs):
        for i, module in enumerate(modules):
            seconds, loaded = import_once(module)
            times[i].append(seconds)
    return [statistics.median(t) for t in times], loaded


def heavy_loaded(modules: set[str]) -> list[str]:
    """The heavy packages among `modules`."""
    return [h for h in HEAVY if h in modules]


def main() -> None:
    """Measure and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    (base, app), modules = median_imports(("azure.functions", "function_app"), runs)
    print(f"import azure.functions  median of {runs}: {base * 1000:7.1f} ms")
    print(f"import function_app     median of {runs}: {app * 1000:7.1f} ms")
    print(f"ratio function_app / azure.functions: {app / base:.2f}")
    print(f"heavy modules loaded by function_app: {', '.join(heavy_loaded(modules)) or 'none'}")


if __name__ == "__main__":
    main()
