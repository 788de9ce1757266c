"""Index a FunctionApp once and route HTTP requests to its functions the way the Functions host does.

Fidelity notes, each taken from the host's source or its issue tracker:

* **Order.** The host does not rank routes by ASP.NET precedence. It sorts functions by name
  (`FunctionMetadataManager.LoadFunctionMetadata`: `OrderBy(f => f.Name, StringComparer.OrdinalIgnoreCase)`),
  registers one route per function in that order, and the first route whose template *and* method match wins.
  So `items/{id}` in `get_item` shadows `items/recent` in `get_recent` (Azure/azure-functions-host#9876 and #3153,
  both open; the fix, Azure/azure-webjobs-sdk-extensions#842, is unmerged). `RouteTable(order="aspnet")` ranks by
  ASP.NET Core's inbound precedence instead; with the default order, a request whose winner differs from the
  ASP.NET winner logs a warning once, because that code works here and in Azure only by its function names.
* **Misses.** An unknown path and a known path with a method the function does not accept both get **404 with an
  empty body**, never 405: the method is just another route constraint (Azure/azure-functions-host#10098,
  "Function app should return 405 for request on known route but unsupported HTTP method", open since 2024).
  HEAD is not implied by GET.
* **Templates.** Literal segments match case-insensitively; `{name}`, `{name?}`, `{name=default}`,
  `{name:constraint[:constraint...]}` and `{*rest}` / `{**rest}` are supported; a value that fails its constraint
  means the route does not match. Route values are decoded, except `%2F`, which stays encoded as in ASP.NET Core.
"""

from __future__ import annotations

import enum
import inspect
import itertools
import json
import logging
import re
import threading
import urllib.parse
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

log = logging.getLogger(__name__)

Validator = Callable[[str], bool]


class RouteTemplateError(ValueError):
    """A route template the host would refuse at start-up."""


# ---------------------------------------------------------------------------------------------------------------
# Indexing


@dataclass(frozen=True)
class IndexedFunction:
    """One function of the app: its name, its bindings as the host reads them (function.json) and its code."""

    name: str
    bindings: tuple[Mapping[str, Any], ...]
    user_function: Callable[..., Any]

    @property
    def trigger(self) -> Mapping[str, Any]:
        """The trigger binding (the host requires exactly one)."""
        return next(b for b in self.bindings if str(b.get("type", "")).endswith("Trigger"))

    @property
    def trigger_type(self) -> str:
        """ "httpTrigger", "queueTrigger", "timerTrigger", ..."""
        return str(self.trigger["type"])

    @property
    def is_async(self) -> bool:
        """True for `async def` functions, which run on the shared event loop."""
        return inspect.iscoroutinefunction(self.user_function)


_INDEX: weakref.WeakKeyDictionary[Any, tuple[IndexedFunction, ...]] = weakref.WeakKeyDictionary()
_INDEX_LOCK = threading.Lock()


def index_functions(app: Any) -> tuple[IndexedFunction, ...]:
    """Index `app` (a `func.FunctionApp`) once per process and return its functions.

    `FunctionApp.get_functions()` raises on a second call (it remembers names in `functions_bindings`), so the
    result is cached per app object. If something else indexed the app first, its name memo is set aside for our
    call and restored afterwards, so both callers keep working.
    """
    with _INDEX_LOCK:
        if app not in _INDEX:
            _INDEX[app] = tuple(_to_indexed(f) for f in _get_functions(app))
        return _INDEX[app]


def _get_functions(app: Any) -> list[Any]:
    earlier = getattr(app, "functions_bindings", None)
    if not earlier:
        return list(app.get_functions())
    app.functions_bindings = None
    try:
        return list(app.get_functions())
    finally:
        app.functions_bindings = earlier


def _to_indexed(function: Any) -> IndexedFunction:
    # function.json is exactly what the worker reports to the host, enums already turned into strings.
    bindings = json.loads(function.get_function_json())["bindings"]
    return IndexedFunction(
        function.get_function_name(), tuple(bindings), function.get_user_function()
    )


# ---------------------------------------------------------------------------------------------------------------
# Templates


@dataclass(frozen=True)
class Param:
    """A `{...}` route parameter."""

    name: str
    optional: bool = False
    catch_all: bool = False
    default: str | None = None
    constraints: tuple[tuple[str, Validator], ...] = ()

    def accepts(self, value: str) -> bool:
        """True when every constraint accepts `value`."""
        return all(check(value) for _, check in self.constraints)


Part = str | Param


