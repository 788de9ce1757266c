"""The seed's first two steps over real HTTP through devhost, with Azurite running: list the cases, show one."""

from __future__ import annotations

import pytest

from tests.integration.conftest import Gateway

pytestmark = pytest.mark.azurite


def test_show_all_cases_paged(gateway: Gateway) -> None:
    reply = gateway.call("GET", "/case?page=1&per_page=5")
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("application/json")
    assert [c["name"] for c in reply.body] == ["cavity", "smoothie", "dam-break"]
    assert reply.headers["x-total-count"] == "3"
    assert 'rel="last"' in reply.headers["link"]


def test_pages_follow_their_links(gateway: Gateway) -> None:
    first = gateway.call("GET", "/case?page=1&per_page=2")
    links = first.headers["link"].split(",")
    next_url = next(part.split(";")[0].strip("<> ") for part in links if 'rel="next"' in part)
    second = gateway.call("GET", next_url.removeprefix(gateway.url))
    assert [c["id"] for c in first.body + second.body] == [1, 2, 3]


def test_show_the_smoothie_case(gateway: Gateway) -> None:
    reply = gateway.call("GET", "/case/2")
    assert reply.status == 200
    assert reply.body["name"] == "smoothie"
    assert reply.body["fields"]
    assert b"model.py" not in reply.raw


@pytest.mark.parametrize(
    ("path", "status", "names"),
    [
        ("/case?page=0", 400, "page"),
        ("/case?per_page=1000", 400, "per_page"),
        ("/case?per_page=abc", 400, "per_page"),
        ("/case/99", 404, None),
        ("/case/%24%28id%29", 400, "case_id"),
    ],
)
def test_bad_input_is_a_problem_never_a_500(
    gateway: Gateway, path: str, status: int, names: str | None
) -> None:
    reply = gateway.call("GET", path)
    assert reply.status == status
    assert reply.headers["content-type"] == "application/problem+json"
    assert reply.body["status"] == status
    if names:
        assert reply.body["errors"][0]["name"] == names


def test_unknown_paths_and_methods_are_404_as_the_real_host_answers(gateway: Gateway) -> None:
    # The Functions host answers 404 with an empty body for an unknown path and for a method the route does not
    # take (Azure/azure-functions-host#10098); devhost mirrors it.
    for method, path in [
        ("GET", "/nope"),
        ("DELETE", "/case/2"),
        ("POST", "/case"),
        ("GET", "/api/case"),
    ]:
        reply = gateway.call(method, path)
        assert (reply.status, reply.raw) == (404, b"")
