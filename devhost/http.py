"""The HTTP front end: a threading HTTP/1.1 server that turns requests into `func.HttpRequest` like the host does.

What the host hands the Python worker, and what devhost mirrors (the Python worker declares neither
`UseNullableValueDictionaryForHttp` nor `IgnoreEmptyValuedRpcHttpHeaders`):

* `url` is the full URL as requested; `headers` have lower-case names, repeated ones joined with ",".
* `params` holds the query: a repeated key's values joined with "," (ASP.NET's `StringValues.ToString()`),
  and keys with an empty value are left out.
* `route_params` are the route values; an absent optional value is left out.
* The response: status, every header (repeated ones too), `Content-Type` from `mimetype` and `charset` when the
  function did not set one, and the body. An exception escaping the function, or a return value that is not an
  `HttpResponse` or `str`, gives 500 with an empty body. Bodies above the host's 100 MB limit get 413, URLs longer
  than its 4 KB limit get 414; a route miss (unknown path or method) gets 404 with an empty body.
* Any method is routed, as Kestrel takes any RFC 9110 token as a method (`QUERY`, `PROPFIND`, ...): one that no
  function takes is a miss like any other, 404. A method that is not a token is a malformed request, 400.

One thing devhost does that the host does not: it answers only requests addressed to itself. A request whose Host
(or absolute-form target) is not `127.0.0.1:<port>` or `localhost:<port>` gets 421 Misdirected Request, and one
with no Host, or several, 400. A web page on another origin whose name resolves to 127.0.0.1 (DNS rebinding) is
then no longer same-origin with devhost's API and `/dev/sign-in`. In Azure the front end only passes the app's own
names.
"""

from __future__ import annotations

import http
import logging
import re
import sys
import time
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

import azure.functions as func

from devhost.invoke import Invoker
from devhost.routing import NOT_FOUND, RouteMatch, RouteTable

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 100 * 1024 * 1024  # the host's request length limit (104,857,600 bytes)
MAX_URL_CHARS = 4096  # the host's URL length limit
# Hop-by-hop and framing headers are the server's business, not the function's.
_FRAMING = {"content-length", "transfer-encoding", "connection", "keep-alive"}
# RFC 9110's token: what Kestrel accepts as a method.
_METHOD = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# Names devhost answers to besides its bind address: it listens on loopback.
_LOOPBACK_NAMES = ("127.0.0.1", "localhost")


class Readable(Protocol):
    """The part of a socket file the body reader needs."""

    def read(self, size: int = ..., /) -> bytes: ...

    def readline(self, size: int = ..., /) -> bytes: ...


class BodyTooLarge(Exception):
    """The request body is over MAX_BODY_BYTES."""


@dataclass(frozen=True)
class Reply:
    """A response ready to write."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""
    function: str = "-"


def empty(status: int) -> Reply:
    """An empty-bodied reply, as the host sends for 404, 413, 414 and 500."""
    return Reply(status, [])


def allowed_hosts(bind_host: str, port: int) -> frozenset[str]:
    """The Host values devhost answers (lower case): its loopback names, and its bind address, with the port."""
    names = {*_LOOPBACK_NAMES}
    if bind_host not in ("", "0.0.0.0", "::"):
        names.add(bind_host.lower())
    if bind_host in ("::", "::1"):
        names.add("[::1]")
    hosts = {f"{n}:{port}" for n in names}
    return frozenset(hosts | names if port == 80 else hosts)  # port 80 may go unsaid


def misdirected(allowed: Iterable[str]) -> Reply:
    """421 for a request addressed to another host: the body says which hosts are served (never the one sent)."""
    text = "devhost answers requests for " + " or ".join(sorted(allowed)) + " only\n"
    return Reply(421, [("Content-Type", "text/plain; charset=utf-8")], text.encode())


def build_request(
    method: str, url: str, headers: Iterable[tuple[str, str]], match: RouteMatch, body: bytes
) -> func.HttpRequest:
    """The `func.HttpRequest` the worker would build for this request."""
    query = urllib.parse.urlsplit(url).query
    return func.HttpRequest(
        method,
        url,
        headers=join_headers(headers),
        params=query_params(query),
        route_params=dict(match.params),
        body=body,
    )


def join_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Lower-case names; a repeated header's values joined with "," as ASP.NET's StringValues does."""
    joined: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        joined[key] = f"{joined[key]},{value}" if key in joined else value
    return joined


def query_params(query: str) -> dict[str, str]:
    """The query as the host passes it: repeated keys joined with ",", empty values left out."""
    values: dict[str, list[str]] = {}
    for key, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
        values.setdefault(key, []).append(value)
    joined = {k: ",".join(v) for k, v in values.items()}
    return {k: v for k, v in joined.items() if v}


def to_reply(result: Any, function: str) -> Reply:
    """Turn a function's return value into a reply, or 500 when the worker could not convert it."""
    if isinstance(result, str):
        result = func.HttpResponse(result)
    if not isinstance(result, func.HttpResponse):
        log.error(
            "%s returned %s, not an HttpResponse or str: answering 500",
            function,
            type(result).__name__,
        )
        return Reply(500, [], function=function)
    return Reply(result.status_code, response_headers(result), result.get_body(), function)