@dataclass(frozen=True)
class RouteTemplate:
    """A parsed route template (route prefix included), compiled to one regular expression."""

    text: str
    segments: tuple[tuple[Part, ...], ...]
    params: tuple[Param, ...]
    regex: re.Pattern[str] = field(repr=False)

    def match(self, path: str) -> dict[str, str] | None:
        """Route values for a decoded path ("/a/b"), or None when the template or a constraint does not match."""
        m = self.regex.match(path)
        if m is None:
            return None
        values: dict[str, str] = {}
        for i, param in enumerate(self.params):
            value = m.group(f"p{i}")
            if not value:
                if param.default is not None:
                    values[param.name] = param.default
                continue  # an absent optional value is left out, as the host leaves out null route values
            if not param.accepts(value):
                return None
            values[param.name] = value
        return values

    @property
    def precedence(self) -> tuple[int, ...]:
        """ASP.NET Core's inbound precedence digits, one per segment; smaller sorts first."""
        return tuple(_precedence_digit(seg) for seg in self.segments)


def parse_template(text: str) -> RouteTemplate:
    """Parse a route template such as "job/{job_id:guid}/output/{*path}"."""
    segments = (
        tuple(_parse_segment(s, text) for s in text.strip("/").split("/"))
        if text.strip("/")
        else ()
    )
    params = tuple(p for seg in segments for p in seg if isinstance(p, Param))
    names = [p.name.lower() for p in params]
    if len(names) != len(set(names)):
        raise RouteTemplateError(f"route {text!r} repeats a parameter name")
    _check_catch_all_last(segments, text)
    return RouteTemplate(text, segments, params, _compile(segments))


def _check_catch_all_last(segments: Sequence[tuple[Part, ...]], text: str) -> None:
    for seg in segments[:-1]:
        if any(isinstance(p, Param) and p.catch_all for p in seg):
            raise RouteTemplateError(
                f"route {text!r}: a catch-all parameter must be the last segment"
            )


_TOKEN = re.compile(r"\{([^{}]*)\}")


def _parse_segment(segment: str, text: str) -> tuple[Part, ...]:
    if not segment:
        raise RouteTemplateError(f"route {text!r} has an empty segment")
    parts: list[Part] = []
    pos = 0
    for m in _TOKEN.finditer(segment):
        if m.start() > pos:
            parts.append(segment[pos : m.start()])
        parts.append(_parse_param(m.group(1), text))
        pos = m.end()
    if pos < len(segment):
        parts.append(segment[pos:])
    if any("{" in p or "}" in p for p in parts if isinstance(p, str)):
        raise RouteTemplateError(f"route {text!r}: unbalanced braces in {segment!r}")
    _check_complex_segment(parts, text)
    return tuple(parts)


def _check_complex_segment(parts: Sequence[Part], text: str) -> None:
    params = [p for p in parts if isinstance(p, Param)]
    if len(parts) > 1 and any(p.optional or p.catch_all or p.default is not None for p in params):
        raise RouteTemplateError(
            f"route {text!r}: optional and catch-all parameters need a segment of their own"
        )
    if any(isinstance(a, Param) and isinstance(b, Param) for a, b in itertools.pairwise(parts)):
        raise RouteTemplateError(f"route {text!r}: two parameters need a literal between them")


def _parse_param(inner: str, text: str) -> Param:
    stripped = inner.lstrip("*")
    catch_all = stripped != inner
    optional = stripped.endswith("?")
    stripped = stripped.removesuffix("?")
    default = None
    if "=" in stripped:
        stripped, default = stripped.split("=", 1)
    name, *constraint_texts = _split_constraints(stripped)
    if not re.fullmatch(r"\w+", name):
        raise RouteTemplateError(f"route {text!r}: bad parameter name {name!r}")
    constraints = tuple((c, constraint(c, text)) for c in constraint_texts)
    return Param(name, optional or catch_all, catch_all, default, constraints)


def _split_constraints(text: str) -> list[str]:
    # Split on ':' outside parentheses, so regex(a:b) and range(1,2) survive.
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == ":" and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _compile(segments: Sequence[tuple[Part, ...]]) -> re.Pattern[str]:
    groups = iter(range(len(segments) * 8))  # numbers the groups p0, p1, ... in parameter order
    body = "".join(_segment_regex(seg, groups) for seg in segments)
    # ASP.NET Core routing ignores one trailing slash.
    return re.compile("^" + body + "/?$", re.IGNORECASE | re.DOTALL)


