"""The case functions called as the worker calls them, and their metadata as the host reads it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import azure.functions as func
import pytest

from core.services import reset_services
from tests.functions.conftest import Call, body_of

BASE = "http://127.0.0.1:7071/case"


def test_the_app_indexes_its_case_routes(functions: dict[str, Any]) -> None:
    routes = {name: f.get_trigger() for name, f in functions.items()}
    assert routes["list_cases"].route == "case"
    assert routes["show_case"].route == "case/{case_id}"
    for name in ("list_cases", "show_case"):
        assert [m.value for m in routes[name].methods] == ["GET"]
        assert routes[name].auth_level == func.AuthLevel.ANONYMOUS


def test_list_pages_through_the_three_cases(call: Call) -> None:
    resp = call("list_cases", f"{BASE}?page=1&per_page=2", params={"page": "1", "per_page": "2"})
    assert resp.status_code == 200
    assert resp.mimetype == "application/json"
    assert [c["id"] for c in body_of(resp)] == [1, 2]
    assert resp.headers["X-Total-Count"] == "3"
    assert resp.headers["Link"] == (  # relative: SIMGATE_PUBLIC_URL is not set here
        '</case?page=1&per_page=2>; rel="first", </case?page=2&per_page=2>; rel="next", '
        '</case?page=2&per_page=2>; rel="last"'
    )
    second = call("list_cases", f"{BASE}?page=2&per_page=2", params={"page": "2", "per_page": "2"})
    assert [c["name"] for c in body_of(second)] == ["dam-break"]
    assert 'rel="prev"' in second.headers["Link"]
    assert 'rel="next"' not in second.headers["Link"]


@pytest.mark.parametrize(
    "url", ["http://evil.example/case", "http://evil.example:666//evil.example/case"]
)
def test_links_never_come_from_the_requests_host(
    call: Call, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """F9: `req.url` carries the client's Host header; the links are the route's own, on the configured URL."""
    from core.services import reset_services

    params = {"page": "1", "per_page": "1"}
    assert (
        "evil" not in call("list_cases", f"{url}?page=1&per_page=1", params=params).headers["Link"]
    )
    monkeypatch.setenv("SIMGATE_PUBLIC_URL", "https://simgate.example")
    reset_services()
    try:
        links = call("list_cases", f"{url}?page=1&per_page=1", params=params).headers["Link"]
    finally:
        monkeypatch.delenv("SIMGATE_PUBLIC_URL")
        reset_services()
    assert links.startswith('<https://simgate.example/case?page=1&per_page=1>; rel="first"')
    assert "evil" not in links


def test_catalog_answers_are_not_sniffed(call: Call) -> None:
    for resp in (
        call("list_cases", BASE),
        call("show_case", f"{BASE}/2", route_params={"case_id": "2"}),
        call("show_case", f"{BASE}/x", route_params={"case_id": "x"}),
    ):
        assert resp.headers["X-Content-Type-Options"] == "nosniff"


def test_list_defaults_and_headers_carry_no_internals(call: Call) -> None:
    cases = body_of(call("list_cases", BASE))
    assert {c["name"] for c in cases} == {"cavity", "smoothie", "dam-break"}
    for header in cases:
        assert set(header) == {
            "id",
            "name",
            "title",
            "description",
            "thumbnail",
            "available",
            "note",
            "links",
        }
        assert header["links"]["self"] == f"/case/{header['id']}"


def test_a_page_past_the_end_is_empty(call: Call) -> None:
    resp = call("list_cases", f"{BASE}?page=9", params={"page": "9"})
    assert resp.status_code == 200
    assert body_of(resp) == []
    assert resp.headers["X-Total-Count"] == "3"


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"page": "0"}, "page"),
        ({"page": "-1"}, "page"),
        ({"page": "abc"}, "page"),
        ({"page": "1.5"}, "page"),
        ({"page": ""}, "page"),
        ({"page": "9" * 40}, "page"),
        ({"per_page": "1000"}, "per_page"),
        ({"per_page": "abc"}, "per_page"),
        ({"per_page": "0"}, "per_page"),
        ({"per_page": "٣"}, "per_page"),
    ],
)
def test_bad_paging_is_a_400_naming_the_parameter(
    call: Call, params: dict[str, str], name: str
) -> None:
    resp = call("list_cases", BASE, params=params)
    assert resp.status_code == 400
    assert resp.mimetype == "application/problem+json"
    problem = body_of(resp)
    assert problem["status"] == 400
    assert problem["errors"] == [
        {"name": name, "in": "query", "detail": problem["errors"][0]["detail"]}
    ]
    assert repr(name) in problem["detail"]


def test_show_smoothie_has_its_typed_field_tree(call: Call) -> None:
    resp = call("show_case", f"{BASE}/2", route_params={"case_id": "2"})
    assert resp.status_code == 200
    case = body_of(resp)
    assert case["id"] == 2
    assert case["name"] == "smoothie"
    leaves = list(_leaves(case["fields"]))
    assert {leaf["type"] for leaf in leaves} >= {"float", "choice"}
    for leaf in leaves:
        assert leaf["label"]
        if leaf["type"] in ("float", "int"):
            assert leaf["min"] <= leaf["default"] <= leaf["max"]
    text = resp.get_body().decode()
    for internal in ("scripts", "target", "entry", "run.sh", "model.py", "glob"):
        assert internal not in text


def test_a_case_can_be_named_by_its_slug(call: Call) -> None:
    by_slug = call("show_case", f"{BASE}/cavity", route_params={"case_id": "cavity"})
    by_id = call("show_case", f"{BASE}/1", route_params={"case_id": "1"})
    assert by_slug.get_body() == by_id.get_body()


@pytest.mark.parametrize("ref", ["99", "0", "no-such-case"])
def test_an_unknown_case_is_a_404(call: Call, ref: str) -> None:
    resp = call("show_case", f"{BASE}/{ref}", route_params={"case_id": ref})
    assert resp.status_code == 404
    assert resp.mimetype == "application/problem+json"
    assert body_of(resp)["title"] == "Not found"


@pytest.mark.parametrize("ref", ["2.5", "-2", "Smoothie!", "x" * 300, "%00", "２"])
def test_a_malformed_case_id_is_a_400_naming_it(call: Call, ref: str) -> None:
    resp = call("show_case", f"{BASE}/x", route_params={"case_id": ref})
    assert resp.status_code == 400
    assert body_of(resp)["errors"][0]["name"] == "case_id"


TARGET = {
    "host": "hpc.example.org",
    "user": "sim",
    "key_file": "k",
    "known_hosts": "hpc.example.org ssh-ed25519 A",
    "base_dir": "/scratch/sim",
}


@pytest.fixture
def targets(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """Set the worker's SIMGATE_TARGETS to this text for the test."""

    def use(text: str) -> None:
        monkeypatch.setenv("SIMGATE_TARGETS", text)
        reset_services()

    yield use
    reset_services()


