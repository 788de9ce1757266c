"""HTTP plumbing shared by every blueprint: JSON and problem+json answers, query parsing, error mapping.

This module is the one place that chooses HTTP status codes for the project's errors.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import azure.functions as func

from core.errors import (
    ConcurrencyConflict,
    Conflict,
    FieldProblem,
    Forbidden,
    GatewayError,
    InvalidBody,
    InvalidInput,
    InvalidValues,
    NotFound,
    PayloadTooLarge,
    Unauthenticated,
    Unavailable,
    UnsupportedMediaType,
)

log = logging.getLogger(__name__)

STATUS: dict[type[GatewayError], int] = {
    InvalidInput: 400,
    Unauthenticated: 401,
    PayloadTooLarge: 413,
    UnsupportedMediaType: 415,
    InvalidBody: 422,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    ConcurrencyConflict: 503,  # still contended after the retries: busy, not a conflict of state; try again
    InvalidValues: 422,
    Unavailable: 503,
}

Handler = Callable[[func.HttpRequest], func.HttpResponse]


def status_of(error: GatewayError) -> int:
    """The HTTP status for a project error; anything unmapped is a server fault."""
    for kind in type(error).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    return 500


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    """A JSON answer."""
    return func.HttpResponse(
        json.dumps(body, ensure_ascii=False), status_code=status, headers=headers, mimetype="application/json"
    )


def problem(
    status: int,
    title: str,
    detail: str,
    errors: list[FieldProblem] | None = None,
    headers: dict[str, str] | None = None,
) -> func.HttpResponse:
    """An RFC 9457 problem+json answer; `errors` lists field-level problems when there are any."""
    body: dict[str, Any] = {
        "type": f"urn:simgate:problem:{title.lower().replace(' ', '-')}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = [e.as_dict() for e in errors]
    return func.HttpResponse(
        json.dumps(body, ensure_ascii=False), status_code=status, headers=headers, mimetype="application/problem+json"
    )


def answers_problems(handler: Handler) -> Handler:
    """Turn project errors into problem+json and anything unexpected into a logged, detail-free 500."""

    @functools.wraps(handler)
    def wrapper(req: func.HttpRequest) -> func.HttpResponse:
        try:
            return handler(req)
        except Exception as exc:
            status = status_of(exc) if isinstance(exc, GatewayError) else 500
            if status == 503:  # expected to pass: one line, no traceback
                log.warning("%s %s: %s", req.method, req.url, exc)
            elif status >= 500:
                log.exception("%s %s failed", req.method, req.url)
            if isinstance(exc, GatewayError) and status != 500:
                return problem(status, exc.title, exc.detail, exc.errors, _challenge(req, exc) or _retry_after(status))
            # A 500 is a bug; its details (paths, internals) stay in the log.
            return problem(500, "Internal error", "the gateway failed to answer; the error is logged")

    return wrapper


RETRY_AFTER_SECONDS = "5"


def _retry_after(status: int) -> dict[str, str] | None:
    """RFC 9110's `Retry-After` on a 503: the failure is expected to pass."""
    return {"Retry-After": RETRY_AFTER_SECONDS} if status == 503 else None


def _challenge(req: func.HttpRequest, exc: GatewayError) -> dict[str, str] | None:
    """RFC 6750's `WWW-Authenticate` for a 401: an error code only when a token was sent."""
    if not isinstance(exc, Unauthenticated):
        return None
    if not req.headers.get("Authorization"):
        return {"WWW-Authenticate": 'Bearer realm="simgate"'}
    detail = exc.detail.replace('"', "'")
    return {"WWW-Authenticate": f'Bearer realm="simgate", error="invalid_token", error_description="{detail}"'}


MAX_BODY_BYTES = 64 * 1024


def json_body(req: func.HttpRequest) -> Any:
    """The request's JSON body; 415 unless it says it is JSON, 413 when too large, 400 when it does not parse."""
    media_type = (req.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise UnsupportedMediaType(f"the body must be application/json, not {media_type or 'missing'!r}")
    raw = req.get_body()
    if len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"the body must be at most {MAX_BODY_BYTES} bytes")
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InvalidInput(f"the body is not valid JSON: {type(exc).__name__}") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def query_text(req: func.HttpRequest, name: str, max_length: int = 200) -> str | None:
    """A text query parameter of bounded length, or None when absent."""
    raw: str | None = req.params.get(name)
    if raw is not None and (len(raw) > max_length or not raw.isprintable()):
        raise InvalidInput.field(name, f"must be at most {max_length} printable characters", "query")
    return raw


def query_int(req: func.HttpRequest, name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter within [low, high], `default` when absent, or `InvalidInput` naming it."""
    value = query_opt_int(req, name, low, high)
    return default if value is None else value


def query_opt_int(req: func.HttpRequest, name: str, low: int, high: int) -> int | None:
    """An integer query parameter within [low, high], None when absent, or `InvalidInput` naming it."""
    raw = req.params.get(name)
    if raw is None:
        return None
    text = raw.strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 9):
        raise InvalidInput.field(name, f"must be a whole number from {low} to {high}", "query")
    value = int(text)
    if not low <= value <= high:
        raise InvalidInput.field(name, f"must be from {low} to {high}, not {value}", "query")
    return value


def page_links(req: func.HttpRequest, page: int, per_page: int, total: int) -> str:
    """An RFC 8288 `Link` header with first, prev, next and last pages of a page-numbered list."""
    last = max(1, -(-total // per_page))
    prev = min(page - 1, last) if page > 1 else None
    rels = {"first": 1, "prev": prev, "next": page + 1 if page < last else None, "last": last}
    return ", ".join(f'<{_with_page(req.url, n, per_page)}>; rel="{rel}"' for rel, n in rels.items() if n)


def _with_page(url: str, page: int, per_page: int) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query=urlencode({"page": page, "per_page": per_page})))