def _segment_regex(seg: tuple[Part, ...], groups: Iterator[int]) -> str:
    if len(seg) == 1 and isinstance(seg[0], Param):
        param, group = seg[0], f"p{next(groups)}"
        if param.catch_all:
            return f"(?:/(?P<{group}>.*))?"
        if param.optional or param.default is not None:
            return f"(?:/(?P<{group}>[^/]+))?"
        return f"/(?P<{group}>[^/]+)"
    # Greedy parameters give the right-most parameter the shortest value, as ASP.NET's right-to-left match does.
    return "/" + "".join(
        re.escape(p) if isinstance(p, str) else f"(?P<p{next(groups)}>[^/]+)" for p in seg
    )


def _precedence_digit(seg: tuple[Part, ...]) -> int:
    # RoutePrecedence.ComputeInboundPrecedenceDigit: literal 1, multi-part 2, constrained parameter 2,
    # parameter 3, constrained catch-all 4, catch-all 5.
    if len(seg) > 1:
        return 2
    part = seg[0]
    if isinstance(part, str):
        return 1
    digit = 5 if part.catch_all else 3
    return digit - 1 if part.constraints else digit


# ---------------------------------------------------------------------------------------------------------------
# Constraints (ASP.NET Core's inline route constraints)

_INT = re.compile(r"^[+-]?\d+$")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_HEX = "[0-9a-fA-F]"
_GUID_D = f"{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}"
_GUID = re.compile(rf"^(?:{_HEX}{{32}}|{_GUID_D}|\{{{_GUID_D}\}}|\({_GUID_D}\))$")


def _int_in(bits: int) -> Validator:
    limit = 2 ** (bits - 1)
    return lambda v: bool(_INT.match(v)) and -limit <= int(v) < limit


