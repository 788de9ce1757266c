"""The app's functions against the contract: unique names, and exactly architecture §2's routes and methods.

The table below is copied from §2 of the design (`../shared/design/architecture.md`, outside this repository, so CI
cannot read it), with host.json's route prefix "". A route the app gains or loses fails the test until this table
and the design agree; routes the issues promise but that are not built yet are listed in PENDING with their issue.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from core.config import DISPATCH_QUEUE, RECONCILE_SCHEDULE
from devhost.routing import NOT_FOUND, IndexedFunction, RouteTable, index_functions
from tests.deploy.conftest import ROOT, listed_functions

ROUTE_PREFIX = ""

# (method, route) → function, from architecture §2 (user routes, then the simulator's).
EXPECTED_ROUTES = {
    ("GET", "case"): "list_cases",
    ("GET", "case/{case_id}"): "show_case",
    ("POST", "job"): "create_job",
    ("PATCH", "job/{job_id}"): "update_job",
    ("POST", "job/{job_id}"): "run_job",
    ("GET", "job"): "list_jobs",
    ("GET", "job/{job_id}"): "show_job",
    ("GET", "job/{job_id}/status"): "job_status",
    ("GET", "job/{job_id}/output"): "list_outputs",
    ("GET", "job/{job_id}/output/{output_id}"): "download_output",
    ("POST", "job/{job_id}/cancel"): "cancel_job",
    ("DELETE", "job/{job_id}"): "delete_job",
    ("POST", "job/{job_id}/copy"): "copy_job",
    ("GET", "openapi.json"): "openapi",
    ("PATCH", "job/{job_id}/status"): "report_status",
    # Studies (issue #15): a case over axes of values; its runs are jobs.
    ("POST", "study"): "create_study",
    ("GET", "study"): "list_studies",
    ("GET", "study/{study_id}"): "show_study",
    ("POST", "study/{study_id}"): "run_study",
    ("GET", "study/{study_id}/runs"): "study_runs",
    ("GET", "study/{study_id}/results"): "study_results",
    ("POST", "study/{study_id}/cancel"): "cancel_study",
    ("POST", "study/{study_id}/rerun"): "rerun_study",
    ("DELETE", "study/{study_id}"): "delete_study",
    # The browser UI (issue #8): / redirects to /ui/ (a route matching only the empty path), its files, its config.
    ("GET", "{root:maxlength(0)?}"): "ui_root",
    ("GET", "ui/config.json"): "ui_config",
    ("GET", "ui/{*path}"): "ui_files",
}

# Promised but not built yet: (issue, what, a test of a route). Once one is built, move it into EXPECTED_ROUTES.
PENDING: list[tuple[str, str, Callable[[str], bool]]] = []

EXPECTED_QUEUES = {"dispatch_job": DISPATCH_QUEUE, "dispatch_poisoned": f"{DISPATCH_QUEUE}-poison"}
EXPECTED_TIMERS = {"reconcile_jobs": RECONCILE_SCHEDULE}


@pytest.fixture(scope="module")
def functions() -> list[dict[str, Any]]:
    """The app's functions as azure-functions indexes them (in a process of its own)."""
    return listed_functions("functions", ROOT / "function_app.py")


