"""The OpenAPI 3.1 document, generated from the app's HTTP functions and the models of `core.views`.

Paths, methods, path parameters and summaries come from the function metadata (route templates and docstrings),
bodies and responses from the pydantic models, so the document cannot be edited apart from the code; a test checks
that the two describe the same routes. Path and query parameters are declared as exactly as the code checks them
(`core.views`), and the catalog's case ids are the `case_id`s a new job may name.

Each success response links (OpenAPI `links`) to the operations its body, or the request's own path, gives every
path parameter of: `POST /job`'s `job_id` to the job routes, a job's `case_id` to its case, a download's job to
the job. A stateful fuzzer follows them from a job it made to everything that can be done with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from core.bodies import JobCreate
from core.views import OPERATIONS, PATH_PARAMETERS, Answer, Operation, Problem

PATH_PARAM = re.compile(r"\{(\w+)\}")
PROBLEM = "application/problem+json"
REASONS = {
    200: "OK", 201: "Created", 202: "Accepted", 204: "No content", 302: "Found: the download URL",
    400: "Malformed query, path or body", 401: "No valid token", 403: "Not allowed", 404: "No such resource",
    409: "The resource's state does not allow it", 413: "Body too large", 415: "Body is not JSON",
    422: "Body or values fail their checks", 503: "A dependency is unavailable; try again",
    414: "URL longer than the host's 4 KB limit: the host answers, with an empty body, before any function runs",
}
SECURITY: dict[str, list[dict[str, list[str]]]] = {"user": [{"user": []}], "job": [{"job": []}], "none": []}


@dataclass(frozen=True)
class HttpFunction:
    """What the app says of one HTTP function."""

    name: str
    route: str
    methods: tuple[str, ...]
    doc: str


def document(functions: list[HttpFunction], version: str = "1") -> dict[str, Any]:
    """The OpenAPI document of these functions."""
    schemas = _schemas()
    documented = [f for f in sorted(functions, key=lambda f: f.route) if OPERATIONS[f.name].documented]
    paths: dict[str, dict[str, Any]] = {}
    for fn in documented:  # a function without an OPERATIONS entry is a bug: the drift test names it
        for method in fn.methods:
            paths.setdefault(f"/{fn.route}", {})[method.lower()] = _operation(fn, OPERATIONS[fn.name], documented)
    return {
        "openapi": "3.1.0",
        "info": {"title": "simgate", "version": version,
                 "description": "A science gateway: simulation cases, jobs run on HPC simulators, outputs."},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "user": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                         "description": "an OIDC access token of the user (Entra ID in Azure)"},
                "job": {"type": "http", "scheme": "bearer",
                        "description": "the job's own token, from its 0600 job file on the simulator"},
            },
        },
    }


def _operation(fn: HttpFunction, op: Operation, functions: list[HttpFunction]) -> dict[str, Any]:
    doc = (fn.doc or fn.name).strip()
    spec: dict[str, Any] = {
        "operationId": fn.name, "summary": doc.splitlines()[0], "security": SECURITY[op.auth],
        "parameters": [
            *({"name": p, "in": "path", "required": True, "schema": PATH_PARAMETERS[p].schema,
               "description": PATH_PARAMETERS[p].description} for p in PATH_PARAM.findall(fn.route)),
            # The host drops a query key with an empty value (`?status=` is no filter): `allowEmptyValue` says so.
            *({"name": q.name, "in": "query", "required": False, "allowEmptyValue": True, "schema": q.schema,
               "description": q.description} for q in op.query),
        ],
        "responses": {
            **{str(code): _success(code, answer, op) | _links(fn, answer, functions)
               for code, answer in op.success.items()},
            **{str(code): {"description": REASONS[code], "content": {PROBLEM: {"schema": _ref(Problem)}}}
               for code in op.errors},
            "414": {"description": REASONS[414]},
        },
    }
    if op.body is not None:
        spec["requestBody"] = {"required": op.body_required,
                               "content": {"application/json": {"schema": _ref(op.body)}}}
    return spec


def _success(code: int, answer: Answer, op: Operation) -> dict[str, Any]:
    response: dict[str, Any] = {"description": REASONS[code]}
    if answer is not None:
        schema = {"type": "array", "items": _ref(answer[0])} if isinstance(answer, tuple) else _ref(answer)
        response["content"] = {"application/json": {"schema": schema}}
    elif code == 200:
        response["content"] = {"application/json": {"schema": {"type": "object"}}}
    if code in op.headers:
        response["headers"] = {h: {"schema": {"type": "string"}} for h in op.headers[code]}
    return response


def _links(source: HttpFunction, answer: Answer, functions: list[HttpFunction]) -> dict[str, Any]:
    """`links` to every other operation whose path parameters this answer (or the request's path) gives."""
    given = {p: f"$request.path.{p}" for p in PATH_PARAM.findall(source.route)} | _carried(answer)
    links = {
        fn.name: {"operationId": fn.name, "parameters": {p: given[p] for p in params}}
        for fn in functions
        if fn.name != source.name and (params := PATH_PARAM.findall(fn.route)) and set(params) <= set(given)
    }
    return {"links": links} if links else {}


def _carried(answer: Answer) -> dict[str, str]:
    """Runtime expressions for the path parameters that an answer's body carries. Not a list's: its first item
    is often not there (an empty page), and the single answers give every id a fuzzer needs."""
    if answer is None or isinstance(answer, tuple):
        return {}
    return {
        name: f"$response.body#/{field}"
        for name, param in PATH_PARAMETERS.items()
        for field in param.carried_by[::-1]  # the first field named wins
        if field in answer.model_fields
    }


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _schemas() -> dict[str, Any]:
    models: set[type[BaseModel]] = {Problem}
    for op in OPERATIONS.values():
        if op.body is not None:
            models.add(op.body)
        for answer in op.success.values():
            if answer is not None:
                models.add(answer[0] if isinstance(answer, tuple) else answer)
    ordered = sorted(models, key=lambda m: m.__name__)
    entries: list[tuple[type[BaseModel], Literal["validation", "serialization"]]] = [
        (m, "validation" if m is _body(m) else "serialization") for m in ordered
    ]
    _, top = models_json_schema(entries, ref_template="#/components/schemas/{model}")
    schemas = dict(top.get("$defs", {}))
    _name_the_cases(schemas[JobCreate.__name__])
    return schemas


def _name_the_cases(job_create: dict[str, Any]) -> None:
    """A new job names a case of the catalog; any other id is refused (400), so the document lists them."""
    from core.catalog import get_catalog

    job_create["properties"]["case_id"]["enum"] = sorted(c.id for c in get_catalog().cases)


def _body(model: type[BaseModel]) -> type[BaseModel] | None:
    return model if any(op.body is model for op in OPERATIONS.values()) else None
