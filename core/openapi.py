"""The OpenAPI 3.1 document, generated from the app's HTTP functions and the models of `core.api`.

Paths, methods, path parameters and summaries come from the function metadata (route templates and docstrings),
bodies and responses from the pydantic models, so the document cannot be edited apart from the code; a test checks
that the two describe the same routes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from core.api import OPERATIONS, Answer, Operation, Problem

PATH_PARAM = re.compile(r"\{(\w+)\}")
PROBLEM = "application/problem+json"
REASONS = {
    200: "OK", 201: "Created", 202: "Accepted", 204: "No content", 302: "Found: the download URL",
    400: "Malformed query, path or body", 401: "No valid token", 403: "Not allowed", 404: "No such resource",
    409: "The resource's state does not allow it", 413: "Body too large", 415: "Body is not JSON",
    422: "Body or values fail their checks", 503: "A dependency is unavailable; try again",
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
    paths: dict[str, dict[str, Any]] = {}
    for fn in sorted(functions, key=lambda f: f.route):
        operation = OPERATIONS[fn.name]  # a function without an entry is a bug: the drift test names it
        if not operation.documented:
            continue
        for method in fn.methods:
            paths.setdefault(f"/{fn.route}", {})[method.lower()] = _operation(fn, operation)
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


def _operation(fn: HttpFunction, op: Operation) -> dict[str, Any]:
    doc = (fn.doc or fn.name).strip()
    spec: dict[str, Any] = {
        "operationId": fn.name, "summary": doc.splitlines()[0], "security": SECURITY[op.auth],
        "parameters": [
            *({"name": p, "in": "path", "required": True, "schema": {"type": "string", "maxLength": 200}}
              for p in PATH_PARAM.findall(fn.route)),
            *({"name": q.name, "in": "query", "required": False, "schema": q.schema, "description": q.description}
              for q in op.query),
        ],
        "responses": {
            **{str(code): _success(code, answer, op) for code, answer in op.success.items()},
            **{str(code): {"description": REASONS[code], "content": {PROBLEM: {"schema": _ref(Problem)}}}
               for code in op.errors},
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
    return dict(top.get("$defs", {}))


def _body(model: type[BaseModel]) -> type[BaseModel] | None:
    return model if any(op.body is model for op in OPERATIONS.values()) else None
