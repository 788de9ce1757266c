"""The shared HTTP helpers: status mapping, problem+json, the API's headers, paging links."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import azure.functions as func
import pytest

from blueprints._http import (
    answers_problems,
    header_value,
    json_response,
    page_links,
    problem,
    status_of,
)
from core.errors import (
    CatalogError,
    Conflict,
    InvalidInput,
    InvalidValues,
    NotFound,
    Unauthenticated,
    Unavailable,
)
from core.services import get_settings, reset_services


@pytest.fixture
def public_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("SIMGATE_PUBLIC_URL", "https://gw.example/")
    reset_services()
    yield
    monkeypatch.delenv("SIMGATE_PUBLIC_URL")
    reset_services()


def request(url: str = "https://gw.example/case?page=1") -> func.HttpRequest:
    return func.HttpRequest("GET", url, body=b"")


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InvalidInput("x"), 400),
        (NotFound("x"), 404),
        (Conflict("x"), 409),
        (InvalidValues("x"), 422),
        (Unavailable("x"), 503),
        (CatalogError("x"), 500),
    ],
)
def test_each_error_has_one_status(error: Exception, status: int) -> None:
    assert status_of(error) == status  # type: ignore[arg-type]


def test_an_unexpected_exception_is_a_500_problem_without_internals() -> None:
    @answers_problems
    def explode(req: func.HttpRequest) -> func.HttpResponse:
        raise RuntimeError("/secret/path/to/key")

    resp = explode(request())
    assert resp.status_code == 500
    assert resp.mimetype == "application/problem+json"
    assert b"/secret" not in resp.get_body()


def test_a_500_names_the_correlation_id_its_logged_traceback_has(
    caplog: pytest.LogCaptureFixture,
) -> None:
    @answers_problems
    def explode(req: func.HttpRequest) -> func.HttpResponse:
        raise KeyError("internal-name")

    resp = explode(request())
    detail = json.loads(resp.get_body())["detail"]
    correlation = re.fullmatch(
        r"the gateway failed to answer: internal error \(correlation id ([0-9a-f]{12})\), "
        r"which is logged",
        detail,
    )
    assert correlation, detail
    logged = [r for r in caplog.records if r.exc_info and correlation.group(1) in r.getMessage()]
    assert len(logged) == 1
    assert "internal-name" not in detail


def test_a_server_side_project_error_hides_its_detail() -> None:
    @answers_problems
    def broken(req: func.HttpRequest) -> func.HttpResponse:
        raise CatalogError("/srv/cases/x/case.yaml: fields[0]: bad")

    resp = broken(request())
    assert resp.status_code == 500
    assert b"case.yaml" not in resp.get_body()


def test_a_client_error_keeps_its_detail_and_fields() -> None:
    @answers_problems
    def bad(req: func.HttpRequest) -> func.HttpResponse:
        raise InvalidInput.field("page", "must be positive", "query")

    body = json.loads(bad(request()).get_body())
    assert body == {
        "type": "urn:simgate:problem:invalid-input",
        "title": "Invalid input",
        "status": 400,
        "detail": "query parameter 'page' must be positive",
        "errors": [{"name": "page", "in": "query", "detail": "must be positive"}],
    }


@pytest.mark.parametrize(
    ("page", "per_page", "total", "rels"),
    [
        (1, 5, 3, {"first": 1, "last": 1}),
        (1, 5, 0, {"first": 1, "last": 1}),
        (2, 5, 12, {"first": 1, "prev": 1, "next": 3, "last": 3}),
        (3, 5, 15, {"first": 1, "prev": 2, "last": 3}),
        (9, 5, 12, {"first": 1, "prev": 3, "last": 3}),
    ],
)
def test_page_links(page: int, per_page: int, total: int, rels: dict[str, int]) -> None:
    header = page_links("/case", page, per_page, total)
    expected = ", ".join(
        f'</case?page={n}&per_page={per_page}>; rel="{rel}"' for rel, n in rels.items()
    )
    assert header == expected


def test_links_start_from_the_public_url_when_it_is_set(public_url: None) -> None:
    assert page_links("/case", 1, 5, 3) == (
        '<https://gw.example/case?page=1&per_page=5>; rel="first", '
        '<https://gw.example/case?page=1&per_page=5>; rel="last"'
    )


@pytest.mark.parametrize(
    "value", ["not a url", "ftp://gw.example", "https://gw.example/?x=1", "https://"]
)
def test_a_public_url_that_is_not_a_base_url_is_refused(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("SIMGATE_PUBLIC_URL", value)
    reset_services()
    try:
        with pytest.raises(ValueError, match="SIMGATE_PUBLIC_URL"):
            get_settings()
    finally:
        monkeypatch.delenv("SIMGATE_PUBLIC_URL")
        reset_services()


# --- F10: no cache keeps an answer, no browser sniffs one ------------------------------------------------------


def test_json_and_problem_answers_are_not_stored_and_not_sniffed() -> None:
    for resp in (
        json_response({"a": 1}),
        json_response([], 201, {"Location": "/job/x"}),
        problem(404, "Not found", "no"),
        problem(503, "Busy", "later", headers={"Retry-After": "5"}),
    ):
        assert resp.headers["Cache-Control"] == "no-store"
        assert resp.headers["X-Content-Type-Options"] == "nosniff"


def test_a_route_may_make_its_answer_cacheable() -> None:
    resp = json_response({"a": 1}, headers={"Cache-Control": "max-age=300"})
    assert resp.headers["Cache-Control"] == "max-age=300"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


# --- F4: header values -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "sent"),
    [
        ('plain text, 1 = 1; q="x"', 'plain text, 1 = 1; q="x"'),
        ("k\u00e9\u4e2d", "k%C3%A9%E4%B8%AD"),
        ("a\r\nSet-Cookie: x=1", "a%0D%0ASet-Cookie: x=1"),
        ("tab\there\x00\x7f", "tab%09here%00%7F"),
    ],
)
def test_a_header_value_is_printable_ascii_whatever_it_was_made_from(text: str, sent: str) -> None:
    assert header_value(text) == sent
    assert json_response({}, headers={"X-Note": text}).headers["X-Note"] == sent


def test_a_refused_token_is_not_quoted_in_the_challenge() -> None:
    @answers_problems
    def refuse(req: func.HttpRequest) -> func.HttpResponse:
        raise Unauthenticated("the token is not valid: no key 'k\u00e9\u4e2d\", error=\"x'")

    sent = func.HttpRequest(
        "GET", "https://gw.example/job", body=b"", headers={"Authorization": "Bearer x.y.z"}
    )
    challenge = refuse(sent).headers["WWW-Authenticate"]
    assert challenge == (
        'Bearer realm="simgate", error="invalid_token", '
        'error_description="the bearer token was refused"'
    )
    bare = refuse(func.HttpRequest("GET", "https://gw.example/job", body=b""))
    assert bare.headers["WWW-Authenticate"] == 'Bearer realm="simgate"'
