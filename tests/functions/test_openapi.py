"""The OpenAPI document against the app: every HTTP function, method, path and query parameter, both ways; the
response models against what the views really build; each declared pattern, enum and bound against the code that
checks it, so that a value the document allows is never refused as malformed, nor one it forbids taken; the links.

The document and the request parsing come from one declaration per operation (`blueprints._contract`); these
tests check that the one declaration really drives both."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blueprints._contract import API, PATH_PARAMETERS, Query, plain
from blueprints.openapi import document as build_document
from core.bodies import OUTPUT_FILE, JobCreate, StatusReport, parse_body
from core.errors import InvalidBody, InvalidInput, NotFound
from core.limits import CASE_REF, CURSOR, MAX_PAGE
from core.records import JOB_ID, split_job_id
from core.states import REPORTED_PATTERN, JobState
from core.views import CaseDetail, CaseHeader, JobDetail, JobHeader, JobStatusView
from tests.functions.conftest import Call, body_of

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return (
        build_document()
    )  # the conftest imported function_app: every blueprint has declared its operations


def http_functions(functions: dict[str, Any]) -> list[tuple[str, str, tuple[str, ...]]]:
    """(name, route, methods) of every HTTP function of the app, as the worker indexes them."""
    return [
        (name, t.route, tuple(str(m.value) for m in t.methods))
        for name, f in functions.items()
        if (t := f.get_trigger()) is not None and t.get_binding_name() == "httpTrigger"
    ]


def test_every_route_and_method_is_documented_and_nothing_else(
    document: dict[str, Any], functions: dict[str, Any]
) -> None:
    every = http_functions(functions)
    assert {name for name, _, _ in every} == {
        op.name for op in API
    }  # every HTTP function is declared, only they
    documented = [(route, methods) for name, route, methods in every if API[name].documented]
    in_app = {(f"/{route}", m.lower()) for route, methods in documented for m in methods}
    in_doc = {(path, method) for path, ops in document["paths"].items() for method in ops}
    assert in_app == in_doc
    assert {name for name, _, _ in every if API[name].documented} == {
        op["operationId"] for ops in document["paths"].values() for op in ops.values()
    }


def test_query_and_path_parameters_are_the_declared_ones(document: dict[str, Any]) -> None:
    for op in (op for op in API if op.documented):
        params = document["paths"][f"/{op.route}"][op.method.lower()]["parameters"]
        assert [p["name"] for p in params if p["in"] == "query"] == [q.name for q in op.query], (
            op.name
        )
        path = {p["name"] for p in params if p["in"] == "path"}
        assert path == set(re.findall(r"\{(\w+)\}", op.route)), op.name


def boundary_values(schema: dict[str, Any]) -> list[tuple[str, bool]]:
    """Values at and just past each bound of a query schema, and whether the schema allows each."""
    if schema["type"] == "integer":
        low, high = schema["minimum"], schema["maximum"]
        return [
            (str(low), True),
            (str(high), True),
            (str(low - 1), False),
            (str(high + 1), False),
            ("1.5", False),
        ]
    if "enum" in schema:
        return [
            *((v, True) for v in schema["enum"]),
            (schema["enum"][0].swapcase(), False),
            ("x", False),
        ]
    longest = schema["maxLength"]
    return [("a" * longest, True), ("a" * (longest + 1), False)]


def _refused(query: Query[Any], value: str) -> list[str] | None:
    """The names reading `?<query>=<value>` refuses with `InvalidInput`, or None when it takes the value."""
    try:
        query.read(
            func.HttpRequest("GET", "http://localhost/", params={query.name: value}, body=b"")
        )
    except InvalidInput as exc:
        return [e.name for e in exc.errors]
    return None


def test_every_declared_query_reads_exactly_what_the_document_says(
    document: dict[str, Any],
) -> None:
    """The code's bounds are the document's, for every query parameter of every operation: a value at a bound is
    taken, one past it is 400 naming the parameter."""
    checked = 0
    for op in (op for op in API if op.documented):
        params = document["paths"][f"/{op.route}"][op.method.lower()]["parameters"]
        for query, param in zip(op.query, (p for p in params if p["in"] == "query"), strict=True):
            for value, allowed in boundary_values(param["schema"]):
                refused = _refused(query, value)
                assert (refused is None) == allowed, (op.name, query.name, value)
                assert refused in (None, [query.name]), (
                    op.name,
                    refused,
                )  # a refusal names the parameter
                checked += 1
    assert checked > 30


def test_the_served_document_is_the_generated_one(call: Call, document: dict[str, Any]) -> None:
    served = call("openapi", "http://localhost/openapi.json")
    assert served.status_code == 200
    assert served.mimetype == "application/json"
    assert body_of(served) == json.loads(json.dumps(document))
    assert document["openapi"] == "3.1.0"


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    text = json.dumps(document)
    refs = {r.split("/")[-1] for r in re.findall(r'"\$ref": "([^"]+)"', text)}
    assert refs <= set(document["components"]["schemas"])


def test_case_views_match_their_models(call: Call) -> None:
    for case in body_of(call("list_cases", "http://localhost/case", params={"per_page": "100"})):
        CaseHeader.model_validate(case)
        CaseDetail.model_validate(
            body_of(
                call(
                    "show_case",
                    "http://localhost/case/x",
                    route_params={"case_id": str(case["id"])},
                )
            )
        )


def test_job_views_match_their_models() -> None:
    """What the routes answer (the views, dumped) is what the document's models describe."""
    from core.catalog import get_catalog
    from core.records import Change, Job, Output
    from core.views import detail, header, status_view

    job = Job(
        job_id="0123456789abcdef-8765432109876-abcdef",
        owner="o",
        owner_name="o",
        case_id=2,
        title="t",
        description="",
        status=JobState.FAILED,
        created_at="c",
        updated_at="u",
        values={"mesh": "coarse"},
        history=(Change(JobState.DRAFT, "c", "o"),),
        reason="exit code 3",
        progress=5.0,
        message="m",
        outputs=(Output("a.csv", "mixing_index", "a.csv", "A", "text/csv", 3),),
        scheduler_id="7",
    )
    JobDetail.model_validate(plain(detail(job, get_catalog().get(2))))
    JobHeader.model_validate(plain(header(job)))
    JobStatusView.model_validate(plain(status_view(job)))
    quiet = Job(**{**job.__dict__, "reason": None, "progress": None, "message": ""})
    assert set(plain(status_view(quiet))) == {
        "job_id",
        "status",
        "updated_at",
    }  # a poll leaves out what is unset
    assert (
        plain(detail(quiet, get_catalog().get(2)))["reason"] is None
    )  # the detail shows it as null