def response_headers(resp: func.HttpResponse) -> list[tuple[str, str]]:
    """Every header the function set, plus Content-Type from mimetype/charset when it set none (as the worker)."""
    pairs = [(str(k), str(v)) for k, v in resp.headers.items() if str(k).lower() not in _FRAMING]
    if not any(k.lower() == "content-type" for k, _ in pairs):
        mimetype = resp.mimetype
        content_type = (
            f"{mimetype}; charset={resp.charset}" if mimetype.startswith("text/") else mimetype
        )
        pairs.append(("Content-Type", content_type))
    return pairs


def read_body(rfile: Readable, headers: Any, limit: int = MAX_BODY_BYTES) -> bytes:
    """Read a Content-Length or chunked request body, refusing more than `limit` bytes."""
    if "chunked" in str(headers.get("Transfer-Encoding", "")).lower():
        return _read_chunked(rfile, limit)
    length = int(headers.get("Content-Length") or 0)
    if length > limit:
        raise BodyTooLarge
    return rfile.read(length) if length > 0 else b""


def _read_chunked(rfile: Readable, limit: int) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        size = int(rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            _skip_trailers(rfile)
            return b"".join(chunks)
        total += size
        if total > limit:
            raise BodyTooLarge
        chunks.append(rfile.read(size))
        rfile.readline()  # the CRLF after each chunk


def _skip_trailers(rfile: Readable) -> None:
    while rfile.readline() not in (b"\r\n", b"\n", b""):
        pass


class FunctionsHTTPServer(ThreadingHTTPServer):
    """Serves one RouteTable; user functions run through the shared Invoker."""

    daemon_threads = True
    # socketserver's default backlog of 5 resets the sixth of many simultaneous connections; Kestrel, in front of
    # the real host, queues hundreds.
    request_queue_size = 512

    def __init__(self, address: tuple[str, int], table: RouteTable, invoker: Invoker) -> None:
        super().__init__(address, _Handler)
        self.host = address[0]
        self.table = table
        self.invoker = invoker

    @property
    def port(self) -> int:
        """The bound port (useful after binding port 0)."""
        return int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-response is routine; anything else is logged with its traceback."""
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            log.debug("client %s went away", client_address)
        else:
            log.exception("error while serving %s", client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "devhost"
    timeout = 120  # idle keep-alive connections give their thread back after this long
    server: FunctionsHTTPServer

    def _dispatch(self) -> None:
        started = time.monotonic()
        reply = self._handle()
        self._write(reply)
        log.info(
            "%s %s -> %d (%s, %.1f ms)",
            self.command,
            self.path,
            reply.status,
            reply.function,
            (time.monotonic() - started) * 1000,
        )

    def __getattr__(self, name: str) -> Any:
        # http.server looks up do_<METHOD> and answers 501 when there is none; every method goes through routing
        # instead, so one that no function takes is a 404, as in the host.
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

    def _handle(self) -> Reply:
        refused = self._refusal()
        if refused is not None:
            self.close_connection = True  # the body, if any, is not read
            return refused
        try:
            body = read_body(self.rfile, self.headers)
        except BodyTooLarge:
            self.close_connection = True
            return empty(413)
        raw_path = urllib.parse.urlsplit(self.path).path
        match = self.server.table.match(self.command, raw_path)
        if match is NOT_FOUND:
            return empty(404)
        return self._invoke(match, body)

    def _invoke(self, match: RouteMatch, body: bytes) -> Reply:
        fn = match.function
        req = build_request(self.command, self._full_url(), self.headers.items(), match, body)
        try:
            result = self.server.invoker.call(fn.user_function, {str(fn.trigger["name"]): req})
        except Exception:
            log.exception("%s raised; answering 500 with an empty body, as the host does", fn.name)
            return Reply(500, [], function=fn.name)
        return to_reply(result, fn.name)

    def _refusal(self) -> Reply | None:
        """The answer to a request refused on its request line and Host alone, or None."""
        if not _METHOD.fullmatch(self.command):
            return empty(400)  # Kestrel: "Invalid request line"
        wrong_host = self._check_host()
        if wrong_host is not None:
            return wrong_host
        return empty(414) if len(self.path) > MAX_URL_CHARS else None

    def _check_host(self) -> Reply | None:
        """None when the request is addressed to this server; 400 without one Host, 421 for another host."""
        sent = self.headers.get_all("Host") or []
        if len(sent) != 1:
            return empty(
                400
            )  # as Kestrel answers an HTTP/1.1 request with no Host, or with several
        allowed = allowed_hosts(self.server.host, self.server.port)
        named = [sent[0].strip().lower()]
        target = urllib.parse.urlsplit(self.path)
        if target.scheme:  # absolute-form ("http://host:port/path"): the target names the host too
            named.append(target.netloc.lower())
        if any(host not in allowed for host in named):
            return misdirected(allowed)
        return None

    def _full_url(self) -> str:
        if not self.path.startswith("/"):
            return self.path  # absolute-form request target
        host = self.headers.get("Host") or f"{self.server.host}:{self.server.port}"
        return f"http://{host}{self.path}"

    def _write(self, reply: Reply) -> None:
        self.send_response(reply.status, _reason(reply.status))
        for name, value in reply.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and reply.body:
            self.wfile.write(reply.body)

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""
