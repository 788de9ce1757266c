"""The Azure Functions Python worker's own indexer (azure-functions-runtime) loads function_app.py without error.

devhost reads the app through azure-functions' `get_functions()`; the real worker does more when the host asks for
the metadata (it matches every parameter against its binding), so an app devhost serves could still fail to load
in Azure. `infra/check.py index` runs the worker's loader and registry; the broken apps below must fail it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy.conftest import ROOT, listed_functions, run_check

BROKEN_APPS = {
    # The binding is called "msg" but the function takes "message": azure-functions indexes it; the worker refuses.
    "parameter not named as its binding": """
import azure.functions as func

app = func.FunctionApp()


@app.function_name("take")
@app.queue_trigger(arg_name="msg", queue_name="dispatch", connection="AzureWebJobsStorage")
def take(message: func.QueueMessage) -> None:
    pass
""",
    # An HTTP trigger whose request is annotated as a dict.
    "wrong annotation": """
import azure.functions as func

app = func.FunctionApp()


@app.function_name("hello")
@app.route(route="hello", methods=["GET"])
def hello(req: dict) -> func.HttpResponse:
    return func.HttpResponse("hi")
""",
}


@pytest.mark.usefixtures("worker_runtime")
def test_the_worker_indexes_function_app() -> None:
    indexed = listed_functions("index", ROOT / "function_app.py")
    listed = listed_functions("functions", ROOT / "function_app.py")
    assert [f["name"] for f in indexed] == [f["name"] for f in listed]
    assert [f["bindings"] for f in indexed] == [
        f["bindings"] for f in listed
    ]  # the raw bindings the host gets


@pytest.mark.usefixtures("worker_runtime")
@pytest.mark.parametrize("problem", sorted(BROKEN_APPS))
def test_the_worker_reports_a_broken_app(problem: str, tmp_path: Path) -> None:
    app = tmp_path / "function_app.py"
    app.write_text(BROKEN_APPS[problem], encoding="utf-8")

    assert run_check("functions", app).returncode == 0  # what get_functions() alone lets through
    done = run_check("index", app)

    assert done.returncode == 1
    assert "FAIL the worker cannot index function_app.py: FunctionLoadError" in done.stderr
    expected = "message" if problem.startswith("parameter") else "do not match"
    assert expected in done.stderr
