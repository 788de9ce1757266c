"""The output routes: list a job's outputs, and sign a short-lived download URL for one. User token required."""

from __future__ import annotations

import azure.functions as func

from blueprints._http import answers_problems, json_response, query_text
from core import outputs
from core.auth import authenticate
from core.errors import InvalidInput

bp = func.Blueprint()


@bp.function_name("list_outputs")
@bp.route(route="job/{job_id}/output", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@answers_problems
def list_outputs(req: func.HttpRequest) -> func.HttpResponse:
    """The job's outputs: id, name, content type, size and storage URI (without a token)."""
    caller = authenticate(req.headers.get("Authorization"))
    return json_response(outputs.list_outputs(caller, str(req.route_params.get("job_id", ""))))


@bp.function_name("download_output")
@bp.route(route="job/{job_id}/output/{output_id}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@answers_problems
def download_output(req: func.HttpRequest) -> func.HttpResponse:
    """A read-only SAS URL for one output; `?redirect=true` answers 302 to it instead."""
    caller = authenticate(req.headers.get("Authorization"))
    redirect = _flag(query_text(req, "redirect", 5))
    route = req.route_params
    grant = outputs.download(caller, str(route.get("job_id", "")), str(route.get("output_id", "")))
    if redirect:
        return func.HttpResponse(status_code=302, headers={"Location": grant["url"], "Cache-Control": "no-store"})
    return json_response(grant, headers={"Cache-Control": "no-store"})


def _flag(text: str | None) -> bool:
    if text in (None, "false", "0"):
        return False
    if text in ("true", "1"):
        return True
    raise InvalidInput.field("redirect", "must be true or false", "query")
