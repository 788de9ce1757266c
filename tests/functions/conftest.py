"""Function-level fixtures: the app's functions, indexed once per session (a second `get_functions()` raises)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import azure.functions as func
import pytest

import function_app

Call = Callable[..., func.HttpResponse]


@pytest.fixture(scope="session")
def functions() -> dict[str, Any]:
    # `get_functions()` refuses a second call on one app (it remembers the names it saw): devhost may have indexed
    # the app already in this session.
    function_app.app.functions_bindings = None
    return {f.get_function_name(): f for f in function_app.app.get_functions()}


@pytest.fixture(scope="session")
def call(functions: dict[str, Any]) -> Call:
    """Call a user function the way the worker does, with a real `func.HttpRequest`."""

    def invoke(
        name: str,
        url: str,
        *,
        method: str = "GET",
        route_params: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        body: bytes = b"",
    ) -> func.HttpResponse:
        req = func.HttpRequest(
            method, url, body=body, params=params or {}, route_params=route_params or {}
        )
        return functions[name].get_user_function()(req)

    return invoke


def body_of(resp: func.HttpResponse) -> Any:
    return json.loads(resp.get_body())
