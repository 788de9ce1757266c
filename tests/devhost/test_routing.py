"""Route templates, constraints, ordering and misses, without a server."""

from __future__ import annotations

import logging
from typing import Any

import azure.functions as func
import pytest

from devhost.routing import (
    NOT_FOUND,
    IndexedFunction,
    RouteMatch,
    RouteTable,
    RouteTemplateError,
    decode_path,
    index_functions,
    parse_template,
)


def http_fn(
    name: str, route: str | None = None, methods: list[str] | None = None
) -> IndexedFunction:
    trigger: dict[str, Any] = {"type": "httpTrigger", "name": "req", "direction": "IN"}
    if route is not None:
        trigger["route"] = route
    if methods is not None:
        trigger["methods"] = methods
    return IndexedFunction(name, (trigger, {"type": "http", "name": "$return"}), lambda req: None)


def routed(table: RouteTable, method: str, path: str) -> RouteMatch:
    found = table.match(method, path)
    assert found is not NOT_FOUND, f"{method} {path} did not route"
    return found


# -- templates ---------------------------------------------------------------------------------------------------


def test_parameters_and_literals() -> None:
    t = parse_template("job/{job_id}/output/{output_id}")
    assert t.match("/job/42/output/7") == {"job_id": "42", "output_id": "7"}
    assert t.match("/JOB/42/Output/7/") == {
        "job_id": "42",
        "output_id": "7",
    }  # literals ignore case
    assert t.match("/job/42/output") is None
    assert t.match("/job/42/output/7/extra") is None


def test_optional_default_and_catch_all() -> None:
    assert parse_template("opt/{o?}").match("/opt") == {}
    assert parse_template("opt/{o?}").match("/opt/x") == {"o": "x"}
    assert parse_template("page/{n=1}").match("/page") == {"n": "1"}
    files = parse_template("files/{*rest}")
    assert files.match("/files/a/b/c.txt") == {"rest": "a/b/c.txt"}
    assert files.match("/files") == {}
    assert parse_template("files/{**rest}").match("/files/a/b") == {"rest": "a/b"}


def test_complex_segment_matches_right_to_left() -> None:
    assert parse_template("dl/{name}.{ext}").match("/dl/archive.tar.gz") == {
        "name": "archive.tar",
        "ext": "gz",
    }


def test_empty_template_matches_the_root() -> None:
    assert parse_template("").match("/") == {}


@pytest.mark.parametrize(
    "template", ["a/{x}/{x}", "{*rest}/tail", "a/{x:nosuch}", "a//b", "a/{x}{y}", "a/{x"]
)
def test_bad_templates_are_refused(template: str) -> None:
    with pytest.raises(RouteTemplateError):
        parse_template(template)


@pytest.mark.parametrize(
    ("template", "good", "bad"),
    [
        ("{v:int}", ["0", "-12", "+7", "2147483647"], ["2147483648", "1.5", "x", "1e3"]),
        ("{v:long}", ["9223372036854775807"], ["9223372036854775808", "abc"]),
        ("{v:alpha}", ["abc", "XyZ"], ["ab1", "a-b"]),
        ("{v:bool}", ["true", "False"], ["yes", "1"]),
        ("{v:double}", ["1.5", "-2", "3e10", ".5"], ["1.2.3", "x"]),
        (
            "{v:guid}",
            [
                "0f8fad5b-d9cb-469f-a165-70867728950e",
                "0f8fad5bd9cb469fa16570867728950e",
                "{0f8fad5b-d9cb-469f-a165-70867728950e}",
            ],
            ["0f8fad5b-d9cb-469f-a165", "zz"],
        ),
        ("{v:int:min(10)}", ["10", "99"], ["9", "x"]),
        ("{v:range(1,3)}", ["1", "3"], ["0", "4"]),
        ("{v:length(2)}", ["ab"], ["a", "abc"]),
        ("{v:minlength(2):maxlength(3)}", ["ab", "abc"], ["a", "abcd"]),
        ("{v:regex(^j-[0-9]+$)}", ["j-1", "J-22"], ["j-", "xj-1"]),
        ("{v:datetime}", ["2025-01-31", "2025-01-31T10:00:00"], ["tomorrow"]),
    ],
)
def test_constraints(template: str, good: list[str], bad: list[str]) -> None:
    t = parse_template("c/" + template)
    for value in good:
        assert t.match(f"/c/{value}") == {"v": value}, value
    for value in bad:
        assert t.match(f"/c/{value}") is None, value


