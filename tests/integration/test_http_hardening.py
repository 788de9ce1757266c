"""The gateway over real HTTP (devhost) against findings F4, F9, F10 and F13 of the security review.

F4: nothing from a token reaches a header, and a token whose key id is not Latin-1 gets its 401 (devhost dropped
the connection: the kid went into `WWW-Authenticate`). F9: the `Link` headers never name the request's Host.
F10: every answer about jobs, grants or SAS URLs is `Cache-Control: no-store`, and API JSON is `nosniff`.
F13: a token that names nobody, or an application's own token, is refused (the gateway requires the dev scope).
"""

from __future__ import annotations

from typing import Any

import pytest

from blueprints._http import INVALID_TOKEN
from devhost.tokens import mint
from tests.integration.conftest import Gateway, Reply
from tests.integration.test_reports import _end_every_job, queued_job, report  # noqa: F401 (the fixture ends jobs)

pytestmark = pytest.mark.azurite

SMOOTHIE = 2


def assert_ascii_headers(reply: Reply) -> None:
    for name, value in reply.headers.items():
        assert value.isascii(), (name, value)
        assert value.isprintable(), (name, value)


@pytest.mark.parametrize(
    "claims",
    [
        {"kid": "k\u00e9\u4e2d"},
        {"kid": "\u00e9"},
        {"kid": 'a", error="x'},
        {"kid": "x" * 3000},
        {"issuer": "https://\u4e2d.example/"},
        {"audience": "api://k\u00e9\u4e2d"},
    ],
    ids=[
        "non-latin-1 kid",
        "latin-1 kid",
        "quote kid",
        "long kid",
        "non-latin-1 iss",
        "non-latin-1 aud",
    ],
)
def test_a_refused_token_gets_a_401_that_quotes_none_of_it(
    gateway: Gateway, claims: dict[str, Any]
) -> None:
    token = mint(gateway.signing_key, "martin", **claims)
    reply = gateway.call("GET", "/job", headers={"Authorization": f"Bearer {token}"})
    assert reply.status == 401
    assert reply.body["title"] == "Unauthenticated"
    assert reply.headers["www-authenticate"] == INVALID_TOKEN
    assert_ascii_headers(reply)
    for value in claims.values():
        assert not any(value in header for header in reply.headers.values())
        assert value not in reply.body["detail"]


def test_links_do_not_name_the_requests_host(gateway: Gateway) -> None:
    for _ in range(2):
        gateway.call("POST", "/job", {"case_id": SMOOTHIE, "job_title": "linked"}, user="linker")
    for path, user in (("/case?page=1&per_page=1", None), ("/job?per_page=1", "linker")):
        reply = gateway.call("GET", path, user=user, headers={"Host": "evil.example:666"})
        if (
            reply.status == 421
        ):  # devhost refuses a Host that is not its own (DNS rebinding): fine too
            continue
        assert reply.status == 200, reply.body
        assert "link" in reply.headers
        assert "evil" not in reply.headers["link"]
        assert reply.headers["link"].startswith(
            f"<{path.split('?')[0]}?"
        )  # relative: no public URL is set


def assert_private(reply: Reply, status: int) -> None:
    assert reply.status == status, reply.body
    assert reply.headers.get("cache-control") == "no-store", reply.headers
    if reply.raw:
        assert reply.headers.get("x-content-type-options") == "nosniff", reply.headers


def test_every_answer_about_a_job_is_private(gateway: Gateway) -> None:
    made = gateway.call(
        "POST", "/job", {"case_id": SMOOTHIE, "job_title": "private"}, user="keeper"
    )
    assert_private(made, 201)
    job_id = made.body["job_id"]
    for method, path, body, status in [
        ("GET", "/job", None, 200),
        ("GET", f"/job/{job_id}", None, 200),
        ("PATCH", f"/job/{job_id}", {"job_title": "still private"}, 200),
        ("GET", f"/job/{job_id}/status", None, 200),
        ("GET", f"/job/{job_id}/output", None, 200),
        ("GET", f"/job/{job_id}/output/mixing_index.csv", None, 404),
        ("POST", f"/job/{job_id}/cancel", None, 409),
        ("POST", f"/job/{job_id}/copy", None, 201),
        ("GET", "/job/0000000000000000-0000000000000-000000", None, 404),
    ]:
        assert_private(gateway.call(method, path, body, user="keeper"), status)
    assert_private(gateway.call("GET", "/job"), 401)


def test_the_reply_that_carries_the_upload_grant_is_private(gateway: Gateway) -> None:
    job_id, token = queued_job(gateway, owner="keeper")
    reply = report(gateway, job_id, token, "FINALIZING")
    assert_private(reply, 200)
    assert "upload" in reply.body
    assert_private(report(gateway, job_id, "not-the-token", "RUNNING"), 401)


def test_public_documents_may_be_cached_but_are_not_sniffed(gateway: Gateway) -> None:
    for path in ("/case", "/case/2", "/openapi.json"):
        reply = gateway.call("GET", path)
        assert reply.status == 200
        assert reply.headers["x-content-type-options"] == "nosniff"
    assert gateway.call("GET", "/openapi.json").headers["cache-control"] == "max-age=300"


@pytest.mark.parametrize(
    "claims",
    [{"sub": ""}, {"idtyp": "app"}, {"scp": None}, {"scp": "other_scope"}],
    ids=["empty sub", "app-only", "no scp", "another scope"],
)
def test_a_token_that_does_not_act_for_a_user_is_refused(
    gateway: Gateway, claims: dict[str, Any]
) -> None:
    token = mint(gateway.signing_key, "daemon", **claims)
    for path in ("/job", "/job/0000000000000000-0000000000000-000000/output"):
        reply = gateway.call("GET", path, headers={"Authorization": f"Bearer {token}"})
        assert reply.status == 401, reply.body
    assert (
        gateway.call("GET", "/job", user="daemon").status == 200
    )  # the same user with a user's token
