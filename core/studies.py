"""Studies: one case over axes of values, as one request; its runs are ordinary jobs of the owner.

A study is checked whole before anything is made: the base values as a job's, every value every axis gives, the
number of runs (`SIMGATE_STUDY_MAX_RUNS`), and the required fields; one 422 lists every problem. A dry run answers
the runs it would make. Then the study is stored, and its runs after it, in batched transactions of a hundred
(all of one owner's partition): a 1,000-run study costs 11 storage requests to create.

A run is a job that carries its study's id, its index and its attempt: every job route and rule applies to it.
A study's counts are never stored: they are counted from its runs when asked, so they cannot drift from them.
A rerun makes, for each FAILED or CANCELLED run of the latest attempt, a new DRAFT run at the same index with the
next attempt; the study shows each index's latest run.

Costs: show is one point read and one partition query of the study's runs (a request per thousand runs).
"""

from __future__ import annotations

import csv
import io
import secrets
from typing import Any

from core import transitions
from core.auth import Principal
from core.axes import Axis, expand
from core.bodies import StudyCreate, parse_body
from core.cancel import cancel_job
from core.cases import Case
from core.catalog import get_catalog
from core.errors import Conflict, FieldProblem, InvalidInput, InvalidValues, NotFound
from core.job_operations import delete_job, run_job
from core.records import Change, Job, Study, new_job_id, now_iso, split_job_id
from core.services import get_settings, services
from core.states import JobState
from core.values import Value, check_values, missing_required
from core.views import (
    StudyDetail,
    StudyHeader,
    StudyPlan,
    StudyResult,
    StudyRun,
    latest_runs,
    study_detail,
    study_header,
    study_result,
    study_run,
)


def plan_study(caller: Principal, body: Any) -> StudyPlan:
    """The runs a study would make (the dry run): checked as `create_study` checks them, nothing made."""
    _, case, _, runs = _checked(body)
    return StudyPlan(case_id=case.id, runs=len(runs), values=runs)


def create_study(caller: Principal, body: Any) -> StudyDetail:
    """A new study of DRAFT runs owned by the caller; `InvalidValues` listing every bad axis or value."""
    request, case, base, runs = _checked(body)
    now = now_iso()
    study = Study(
        study_id=new_job_id(caller.user_id),
        owner=caller.user_id,
        owner_name=caller.name,
        case_id=case.id,
        title=request.title,
        description=request.description,
        created_at=now,
        updated_at=now,
        values=base,
        axes=tuple(a.model_dump(by_alias=True, exclude_none=True) for a in request.axes),
        combine=request.combine,
        runs=len(runs),
    )
    study = services().studies.insert(study)
    services().jobs.insert_many(_runs(study, [{**base, **run} for run in runs], 1, caller))
    return study_detail(study, services().jobs.of_study(caller.user_id, study.study_id))


def _checked(body: Any) -> tuple[StudyCreate, Case, dict[str, Value], list[dict[str, Value]]]:
    """The request, its case, its checked base values and each run's varied values."""
    request = parse_body(StudyCreate, body)
    case = _case_named(request.case_id)
    base = _base_values(case, request)
    axes = [
        Axis(a.name, _tuple(a.values), a.start, a.stop, a.step, a.count, a.scale)
        for a in request.axes
    ]
    runs = expand(case, axes, request.combine, get_settings().study_max_runs)
    missing = missing_required(case, {**base, **runs[0]})
    if missing:
        problems = [FieldProblem(f"values.{n}", "is required: set it or vary it") for n in missing]
        raise InvalidValues(f"set these fields first: {', '.join(missing)}", errors=problems)
    return request, case, base, runs


def _tuple(values: list[Any] | None) -> tuple[Any, ...] | None:
    return None if values is None else tuple(values)


def _case_named(case_id: int) -> Case:
    try:
        return get_catalog().get(case_id)
    except NotFound:
        raise InvalidInput.field("case_id", f"names no case: {case_id}", "body") from None


def _base_values(case: Case, request: StudyCreate) -> dict[str, Value]:
    """The study's base values, checked as a job's; problems named `values.<field>`."""
    varied = {a.name for a in request.axes}
    sets = [v.model_dump() for v in request.values if v.value is not None]
    problems = [
        FieldProblem(f"values.{s['name']}", "is varied by an axis")
        for s in sets
        if s["name"] in varied
    ]
    try:
        checked = check_values(case, sets)
    except InvalidValues as exc:
        problems += [FieldProblem(f"values.{p.name}", p.detail) for p in exc.errors]
        checked = {}
    if problems:
        raise InvalidValues("the study's base values are not valid", errors=problems)
    return checked


def _runs(
    study: Study,
    values: list[dict[str, Value]],
    attempt: int,
    caller: Principal,
    indexes: list[int] | None = None,
) -> list[Job]:
    """New DRAFT runs of `study`, one per set of values (at `indexes`, or from 0), with ids unique among
    themselves."""
    now, made, ids = now_iso(), [], set()
    for index, run_values in zip(indexes or range(len(values)), values, strict=True):
        job_id = new_job_id(study.owner)
        while job_id in ids:  # ids made within one millisecond differ by their random part alone
            job_id = f"{job_id[:-6]}{secrets.token_hex(3)}"
        ids.add(job_id)
        title = f"{study.title[:180]} #{index + 1}" + (
            f" (attempt {attempt})" if attempt > 1 else ""
        )
        reason = f"run {index + 1} of study {study.study_id}"
        made.append(
            Job(
                job_id=job_id,
                owner=study.owner,
                owner_name=study.owner_name,
                case_id=study.case_id,
                title=title,
                description=study.description,
                status=JobState.DRAFT,
                created_at=now,
                updated_at=now,
                values=dict(run_values),
                history=(Change(JobState.DRAFT, now, caller.name, reason),),
                study_id=study.study_id,
                study_index=index,
                attempt=attempt,
            )
        )
    return made


