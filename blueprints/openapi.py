"""`GET /openapi.json`: the contract, generated from the app's own functions and models. No token needed."""

from __future__ import annotations

import functools
import json
from typing import Any

import azure.functions as func

from blueprints._http import api_headers

bp = func.Blueprint()


@bp.function_name("openapi")
@bp.route(route="openapi.json", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def openapi(req: func.HttpRequest) -> func.HttpResponse:
    """The OpenAPI 3.1 document of every route."""
    # Public and the same for everyone: cacheable, unlike the API's answers; nosniff all the same.
    return func.HttpResponse(_document(), mimetype="application/json",
                             headers=api_headers({"Cache-Control": "max-age=300"}))


@functools.cache
def _document() -> str:
    return json.dumps(describe(), ensure_ascii=False)


def describe(app: Any = None) -> dict[str, Any]:
    """The document of `app` (the Function App by default)."""
    from core.openapi import HttpFunction, document

    if app is None:
        from function_app import app
    return document([HttpFunction(**fn) for fn in http_functions(app)])


def http_functions(app: Any) -> list[dict[str, Any]]:
    """Name, route, methods and docstring of each HTTP function of `app`.

    Read from the app's function builders: `get_functions()` refuses to run twice on one app (its name check
    remembers the first run), and the worker has already run it.
    """
    found = []
    for builder in app._function_builders:
        function = builder._function
        trigger = function.get_trigger()
        if trigger is not None and trigger.get_binding_name() == "httpTrigger":
            found.append({"name": function.get_function_name(), "route": trigger.route,
                          "methods": tuple(str(m.value) for m in trigger.methods),
                          "doc": function.get_user_function().__doc__ or ""})
    return found