def test_decode_keeps_encoded_slashes() -> None:
    assert decode_path("/a%20b/c%2Fd") == "/a b/c%2Fd"
    assert parse_template("x/{name}").match(decode_path("/x/a%2Fb")) == {"name": "a%2Fb"}


# -- the route table -----------------------------------------------------------------------------------------------


def test_prefix_and_default_route() -> None:
    table = RouteTable([http_fn("ping"), http_fn("job", "job/{id}")], prefix="api")
    assert routed(table, "GET", "/api/ping").function.name == "ping"  # no route: the function name
    assert routed(table, "GET", "/api/job/1").params == {"id": "1"}
    assert table.match("GET", "/job/1") is NOT_FOUND
    bare = RouteTable([http_fn("job", "job/{id}")], prefix="")
    assert routed(bare, "GET", "/job/1").params == {"id": "1"}


def test_unknown_path_and_wrong_method_are_both_not_found() -> None:
    table = RouteTable([http_fn("get_job", "job/{id}", ["GET"])], prefix="")
    assert table.match("GET", "/nope") is NOT_FOUND
    assert table.match("DELETE", "/job/1") is NOT_FOUND  # not 405: azure-functions-host#10098
    assert table.match("HEAD", "/job/1") is NOT_FOUND  # GET does not imply HEAD


def test_same_path_goes_to_the_function_that_takes_the_method() -> None:
    table = RouteTable(
        [http_fn("a_get", "job/{id}", ["GET"]), http_fn("b_delete", "job/{id}", ["DELETE"])], ""
    )
    assert routed(table, "DELETE", "/job/1").function.name == "b_delete"
    assert routed(table, "get", "/job/1").function.name == "a_get"


def test_no_methods_means_every_method() -> None:
    table = RouteTable([http_fn("any", "any")], prefix="")
    for method in ("GET", "POST", "PATCH", "HEAD", "OPTIONS"):
        assert routed(table, method, "/any").function.name == "any"


def test_a_failing_constraint_falls_through_to_the_next_route() -> None:
    table = RouteTable(
        [http_fn("a_by_id", "items/{id:int}"), http_fn("b_by_name", "items/{name}")], prefix=""
    )
    assert routed(table, "GET", "/items/5").function.name == "a_by_id"
    assert routed(table, "GET", "/items/five").function.name == "b_by_name"


def test_host_order_is_function_name_order(caplog: pytest.LogCaptureFixture) -> None:
    # The host sorts functions by name (OrdinalIgnoreCase) and the first matching route wins:
    # a parameter route can shadow a literal one (azure-functions-host#9876).
    functions = [http_fn("list_items", "items/recent"), http_fn("get_item", "items/{id}")]
    table = RouteTable(functions, prefix="")
    with caplog.at_level(logging.WARNING, logger="devhost.routing"):
        assert routed(table, "GET", "/items/recent").function.name == "get_item"
    assert "function-name order" in caplog.text
    assert routed(table, "GET", "/items/7").function.name == "get_item"


def test_host_order_compares_upper_case_like_dotnet() -> None:
    # OrdinalIgnoreCase upper-cases first, so "ITEMS" < "ITEM_" ('S' 0x53 < '_' 0x5F).
    table = RouteTable([http_fn("item_x", "{a}"), http_fn("items", "{b}")], prefix="")
    assert [r.function.name for r in table.routes] == ["items", "item_x"]


def test_aspnet_order_prefers_literals_then_constraints() -> None:
    functions = [
        http_fn("a_any", "items/{*rest}"),
        http_fn("b_param", "items/{id}"),
        http_fn("c_int", "items/{id:int}"),
        http_fn("d_literal", "items/recent"),
    ]
    table = RouteTable(functions, prefix="", order="aspnet")
    assert routed(table, "GET", "/items/recent").function.name == "d_literal"
    assert routed(table, "GET", "/items/3").function.name == "c_int"
    assert routed(table, "GET", "/items/x").function.name == "b_param"
    assert routed(table, "GET", "/items/x/y").function.name == "a_any"


def test_index_once_even_after_someone_else_indexed() -> None:
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.route(route="x")
    def x(req: func.HttpRequest) -> str:
        return "x"

    assert [f.get_function_name() for f in app.get_functions()] == [
        "x"
    ]  # a test fixture got there first
    first = index_functions(app)
    assert [f.name for f in first] == ["x"]
    assert index_functions(app) is first
    assert first[0].trigger["route"] == "x"
