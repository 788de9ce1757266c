"""The simulator's route: `PATCH /job/{id}/status` with `Authorization: Bearer <job token>` (not a user token)."""

from __future__ import annotations

import azure.functions as func

from blueprints._http import answers_problems, json_body, json_response

bp = func.Blueprint()


@bp.function_name("report_status")
@bp.route(route="job/{job_id}/status", methods=["PATCH"], auth_level=func.AuthLevel.ANONYMOUS)
@answers_problems
def report_status(req: func.HttpRequest) -> func.HttpResponse:
    """A status report from the job's simulator: 200 with the status (and the upload grant at FINALIZING)."""
    from core.reports import report_status as report

    job_id = str(req.route_params.get("job_id", ""))
    # The body is read only once the job token is known good: 401 comes before 413, 415 and 422.
    return json_response(report(job_id, req.headers.get("Authorization"), lambda: json_body(req)))
