"""The project's own errors.

Every failure the gateway reports is one of these. Each class says what went wrong in the caller's terms; the
HTTP status for each is chosen in one place (`blueprints/_http.py`), and exceptions from the Azure SDK or SSH are
translated into these where they enter, marked `transient` when a retry may succeed.

    GatewayError
    ├── InvalidInput        a query parameter, path segment or body is malformed (400)
    ├── InvalidBody         a JSON body of the wrong shape: missing, unknown or mistyped members (422)
    ├── UnsupportedMediaType  the body is not JSON (415)
    ├── PayloadTooLarge     the body is too big (413)
    ├── Unauthenticated     no valid bearer token (401)
    ├── Forbidden           authenticated but not allowed (403)
    ├── NotFound            no such resource, or not the caller's (404)
    ├── Conflict            the resource is in the wrong state for this (409)
    │   └── ConcurrencyConflict  it changed under us: an ETag mismatch; retried first
    ├── InvalidValues       field values break their specs (422)
    ├── CatalogError        a case file is broken: a deployment bug, fails loudly at load
    ├── DispatchRefused     a simulator refused the job for good: the job FAILS with the reason
    │   └── InvalidSubmission  a scheduler adapter cannot put the job, target or answer into its terms
    └── Unavailable         a dependency failed; transient (503)
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass


@dataclass(frozen=True)
class FieldProblem:
    """One bad input: which field (or parameter), where it was sent, and what is wrong with it."""

    name: str
    detail: str
    location: str = "body"

    def as_dict(self) -> dict[str, str]:
        """The problem as it appears in a problem+json `errors` list."""
        return {"name": self.name, "in": self.location, "detail": self.detail}


class GatewayError(Exception):
    """Base of every error the gateway reports; `detail` is safe to show to the caller."""

    title = "Gateway error"
    transient = False

    def __init__(self, detail: str, *, errors: list[FieldProblem] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []


class InvalidInput(GatewayError):
    """A request's query, path or body cannot be understood."""

    title = "Invalid input"

    @classmethod
    def field(cls, name: str, detail: str, location: str) -> InvalidInput:
        """An error about one named parameter, its name in the message and in `errors`."""
        return cls(
            f"{location} parameter {name!r} {detail}", errors=[FieldProblem(name, detail, location)]
        )


class InvalidBody(GatewayError):
    """A JSON body parsed but does not have the request's shape; `errors` lists every problem."""

    title = "Invalid request body"


class UnsupportedMediaType(GatewayError):
    """The body is not in a media type the route takes."""

    title = "Unsupported media type"


class PayloadTooLarge(GatewayError):
    """The body is larger than the route takes."""

    title = "Payload too large"


class Unauthenticated(GatewayError):
    """No valid credentials came with the request."""

    title = "Unauthenticated"


class Forbidden(GatewayError):
    """The caller is known but may not do this."""

    title = "Forbidden"


class NotFound(GatewayError):
    """No such resource (or one the caller may not see)."""

    title = "Not found"


class Conflict(GatewayError):
    """The resource's state does not allow this request."""

    title = "Conflict"


class ConcurrencyConflict(Conflict):
    """A record changed between our read and our conditional write; read it again and retry."""

    transient = True


class InvalidValues(GatewayError):
    """One or more field values break their specs; `errors` lists every one."""

    title = "Invalid field values"


class CatalogError(GatewayError):
    """A case definition is broken; the message names the file and the field."""

    title = "Broken case catalog"


class DispatchRefused(GatewayError):
    """A simulator refused a job for good (host key, authentication, a failing submit): retrying won't help."""

    title = "Dispatch refused"


class InvalidSubmission(DispatchRefused):
    """A scheduler adapter refused a value: a job field, a target option, a job id, or a scheduler's answer it cannot
    read. It names the value; the same input fails the same way again, so it is never transient."""

    title = "Invalid submission"


class Unavailable(GatewayError):
    """A dependency (storage, a simulator) could not be reached; trying again may work."""

    title = "Service unavailable"
    transient = True


def internal_error(log: logging.Logger, what: str) -> str:
    """Log the exception being handled, with its traceback, under a new correlation id; the text a user may read
    instead of it: "internal error (correlation id ...)". A bug's own message (paths, internals) stays in the log."""
    correlation = secrets.token_hex(6)
    log.exception("%s failed: internal error %s", what, correlation)
    return f"internal error (correlation id {correlation})"
