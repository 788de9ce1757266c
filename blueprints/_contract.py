"""One declaration per HTTP operation: `@operation(bp, "GET", "job/{job_id}", auth="user", ok={200: "JobDetail"},
errors=(NotFound, Unavailable))` above a handler is its route, its methods, its checks and its OpenAPI entry.

The decorator registers the Azure function (named after the handler) and records the `Operation` in a `Registry`
(`API` by default), which `blueprints.openapi` turns into `/openapi.json`. At a request it does, in this order,
what the declaration says, and the handler gets a `Call` with the results:

* `auth="user"`: the bearer token is checked (401) and `call.caller` is its `Principal`. `"job"` leaves the job
  token to core (`core.reports` checks it before it reads the body); `"none"` is a public route.
* `query=`: each `Query` is read and checked against its bounds (400 naming it); the same object gives the
  document its schema, so the code and the document cannot disagree. `call.query(PAGE)` is its value.
* `body=`: the JSON body is read (415, 413, 400); core parses it into the named model (422). With `auth="job"` it
  is read only when the handler asks (`call.body`).
* errors: every project error becomes problem+json with its status from `blueprints._http.STATUS`, the one
  table. `errors=` names the error classes the handler may raise beyond those the declaration implies (401 for
  a token, 400 for a path or query parameter, 400/413/415/422 for a body); the document lists their statuses.

A handler returns a view model of `core.views` (or a list of them), answered as JSON with the first status of
`ok`; an `Answer` to choose the status or add headers; None for no body; or a finished `func.HttpResponse`.
Models are named by string and resolved only when the document is built: importing the app builds none.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

import azure.functions as func

from blueprints._http import (
    STATUS,
    answers_problems,
    header_value,
    json_body,
    json_response,
    link_header,
)
from blueprints._lazy import lazy_module
from core.errors import (
    GatewayError,
    InvalidBody,
    InvalidInput,
    PayloadTooLarge,
    Unauthenticated,
    UnsupportedMediaType,
)
from core.limits import CASE_REF, OUTPUT_FILE
from core.records import JOB_ID

if TYPE_CHECKING:
    from core import auth
    from core.auth import Principal
else:
    auth = lazy_module("core.auth")  # PyJWT loads with it, at the first authenticated request

T = TypeVar("T")
Auth = Literal["user", "job", "none"]
Model = (
    str | tuple[str] | None
)  # a `core.views` model by name, a list of it (a 1-tuple), or no body
PATH_PARAM = re.compile(r"\{(\w+)\}")


# -- query parameters ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Query(Generic[T]):
    """A query parameter: its name, its schema in the document, and the reader that enforces exactly that schema.

    `parse` takes the text the host passed (it drops empty values: `allowEmptyValue`) and returns the value or
    raises `InvalidInput` naming the parameter; `default` is the value when it is absent."""

    name: str
    description: str
    schema: Mapping[str, Any]
    parse: Callable[[str], T]
    default: T

    def read(self, req: func.HttpRequest) -> T:
        """The parameter's value in `req`, or `default`; `InvalidInput` naming it when it is out of bounds."""
        raw: str | None = req.params.get(self.name)
        return self.default if raw is None else self.parse(raw)


def integer(name: str, description: str, *, low: int, high: int, default: T) -> Query[int | T]:
    """A whole number within [low, high]; `default` when absent."""

    def parse(raw: str) -> int:
        text = raw.strip()
        if not (text.isascii() and text.isdigit() and len(text) <= 9):
            raise InvalidInput.field(name, f"must be a whole number from {low} to {high}", "query")
        value = int(text)
        if not low <= value <= high:
            raise InvalidInput.field(name, f"must be from {low} to {high}, not {value}", "query")
        return value

    return Query(
        name, description, {"type": "integer", "minimum": low, "maximum": high}, parse, default
    )


def text(
    name: str, description: str, *, max_length: int, pattern: str | None = None
) -> Query[str | None]:
    """Printable text of at most `max_length` characters; None when absent. `pattern` is what core checks of it
    (documented here, refused there with its own words: a cursor's shape, say)."""

    def parse(raw: str) -> str:
        if len(raw) > max_length or not raw.isprintable():
            raise InvalidInput.field(
                name, f"must be at most {max_length} printable characters", "query"
            )
        return raw

    schema = {
        "type": "string",
        **({"pattern": pattern} if pattern else {}),
        "maxLength": max_length,
    }
    return Query(name, description, schema, parse, None)


def choice(name: str, description: str, values: tuple[str, ...]) -> Query[str | None]:
    """One of `values`, exactly; None when absent."""

    def parse(raw: str) -> str:
        if raw not in values:
            raise InvalidInput.field(name, f"must be one of {list(values)}", "query")
        return raw

    return Query(name, description, {"type": "string", "enum": list(values)}, parse, None)


