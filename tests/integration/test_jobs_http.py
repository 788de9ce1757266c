"""Jobs over real HTTP through devhost against Azurite: create, edit, list, show, poll, delete; identity, ownership."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from devhost.tokens import mint
from tests.conftest import AzuriteFixture
from tests.integration.conftest import Gateway, Reply

pytestmark = pytest.mark.azurite

SMOOTHIE = 2


def create(
    gateway: Gateway, caller: str, title: str = "Test 1", case_id: int = SMOOTHIE, **extra: Any
) -> Reply:
    reply = gateway.call(
        "POST", "/job", {"case_id": case_id, "job_title": title, **extra}, user=caller
    )
    assert reply.status == 201, reply.body
    return reply


def leaves(gateway: Gateway, case_id: int = SMOOTHIE) -> list[dict[str, Any]]:
    def walk(nodes: list[dict[str, Any]]) -> Any:
        for node in nodes:
            yield from walk(node["fields"]) if node["type"] == "group" else [node]

    return list(walk(gateway.call("GET", f"/case/{case_id}").body["fields"]))


def numeric(gateway: Gateway) -> list[dict[str, Any]]:
    return [f for f in leaves(gateway) if f["type"] in ("float", "int") and f.get("step")]


def set_status(azurite: AzuriteFixture, gateway: Gateway, job_id: str, status: str) -> None:
    """Move a job's state behind the API's back (the run route arrives in a later issue)."""
    from core.services import get_settings

    table = azurite.table_service().get_table_client(get_settings().jobs_table)
    partition, row = job_id.split("-", 1)
    entity = table.get_entity(partition, row)
    entity["status"] = status
    table.update_entity(entity)


# --- create, show, status ------------------------------------------------------------------------------------


def test_make_a_job_called_test_1(gateway: Gateway) -> None:
    reply = create(gateway, "martin", description="seed chart")
    job = reply.body
    assert reply.headers["location"] == f"/job/{job['job_id']}"
    assert job["status"] == "DRAFT"
    assert (job["job_title"], job["description"], job["case_id"], job["user"]) == (
        "Test 1",
        "seed chart",
        2,
        "martin",
    )
    assert [h["status"] for h in job["history"]] == ["DRAFT"]
    assert job["history"][0]["by"] == "martin"
    shown = gateway.call("GET", f"/job/{job['job_id']}", user="martin")
    assert shown.status == 200
    assert {v["name"] for v in shown.body["values"]} == {f["name"] for f in leaves(gateway)}
    assert all(v["is_default"] for v in shown.body["values"])


def test_status_is_cheap_and_small(gateway: Gateway) -> None:
    job_id = create(gateway, "martin").body["job_id"]
    reply = gateway.call("GET", f"/job/{job_id}/status", user="martin")
    assert reply.status == 200
    assert set(reply.body) == {"job_id", "status", "updated_at"}
    assert reply.body["status"] == "DRAFT"


def test_a_job_for_someone_else_is_forbidden(gateway: Gateway) -> None:
    assert create(gateway, "martin", user="martin").status == 201
    reply = gateway.call(
        "POST", "/job", {"case_id": 2, "job_title": "x", "user": "nick"}, user="martin"
    )
    assert reply.status == 403


def test_an_unknown_case_is_refused_naming_case_id(gateway: Gateway) -> None:
    reply = gateway.call("POST", "/job", {"case_id": 99, "job_title": "x"}, user="martin")
    assert reply.status == 400
    assert reply.body["errors"][0]["name"] == "case_id"


# --- set values ----------------------------------------------------------------------------------------------


def test_set_these_values(gateway: Gateway) -> None:
    job_id = create(gateway, "martin").body["job_id"]
    field = numeric(gateway)[0]
    reply = gateway.call(
        "PATCH",
        f"/job/{job_id}",
        {"fields": [{"name": field["name"], "value": field["max"], "units": field["units"]}]},
        user="martin",
    )
    assert reply.status == 200, reply.body
    value = next(v for v in reply.body["values"] if v["name"] == field["name"])
    assert (value["value"], value["units"], value["is_default"]) == (
        field["max"],
        field["units"],
        False,
    )
    reset = gateway.call(
        "PATCH",
        f"/job/{job_id}",
        {"fields": [{"name": field["name"], "value": None}]},
        user="martin",
    )
    assert next(v for v in reset.body["values"] if v["name"] == field["name"])["is_default"]


def test_bad_values_answer_one_422_listing_each_and_change_nothing(gateway: Gateway) -> None:
    job_id = create(gateway, "martin").body["job_id"]
    a, b = numeric(gateway)[:2]
    good = {"name": b["name"], "value": b["min"]}
    bad = [
        {"name": a["name"], "value": a["max"] + a["step"]},
        {"name": "no_such_field", "value": 1},
        {"name": b["name"], "value": "fast"},
    ]
    reply = gateway.call(
        "PATCH", f"/job/{job_id}", {"job_title": "renamed", "fields": [good, *bad]}, user="martin"
    )
    assert reply.status == 422
    assert reply.headers["content-type"] == "application/problem+json"
    assert [e["name"] for e in reply.body["errors"]] == [a["name"], "no_such_field", b["name"]]
    after = gateway.call("GET", f"/job/{job_id}", user="martin").body
    assert after["job_title"] == "Test 1"
    assert all(v["is_default"] for v in after["values"])


def test_values_change_only_while_draft(gateway: Gateway, azurite: AzuriteFixture) -> None:
    job_id = create(gateway, "martin").body["job_id"]
    set_status(azurite, gateway, job_id, "RUNNING")
    field = numeric(gateway)[0]
    reply = gateway.call(
        "PATCH",
        f"/job/{job_id}",
        {"fields": [{"name": field["name"], "value": field["min"]}]},
        user="martin",
    )
    assert reply.status == 409
    assert gateway.call("DELETE", f"/job/{job_id}", user="martin").status == 409
    set_status(azurite, gateway, job_id, "FAILED")  # no test leaves a job active


def test_concurrent_edits_are_never_lost(gateway: Gateway) -> None:
    job_id = create(gateway, "martin").body["job_id"]
    fields = numeric(gateway)[:6]
    replies: dict[str, int] = {}

    def edit(field: dict[str, Any]) -> None:
        body = {"fields": [{"name": field["name"], "value": field["min"]}]}
        replies[field["name"]] = gateway.call("PATCH", f"/job/{job_id}", body, user="martin").status

    threads = [threading.Thread(target=edit, args=(f,)) for f in fields]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(replies.values()) <= {200, 409}
    final = {
        v["name"]: v for v in gateway.call("GET", f"/job/{job_id}", user="martin").body["values"]
    }
    for name, status in replies.items():
        assert (status == 200) == (not final[name]["is_default"]), (
            name
        )  # every 200 landed; every 409 left nothing


# --- run (without a simulator: the dispatch itself is in test_dispatch.py) ---------------------------------------


def test_a_job_whose_simulator_is_not_configured_is_not_run(gateway: Gateway) -> None:
    job_id = create(gateway, "martin").body["job_id"]
    reply = gateway.call("POST", f"/job/{job_id}", user="martin")
    assert reply.status == 503
    assert "'local'" in reply.body["detail"]
    assert gateway.call("GET", f"/job/{job_id}/status", user="martin").body["status"] == "DRAFT"


# --- list ----------------------------------------------------------------------------------------------------


def test_show_all_jobs_newest_first_with_cursor_pages(gateway: Gateway) -> None:
    made = [create(gateway, "lister", title=f"job {i}").body["job_id"] for i in range(5)]
    first = gateway.call("GET", "/job?per_page=2", user="lister")
    assert first.status == 200
    assert [j["job_id"] for j in first.body] == made[::-1][:2]
    assert {"status", "job_title", "links"} <= set(first.body[0])
    seen = [j["job_id"] for j in first.body]
    link = first.headers["link"]
    while link:
        url = link.split(";")[0].strip("<>").removeprefix(gateway.url)
        page = gateway.call("GET", url, user="lister")
        seen += [j["job_id"] for j in page.body]
        link = page.headers.get("link", "")
    assert seen == made[::-1]


def test_list_filters_by_status_and_case(gateway: Gateway, azurite: AzuriteFixture) -> None:
    cavity = create(gateway, "filter", case_id=1).body["job_id"]
    smoothie = create(gateway, "filter").body["job_id"]
    set_status(azurite, gateway, smoothie, "COMPLETED")
    by_case = gateway.call("GET", "/job?case_id=1", user="filter").body
    by_status = gateway.call("GET", "/job?status=COMPLETED", user="filter").body
    assert [j["job_id"] for j in by_case] == [cavity]
    assert [j["job_id"] for j in by_status] == [smoothie]
    for name in (
        "SLEEPING",
        "completed",
        "done",
        " COMPLETED",
    ):  # a state's name exactly, as the document's enum
        bad = gateway.call("GET", f"/job?status={name.replace(' ', '%20')}", user="filter")
        assert (bad.status, bad.body["errors"][0]["name"]) == (400, "status"), name


def test_a_cursor_that_is_not_ours_is_refused(gateway: Gateway) -> None:
    for cursor in ["%00", "a%20b", "eyJ4IjoxfQ=="]:  # not even base64url without padding: malformed
        reply = gateway.call("GET", f"/job?cursor={cursor}", user="martin")
        assert (reply.status, reply.body["errors"][0]["name"]) == (400, "cursor")
    for cursor in [
        "garbage",
        "eyJ4IjoxfQ",
    ]:  # shaped like a cursor (the document allows it), but no page of ours
        reply = gateway.call("GET", f"/job?cursor={cursor}", user="martin")
        assert (reply.status, reply.body["title"]) == (404, "Not found"), cursor


def test_admins_may_list_everyone_and_others_may_not(gateway: Gateway) -> None:
    mine = create(gateway, "someone").body["job_id"]
    everyone = gateway.call("GET", "/job?all=true&per_page=100", user="boss", admin=True)
    assert everyone.status == 200
    assert mine in {j["job_id"] for j in everyone.body} or "link" in everyone.headers
    assert gateway.call("GET", "/job?all=true", user="someone").status == 403
    assert gateway.call("GET", f"/job/{mine}", user="boss", admin=True).status == 200


def test_admins_see_everyones_jobs_but_change_only_their_own(
    gateway: Gateway, azurite: AzuriteFixture
) -> None:
    draft = create(gateway, "alice").body["job_id"]
    ended = create(gateway, "alice").body["job_id"]
    set_status(azurite, gateway, ended, "RUNNING")
    admin = {"user": "root", "admin": True}
    assert gateway.call("GET", f"/job/{draft}", **admin).status == 200
    assert gateway.call("GET", f"/job/{ended}/status", **admin).status == 200
    assert gateway.call("GET", f"/job/{ended}/output", **admin).status == 200
    refused = {
        "edit": gateway.call("PATCH", f"/job/{draft}", {"job_title": "edited by admin"}, **admin),
        "run": gateway.call("POST", f"/job/{draft}", **admin),
        "copy": gateway.call("POST", f"/job/{draft}/copy", **admin),
        "cancel": gateway.call("POST", f"/job/{ended}/cancel", **admin),
        "delete": gateway.call("DELETE", f"/job/{draft}", **admin),
    }
    assert {what: reply.status for what, reply in refused.items()} == dict.fromkeys(refused, 404)
    shown = gateway.call("GET", f"/job/{draft}", user="alice").body
    assert (shown["job_title"], shown["status"]) == ("Test 1", "DRAFT")
    assert gateway.call("GET", f"/job/{ended}/status", user="alice").body["status"] == "RUNNING"
    set_status(azurite, gateway, ended, "FAILED")


# --- delete --------------------------------------------------------------------------------------------------


def test_delete_a_draft_or_finished_job(gateway: Gateway, azurite: AzuriteFixture) -> None:
    draft = create(gateway, "martin").body["job_id"]
    done = create(gateway, "martin").body["job_id"]
    set_status(azurite, gateway, done, "FAILED")
    for job_id in (draft, done):
        assert gateway.call("DELETE", f"/job/{job_id}", user="martin").status == 204
        assert gateway.call("GET", f"/job/{job_id}", user="martin").status == 404
        assert gateway.call("DELETE", f"/job/{job_id}", user="martin").status == 404


# --- ownership -----------------------------------------------------------------------------------------------

FIELD_EDIT = {"fields": [{"name": "x", "value": 1}]}


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("GET", "", None),
        ("GET", "/status", None),
        ("PATCH", "", FIELD_EDIT),
        ("PATCH", "", {"job_title": "mine"}),
        ("DELETE", "", None),
        ("POST", "", None),
        ("GET", "/output", None),
        ("GET", "/output/mixing_index.csv", None),
    ],
)
def test_another_users_job_is_a_404_on_every_route(
    gateway: Gateway, method: str, suffix: str, body: Any
) -> None:
    job_id = create(gateway, "alice").body["job_id"]
    reply = gateway.call(method, f"/job/{job_id}{suffix}", body, user="bob")
    assert reply.status == 404
    missing = gateway.call(method, f"/job/{job_id[:-6]}ffffff{suffix}", body, user="bob")
    assert (
        reply.body["title"] == missing.body["title"]
    )  # the same answer as for a job that does not exist
    still = gateway.call("GET", f"/job/{job_id}", user="alice")
    assert (still.status, still.body["job_title"]) == (200, "Test 1")
    assert job_id not in {j["job_id"] for j in gateway.call("GET", "/job", user="bob").body}


# --- identity ------------------------------------------------------------------------------------------------


def test_job_routes_need_a_valid_token(gateway: Gateway, tmp_path: Any) -> None:
    from devhost.tokens import make_key_pair

    other = tmp_path / "other.pem"
    make_key_pair(other, tmp_path / "other.json")
    bad_tokens = {
        "none": None,
        "expired": mint(gateway.signing_key, "martin", ttl_seconds=-600),
        "badly signed": mint(other, "martin"),
        "wrong audience": mint(gateway.signing_key, "martin", audience="api://someone-else"),
        "not a jwt": "hello",
    }
    for why, token in bad_tokens.items():
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        for method, path in [
            ("GET", "/job"),
            ("POST", "/job"),
            ("GET", "/job/0123456789abcdef-0000000000000-abcdef"),
        ]:
            reply = gateway.call(method, path, headers=headers)
            assert reply.status == 401, (why, method, path)
            assert reply.headers["www-authenticate"].startswith("Bearer"), why
    trusted_header = gateway.call("GET", "/job", headers={"X-MS-CLIENT-PRINCIPAL-NAME": "martin"})
    assert trusted_header.status == 401


# --- bad input -----------------------------------------------------------------------------------------------

JUNK: list[tuple[str, dict[str, str], bytes, int]] = [
    ("no body", {"Content-Type": "application/json"}, b"", 400),
    ("not json", {"Content-Type": "application/json"}, b"{case_id: 2", 400),
    (
        "NaN literal",
        {"Content-Type": "application/json"},
        b'{"case_id": NaN, "job_title": "x"}',
        400,
    ),
    (
        "wrong content type",
        {"Content-Type": "text/plain"},
        b'{"case_id": 2, "job_title": "x"}',
        415,
    ),
    ("no content type", {}, b'{"case_id": 2, "job_title": "x"}', 415),
    ("an array", {"Content-Type": "application/json"}, b"[1, 2, 3]", 422),
    ("a string", {"Content-Type": "application/json"}, b'"job"', 422),
    ("wrong types", {"Content-Type": "application/json"}, b'{"case_id": "2", "job_title": 5}', 422),
    ("missing title", {"Content-Type": "application/json"}, b'{"case_id": 2}', 422),
    (
        "unknown member",
        {"Content-Type": "application/json"},
        b'{"case_id": 2, "job_title": "x", "owner": "e"}',
        422,
    ),
    (
        "huge title",
        {"Content-Type": "application/json"},
        b'{"case_id": 2, "job_title": "' + b"x" * 5000 + b'"}',
        422,
    ),
    (
        "control chars",
        {"Content-Type": "application/json"},
        b'{"case_id": 2, "job_title": "a\\u0000b"}',
        422,
    ),
    (
        "nested junk",
        {"Content-Type": "application/json"},
        b'{"case_id": {"$gt": 1}, "job_title": [[[[]]]]}',
        422,
    ),
    ("deep nesting", {"Content-Type": "application/json"}, b"[" * 30000 + b"]" * 30000, 400),
    ("bad utf-8", {"Content-Type": "application/json"}, b'{"job_title": "\xff\xfe"}', 400),
    (
        "too large",
        {"Content-Type": "application/json"},
        b'{"job_title": "' + b"x" * 70000 + b'"}',
        413,
    ),
    (
        "bool case",
        {"Content-Type": "application/json"},
        b'{"case_id": true, "job_title": "x"}',
        422,
    ),
]


@pytest.mark.parametrize(("why", "headers", "raw", "status"), JUNK, ids=[j[0] for j in JUNK])
def test_bad_create_bodies_get_a_problem_not_a_500(
    gateway: Gateway, why: str, headers: dict[str, str], raw: bytes, status: int
) -> None:
    reply = gateway.call("POST", "/job", user="fuzzer", headers=headers, raw=raw)
    assert reply.status == status, (why, reply.body)
    assert reply.headers["content-type"] == "application/problem+json"
    if status == 422:
        assert reply.body["errors"]


def test_unicode_titles_are_kept(gateway: Gateway) -> None:
    title = "Smoothie ü 🍓 ∂u/∂t"
    job = create(gateway, "martin", title=title).body
    assert gateway.call("GET", f"/job/{job['job_id']}", user="martin").body["job_title"] == title


@pytest.mark.parametrize(
    "job_id", ["1", "..%2F..%2Fetc", "0123456789ABCDEF-0000000000000-abcdef", "x" * 500, "%00"]
)
def test_a_job_id_of_the_wrong_shape_is_a_400(gateway: Gateway, job_id: str) -> None:
    for method, suffix in [("GET", ""), ("GET", "/status"), ("DELETE", "")]:
        reply = gateway.call(method, f"/job/{job_id}{suffix}", user="martin")
        assert (reply.status, reply.body["errors"][0]["name"]) == (400, "job_id")


def test_bad_patch_bodies_get_a_problem(gateway: Gateway) -> None:
    job_id = create(gateway, "martin").body["job_id"]
    for body, status in [
        ({"fields": "all"}, 422),
        ({"fields": [{"value": 1}]}, 422),
        ({"job_title": ""}, 422),
        ({"fields": [{"name": "x", "value": 1, "extra": 2}]}, 422),
        ({"status": "RUNNING"}, 422),
    ]:
        reply = gateway.call("PATCH", f"/job/{job_id}", body, user="martin")
        assert reply.status == status, body
    assert gateway.call("GET", f"/job/{job_id}/status", user="martin").body["status"] == "DRAFT"


def test_the_clock_moves_updated_at(gateway: Gateway) -> None:
    job = create(gateway, "martin").body
    time.sleep(0.01)
    edited = gateway.call(
        "PATCH", f"/job/{job['job_id']}", {"description": "later"}, user="martin"
    ).body
    assert edited["updated_at"] > job["updated_at"]
    assert edited["created_at"] == job["created_at"]
