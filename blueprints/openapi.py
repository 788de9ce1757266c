"""`GET /openapi.json`: the OpenAPI 3.1 document, built from the operations the blueprints declare (`API`).

Paths, methods, summaries, security, query parameters and statuses come from each `@operation` declaration, which
is also what parses the requests (`blueprints._contract`); bodies and responses from the models of `core.views`,
which are also what the services return. So the document cannot be edited apart from the code. Path and query
parameters are declared as exactly as the code checks them, and the catalog's case ids are the `case_id`s a new
job may name.

Each success response links (OpenAPI `links`) to the operations its body, or the request's own path, gives every
path parameter of: `POST /job`'s `job_id` to the job routes, a job's `case_id` to its case, a download's job to
the job. A stateful fuzzer follows them from a job it made to everything that can be done with it.
"""

from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING, Any, Literal

import azure.functions as func

from blueprints._contract import API, PATH_PARAMETERS, Call, Model, Operation, Registry, operation
from blueprints._http import api_headers
from blueprints._lazy import lazy_module

if TYPE_CHECKING:
    from pydantic import BaseModel, json_schema

    from core import catalog, views
else:
    json_schema = lazy_module("pydantic.json_schema")
    catalog = lazy_module("core.catalog")
    views = lazy_module("core.views")

bp = func.Blueprint()

PROBLEM = "application/problem+json"
REASONS = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No content",
    302: "Found: the download URL",
    400: "Malformed query, path or body",
    401: "No valid token",
    403: "Not allowed",
    404: "No such resource",
    409: "The resource's state does not allow it",
    413: "Body too large",
    415: "Body is not JSON",
    422: "Body or values fail their checks",
    503: "A dependency is unavailable; try again",
    414: "URL longer than the host's 4 KB limit: the host answers, with an empty body, before any function runs",
}
SECURITY: dict[str, list[dict[str, list[str]]]] = {
    "user": [{"user": []}],
    "job": [{"job": []}],
    "none": [],
}


@operation(bp, "GET", "openapi.json", auth="none", ok={200: None})
def openapi(call: Call) -> func.HttpResponse:
    """The OpenAPI 3.1 document of every route."""
    # Public and the same for everyone: cacheable, unlike the API's answers; nosniff all the same.
    return func.HttpResponse(
        _served(),
        mimetype="application/json",
        headers=api_headers({"Cache-Control": "max-age=300"}),
    )


@functools.cache
def _served() -> str:
    return json.dumps(document(), ensure_ascii=False)


def document(registry: Registry = API, version: str = "1") -> dict[str, Any]:
    """The OpenAPI document of the documented operations in `registry` (the app's by default)."""
    documented = sorted(
        (op for op in registry if op.documented), key=lambda op: op.route
    )  # stable: in order
    paths: dict[str, dict[str, Any]] = {}
    for op in documented:
        paths.setdefault(f"/{op.route}", {})[op.method.lower()] = _operation(op, documented)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "simgate",
            "version": version,
            "description": "A science gateway: simulation cases, jobs run on HPC simulators, outputs.",
        },
        "paths": paths,
        "components": {
            "schemas": _schemas(documented),
            "securitySchemes": {
                "user": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "an OIDC access token of the user (Entra ID in Azure)",
                },
                "job": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "the job's own token, from its 0600 job file on the simulator",
                },
            },
        },
    }


