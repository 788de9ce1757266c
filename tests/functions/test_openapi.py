"""The OpenAPI document against the app: every HTTP function, method, path and query parameter, both ways; the
response models against what the views really build."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import pytest

from blueprints.openapi import describe, http_functions
from core.api import OPERATIONS, CaseDetail, CaseHeader, JobDetail, JobHeader, JobStatusView
from tests.functions.conftest import Call, body_of

ROOT = Path(__file__).resolve().parents[2]
QUERY_READERS = {"query_text", "query_int", "query_opt_int"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    import function_app

    return describe(function_app.app)


def app_functions() -> list[dict[str, Any]]:
    import function_app

    return [f for f in http_functions(function_app.app) if OPERATIONS[f["name"]].documented]


def test_every_route_and_method_is_documented_and_nothing_else(document: dict[str, Any]) -> None:
    in_app = {(f"/{f['route']}", m.lower()) for f in app_functions() for m in f["methods"]}
    in_doc = {(path, method) for path, ops in document["paths"].items() for method in ops}
    assert in_app == in_doc
    assert {f["name"] for f in app_functions()} == {n for n, op in OPERATIONS.items() if op.documented}


def query_parameters_read_by(function_name: str) -> set[str]:
    """The query parameters a function's blueprint code reads, found in its source."""
    for path in (ROOT / "blueprints").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name == function_name:
                return {
                    call.args[1].value for call in ast.walk(node)
                    if isinstance(call, ast.Call) and getattr(call.func, "id", "") in QUERY_READERS
                    and isinstance(call.args[1], ast.Constant)
                }
    raise AssertionError(f"no function {function_name} in blueprints/")


def test_query_and_path_parameters_match_the_code(document: dict[str, Any]) -> None:
    for fn in app_functions():
        for method in fn["methods"]:
            params = document["paths"][f"/{fn['route']}"][method.lower()]["parameters"]
            documented = {p["name"] for p in params if p["in"] == "query"}
            assert documented == query_parameters_read_by(fn["name"]), fn["name"]
            path = {p["name"] for p in params if p["in"] == "path"}
            assert path == set(re.findall(r"\{(\w+)\}", fn["route"])), fn["name"]


def test_the_served_document_is_the_generated_one(call: Call, document: dict[str, Any]) -> None:
    served = call("openapi", "http://localhost/openapi.json")
    assert served.status_code == 200
    assert served.mimetype == "application/json"
    assert body_of(served) == json.loads(json.dumps(document))
    assert document["openapi"] == "3.1.0"


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    text = json.dumps(document)
    refs = {r.split("/")[-1] for r in re.findall(r'"\$ref": "([^"]+)"', text)}
    assert refs <= set(document["components"]["schemas"])


def test_case_views_match_their_models(call: Call) -> None:
    for case in body_of(call("list_cases", "http://localhost/case", params={"per_page": "100"})):
        CaseHeader.model_validate(case)
        CaseDetail.model_validate(body_of(call("show_case", "http://localhost/case/x",
                                                route_params={"case_id": str(case["id"])})))


def test_job_views_match_their_models() -> None:
    from core.catalog import get_catalog
    from core.job import Change, Job, Output, header, status_view
    from core.jobs import detail
    from core.states import JobState

    job = Job(job_id="0123456789abcdef-8765432109876-abcdef", owner="o", owner_name="o", case_id=2, title="t",
              description="", status=JobState.FAILED, created_at="c", updated_at="u", values={"mesh": "coarse"},
              history=(Change(JobState.DRAFT, "c", "o"),), reason="exit code 3", progress=5.0, message="m",
              outputs=(Output("a.csv", "mixing_index", "a.csv", "A", "text/csv", 3),), scheduler_id="7")
    JobDetail.model_validate(detail(job, get_catalog().get(2)))
    JobHeader.model_validate(header(job))
    JobStatusView.model_validate(status_view(job))
