"""HTTP plumbing shared by every blueprint: JSON and problem+json answers, body reading, error mapping, links.

This module is the one place that chooses HTTP status codes for the project's errors, and the one that sets the
headers every API answer carries: `X-Content-Type-Options: nosniff`, and `Cache-Control: no-store` unless the
route says otherwise (answers hold a user's jobs, grants and SAS URLs, which no cache may keep). Header values are
made safe here too (`header_value`): printable ASCII only, whatever text they were built from. Links the app
builds (`Link`, `Location`) start from `SIMGATE_PUBLIC_URL`, or are relative without it; never from the request's
`Host`, which the client chooses.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urlencode

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
    internal_error,
)
from core.services import get_settings

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


API_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def api_headers(headers: Mapping[str, str] | None = None) -> dict[str, str]:
    """`API_HEADERS` and the route's own `headers` (which win: a public document may be cached), made header-safe."""
    merged = {**API_HEADERS, **(headers or {})}
    return {name: header_value(value) for name, value in merged.items()}


def header_value(text: str) -> str:
    """`text` as printable ASCII: any other character (non-Latin-1 text, CR, LF, controls) percent-encoded as UTF-8.

    A header value that is not Latin-1 cannot be sent at all (the host drops the answer), and CR/LF would split it.
    URLs stay valid URLs; prose stays readable.
    """
    return "".join(c if " " <= c <= "~" else quote(c, safe="") for c in text)


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> func.HttpResponse:
    """A JSON answer, with the API's headers (`api_headers`)."""
    return func.HttpResponse(
        json.dumps(body, ensure_ascii=False),
        status_code=status,
        headers=api_headers(headers),
        mimetype="application/json",
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
        json.dumps(body, ensure_ascii=False),
        status_code=status,
        headers=api_headers(headers),
        mimetype="application/problem+json",
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
            elif status > 500:
                log.exception("%s %s failed", req.method, req.url)
            if isinstance(exc, GatewayError) and status != 500:
                return problem(
                    status,
                    exc.title,
                    exc.detail,
                    exc.errors,
                    _challenge(req, exc) or _retry_after(status),
                )
            # A 500 is a bug; its details (paths, internals) stay in the log, under the id the answer gives.
            reference = internal_error(log, f"{req.method} {req.url}")
            return problem(
                500, "Internal error", f"the gateway failed to answer: {reference}, which is logged"
            )

    return wrapper


RETRY_AFTER_SECONDS = "5"


def _retry_after(status: int) -> dict[str, str] | None:
    """RFC 9110's `Retry-After` on a 503: the failure is expected to pass."""
    return {"Retry-After": RETRY_AFTER_SECONDS} if status == 503 else None


CHALLENGE = 'Bearer realm="simgate"'
# A fixed text: the problem's detail may quote the refused token (PyJWT's messages), and a header must carry
# nothing the caller wrote. The body says why.
INVALID_TOKEN = (
    f'{CHALLENGE}, error="invalid_token", error_description="the bearer token was refused"'
)


def _challenge(req: func.HttpRequest, exc: GatewayError) -> dict[str, str] | None:
    """RFC 6750's `WWW-Authenticate` for a 401: an error code only when a token was sent."""
    if not isinstance(exc, Unauthenticated):
        return None
    return {"WWW-Authenticate": INVALID_TOKEN if req.headers.get("Authorization") else CHALLENGE}


MAX_BODY_BYTES = 64 * 1024


def json_body(req: func.HttpRequest) -> Any:
    """The request's JSON body; 415 unless it says it is JSON, 413 when too large, 400 when it does not parse."""
    media_type = (req.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise UnsupportedMediaType(
            f"the body must be application/json, not {media_type or 'missing'!r}"
        )
    raw = req.get_body()
    if len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"the body must be at most {MAX_BODY_BYTES} bytes")
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InvalidInput(f"the body is not valid JSON: {type(exc).__name__}") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def app_url(path: str, query: Mapping[str, str | int] | None = None) -> str:
    """The URL of `path` (with `query`) on this app: under `SIMGATE_PUBLIC_URL`, or relative when it is unset
    (RFC 8288 and RFC 9110 resolve a relative `Link` or `Location` against the request's own URL)."""
    return get_settings().public_url + path + (f"?{urlencode(query)}" if query else "")


def link_header(path: str, rels: Mapping[str, Mapping[str, str | int]]) -> str:
    """An RFC 8288 `Link` header: for each relation, `path` with that relation's query."""
    return ", ".join(f'<{app_url(path, query)}>; rel="{rel}"' for rel, query in rels.items())


def page_links(path: str, page: int, per_page: int, total: int) -> str:
    """The `Link` header with first, prev, next and last pages of the page-numbered list at `path`."""
    last = max(1, -(-total // per_page))
    prev = min(page - 1, last) if page > 1 else None
    pages = {"first": 1, "prev": prev, "next": page + 1 if page < last else None, "last": last}
    return link_header(
        path, {rel: {"page": n, "per_page": per_page} for rel, n in pages.items() if n}
    )