def _is_datetime(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


_SIMPLE: dict[str, Validator] = {
    "int": _int_in(32),
    "long": _int_in(64),
    "double": lambda v: bool(_NUMBER.match(v)),
    "float": lambda v: bool(_NUMBER.match(v)),
    "decimal": lambda v: bool(_NUMBER.match(v)),
    "bool": lambda v: v.lower() in ("true", "false"),
    "guid": lambda v: bool(_GUID.match(v)),
    "alpha": lambda v: bool(re.fullmatch(r"[A-Za-z]+", v)),
    "datetime": _is_datetime,
    "required": lambda v: v != "",
}


def _numeric_args(name: str, n: list[int]) -> Validator | None:
    long_ok = _SIMPLE["long"]
    table: dict[str, Callable[[], Validator]] = {
        "min": lambda: lambda v: long_ok(v) and int(v) >= n[0],
        "max": lambda: lambda v: long_ok(v) and int(v) <= n[0],
        "range": lambda: lambda v: long_ok(v) and n[0] <= int(v) <= n[1],
        "minlength": lambda: lambda v: len(v) >= n[0],
        "maxlength": lambda: lambda v: len(v) <= n[0],
        "length": lambda: (
            (lambda v: len(v) == n[0]) if len(n) == 1 else (lambda v: n[0] <= len(v) <= n[1])
        ),
    }
    make = table.get(name)
    return make() if make else None


def _with_args(name: str, arg_text: str) -> Validator | None:
    if name == "regex":
        # Like ASP.NET's RegexRouteConstraint: not anchored, case-insensitive.
        pattern = re.compile(arg_text, re.IGNORECASE)
        return lambda v: pattern.search(v) is not None
    if name not in ("min", "max", "range", "minlength", "maxlength", "length"):
        return None
    return _numeric_args(name, [int(a) for a in arg_text.split(",")])


def constraint(text: str, route: str = "") -> Validator:
    """The validator for one inline constraint such as "int", "min(1)" or "regex(^a)"."""
    m = re.fullmatch(r"(\w+)(?:\((.*)\))?", text, re.DOTALL)
    if m is None:
        raise RouteTemplateError(f"route {route!r}: bad constraint {text!r}")
    name, arg_text = m.group(1).lower(), m.group(2)
    try:
        check = _SIMPLE.get(name) if arg_text is None else _with_args(name, arg_text)
    except (ValueError, re.error) as exc:
        raise RouteTemplateError(f"route {route!r}: bad arguments in constraint {text!r}") from exc
    if check is None:
        raise RouteTemplateError(f"route {route!r}: the constraint {text!r} could not be resolved")
    return check


# ---------------------------------------------------------------------------------------------------------------
# The route table


class Miss(enum.Enum):
    """The only way a lookup fails: the host answers 404 with an empty body."""

    NOT_FOUND = "not found"


NOT_FOUND = Miss.NOT_FOUND
RouteOrder = Literal["host", "aspnet"]


@dataclass(frozen=True)
class Route:
    """One HTTP function's route: its template (prefix included) and accepted methods (None: any)."""

    function: IndexedFunction
    template: RouteTemplate
    methods: frozenset[str] | None

    def accepts(self, method: str) -> bool:
        """True when the function's trigger allows `method`."""
        return self.methods is None or method.upper() in self.methods


@dataclass(frozen=True)
class RouteMatch:
    """A routed request: the function to call and its route values."""

    route: Route
    params: dict[str, str]

    @property
    def function(self) -> IndexedFunction:
        """The matched function."""
        return self.route.function


def route_for(function: IndexedFunction, prefix: str) -> Route:
    """Build the route of one HTTP-triggered function from its trigger binding."""
    trigger = function.trigger
    route = trigger.get("route")
    route = function.name if route is None else str(route)
    text = "/".join(p for p in (prefix.strip("/"), route.strip("/")) if p)
    methods = trigger.get("methods")
    allowed = None if not methods else frozenset(str(m).upper() for m in methods)
    return Route(function, parse_template(text), allowed)


class RouteTable:
    """The app's HTTP routes in the order the host tries them."""

    def __init__(
        self, functions: Iterable[IndexedFunction], prefix: str = "api", order: RouteOrder = "host"
    ):
        routes = [route_for(f, prefix) for f in functions if f.trigger_type == "httpTrigger"]
        self.prefix = prefix.strip("/")
        self.order = order
        self.routes: tuple[Route, ...] = tuple(
            sorted(routes, key=_host_key if order == "host" else _aspnet_key)
        )
        self._by_precedence = tuple(sorted(routes, key=_aspnet_key))
        self._warned: set[tuple[str, str]] = set()
        _warn_duplicates(self.routes)

    def match(self, method: str, raw_path: str) -> RouteMatch | Miss:
        """Route a request; `raw_path` is the URL path as sent (percent-encoded, no query)."""
        path = decode_path(raw_path)
        found = _first_match(self.routes, method, path)
        if self.order == "host" and found is not NOT_FOUND:
            self._warn_if_shadowing(found, method, path)
        return found

    def _warn_if_shadowing(self, found: RouteMatch, method: str, path: str) -> None:
        best = _first_match(self._by_precedence, method, path)
        if best is NOT_FOUND or best.route is found.route:
            return
        pair = (found.function.name, best.function.name)
        if pair not in self._warned:
            self._warned.add(pair)
            log.warning(
                "%s %s went to %s (%s), not the more specific %s (%s): the Functions host tries routes in "
                "function-name order, not by ASP.NET precedence (Azure/azure-functions-host#9876)",
                method,
                path,
                found.function.name,
                found.route.template.text,
                best.function.name,
                best.route.template.text,
            )


def _first_match(routes: Iterable[Route], method: str, path: str) -> RouteMatch | Miss:
    for route in routes:
        if not route.accepts(method):
            continue  # a method constraint failing is just a non-match: the next route is tried, then 404
        params = route.template.match(path)
        if params is not None:
            return RouteMatch(route, params)
    return NOT_FOUND


def _host_key(route: Route) -> tuple[str, str]:
    # .NET's OrdinalIgnoreCase compares upper-cased code points ('_' sorts after letters).
    return (route.function.name.upper(), route.function.name)


def _aspnet_key(route: Route) -> tuple[tuple[int, ...], str]:
    return (route.template.precedence, route.template.text.lower())


def _warn_duplicates(routes: Sequence[Route]) -> None:
    for i, later in enumerate(routes):
        for earlier in routes[:i]:
            same = earlier.template.text.lower() == later.template.text.lower()
            if same and _methods_overlap(earlier.methods, later.methods):
                log.warning(
                    "%s and %s share the route %r and a method; %s never sees those requests",
                    earlier.function.name,
                    later.function.name,
                    later.template.text,
                    later.function.name,
                )


def _methods_overlap(a: frozenset[str] | None, b: frozenset[str] | None) -> bool:
    return a is None or b is None or bool(a & b)


def decode_path(raw_path: str) -> str:
    """Percent-decode a URL path as Kestrel does: everything except %2F, so an encoded slash stays in its segment."""
    protected = re.sub(r"%2[fF]", "%252F", raw_path)
    path = urllib.parse.unquote(protected)
    return path if path.startswith("/") else "/" + path
