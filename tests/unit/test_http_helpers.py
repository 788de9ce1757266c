"""The shared HTTP helpers: status mapping, problem+json, paging links."""

from __future__ import annotations

import json

import azure.functions as func
import pytest

from blueprints._http import answers_problems, page_links, status_of
from core.errors import CatalogError, Conflict, InvalidInput, InvalidValues, NotFound, Unavailable


def request(url: str = "https://gw.example/case?page=1") -> func.HttpRequest:
    return func.HttpRequest("GET", url, body=b"")


@pytest.mark.parametrize(
    ("error", "status"),
    [(InvalidInput("x"), 400), (NotFound("x"), 404), (Conflict("x"), 409), (InvalidValues("x"), 422),
     (Unavailable("x"), 503), (CatalogError("x"), 500)],
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
    header = page_links(request(), page, per_page, total)
    expected = ", ".join(
        f'<https://gw.example/case?page={n}&per_page={per_page}>; rel="{rel}"' for rel, n in rels.items()
    )
    assert header == expected
