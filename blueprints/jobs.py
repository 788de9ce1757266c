"""The job routes: create, edit, run, list, show, poll, cancel, copy and delete. Each takes a user's bearer token."""

from __future__ import annotations

import azure.functions as func

from blueprints._http import (
    answers_problems,
    app_url,
    json_body,
    json_response,
    link_header,
    query_int,
    query_opt_int,
    query_text,
)
from core import job_operations as jobs
from core.auth import Principal, authenticate
from core.errors import InvalidInput
from core.limits import MAX_CASE_ID, MAX_CURSOR, MAX_PER_PAGE

bp = func.Blueprint()


def _caller(req: func.HttpRequest) -> Principal:
    return authenticate(req.headers.get("Authorization"))


def _job_id(req: func.HttpRequest) -> str:
    return str(req.route_params.get("job_id", ""))


@bp.function_name("create_job")
@bp.route(route="job", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@answers_problems
def create_job(req: func.HttpRequest) -> func.HttpResponse:
    """Make a DRAFT job of a case: 201 with the job and its `Location`."""
    job = jobs.create_job(_caller(req), json_body(req))
    return json_response(job, 201, {"Location": app_url(f"/job/{job['job_id']}")})


@bp.function_name("list_jobs")
@bp.route(route="job", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@answers_problems
def list_jobs(req: func.HttpRequest) -> func.HttpResponse:
    """The caller's jobs, newest first, a page at a time; `Link: rel="next"` carries the cursor."""
    caller = _caller(req)
    page, cursor = jobs.list_jobs(
        caller,
        status=query_text(req, "status", 40),
        case_id=query_opt_int(req, "case_id", low=1, high=MAX_CASE_ID),
        per_page=query_int(req, "per_page", default=20, low=1, high=MAX_PER_PAGE),
        cursor=query_text(req, "cursor", MAX_CURSOR),
        everyone=_true_or_false("all", query_text(req, "all", 10)),
    )
    return json_response(page, headers={"Link": _next_link(req, cursor)} if cursor else None)


def _true_or_false(name: str, text: str | None) -> bool:
    if text not in (None, "true", "false"):
        raise InvalidInput.field(name, "must be true or false", "query")
    return text == "true"


def _next_link(req: func.HttpRequest, cursor: str) -> str:
    """The next page: this request's own query with the new cursor (the path is the route's, not the request's)."""
    query = {k: v for k, v in req.params.items() if k != "cursor"} | {"cursor": cursor}
    return link_header("/job", {"next": query})


@bp.function_name("show_job")
@bp.route(route="job/{job_id}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@answers_problems
def show_job(req: func.HttpRequest) -> func.HttpResponse:
    """Everything about one job: values with units, status, history, times."""
    return json_response(jobs.show_job(_caller(req), _job_id(req)))


@bp.function_name("run_job")
@bp.route(route="job/{job_id}", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@answers_problems
def run_job(req: func.HttpRequest) -> func.HttpResponse:
    """Run a DRAFT job: 202 with its status; 409 if it ran already; 422 naming required fields still unset."""
    status = jobs.run_job(_caller(req), _job_id(req))
    return json_response(status, 202, {"Location": app_url(f"/job/{status['job_id']}/status")})


@bp.function_name("update_job")
@bp.route(route="job/{job_id}", methods=["PATCH"], auth_level=func.AuthLevel.ANONYMOUS)
@answers_problems
def update_job(req: func.HttpRequest) -> func.HttpResponse:
    """Set a DRAFT job's title, description or values: 200 with the job, 422 listing every bad value."""
    return json_response(jobs.update_job(_caller(req), _job_id(req), json_body(req)))


@bp.function_name("delete_job")
@bp.route(route="job/{job_id}", methods=["DELETE"], auth_level=func.AuthLevel.ANONYMOUS)
@answers_problems
def delete_job(req: func.HttpRequest) -> func.HttpResponse:
    """Remove a DRAFT or finished job: 204; 409 while it is active."""
    jobs.delete_job(_caller(req), _job_id(req))
    return func.HttpResponse(status_code=204)


@bp.function_name("job_status")
@bp.route(route="job/{job_id}/status", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@answers_problems
def job_status(req: func.HttpRequest) -> func.HttpResponse:
    """The job's status, for polling: one point read."""
    return json_response(jobs.job_status(_caller(req), _job_id(req)))


@bp.function_name("cancel_job")
@bp.route(route="job/{job_id}/cancel", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@answers_problems
def cancel_job(req: func.HttpRequest) -> func.HttpResponse:
    """Stop a job that was run: 202 with its status (CANCELLING, or CANCELLED); 409 once it has ended."""
    from core import cancel

    status = cancel.cancel_job(_caller(req), _job_id(req))
    return json_response(status, 202, {"Location": app_url(f"/job/{status['job_id']}/status")})


@bp.function_name("copy_job")
@bp.route(route="job/{job_id}/copy", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@answers_problems
def copy_job(req: func.HttpRequest) -> func.HttpResponse:
    """Rerun: a new DRAFT with the same case and values, titled "<title> (copy)" unless `job_title` is sent."""
    body = json_body(req) if req.get_body() else {}
    job = jobs.copy_job(_caller(req), _job_id(req), body)
    return json_response(job, 201, {"Location": app_url(f"/job/{job['job_id']}")})
