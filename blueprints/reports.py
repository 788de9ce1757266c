"""The simulator's route: `PATCH /job/{id}/status` with `Authorization: Bearer <job token>` (not a user token)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import azure.functions as func

from blueprints._contract import Call, operation
from blueprints._lazy import lazy_module
from core.errors import Conflict, Unavailable

if TYPE_CHECKING:
    from core import reports
    from core.views import ReportReply
else:
    reports = lazy_module("core.reports")

bp = func.Blueprint()


@operation(
    bp,
    "PATCH",
    "job/{job_id}/status",
    auth="job",
    ok={200: "ReportReply"},
    errors=(Conflict, Unavailable),
    body="StatusReport",
)
def report_status(call: Call) -> ReportReply:
    """A status report from the job's simulator: 200 with the status (and the upload grant at FINALIZING)."""
    # The body is read only once the job token is known good: 401 comes before 413, 415 and 422.
    return reports.report_status(
        call.path("job_id"), call.header("Authorization"), lambda: call.body
    )
