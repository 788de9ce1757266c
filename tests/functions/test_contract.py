"""A new route is one decorated handler, one core function and one row of the route test: a throwaway blueprint
declares one operation, a fresh Function App registers it, and the document built from its registry lists it with
its query bounds and its errors, while a request through it is parsed and refused as the declaration says."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from pydantic import BaseModel

from blueprints._contract import Call, Registry, integer, operation
from blueprints.openapi import document
from core import views
from core.auth import Principal
from core.errors import GatewayError, NotFound
from core.services import reset_services
from devhost.tokens import DEV_AUDIENCE, DEV_ISSUER, make_key_pair, mint


class Greeting(BaseModel):
    """A new response shape: one model in `core.views`."""

    text: str
    times: int


def greet(caller: Principal, name: str, times: int) -> Greeting:
    """The core function: a greeting, or `NotFound` for a name nobody has."""
    if name == "nobody":
        raise NotFound("there is nobody called that")
    return Greeting(text=f"hello {name} from {caller.name}", times=times)


TIMES = integer("times", "how many times", low=1, high=3, default=1)


def make_app(registry: Registry) -> dict[str, Any]:
    """The whole route, declared in one statement; the app it is registered in; its functions by name."""
    bp = func.Blueprint()

    @operation(
        bp,
        "GET",
        "greeting/{case_id}",
        auth="user",
        ok={200: "Greeting"},
        errors=(NotFound,),
        query=(TIMES,),
        registry=registry,
    )
    def greeting(call: Call) -> Greeting:
        """Greet someone, a few times."""
        return greet(call.caller, call.path("case_id"), call.query(TIMES))

    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
    app.register_functions(bp)
    return {f.get_function_name(): f for f in app.get_functions()}


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> Registry:
    monkeypatch.setattr(
        views, "Greeting", Greeting, raising=False
    )  # as if declared in core/views.py
    return Registry()


@pytest.fixture
def token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    make_key_pair(tmp_path / "dev.pem", tmp_path / "jwks.json")
    monkeypatch.setenv("AUTH_ISSUER", DEV_ISSUER)
    monkeypatch.setenv("AUTH_AUDIENCE", DEV_AUDIENCE)
    monkeypatch.setenv("AUTH_JWKS", str(tmp_path / "jwks.json"))
    monkeypatch.delenv("AUTH_REQUIRED_SCOPE", raising=False)
    reset_services()
    yield mint(tmp_path / "dev.pem", "ann")
    reset_services()


def get(
    functions: dict[str, Any], name: str, params: dict[str, str], token: str | None = None
) -> func.HttpResponse:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    req = func.HttpRequest(
        "GET",
        f"http://localhost/greeting/{name}",
        headers=headers,
        params=params,
        route_params={"case_id": name},
        body=b"",
    )
    response: func.HttpResponse = functions["greeting"].get_user_function()(req)
    return response


def test_the_app_registers_the_declared_function(registry: Registry) -> None:
    functions = make_app(registry)
    trigger = functions["greeting"].get_trigger()
    assert (trigger.route, [m.value for m in trigger.methods]) == ("greeting/{case_id}", ["GET"])
    assert trigger.auth_level == func.AuthLevel.ANONYMOUS
    assert [op.name for op in registry] == ["greeting"]


def test_the_document_lists_it_with_its_bounds_and_errors(registry: Registry) -> None:
    make_app(registry)
    doc = document(registry)
    op = doc["paths"]["/greeting/{case_id}"]["get"]
    assert (op["operationId"], op["summary"], op["security"]) == (
        "greeting",
        "Greet someone, a few times.",
        [{"user": []}],
    )
    [query] = [p for p in op["parameters"] if p["in"] == "query"]
    assert (query["name"], query["schema"]) == (
        "times",
        {"type": "integer", "minimum": 1, "maximum": 3},
    )
    # 400 for the path and query, 401 for the token: implied; 404: declared; 414: the host's.
    assert sorted(op["responses"]) == ["200", "400", "401", "404", "414"]
    assert op["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Greeting"
    }
    assert set(doc["components"]["schemas"]) == {"Greeting", "Problem", "ProblemField"}


def test_a_request_is_parsed_and_refused_as_declared(registry: Registry, token: str) -> None:
    functions = make_app(registry)
    ok = get(functions, "bo", {"times": "3"}, token)
    assert (ok.status_code, json.loads(ok.get_body())) == (
        200,
        {"text": "hello bo from ann", "times": 3},
    )
    assert get(functions, "bo", {}, token).status_code == 200  # the default

    too_many = get(functions, "bo", {"times": "4"}, token)
    assert too_many.status_code == 400
    assert too_many.mimetype == "application/problem+json"
    assert json.loads(too_many.get_body())["errors"] == [
        {"name": "times", "in": "query", "detail": "must be from 1 to 3, not 4"}
    ]
    assert (
        get(functions, "bo", {"times": "3"}).status_code == 401
    )  # before anything else: the token
    assert (
        get(functions, "nobody", {}, token).status_code == 404
    )  # the core function's error, by STATUS


def test_a_declaration_that_cannot_be_documented_is_refused_at_import(registry: Registry) -> None:
    bp = func.Blueprint()
    with pytest.raises(ValueError, match="declare path parameter"):
        operation(bp, "GET", "thing/{thing_id}", auth="none", ok={200: None}, registry=registry)(
            lambda call: None
        )
    with pytest.raises(ValueError, match="has no status"):
        operation(
            bp,
            "GET",
            "thing",
            auth="none",
            ok={200: None},
            errors=(GatewayError,),
            registry=registry,
        )(lambda call: None)
    declare = operation(
        func.Blueprint(), "GET", "thing", auth="none", ok={200: None}, registry=registry
    )
    declare(lambda call: None)
    with pytest.raises(ValueError, match="declared twice"):
        declare(lambda call: None)