def flag(
    name: str,
    description: str,
    *,
    true: tuple[str, ...] = ("true",),
    false: tuple[str, ...] = ("false",),
) -> Query[bool]:
    """A yes or no, spelt one of `true` or `false`; False when absent."""

    def parse(raw: str) -> bool:
        if raw not in (*true, *false):
            raise InvalidInput.field(name, "must be true or false", "query")
        return raw in true

    spellings = [s for pair in zip(true, false, strict=True) for s in pair]
    return Query(name, description, {"type": "string", "enum": spellings}, parse, False)


# -- path parameters -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PathParameter:
    """A route's `{name}`: what the code takes there, declared exactly, so that a value the document allows is never
    refused as malformed (400), only perhaps not found (404). `carried_by` names the response fields that hold such
    a value: the document links the operations that answer them to the operations that take it."""

    schema: Mapping[str, Any]
    description: str
    carried_by: tuple[str, ...]


PATH_PARAMETERS: dict[str, PathParameter] = {
    # `core.records.JOB_ID`: <owner key>-<inverted time>-<random>, 37 characters.
    "job_id": PathParameter(
        {"type": "string", "pattern": JOB_ID.pattern, "minLength": 37, "maxLength": 37},
        "the job's id, as `POST /job` answered it",
        ("job_id",),
    ),
    # `id` is a case's own id in CaseHeader and CaseDetail, the only views with an `id`.
    "study_id": PathParameter(
        {"type": "string", "pattern": JOB_ID.pattern, "minLength": 37, "maxLength": 37},
        "the study's id, as `POST /study` answered it",
        ("study_id",),
    ),
    "case_id": PathParameter(
        {"type": "string", "pattern": CASE_REF, "minLength": 1, "maxLength": 63},
        "the case's id (a whole number) or its name",
        ("case_id", "id"),
    ),
    # `core.reports.output_id`: the output's file name (a claim's `file`), with `~` for the folder separator.
    "output_id": PathParameter(
        {
            "type": "string",
            "pattern": OUTPUT_FILE.replace("/", "~"),
            "minLength": 1,
            "maxLength": 300,
        },
        "an `output_id` from the job's outputs",
        ("output_id",),
    ),
}


# -- operations ------------------------------------------------------------------------------------------------

BODY_ERRORS: tuple[type[GatewayError], ...] = (
    InvalidInput,
    PayloadTooLarge,
    UnsupportedMediaType,
    InvalidBody,
)


@dataclass(frozen=True)
class Operation:
    """What one HTTP function is: route, method, who may call it, what it reads, what it answers."""

    name: str
    method: str
    route: str
    summary: str
    auth: Auth
    ok: Mapping[int, Model]
    errors: tuple[type[GatewayError], ...] = ()
    body: str | None = None
    body_required: bool = True
    query: tuple[Query[Any], ...] = ()
    headers: Mapping[int, tuple[str, ...]] = field(
        default_factory=dict
    )  # response headers by status
    documented: bool = True  # False for what is not API (the UI's files)
    csv: bool = False  # its 200 may also be text/csv (a table to open in a spreadsheet)

    @property
    def path_parameters(self) -> list[str]:
        """The `{name}`s of the route (catch-alls and constrained ones, the UI's, are not API parameters)."""
        return PATH_PARAM.findall(self.route)

    @property
    def error_statuses(self) -> list[int]:
        """Every error status it may answer: its own errors', and those its declaration implies."""
        implied = [
            *(BODY_ERRORS if self.body else ()),
            *((Unauthenticated,) if self.auth != "none" else ()),
            *((InvalidInput,) if self.query or self.path_parameters else ()),
        ]
        return sorted({status_of_class(kind) for kind in (*implied, *self.errors)})


def status_of_class(kind: type[GatewayError]) -> int:
    """The status `STATUS` gives errors of class `kind`; `ValueError` when it gives none (an unmapped error is a
    500, which no operation declares)."""
    for k in kind.__mro__:
        if k in STATUS:
            return STATUS[k]
    raise ValueError(f"{kind.__name__} has no status in blueprints._http.STATUS")


class Registry:
    """The operations declared with `operation`, in declaration order; `API` holds the app's."""

    def __init__(self) -> None:
        self._operations: dict[str, Operation] = {}

    def add(self, op: Operation) -> None:
        """Record `op`; a second operation of the same name is a mistake (the host would refuse the app)."""
        if op.name in self._operations:
            raise ValueError(f"operation {op.name!r} is declared twice")
        if op.documented and (unknown := set(op.path_parameters) - set(PATH_PARAMETERS)):
            raise ValueError(
                f"{op.name}: declare path parameter(s) {sorted(unknown)} in PATH_PARAMETERS"
            )
        for kind in op.errors:
            status_of_class(kind)
        self._operations[op.name] = op

    def __iter__(self) -> Iterator[Operation]:
        return iter(self._operations.values())

    def __getitem__(self, name: str) -> Operation:
        return self._operations[name]


API = Registry()


# -- requests and answers --------------------------------------------------------------------------------------