# -- the document declares exactly what the code takes ----------------------------------------------------------

# JSON Schema 2020-12 and OpenAPI 3.1 keywords a schema object may hold; anything else (pydantic's `ge`, say) is not
# a constraint to a client or a fuzzer, whatever the code enforces.
SCHEMA_KEYWORDS = {
    "$ref",
    "$defs",
    "type",
    "enum",
    "const",
    "title",
    "description",
    "default",
    "examples",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "prefixItems",
    "anyOf",
    "oneOf",
    "allOf",
    "not",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "pattern",
    "format",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "propertyNames",
    "discriminator",
    "readOnly",
    "writeOnly",
    "deprecated",
}


def schemas_in(schema: Any) -> Iterator[dict[str, Any]]:
    """`schema` and every schema nested in it (not property names or enum values)."""
    if not isinstance(schema, dict):
        return
    yield schema
    for key in ("items", "additionalProperties", "propertyNames", "not"):
        yield from schemas_in(schema.get(key))
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for sub in schema.get(key, ()):
            yield from schemas_in(sub)
    for sub in schema.get("properties", {}).values():
        yield from schemas_in(sub)


def every_schema(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for schema in document["components"]["schemas"].values():
        yield from schemas_in(schema)
    for ops in document["paths"].values():
        for op in ops.values():
            for param in op["parameters"]:
                yield from schemas_in(param["schema"])


def test_every_schema_uses_only_json_schema_keywords(document: dict[str, Any]) -> None:
    for schema in every_schema(document):
        assert set(schema) <= SCHEMA_KEYWORDS, schema
        if "pattern" in schema:
            re.compile(schema["pattern"])


def path_schema(document: dict[str, Any], name: str) -> dict[str, Any]:
    found = [
        p["schema"]
        for ops in document["paths"].values()
        for op in ops.values()
        for p in op["parameters"]
        if p["in"] == "path" and p["name"] == name
    ]
    assert found, name
    assert all(s == found[0] for s in found), (
        name
    )  # one declaration, wherever the parameter appears
    return found[0]


def query_schema(document: dict[str, Any], path: str, name: str) -> dict[str, Any]:
    [schema] = [
        p["schema"] for p in document["paths"][path]["get"]["parameters"] if p["name"] == name
    ]
    return schema


def declared(schema: dict[str, Any], value: str) -> bool:
    """Whether a string value is one the (string) schema allows."""
    if "enum" in schema:
        return value in schema["enum"]
    return (
        schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", 10**9)
        and re.fullmatch(schema["pattern"], value) is not None
    )


def accepted(check: Callable[[str], Any], value: str) -> bool:
    try:
        check(value)
    except InvalidInput:
        return False
    return True


def agrees(schema: dict[str, Any], check: Callable[[str], Any]) -> Callable[[str], None]:
    def test(value: str) -> None:
        assert declared(schema, value) == accepted(check, value), repr(value)

    return test


NEAR_MISSES = st.one_of(
    st.text(),
    st.text(alphabet="0123456789abcdef-ABCDEFz_~. \n/", max_size=80),
    st.from_regex(r"[0-9a-f]{16}-[0-9]{13}-[0-9a-f]{6}\n?", fullmatch=True),
)


@pytest.mark.parametrize("name", ["job_id", "case_id", "output_id"])
def test_each_path_parameter_schema_is_the_declared_one(
    document: dict[str, Any], name: str
) -> None:
    assert path_schema(document, name) == PATH_PARAMETERS[name].schema


@given(st.one_of(NEAR_MISSES, st.from_regex(JOB_ID.pattern, fullmatch=True)))
@settings(max_examples=300, deadline=None)
def test_the_job_id_schema_is_what_split_job_id_takes(value: str) -> None:
    agrees(PATH_PARAMETERS["job_id"].schema, split_job_id)(value)


@given(
    st.one_of(
        NEAR_MISSES,
        st.from_regex(CASE_REF, fullmatch=True),
        st.sampled_from(["0", "7", "a", "ab", "-a", "9" * 9, "9" * 10, "A2"]),
    )
)
@settings(max_examples=300, deadline=None)
def test_the_case_id_schema_is_what_show_case_takes(value: str) -> None:
    from blueprints.cases import _case_ref

    agrees(PATH_PARAMETERS["case_id"].schema, _case_ref)(value)


def test_every_case_is_named_by_both_its_refs() -> None:
    from core.catalog import get_catalog

    schema = PATH_PARAMETERS["case_id"].schema
    for case in get_catalog().cases:
        assert declared(schema, str(case.id)), case.id
        assert declared(schema, case.slug), case.slug


@given(st.from_regex(OUTPUT_FILE, fullmatch=True).filter(lambda f: len(f) <= 300))
@settings(max_examples=200, deadline=None)
def test_every_claimable_output_has_a_declared_output_id(file: str) -> None:
    from core.reports import output_id

    assert declared(PATH_PARAMETERS["output_id"].schema, output_id(file))


@given(
    st.one_of(
        st.sampled_from([*(s.value for s in JobState), "completed", "done", " DRAFT", "DRAFT\n"]),
        st.text(max_size=12),
    )
)
@settings(max_examples=200, deadline=None)
def test_the_status_query_is_the_states_enum(document: dict[str, Any], value: str) -> None:
    from core.job_operations import _state_named

    agrees(query_schema(document, "/job", "status"), _state_named)(value)


@given(
    st.one_of(
        st.from_regex(CURSOR, fullmatch=True),
        st.text(max_size=30),
        st.sampled_from(["eyJ4IjoxfQ", "garbage", "a=", "a b", "%00"]),
    )
)
@settings(max_examples=300, deadline=None)
def test_the_cursor_schema_is_what_refuses_as_malformed(
    document: dict[str, Any], value: str
) -> None:
    """A cursor the document allows is never 400: it is a page, or no such page (404)."""
    from core.storage.jobs_table import decode_cursor

    def shape_only(text: str) -> None:
        with contextlib.suppress(NotFound):
            decode_cursor(text)

    if value:  # an empty value is no cursor at all (the host leaves it out)
        agrees(query_schema(document, "/job", "cursor"), shape_only)(value)


def test_a_real_cursor_is_declared(document: dict[str, Any]) -> None:
    from core.storage.jobs_table import encode_cursor

    cursor = encode_cursor(
        {"PartitionKey": "1!20!MGE1YjgyNGUyY2YwOWMzOA--", "RowKey": "1!48!ODIwMzg0"}
    )
    assert cursor is not None
    assert declared(query_schema(document, "/job", "cursor"), cursor)


ODD_STATES = [
    "QUEUED",
    "draft",
    " done",
    "done\n",
    "\u00a0done",
    "\x1cdone",
    "runnıng",
    "ﬁnalizing",
    "Clean Up",
]


@given(
    st.one_of(
        st.from_regex(REPORTED_PATTERN, fullmatch=True),
        st.text(max_size=12),
        st.sampled_from(ODD_STATES),
    )
)
@settings(max_examples=300, deadline=None)
def test_the_reported_status_pattern_is_what_reports_take(value: str) -> None:
    from core.reports import reported_state as _state

    schema = StatusReport.model_json_schema()["properties"]["status"]
    try:
        _state(value)
    except InvalidBody:
        taken = False
    else:
        taken = True
    assert (re.fullmatch(schema["pattern"], value) is not None) == taken, repr(value)


METRIC_VALUES = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(),
    st.sampled_from([10**400, True, "1.5", None, [1.0]]),
)