def triggers(functions: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    """Function name → its trigger binding, for triggers of type `kind`."""
    return {f["name"]: b for f in functions for b in f["bindings"] if b["type"] == kind}


def routes(functions: list[dict[str, Any]]) -> dict[tuple[str, str], list[str]]:
    """(method, route) → the functions serving it."""
    served: dict[tuple[str, str], list[str]] = {}
    for name, trigger in triggers(functions, "httpTrigger").items():
        for method in trigger["methods"]:
            served.setdefault((method.upper(), trigger["route"]), []).append(name)
    return served


def test_function_names_are_unique(functions: list[dict[str, Any]]) -> None:
    names = [f["name"] for f in functions]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


def test_the_route_prefix_is_empty() -> None:
    host = json.loads((ROOT / "host.json").read_text(encoding="utf-8"))
    assert host["extensions"]["http"]["routePrefix"] == ROUTE_PREFIX


def route_problems(served: dict[tuple[str, str], list[str]]) -> list[str]:
    """How the routes the app serves differ from the contract; empty when they are exactly it."""
    problems = []
    for (method, route), names in sorted(served.items()):
        pending = [(issue, what) for issue, what, matches in PENDING if matches(route)]
        if pending:
            problems.append(
                f"{method} /{route} ({', '.join(names)}) is issue {pending[0][0]}'s {pending[0][1]}: "
                "move it from PENDING into EXPECTED_ROUTES (and architecture §2)"
            )
        elif (method, route) not in EXPECTED_ROUTES:
            problems.append(f"{method} /{route} ({', '.join(names)}) is not in the contract")
        elif names != [EXPECTED_ROUTES[method, route]]:
            problems.append(
                f"{method} /{route} is served by {names}, not {EXPECTED_ROUTES[method, route]}"
            )
    problems += [
        f"{method} /{route} ({name}) is missing"
        for (method, route), name in sorted(EXPECTED_ROUTES.items())
        if (method, route) not in served
    ]
    return problems


def test_routes_and_methods_are_exactly_the_contract(functions: list[dict[str, Any]]) -> None:
    assert route_problems(routes(functions)) == []


def test_the_route_check_is_exact() -> None:
    """A pending route that appears, an extra or missing route, a method served twice: each is reported."""
    served = {key: [name] for key, name in EXPECTED_ROUTES.items()}
    del served["GET", "case"]
    served["GET", "admin/{*path}"] = ["admin"]
    served["PUT", "job/{job_id}"] = ["replace_job"]
    served["GET", "job"] = ["list_jobs", "list_jobs_again"]

    PENDING.append(("#99", "admin pages", lambda route: route.startswith("admin")))
    try:
        problems = route_problems(served)
    finally:
        PENDING.pop()
    assert problems == [
        "GET /admin/{*path} (admin) is issue #99's admin pages: move it from PENDING into EXPECTED_ROUTES "
        "(and architecture §2)",
        "GET /job is served by ['list_jobs', 'list_jobs_again'], not list_jobs",
        "PUT /job/{job_id} (replace_job) is not in the contract",
        "GET /case (list_cases) is missing",
    ]


def test_every_http_function_checks_its_callers_itself(functions: list[dict[str, Any]]) -> None:
    """Anonymous at the host: browsers and job wrappers hold no function keys; tokens are checked in the function."""
    assert {
        name: t["authLevel"]
        for name, t in triggers(functions, "httpTrigger").items()
        if t["authLevel"] != "ANONYMOUS"
    } == {}


def test_queue_and_timer_triggers(functions: list[dict[str, Any]]) -> None:
    queues = triggers(functions, "queueTrigger")
    assert {name: t["queueName"] for name, t in queues.items()} == EXPECTED_QUEUES
    assert {t["connection"] for t in queues.values()} == {"AzureWebJobsStorage"}
    assert {
        name: t["schedule"] for name, t in triggers(functions, "timerTrigger").items()
    } == EXPECTED_TIMERS
    kinds = {b["type"] for f in functions for b in f["bindings"] if b["direction"] == "IN"}
    assert kinds == {"httpTrigger", "queueTrigger", "timerTrigger"}


def sample_path(route: str) -> str:
    """A path `route` matches: each parameter a plain value, an optional one left out."""
    segments = [
        "" if seg.startswith("{") and seg.endswith("?}") else re.sub(r"\{[^}]*\}", "x1", seg)
        for seg in route.split("/")
    ]
    return "/" + "/".join(s for s in segments if s)


def winners(functions: tuple[IndexedFunction, ...]) -> dict[tuple[str, str], str | None]:
    """Which function the host's order gives each contract route's own requests to."""
    table = RouteTable(functions, prefix=ROUTE_PREFIX)
    found = {key: table.match(key[0], sample_path(key[1])) for key in EXPECTED_ROUTES}
    return {
        key: None if match is NOT_FOUND else match.function.name for key, match in found.items()
    }


def test_no_route_shadows_another() -> None:
    """Each route's own requests reach its function. The host tries routes in function-name order, not by
    specificity (`devhost.routing`), so `GET /ui/config.json`, which `ui/{*path}` matches too, reaches `ui_config`
    only because that name sorts before `ui_files`."""
    import function_app

    assert winners(index_functions(function_app.app)) == EXPECTED_ROUTES


def test_the_shadow_check_sees_a_rename() -> None:
    import function_app

    renamed = tuple(
        replace(f, name="zz_config") if f.name == "ui_config" else f
        for f in index_functions(function_app.app)
    )
    assert winners(renamed)["GET", "ui/config.json"] == "ui_files"