_UNREAD: Any = object()


@dataclass
class Call:
    """One request as its operation declared it: the caller, the path and query values, the body."""

    req: func.HttpRequest
    op: Operation
    principal: Principal | None = None
    values: dict[str, Any] = field(default_factory=dict)
    _body: Any = _UNREAD

    @property
    def caller(self) -> Principal:
        """The authenticated user (operations with `auth="user"`)."""
        assert self.principal is not None, f"{self.op.name} does not declare auth='user'"
        return self.principal

    def path(self, name: str) -> str:
        """The route's `{name}`, as the host matched it."""
        return str(self.req.route_params.get(name) or "")

    def query(self, param: Query[T]) -> T:
        """The checked value of a declared query parameter."""
        assert param.name in self.values, (
            f"{self.op.name} does not declare the query parameter {param.name!r}"
        )
        value: T = self.values[param.name]
        return value

    def header(self, name: str) -> str | None:
        """A request header."""
        value: str | None = self.req.headers.get(name)
        return value

    def next_page(self, path: str, cursor: str | None) -> dict[str, str] | None:
        """The `Link: rel="next"` header of a cursor-paged list at `path`: this request's own query with the
        new cursor (the path is the route's, not the request's); None on the last page."""
        if not cursor:
            return None
        query = {k: v for k, v in self.req.params.items() if k != "cursor"} | {"cursor": cursor}
        return {"Link": link_header(path, {"next": query})}

    @property
    def body(self) -> Any:
        """The JSON body (read on first use: 415, 413, 400); `{}` when an optional body is left out."""
        if self._body is _UNREAD:
            optional_and_absent = not self.op.body_required and not self.req.get_body()
            self._body = {} if optional_and_absent else json_body(self.req)
        return self._body


@dataclass(frozen=True)
class Answer:
    """A handler's answer with a status other than its operation's first, or with headers of its own."""

    body: Any
    status: int | None = None
    headers: Mapping[str, str] | None = None


Handler = Callable[[Call], Any]


def operation(
    bp: func.Blueprint,
    method: str,
    route: str,
    *,
    auth: Auth,
    ok: Mapping[int, Model],
    errors: tuple[type[GatewayError], ...] = (),
    body: str | None = None,
    body_required: bool = True,
    query: tuple[Query[Any], ...] = (),
    headers: Mapping[int, tuple[str, ...]] | None = None,
    documented: bool = True,
    csv: bool = False,
    registry: Registry = API,
) -> Callable[[Handler], Any]:
    """Declare the handler below as the HTTP function `method /route` of `bp` (see the module's docstring)."""

    def register(handler: Handler) -> Any:
        op = Operation(
            handler.__name__,
            method,
            route,
            (handler.__doc__ or handler.__name__).strip(),
            auth,
            ok,
            errors,
            body,
            body_required,
            query,
            headers or {},
            documented,
            csv,
        )
        registry.add(op)
        endpoint = answers_problems(_endpoint(op, handler))
        routed = bp.route(route=route, methods=[method], auth_level=func.AuthLevel.ANONYMOUS)(
            endpoint
        )
        return bp.function_name(op.name)(routed)

    return register


def _endpoint(op: Operation, handler: Handler) -> Callable[[func.HttpRequest], func.HttpResponse]:
    def endpoint(req: func.HttpRequest) -> func.HttpResponse:
        call = Call(req, op)
        if op.auth == "user":
            call.principal = auth.authenticate(req.headers.get("Authorization"))
        call.values = {q.name: q.read(req) for q in op.query}
        if (
            op.body is not None and op.auth != "job"
        ):  # a job token is checked before its body is read
            _ = call.body
        return respond(op, handler(call))

    # The handler's names and docstring, but no `__wrapped__` (`functools.wraps` sets one): the worker binds `req`
    # by the endpoint's own signature, which `inspect.signature` would otherwise take from the handler.
    endpoint.__name__, endpoint.__qualname__ = handler.__name__, handler.__qualname__
    endpoint.__module__, endpoint.__doc__ = handler.__module__, handler.__doc__
    return endpoint


def respond(op: Operation, result: Any) -> func.HttpResponse:
    """The HTTP answer for what a handler returned (see the module's docstring)."""
    if isinstance(result, func.HttpResponse):
        return result
    answer = result if isinstance(result, Answer) else Answer(result)
    status = answer.status or next(iter(op.ok))
    if answer.body is None:
        return func.HttpResponse(
            status_code=status,
            headers={k: header_value(v) for k, v in (answer.headers or {}).items()},
        )
    return json_response(
        plain(answer.body), status, dict(answer.headers) if answer.headers else None
    )


def plain(body: Any) -> Any:
    """`body` as JSON-ready data: view models dumped as the document describes them (aliases, enums as values)."""
    if isinstance(body, list | tuple):
        return [plain(item) for item in body]
    dump = getattr(body, "model_dump", None)
    return dump(mode="json", by_alias=True) if dump is not None else body