@given(
    st.dictionaries(
        st.one_of(st.from_regex(r"[a-z][a-z0-9_]{0,62}", fullmatch=True), st.text(max_size=70)),
        METRIC_VALUES,
        max_size=3,
    )
    | st.dictionaries(st.from_regex(r"m[0-9]{1,3}", fullmatch=True), st.just(1.0), max_size=60)
)
@settings(max_examples=300, deadline=None)
def test_the_metrics_schema_is_what_reports_take(metrics: dict[str, Any]) -> None:
    schema = StatusReport.model_json_schema()["properties"]["metrics"]["anyOf"][0]
    values = schema["additionalProperties"]

    def number(v: Any) -> bool:
        is_number = isinstance(v, int | float) and not isinstance(v, bool)
        return is_number and values["minimum"] <= v <= values["maximum"]

    documented = (
        len(metrics) <= schema["maxProperties"]
        and all(re.fullmatch(schema["propertyNames"]["pattern"], k) for k in metrics)
        and all(number(v) for v in metrics.values())
    )
    try:
        parse_body(StatusReport, {"status": "COMPLETED", "metrics": metrics})
    except InvalidBody:
        taken = False
    else:
        taken = True
    assert documented == taken, metrics


def test_a_new_job_names_a_case_of_the_catalog(document: dict[str, Any]) -> None:
    from core.catalog import get_catalog

    case_id = document["components"]["schemas"]["JobCreate"]["properties"]["case_id"]
    assert case_id["enum"] == sorted(c.id for c in get_catalog().cases)