def availability(call: Call) -> dict[str, tuple[bool, str | None]]:
    """Each case's (available, note), as listed and as shown (which must agree)."""
    listed = {c["name"]: (c["available"], c["note"]) for c in body_of(call("list_cases", BASE))}
    for name, seen in listed.items():
        shown = body_of(call("show_case", f"{BASE}/{name}", route_params={"case_id": name}))
        assert (shown["available"], shown["note"]) == seen
    return listed


def test_openfoam_cases_are_unavailable_where_the_target_lacks_openfoam(
    call: Call, targets: Any
) -> None:
    targets(
        json.dumps({"cluster": {**TARGET, "provides": []}, "local": {**TARGET, "provides": []}})
    )
    seen = availability(call)
    assert seen["smoothie"] == (True, None)
    for name in ("cavity", "dam-break"):
        available, note = seen[name]
        assert available is False
        assert note == "This case needs OpenFOAM, which its simulator does not provide."


@pytest.mark.parametrize("cluster", [{**TARGET, "provides": ["openfoam"]}, TARGET])
def test_every_case_is_available_where_the_target_provides_openfoam_or_declares_nothing(
    call: Call, targets: Any, cluster: dict[str, Any]
) -> None:
    targets(json.dumps({"cluster": cluster, "local": {**TARGET, "provides": []}}))
    assert set(availability(call).values()) == {(True, None)}


def test_a_broken_targets_setting_leaves_the_catalog_answering(call: Call, targets: Any) -> None:
    targets('{"cluster": {"host": ""}}')
    assert set(availability(call).values()) == {(True, None)}


def _leaves(nodes: list[dict[str, Any]]) -> Any:
    for node in nodes:
        if node["type"] == "group":
            yield from _leaves(node["fields"])
        else:
            yield node


def test_the_reconciler_runs_on_the_schedule_setting(functions: dict[str, Any]) -> None:
    trigger = functions["reconcile_jobs"].get_trigger()
    assert trigger.get_binding_name() == "timerTrigger"
    assert (
        trigger.schedule == "%SIMGATE_RECONCILE_SCHEDULE%"
    )  # resolved by the host from the app settings
    assert trigger.run_on_startup is False
    cancel, copy = functions["cancel_job"].get_trigger(), functions["copy_job"].get_trigger()
    assert (cancel.route, [m.value for m in cancel.methods]) == ("job/{job_id}/cancel", ["POST"])
    assert (copy.route, [m.value for m in copy.methods]) == ("job/{job_id}/copy", ["POST"])