def _operation(op: Operation, operations: list[Operation]) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "operationId": op.name,
        "summary": op.summary.splitlines()[0],
        "security": SECURITY[op.auth],
        "parameters": [
            *(
                {
                    "name": p,
                    "in": "path",
                    "required": True,
                    "schema": dict(PATH_PARAMETERS[p].schema),
                    "description": PATH_PARAMETERS[p].description,
                }
                for p in op.path_parameters
            ),
            # The host drops a query key with an empty value (`?status=` is no filter): `allowEmptyValue` says so.
            *(
                {
                    "name": q.name,
                    "in": "query",
                    "required": False,
                    "allowEmptyValue": True,
                    "schema": dict(q.schema),
                    "description": q.description,
                }
                for q in op.query
            ),
        ],
        "responses": {
            **{
                str(code): _success(code, answer, op) | _links(op, answer, operations)
                for code, answer in op.ok.items()
            },
            **{
                str(code): {
                    "description": REASONS[code],
                    "content": {PROBLEM: {"schema": _ref("Problem")}},
                }
                for code in op.error_statuses
            },
            "414": {"description": REASONS[414]},
        },
    }
    if op.body is not None:
        spec["requestBody"] = {
            "required": op.body_required,
            "content": {"application/json": {"schema": _ref(op.body)}},
        }
    return spec


def _success(code: int, answer: Model, op: Operation) -> dict[str, Any]:
    response: dict[str, Any] = {"description": REASONS[code]}
    if answer is not None:
        schema = (
            {"type": "array", "items": _ref(answer[0])}
            if isinstance(answer, tuple)
            else _ref(answer)
        )
        response["content"] = {"application/json": {"schema": schema}}
        if op.csv and code == 200:
            response["content"]["text/csv"] = {"schema": {"type": "string"}}
    elif code == 200:
        response["content"] = {"application/json": {"schema": {"type": "object"}}}
    if code in op.headers:
        response["headers"] = {h: {"schema": {"type": "string"}} for h in op.headers[code]}
    return response


def _links(source: Operation, answer: Model, operations: list[Operation]) -> dict[str, Any]:
    """`links` to every other operation whose path parameters this answer (or the request's path) gives."""
    given = {p: f"$request.path.{p}" for p in source.path_parameters} | _carried(answer)
    links = {
        op.name: {"operationId": op.name, "parameters": {p: given[p] for p in params}}
        for op in operations
        if op.name != source.name and (params := op.path_parameters) and set(params) <= set(given)
    }
    return {"links": links} if links else {}


def _carried(answer: Model) -> dict[str, str]:
    """Runtime expressions for the path parameters that an answer's body carries. Not a list's: its first item
    is often not there (an empty page), and the single answers give every id a fuzzer needs."""
    if answer is None or isinstance(answer, tuple):
        return {}
    fields = model(answer).model_fields
    return {
        name: f"$response.body#/{field}"
        for name, param in PATH_PARAMETERS.items()
        for field in param.carried_by[::-1]  # the first field named wins
        if field in fields
        and fields[field].is_required()  # an optional id may not be there to follow
    }


def model(name: str) -> type[BaseModel]:
    """The `core.views` model of this name (bodies included: `core.views` re-exports them)."""
    found: type[BaseModel] = getattr(views, name)
    return found


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model(name).__name__}"}


def _schemas(operations: list[Operation]) -> dict[str, Any]:
    bodies = {op.body for op in operations if op.body is not None}
    answers = {
        a[0] if isinstance(a, tuple) else a
        for op in operations
        for a in op.ok.values()
        if a is not None
    }
    names = sorted({"Problem", *bodies, *answers}, key=lambda n: model(n).__name__)
    entries: list[tuple[type[BaseModel], Literal["validation", "serialization"]]] = [
        (model(n), "validation" if n in bodies else "serialization") for n in names
    ]
    _, top = json_schema.models_json_schema(entries, ref_template="#/components/schemas/{model}")
    schemas = dict(top.get("$defs", {}))
    for body in ("JobCreate", "StudyCreate"):
        if body in schemas:
            _name_the_cases(schemas[body])
    return schemas


def _name_the_cases(body: dict[str, Any]) -> None:
    """A new job or study names a case of the catalog; any other id is refused (400), so the document lists
    them."""
    body["properties"]["case_id"]["enum"] = sorted(c.id for c in catalog.get_catalog().cases)