def test_integers_in_bodies_take_what_json_schema_calls_an_integer() -> None:
    """`integer` in JSON Schema is any number without a fraction: 2.0 is one, 2.5 and "2" are not."""
    assert parse_body(JobCreate, {"case_id": 2.0, "job_title": "t"}).case_id == 2
    assert parse_body(StatusReport, {"status": "FAILED", "exit_code": -3.0}).exit_code == -3
    for bad in (2.5, "2", True, 1e300, float("inf")):
        with pytest.raises(InvalidBody):
            parse_body(JobCreate, {"case_id": bad, "job_title": "t"})


@pytest.mark.parametrize(("page", "status"), [(1, 200), (MAX_PAGE, 200), (MAX_PAGE + 1, 400)])
def test_the_page_bound_is_the_documented_one(
    call: Call, document: dict[str, Any], page: int, status: int
) -> None:
    assert query_schema(document, "/case", "page")["maximum"] == MAX_PAGE
    assert (
        call("list_cases", "http://localhost/case", params={"page": str(page)}).status_code
        == status
    )


def test_every_query_parameter_may_be_empty_as_the_host_drops_empty_values(
    document: dict[str, Any],
) -> None:
    for ops in document["paths"].values():
        for op in ops.values():
            assert all(
                p.get("allowEmptyValue") is True for p in op["parameters"] if p["in"] == "query"
            )


def test_every_link_names_an_operation_and_gives_all_its_path_parameters(
    document: dict[str, Any],
) -> None:
    operations = {
        op["operationId"]: (path, op)
        for path, ops in document["paths"].items()
        for op in ops.values()
    }
    links = [
        (source, link)
        for _, op in operations.values()
        for code, answer in op["responses"].items()
        for source, link in [
            (f"{op['operationId']} {code}", link) for link in answer.get("links", {}).values()
        ]
    ]
    assert links
    for source, link in links:
        path, _ = operations[link["operationId"]]
        assert set(link["parameters"]) == set(re.findall(r"\{(\w+)\}", path)), source
        for expression in link["parameters"].values():
            assert re.fullmatch(r"\$request\.path\.\w+|\$response\.body#(/\w+)+", expression), (
                source
            )


def test_a_new_job_links_to_every_job_route(document: dict[str, Any]) -> None:
    links = document["paths"]["/job"]["post"]["responses"]["201"]["links"]
    job_routes = {
        op["operationId"]
        for path, ops in document["paths"].items()
        if path.startswith("/job/{job_id}") and path.count("{") == 1
        for op in ops.values()
    }
    assert {
        name
        for name, link in links.items()
        if link["parameters"] == {"job_id": "$response.body#/job_id"}
    } == job_routes
