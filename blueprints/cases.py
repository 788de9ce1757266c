"""The public case catalog: `GET /case` and `GET /case/{case_id}` (no token: the catalog holds no secrets)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import azure.functions as func

from blueprints._contract import Answer, Call, integer, operation
from blueprints._http import page_links
from blueprints._lazy import lazy_module
from core.errors import InvalidInput, NotFound
from core.limits import CASE_REF, MAX_PAGE, MAX_PER_PAGE

if TYPE_CHECKING:
    from core import catalog
    from core.views import CaseDetail
else:
    catalog = lazy_module(
        "core.catalog"
    )  # its pydantic models build on first use, not in every cold start

bp = func.Blueprint()

PAGE = integer("page", "page number, from 1", low=1, high=MAX_PAGE, default=1)
PER_PAGE = integer("per_page", "cases a page", low=1, high=MAX_PER_PAGE, default=10)


@operation(
    bp,
    "GET",
    "case",
    auth="none",
    ok={200: ("CaseHeader",)},
    query=(PAGE, PER_PAGE),
    headers={200: ("Link", "X-Total-Count")},
)
def list_cases(call: Call) -> Answer:
    """One page of case headers; `Link` and `X-Total-Count` tell the rest."""
    page, per_page = call.query(PAGE), call.query(PER_PAGE)
    headers, total = catalog.list_cases(page, per_page)
    links = page_links("/case", page, per_page, total)
    return Answer(headers, headers={"Link": links, "X-Total-Count": str(total)})


@operation(bp, "GET", "case/{case_id}", auth="none", ok={200: "CaseDetail"}, errors=(NotFound,))
def show_case(call: Call) -> CaseDetail:
    """The whole case, by id (`/case/2`) or by name (`/case/smoothie`)."""
    return catalog.show_case(_case_ref(call.path("case_id")))


def _case_ref(raw: str) -> int | str:
    if not re.fullmatch(CASE_REF, raw):
        raise InvalidInput.field(
            "case_id", "must be a case id (a whole number) or a case name", "path"
        )
    return int(raw) if raw.isdigit() and len(raw) <= 9 else raw