def owned_study(caller: Principal, study_id: str) -> Study:
    """The caller's own study (one point read); anyone else's is `NotFound`, as if it did not exist."""
    split_job_id(study_id, "study_id")
    study = services().studies.get(study_id)
    if study.owner != caller.user_id:
        raise NotFound(f"there is no study {study_id!r}")
    return study


def show_study(caller: Principal, study_id: str) -> StudyDetail:
    """The study with its runs counted by state."""
    study = owned_study(caller, study_id)
    return study_detail(study, services().jobs.of_study(study.owner, study.study_id))


def list_studies(
    caller: Principal, per_page: int, cursor: str | None
) -> tuple[list[StudyHeader], str | None]:
    """One page of the caller's studies, newest first, and the next page's cursor."""
    studies, following = services().studies.page(caller.user_id, per_page, cursor)
    return [study_header(s) for s in studies], following


def study_runs(
    caller: Principal, study_id: str, per_page: int, cursor: str | None
) -> tuple[list[StudyRun], str | None]:
    """One page of the study's latest runs in index order, with their varied values and status."""
    study = owned_study(caller, study_id)
    latest = latest_runs(services().jobs.of_study(study.owner, study.study_id))
    start = _offset(cursor)
    varied = [str(a["name"]) for a in study.axes]
    page = [study_run(r, varied) for r in latest[start : start + per_page]]
    return page, str(start + per_page) if start + per_page < len(latest) else None


def _offset(cursor: str | None) -> int:
    if cursor is None:
        return 0
    if not (cursor.isascii() and cursor.isdigit() and len(cursor) <= 9):
        raise NotFound("no page of runs at this cursor: it is not one this service gave out")
    return int(cursor)


def study_results(caller: Principal, study_id: str) -> list[StudyResult]:
    """One row per run (each index's latest), with its varied values and metrics, in index order."""
    study = owned_study(caller, study_id)
    varied = [str(a["name"]) for a in study.axes]
    return [
        study_result(r, varied)
        for r in latest_runs(services().jobs.of_study(study.owner, study_id))
    ]


def results_csv(caller: Principal, study_id: str) -> tuple[str, str]:
    """The study's results as CSV text, one row per run, and a file name for it: the varied fields with
    their units, then each metric the case declares, with its units."""
    study = owned_study(caller, study_id)
    case = get_catalog().get(study.case_id)
    fields = {f.name: f for f in case.leaves()}
    varied = [str(a["name"]) for a in study.axes]
    buffer = io.StringIO()
    out = csv.writer(buffer, lineterminator="\r\n")  # RFC 4180, as Excel reads it
    out.writerow(
        ["run", "status", *(_titled(n, fields[n].units) for n in varied)]
        + [_titled(m.name, m.units) for m in case.metrics]
        + ["job_id"]
    )
    for row in study_results(caller, study_id):
        values = [_cell(row.values.get(n)) for n in varied]
        metrics = [_cell(row.metrics.get(m.name)) for m in case.metrics]
        out.writerow([row.index + 1, row.status.value, *values, *metrics, row.job_id])
    return buffer.getvalue(), f"{case.slug}-study-{study.study_id[-6:]}.csv"


def _titled(name: str, units: str | None) -> str:
    return f"{name} ({units})" if units else name


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    # A cell a spreadsheet would read as a formula is written as text (CSV injection).
    return (
        f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _number(text) else text
    )


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def run_study(caller: Principal, study_id: str) -> StudyDetail:
    """Run every DRAFT run of the study's latest attempt (each as `POST /job/{id}` does); 409 when none is."""
    study = owned_study(caller, study_id)
    drafts = [
        r
        for r in latest_runs(services().jobs.of_study(study.owner, study_id))
        if r.status is JobState.DRAFT
    ]
    if not drafts:
        raise Conflict(f"study {study_id} has no DRAFT run to run")
    for run in drafts:
        run_job(caller, run.job_id)
    return show_study(caller, study_id)


def cancel_study(caller: Principal, study_id: str) -> StudyDetail:
    """Cancel every active run of the study (a run that ended meanwhile is left as it is)."""
    study = owned_study(caller, study_id)
    for run in services().jobs.of_study(study.owner, study_id):
        if run.status.active:
            cancel_job(caller, run.job_id)
    return show_study(caller, study_id)


def rerun_study(caller: Principal, study_id: str) -> StudyDetail:
    """New DRAFT runs, as the next attempt, for the FAILED and CANCELLED latest runs; 409 when there are none."""
    study = owned_study(caller, study_id)
    again = [
        r
        for r in latest_runs(services().jobs.of_study(study.owner, study_id))
        if r.status in (JobState.FAILED, JobState.CANCELLED)
    ]
    if not again:
        raise Conflict(f"study {study_id} has no FAILED or CANCELLED run to rerun")
    # The study's write first, on its ETag: of two reruns at once, one makes the next attempt's runs.
    study = services().studies.replace(transitions.next_attempt(study))
    indexes = [r.study_index or 0 for r in again]
    services().jobs.insert_many(
        _runs(study, [r.values for r in again], study.attempt, caller, indexes)
    )
    return show_study(caller, study_id)


def delete_study(caller: Principal, study_id: str) -> None:
    """Remove the study with every run and their outputs; 409 while any run is active."""
    study = owned_study(caller, study_id)
    runs = services().jobs.of_study(study.owner, study_id)
    active = [r.job_id for r in runs if r.status.active]
    if active:
        raise Conflict(f"study {study_id} has {len(active)} active run(s): cancel them first")
    for run in runs:
        delete_job(caller, run.job_id)
    services().studies.delete(study)
