"""The public case catalog: `GET /case` and `GET /case/{case_id}` (no token: the catalog holds no secrets)."""

from __future__ import annotations

import re

import azure.functions as func

from blueprints._http import answers_problems, json_response, page_links, query_int
from core.errors import InvalidInput
from core.limits import CASE_REF, MAX_PAGE, MAX_PER_PAGE

bp = func.Blueprint()


@bp.function_name("list_cases")
@bp.route(route="case", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@answers_problems
def list_cases(req: func.HttpRequest) -> func.HttpResponse:
    """One page of case headers; `Link` and `X-Total-Count` tell the rest."""
    page = query_int(req, "page", default=1, low=1, high=MAX_PAGE)
    per_page = query_int(req, "per_page", default=10, low=1, high=MAX_PER_PAGE)
    from core import catalog  # its pydantic models build on first use, not in every cold start's import

    headers, total = catalog.list_cases(page, per_page)
    links = page_links("/case", page, per_page, total)
    return json_response(headers, headers={"Link": links, "X-Total-Count": str(total)})


@bp.function_name("show_case")
@bp.route(route="case/{case_id}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@answers_problems
def show_case(req: func.HttpRequest) -> func.HttpResponse:
    """The whole case, by id (`/case/2`) or by name (`/case/smoothie`)."""
    ref = _case_ref(req.route_params.get("case_id", ""))
    from core import catalog  # see list_cases

    return json_response(catalog.show_case(ref))


def _case_ref(raw: str) -> int | str:
    if not re.fullmatch(CASE_REF, raw):
        raise InvalidInput.field("case_id", "must be a case id (a whole number) or a case name", "path")
    return int(raw) if raw.isdigit() and len(raw) <= 9 else raw
