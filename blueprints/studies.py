"""The study routes: create (or plan), list, show, run, list runs, cancel, rerun and delete. User token required."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import azure.functions as func

from blueprints._contract import Answer, Call, choice, flag, integer, operation, text
from blueprints._http import api_headers, app_url
from blueprints._lazy import lazy_module
from core.errors import Conflict, InvalidValues, NotFound, Unavailable
from core.limits import MAX_PER_PAGE

if TYPE_CHECKING:
    from core import studies
    from core.views import StudyDetail
else:
    studies = lazy_module("core.studies")

bp = func.Blueprint()

STORED = (
    NotFound,
    Unavailable,
)  # any route that reads a study: not yours or no such study, storage down
FORMAT = choice(
    "format", "json (the default) or csv; `Accept: text/csv` asks for csv too", ("json", "csv")
)
DRY_RUN = flag("dry_run", "answer the runs the study would make, and make nothing")
PER_PAGE = integer("per_page", "items a page", low=1, high=MAX_PER_PAGE, default=20)
CURSOR = text(
    "cursor", "from the previous page's Link", max_length=2000, pattern=r"^[A-Za-z0-9_-]+$"
)


@operation(
    bp,
    "POST",
    "study",
    auth="user",
    ok={201: "StudyDetail", 200: "StudyPlan"},
    errors=(InvalidValues, Unavailable),
    body="StudyCreate",
    query=(DRY_RUN,),
    headers={201: ("Location",)},
)
def create_study(call: Call) -> Answer:
    """Make a study of DRAFT runs, every value checked first: 201 with the study; `?dry_run=true` answers 200
    with the runs it would make, and makes nothing."""
    if call.query(DRY_RUN):
        return Answer(studies.plan_study(call.caller, call.body), status=200)
    made = studies.create_study(call.caller, call.body)
    return Answer(made, headers={"Location": app_url(f"/study/{made.study_id}")})


@operation(
    bp,
    "GET",
    "study",
    auth="user",
    ok={200: ("StudyHeader",)},
    errors=STORED,
    query=(PER_PAGE, CURSOR),
    headers={200: ("Link",)},
)
def list_studies(call: Call) -> Answer:
    """The caller's studies, newest first, a page at a time; `Link: rel="next"` carries the cursor."""
    page, cursor = studies.list_studies(call.caller, call.query(PER_PAGE), call.query(CURSOR))
    return Answer(page, headers=call.next_page("/study", cursor))


@operation(bp, "GET", "study/{study_id}", auth="user", ok={200: "StudyDetail"}, errors=STORED)
def show_study(call: Call) -> StudyDetail:
    """The study: its axes, and its runs counted by state, with progress and times."""
    return studies.show_study(call.caller, call.path("study_id"))


@operation(
    bp,
    "POST",
    "study/{study_id}",
    auth="user",
    ok={202: "StudyDetail"},
    errors=(*STORED, Conflict, InvalidValues),
)
def run_study(call: Call) -> Answer:
    """Run every DRAFT run of the study: 202 with the study; 409 when none is a DRAFT."""
    return Answer(studies.run_study(call.caller, call.path("study_id")), status=202)


@operation(
    bp,
    "GET",
    "study/{study_id}/runs",
    auth="user",
    ok={200: ("StudyRun",)},
    errors=STORED,
    query=(PER_PAGE, CURSOR),
    headers={200: ("Link",)},
)
def study_runs(call: Call) -> Answer:
    """The study's runs in index order, a page at a time, each with its varied values and status."""
    study_id = call.path("study_id")
    page, cursor = studies.study_runs(
        call.caller, study_id, call.query(PER_PAGE), call.query(CURSOR)
    )
    return Answer(page, headers=call.next_page(f"/study/{study_id}/runs", cursor))


@operation(
    bp,
    "GET",
    "study/{study_id}/results",
    auth="user",
    ok={200: ("StudyResult",)},
    errors=STORED,
    query=(FORMAT,),
    csv=True,
)
def study_results(call: Call) -> Any:
    """One row per run with its varied values and metrics; as CSV, to open in a spreadsheet, with
    `?format=csv` or `Accept: text/csv`."""
    study_id = call.path("study_id")
    wanted = call.query(FORMAT) or ("csv" if _accepts_csv(call.req) else "json")
    if wanted == "json":
        return studies.study_results(call.caller, study_id)
    text, filename = studies.results_csv(call.caller, study_id)
    headers = api_headers({"Content-Disposition": f'attachment; filename="{filename}"'})
    return func.HttpResponse(text, mimetype="text/csv", charset="utf-8", headers=headers)


def _accepts_csv(req: func.HttpRequest) -> bool:
    accept = (req.headers.get("Accept") or "").lower()
    return "text/csv" in accept and "application/json" not in accept


@operation(
    bp,
    "POST",
    "study/{study_id}/cancel",
    auth="user",
    ok={202: "StudyDetail"},
    errors=(*STORED, Conflict),
)
def cancel_study(call: Call) -> Answer:
    """Cancel every active run of the study: 202 with the study."""
    return Answer(studies.cancel_study(call.caller, call.path("study_id")), status=202)


@operation(
    bp,
    "POST",
    "study/{study_id}/rerun",
    auth="user",
    ok={201: "StudyDetail"},
    errors=(*STORED, Conflict),
)
def rerun_study(call: Call) -> Answer:
    """New DRAFT runs, as the study's next attempt, for its FAILED and CANCELLED runs: 201; 409 if none."""
    return Answer(studies.rerun_study(call.caller, call.path("study_id")), status=201)


@operation(
    bp, "DELETE", "study/{study_id}", auth="user", ok={204: None}, errors=(*STORED, Conflict)
)
def delete_study(call: Call) -> None:
    """Remove the study with its runs and their outputs: 204; 409 while a run is active."""
    studies.delete_study(call.caller, call.path("study_id"))
