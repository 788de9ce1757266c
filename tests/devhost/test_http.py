"""Real HTTP against DevHost serving the sample app."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from devhost.host import DevHost
from tests.devhost import sample_app


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevHost]:
    root = tmp_path_factory.mktemp("http-root")
    with DevHost(
        sample_app.app,
        root=root,
        port=0,
        queues=False,
        timers=False,
        host_json={"version": "2.0", "extensions": {"http": {"routePrefix": "api"}}},
    ) as running:
        yield running


class Reply:
    def __init__(self, status: int, headers: Message, body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def json(self) -> Any:
        return json.loads(self.body)


def call(
    host: DevHost,
    path: str,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    req = urllib.request.Request(host.url + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return Reply(resp.status, resp.headers, resp.read())
    except urllib.error.HTTPError as err:
        with err:
            return Reply(err.code, err.headers, err.read())


def raw(host: DevHost, method: str, path: str, headers: dict[str, str]) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", host.port, timeout=10)
    conn.request(method, path, headers=headers)
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp


def test_the_host_binds_a_free_port_and_lists_routes(host: DevHost) -> None:
    assert host.port > 0
    assert host.url == f"http://127.0.0.1:{host.port}"
    assert host.api_url == host.url + "/api"
    assert any(
        line.startswith("hello: [GET] ") and line.endswith("/api/hello/{name}")
        for line in host.describe()
    )
    assert "record_queue: queueTrigger" in host.describe()


def test_route_params_and_query_pass_through(host: DevHost) -> None:
    got = call(host, "/api/hello/ada%20l?x=1&x=2&empty=&y=z").json()
    assert got["function"] == "hello"
    assert got["route"] == {"name": "ada l"}
    # As the host: repeated keys joined with ",", empty values left out.
    assert got["params"] == {"x": "1,2", "y": "z"}
    assert got["url"] == f"http://127.0.0.1:{host.port}/api/hello/ada%20l?x=1&x=2&empty=&y=z"
    assert got["method"] == "GET"


def test_constraint_optional_and_catch_all(host: DevHost) -> None:
    assert call(host, "/api/items/42").json()["route"] == {"id": "42"}
    assert call(host, "/api/items/abc").status == 404
    assert call(host, "/api/opt").json()["route"] == {}
    assert call(host, "/api/opt/here").json()["route"] == {"opt": "here"}
    assert call(host, "/api/files/a/b/c.txt").json()["route"] == {"rest": "a/b/c.txt"}


def test_overlapping_routes_follow_function_name_order(host: DevHost) -> None:
    assert call(host, "/api/things/new").json()["function"] == "a_thing"


def test_body_round_trip_status_and_multiple_headers(host: DevHost) -> None:
    payload = bytes(range(256)) * 64
    reply = call(
        host,
        "/api/echo",
        "POST",
        payload,
        {"X-Test": "yes", "Content-Type": "application/octet-stream"},
    )
    assert reply.status == 201
    assert reply.body == payload
    assert reply.headers["X-Seen-Header"] == "yes"
    assert reply.headers["X-Method"] == "POST"
    assert reply.headers.get_all("Set-Cookie") == ["a=1", "b=2"]
    assert reply.headers["Content-Type"] == "application/octet-stream"


def test_chunked_request_body(host: DevHost) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", host.port, timeout=10)
    conn.request("POST", "/api/echo", body=iter([b"abc", b"defg"]), encode_chunked=True)
    resp = conn.getresponse()
    assert (resp.status, resp.read()) == (201, b"abcdefg")
    conn.close()


def test_request_headers_are_lower_cased_and_joined(host: DevHost) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", host.port, timeout=10)
    conn.putrequest("GET", "/api/headers")
    conn.putheader("X-Many", "one")
    conn.putheader("X-Many", "two")
    conn.endheaders()
    got = json.loads(conn.getresponse().read())
    conn.close()
    assert got["x-many"] == "one,two"


def test_content_type_from_mimetype_and_str_return(host: DevHost) -> None:
    assert call(host, "/api/hello/x").headers["Content-Type"] == "application/json"
    text = call(host, "/api/text")
    assert (text.status, text.body) == (200, b"plain text")
    assert text.headers["Content-Type"] == "text/plain; charset=utf-8"


def test_async_handlers_share_one_event_loop(host: DevHost) -> None:
    first, second = call(host, "/api/async/a").json(), call(host, "/api/async/b").json()
    assert (first["name"], second["name"]) == ("a", "b")
    assert first["loop"] == second["loop"]
    assert first["thread"] == second["thread"] == "devhost-asyncio"


def test_an_exception_is_500_with_an_empty_body(host: DevHost) -> None:
    reply = call(host, "/api/boom")
    assert (reply.status, reply.body) == (500, b"")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/nowhere"),
        ("GET", "/hello/x"),  # without the route prefix
        ("DELETE", "/api/hello/x"),  # known path, method not accepted: 404, not 405
        ("GET", "/api/echo"),
        ("HEAD", "/api/hello/x"),  # HEAD is not implied by GET
    ],
)
def test_misses_are_404_with_an_empty_body(host: DevHost, method: str, path: str) -> None:
    reply = call(host, path, method)
    assert (reply.status, reply.body) == (404, b"")


@pytest.mark.parametrize(
    "method", ["QUERY", "PROPFIND", "TRACE", "CONNECT", "BREW", "get-ish", "X!#$%&'*+.^_`|~"]
)
def test_any_token_is_a_method_and_one_no_function_takes_is_404(host: DevHost, method: str) -> None:
    """Kestrel takes any RFC 9110 token as a method; http.server alone would answer 501 with an HTML page."""
    for path in ("/api/hello/x", "/api/nowhere"):
        resp = raw(host, method, path, {})
        assert (resp.status, resp.getheader("Content-Length")) == (404, "0"), (method, path)


def test_a_function_without_methods_takes_any_method(host: DevHost) -> None:
    for method in ("GET", "QUERY", "PROPFIND"):
        reply = call(host, "/api/any", method)
        assert (reply.status, reply.json()["method"]) == (200, method)


def send(host: DevHost, request: bytes) -> tuple[int, bytes]:
    """Send raw request bytes; the status code and body of the answer."""
    import socket

    with socket.create_connection(("127.0.0.1", host.port), timeout=10) as s:
        s.sendall(request)
        resp = http.client.HTTPResponse(s)
        resp.begin()
        return resp.status, resp.read()


@pytest.mark.parametrize("method", ["G@T", "GET(1)", "GE\x01T", "\xc3\xa9"])
def test_a_method_that_is_not_a_token_is_400(host: DevHost, method: str) -> None:
    status, _ = send(
        host,
        f"{method} /api/hello/x HTTP/1.1\r\nHost: 127.0.0.1:{host.port}\r\n\r\n".encode("latin-1"),
    )
    assert status == 400


def test_oversized_body_is_413(host: DevHost) -> None:
    # Declared, never sent: the host refuses on the header alone.
    resp = raw(host, "POST", "/api/echo", {"Content-Length": str(100 * 1024 * 1024 + 1)})
    assert resp.status == 413


def test_overlong_url_is_414(host: DevHost) -> None:
    assert call(host, "/api/hello/" + "x" * 4100).status == 414


def test_keep_alive_serves_several_requests_on_one_connection(host: DevHost) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", host.port, timeout=10)
    for name in ("a", "b", "c"):
        conn.request("GET", f"/api/hello/{name}")
        resp = conn.getresponse()
        assert json.loads(resp.read())["route"] == {"name": name}
    conn.request("GET", "/api/nowhere")
    assert conn.getresponse().status == 404
    conn.close()


def test_default_route_prefix_is_api(tmp_path: Path) -> None:
    with DevHost(sample_app.app, root=tmp_path, port=0, queues=False, timers=False) as host:
        assert host.config.route_prefix == "api"
        assert call(host, "/api/text").body == b"plain text"


def test_many_simultaneous_connections_are_all_answered(host: DevHost) -> None:
    """A burst of connections opened at once (as 50 simulators reporting together) is queued, not reset."""
    import socket
    import threading

    count, start, answers = 128, threading.Barrier(128), []

    def one(i: int) -> None:
        start.wait()
        with socket.create_connection(
            ("127.0.0.1", int(host.url.rsplit(":", 1)[1].strip("/"))), timeout=30
        ) as s:
            s.sendall(
                f"GET /api/hello/n{i} HTTP/1.1\r\nHost: 127.0.0.1:{host.port}\r\nConnection: close\r\n\r\n".encode()
            )
            answers.append(s.makefile("rb").readline())

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [b"HTTP/1.1 200 OK\r\n"] * count


# -- DNS rebinding: devhost answers only requests addressed to itself -------------------------------------------


def test_its_own_names_are_served(host: DevHost) -> None:
    for name in (f"127.0.0.1:{host.port}", f"localhost:{host.port}", f"LocalHost:{host.port}"):
        assert raw(host, "GET", "/api/hello/x", {"Host": name}).status == 200, name


@pytest.mark.parametrize(
    "name",
    [
        "attacker.example",
        "attacker.example:{port}",
        "127.0.0.1",
        "localhost",
        "127.0.0.1:1",
        "localhost.:{port}",
        "127.0.0.1:{port}.attacker.example",
        "127.0.0.1:{port}@attacker.example",
        "[::1]:{port}",
        "0.0.0.0:{port}",
        "127.0.0.2:{port}",
        "",
    ],
)
def test_another_host_is_421_before_any_function_runs(host: DevHost, name: str) -> None:
    got = name.format(port=host.port)
    status, body = send(host, f"GET /api/hello/x HTTP/1.1\r\nHost: {got}\r\n\r\n".encode())
    assert status == 421
    assert (
        body.decode()
        == f"devhost answers requests for 127.0.0.1:{host.port} or localhost:{host.port} only\n"
    )


def test_the_misdirected_answer_never_echoes_the_host_sent(host: DevHost) -> None:
    status, body = send(
        host, b"POST /api/echo HTTP/1.1\r\nHost: evil.example:666\r\nContent-Length: 3\r\n\r\nabc"
    )
    assert status == 421
    assert b"evil" not in body


def test_an_absolute_form_target_for_another_host_is_421(host: DevHost) -> None:
    ours = f"127.0.0.1:{host.port}"
    status, _ = send(
        host, f"GET http://attacker.example/api/hello/x HTTP/1.1\r\nHost: {ours}\r\n\r\n".encode()
    )
    assert status == 421
    status, _ = send(
        host, f"GET http://{ours}/api/hello/x HTTP/1.1\r\nHost: {ours}\r\n\r\n".encode()
    )
    assert status == 200


@pytest.mark.parametrize("headers", ["", "Host: 127.0.0.1:{port}\r\nHost: 127.0.0.1:{port}\r\n"])
def test_no_host_or_two_is_400(host: DevHost, headers: str) -> None:
    request = f"GET /api/hello/x HTTP/1.1\r\n{headers.format(port=host.port)}\r\n"
    assert send(host, request.encode())[0] == 400


def test_a_rebinding_page_cannot_sign_in(tmp_path: Path) -> None:
    """The review's attack: POST /dev/sign-in with the attacker's name in Host, as a rebound browser sends it."""
    from devhost.tokens import make_key_pair

    make_key_pair(tmp_path / "signing.pem", tmp_path / "jwks.json")
    with DevHost(
        sample_app.app,
        root=tmp_path,
        port=0,
        queues=False,
        timers=False,
        load_settings=False,
        host_json={"version": "2.0", "extensions": {"http": {"routePrefix": ""}}},
        settings={"DEVHOST_SIGNING_KEY": str(tmp_path / "signing.pem")},
    ) as running:
        sign_in = b'{"user": "mallory", "admin": true}'
        for name, status in (
            (f"attacker.example:{running.port}", 421),
            (f"localhost:{running.port}", 200),
        ):
            request = (
                f"POST /dev/sign-in HTTP/1.1\r\nHost: {name}\r\nContent-Type: application/json\r\n"
                f"Origin: http://{name}\r\nContent-Length: {len(sign_in)}\r\n\r\n"
            ).encode() + sign_in
            got, body = send(running, request)
            assert got == status, (name, body)
            assert (b"token" in body) == (status == 200)
