"""The job routes: create, edit, run, list, show, poll, cancel, copy and delete. Each takes a user's bearer token."""

from __future__ import annotations

from typing import TYPE_CHECKING

import azure.functions as func

from blueprints._contract import Answer, Call, choice, flag, integer, operation, text
from blueprints._http import app_url
from blueprints._lazy import lazy_module
from core.errors import Conflict, Forbidden, InvalidValues, NotFound, Unavailable
from core.limits import CURSOR, MAX_CASE_ID, MAX_CURSOR, MAX_PER_PAGE
from core.states import JobState

if TYPE_CHECKING:
    from core import cancel
    from core import job_operations as jobs
    from core.views import JobDetail, JobStatusView
else:
    cancel = lazy_module("core.cancel")
    jobs = lazy_module("core.job_operations")

bp = func.Blueprint()

STORED = (
    NotFound,
    Unavailable,
)  # any route that reads a job: not yours or no such job, storage down
STATUS = choice("status", "only jobs in this state", tuple(s.value for s in JobState))
CASE_ID = integer("case_id", "only jobs of this case", low=1, high=MAX_CASE_ID, default=None)
PER_PAGE = integer("per_page", "items a page", low=1, high=MAX_PER_PAGE, default=20)
CURSOR_QUERY = text(
    "cursor",
    "from the previous page's Link; 404 when it is not one this service gave out",
    max_length=MAX_CURSOR,
    pattern=CURSOR,
)
EVERYONE = flag("all", "admins: everyone's jobs")


@operation(
    bp,
    "POST",
    "job",
    auth="user",
    ok={201: "JobDetail"},
    errors=(Forbidden, Unavailable),
    body="JobCreate",
    headers={201: ("Location",)},
)
def create_job(call: Call) -> Answer:
    """Make a DRAFT job of a case: 201 with the job and its `Location`."""
    job = jobs.create_job(call.caller, call.body)
    return Answer(job, headers={"Location": app_url(f"/job/{job.job_id}")})


@operation(
    bp,
    "GET",
    "job",
    auth="user",
    ok={200: ("JobHeader",)},
    errors=(Forbidden, NotFound, Unavailable),
    query=(STATUS, CASE_ID, PER_PAGE, CURSOR_QUERY, EVERYONE),
    headers={200: ("Link",)},
)
def list_jobs(call: Call) -> Answer:
    """The caller's jobs, newest first, a page at a time; `Link: rel="next"` carries the cursor."""
    page, cursor = jobs.list_jobs(
        call.caller,
        status=call.query(STATUS),
        case_id=call.query(CASE_ID),
        per_page=call.query(PER_PAGE),
        cursor=call.query(CURSOR_QUERY),
        everyone=call.query(EVERYONE),
    )
    return Answer(page, headers=call.next_page("/job", cursor))


@operation(bp, "GET", "job/{job_id}", auth="user", ok={200: "JobDetail"}, errors=STORED)
def show_job(call: Call) -> JobDetail:
    """Everything about one job: values with units, status, history, times."""
    return jobs.show_job(call.caller, call.path("job_id"))


@operation(
    bp,
    "POST",
    "job/{job_id}",
    auth="user",
    ok={202: "JobStatusView"},
    errors=(*STORED, Conflict, InvalidValues),
    headers={202: ("Location",)},
)
def run_job(call: Call) -> Answer:
    """Run a DRAFT job: 202 with its status; 409 if it ran already; 422 naming required fields still unset."""
    status = jobs.run_job(call.caller, call.path("job_id"))
    return Answer(status, headers={"Location": app_url(f"/job/{status.job_id}/status")})


@operation(
    bp,
    "PATCH",
    "job/{job_id}",
    auth="user",
    ok={200: "JobDetail"},
    errors=(*STORED, Conflict),
    body="JobPatch",
)
def update_job(call: Call) -> JobDetail:
    """Set a DRAFT job's title, description or values: 200 with the job, 422 listing every bad value."""
    return jobs.update_job(call.caller, call.path("job_id"), call.body)


@operation(bp, "DELETE", "job/{job_id}", auth="user", ok={204: None}, errors=(*STORED, Conflict))
def delete_job(call: Call) -> None:
    """Remove a DRAFT or finished job: 204; 409 while it is active."""
    jobs.delete_job(call.caller, call.path("job_id"))


@operation(bp, "GET", "job/{job_id}/status", auth="user", ok={200: "JobStatusView"}, errors=STORED)
def job_status(call: Call) -> JobStatusView:
    """The job's status, for polling: one point read."""
    return jobs.job_status(call.caller, call.path("job_id"))


@operation(
    bp,
    "POST",
    "job/{job_id}/cancel",
    auth="user",
    ok={202: "JobStatusView"},
    errors=(*STORED, Conflict),
    headers={202: ("Location",)},
)
def cancel_job(call: Call) -> Answer:
    """Stop a job that was run: 202 with its status (CANCELLING, or CANCELLED); 409 once it has ended."""
    status = cancel.cancel_job(call.caller, call.path("job_id"))
    return Answer(status, headers={"Location": app_url(f"/job/{status.job_id}/status")})


@operation(
    bp,
    "POST",
    "job/{job_id}/copy",
    auth="user",
    ok={201: "JobDetail"},
    errors=STORED,
    body="JobCopy",
    body_required=False,
    headers={201: ("Location",)},
)
def copy_job(call: Call) -> Answer:
    """Rerun: a new DRAFT with the same case and values, titled "<title> (copy)" unless `job_title` is sent."""
    job = jobs.copy_job(call.caller, call.path("job_id"), call.body)
    return Answer(job, headers={"Location": app_url(f"/job/{job.job_id}")})
