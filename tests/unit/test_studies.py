"""Studies on the fakes (`tests/fakes.py`): axes expand as a grid or side by side, every value is checked before
anything is made, runs are ordinary jobs carrying their study, and the counts come from the runs."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from core import studies
from core.auth import Principal
from core.errors import Conflict, InvalidBody, InvalidValues, NotFound
from core.services import use_services
from core.states import JobState
from core.views import latest_runs
from tests.fakes import FakeJobs, FakeQueue, fake_services

ALICE = Principal("alice-id", "Alice", False)
BOB = Principal("bob-id", "Bob", False)
SMOOTHIE = 2


@pytest.fixture
def jobs() -> Iterator[FakeJobs]:
    services = fake_services(study_max_runs=50)
    with use_services(services):
        yield services.jobs  # type: ignore[misc]


def body(*axes: dict[str, Any], combine: str = "grid", **extra: Any) -> dict[str, Any]:
    return {
        "case_id": SMOOTHIE,
        "title": "blend study",
        "axes": list(axes),
        "combine": combine,
        **extra,
    }


def names(exc: pytest.ExceptionInfo[InvalidValues]) -> list[str]:
    return [p.name for p in exc.value.errors]


def test_a_grid_makes_every_combination_first_axis_slowest(jobs: FakeJobs) -> None:
    plan = studies.plan_study(
        ALICE,
        body(
            {"name": "blade_speed", "values": [3000, 12000]},
            {"name": "fruit_fraction", "from": 0.1, "to": 0.3, "step": 0.1},
        ),
    )
    assert plan.runs == 6
    assert plan.values == [
        {"blade_speed": 3000, "fruit_fraction": 0.1},
        {"blade_speed": 3000, "fruit_fraction": 0.2},
        {"blade_speed": 3000, "fruit_fraction": 0.3},  # decimal steps: never 0.30000000000000004
        {"blade_speed": 12000, "fruit_fraction": 0.1},
        {"blade_speed": 12000, "fruit_fraction": 0.2},
        {"blade_speed": 12000, "fruit_fraction": 0.3},
    ]
    assert jobs.rows == {}  # a dry run makes nothing


def test_zip_pairs_the_axes_and_counts_space_linearly_or_logarithmically(jobs: FakeJobs) -> None:
    plan = studies.plan_study(
        ALICE,
        body(
            {"name": "blade_speed", "from": 1000, "to": 10000, "count": 2, "scale": "log"},
            {"name": "blend_duration", "from": 10, "to": 20, "count": 2},
            combine="zip",
        ),
    )
    assert plan.values == [
        {"blade_speed": 1000, "blend_duration": 10.0},
        {"blade_speed": 10000, "blend_duration": 20.0},
    ]


def test_one_422_lists_every_bad_axis_and_value(jobs: FakeJobs) -> None:
    with pytest.raises(InvalidValues) as refused:
        studies.plan_study(
            ALICE,
            body(
                {
                    "name": "blade_speed",
                    "values": [3000, 99999, 12050],
                },  # over the max; off the step grid
                {"name": "no_such_field", "values": [1]},
                {
                    "name": "fruit_fraction",
                    "from": 0.5,
                    "to": 0.1,
                    "step": 0.1,
                },  # the step leads away
            ),
        )
    assert names(refused) == [
        "axes[0].values[1]",
        "axes[0].values[2]",
        "axes[1].name",
        "axes[2]",
    ]
    with pytest.raises(InvalidValues) as over:
        studies.plan_study(
            ALICE,
            body({"name": "blade_speed", "from": 1000, "to": 100000, "count": 3, "scale": "log"}),
        )
    assert names(over) == ["axes[0] (value 100000)"]


def test_a_study_over_the_run_limit_and_unequal_zips_are_refused(jobs: FakeJobs) -> None:
    with pytest.raises(InvalidValues) as many:
        studies.plan_study(
            ALICE,
            body(
                {"name": "blade_speed", "from": 1000, "to": 8000, "step": 1000},
                {"name": "blend_duration", "from": 1, "to": 10, "step": 1},
            ),
        )  # 8 × 10 = 80 runs; this gateway allows 50
    assert names(many) == ["axes"]
    assert "80 runs" in many.value.errors[0].detail
    with pytest.raises(InvalidValues) as zipped:
        studies.plan_study(
            ALICE,
            body(
                {"name": "blade_speed", "values": [1000, 2000]},
                {"name": "blend_duration", "values": [1]},
                combine="zip",
            ),
        )
    assert names(zipped) == ["axes"]


def test_base_values_are_checked_as_a_jobs_and_may_not_repeat_an_axis(jobs: FakeJobs) -> None:
    with pytest.raises(InvalidValues) as refused:
        studies.plan_study(
            ALICE,
            body(
                {"name": "blade_speed", "values": [3000]},
                values=[
                    {"name": "blade_speed", "value": 5000},
                    {"name": "fruit_fraction", "value": 2},
                ],
            ),
        )
    assert names(refused) == ["values.blade_speed", "values.fruit_fraction"]


def test_a_malformed_axis_is_a_body_problem(jobs: FakeJobs) -> None:
    with pytest.raises(InvalidBody):
        studies.plan_study(ALICE, body({"name": "blade_speed", "values": [], "extra": 1}))
    with pytest.raises(InvalidBody):
        studies.plan_study(ALICE, body())  # at least one axis


def test_a_study_makes_draft_runs_in_batches_that_carry_it(jobs: FakeJobs) -> None:
    made = studies.create_study(
        ALICE,
        body(
            {"name": "blade_speed", "values": [3000, 6000, 12000]},
            values=[{"name": "label", "value": "study"}],
        ),
    )
    assert (made.runs, made.counts, made.ended, made.attempt) == (3, {"DRAFT": 3}, False, 1)
    runs = jobs.of_study(ALICE.user_id, made.study_id)
    assert [(r.study_index, r.values["blade_speed"], r.values["label"]) for r in runs] == [
        (0, 3000, "study"),
        (1, 6000, "study"),
        (2, 12000, "study"),
    ]
    assert {r.owner for r in runs} == {ALICE.user_id}
    assert len({r.job_id for r in runs}) == 3
    assert jobs.batches == 1  # one transaction for up to a hundred runs
    listed, _ = studies.list_studies(ALICE, 10, None)
    assert [s.study_id for s in listed] == [made.study_id]
    assert studies.list_studies(BOB, 10, None) == ([], None)


def test_another_users_study_is_not_found(jobs: FakeJobs) -> None:
    made = studies.create_study(ALICE, body({"name": "blade_speed", "values": [3000]}))
    for action in (
        studies.show_study,
        studies.run_study,
        studies.cancel_study,
        studies.delete_study,
    ):
        with pytest.raises(NotFound):
            action(BOB, made.study_id)  # type: ignore[operator]


def queue() -> FakeQueue:
    from core.services import services

    return services().queue  # type: ignore[return-value]


def test_running_a_study_runs_each_draft_run_and_cancel_all_cancels_the_active(
    jobs: FakeJobs,
) -> None:
    made = studies.create_study(ALICE, body({"name": "blade_speed", "values": [3000, 6000]}))
    ran = studies.run_study(ALICE, made.study_id)
    assert ran.counts == {"SUBMITTED": 2}
    assert [a for _, a, _ in queue().sent] == [None, None]  # one dispatch message a run
    with pytest.raises(Conflict):
        studies.run_study(ALICE, made.study_id)  # nothing is a DRAFT any more
    with pytest.raises(Conflict):
        studies.delete_study(ALICE, made.study_id)  # runs are active
    cancelled = studies.cancel_study(ALICE, made.study_id)
    assert cancelled.counts == {"CANCELLED": 2}  # never claimed by a dispatcher: cancelled at once
    assert cancelled.ended


def test_rerun_makes_the_next_attempt_of_failed_and_cancelled_runs_only(jobs: FakeJobs) -> None:
    made = studies.create_study(ALICE, body({"name": "blade_speed", "values": [3000, 6000, 9000]}))
    runs = jobs.of_study(ALICE.user_id, made.study_id)
    for run, status in zip(
        runs, (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED), strict=True
    ):
        jobs.put(replace(run, status=status))
    again = studies.rerun_study(ALICE, made.study_id)
    assert (again.attempt, again.counts) == (2, {"COMPLETED": 1, "DRAFT": 2})
    latest = latest_runs(jobs.of_study(ALICE.user_id, made.study_id))
    assert [(r.study_index, r.attempt, r.values["blade_speed"]) for r in latest] == [
        (0, 1, 3000),
        (1, 2, 6000),
        (2, 2, 9000),
    ]
    page, cursor = studies.study_runs(ALICE, made.study_id, 2, None)
    assert [(r.index, r.attempt, r.values) for r in page] == [
        (0, 1, {"blade_speed": 3000}),
        (1, 2, {"blade_speed": 6000}),
    ]
    rest, end = studies.study_runs(ALICE, made.study_id, 2, cursor)
    assert ([r.index for r in rest], end) == ([2], None)
    with pytest.raises(Conflict):
        studies.rerun_study(ALICE, made.study_id)  # nothing has failed in the latest attempt


def test_deleting_an_ended_study_removes_it_and_every_run(jobs: FakeJobs) -> None:
    made = studies.create_study(ALICE, body({"name": "blade_speed", "values": [3000, 6000]}))
    studies.delete_study(ALICE, made.study_id)
    assert jobs.of_study(ALICE.user_id, made.study_id) == []
    with pytest.raises(NotFound):
        studies.show_study(ALICE, made.study_id)


def test_the_counts_are_the_runs_states_whatever_races_them(jobs: FakeJobs) -> None:
    """Runs, cancels and direct state changes race from threads; the counts then equal the runs' states."""
    made = studies.create_study(
        ALICE, body({"name": "blade_speed", "from": 1000, "to": 5000, "step": 100})
    )
    runs = jobs.of_study(ALICE.user_id, made.study_id)
    studies.run_study(ALICE, made.study_id)

    def fail_some() -> None:
        from core.job_store import change_job
        from core.transitions import dispatch_refused

        for run in runs[::3]:
            change_job(run.job_id, lambda j: dispatch_refused(j, "dispatch: test"))

    racers = [
        threading.Thread(target=fail_some),
        threading.Thread(target=studies.cancel_study, args=(ALICE, made.study_id)),
    ]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()
    shown = studies.show_study(ALICE, made.study_id)
    states: dict[str, int] = {}
    for run in latest_runs(jobs.of_study(ALICE.user_id, made.study_id)):
        states[run.status.value] = states.get(run.status.value, 0) + 1
    assert shown.counts == states
    assert sum(shown.counts.values()) == made.runs == 41


def test_results_have_a_row_per_run_as_json_and_as_csv_for_a_spreadsheet(jobs: FakeJobs) -> None:
    made = studies.create_study(
        ALICE,
        body(
            {"name": "blade_speed", "values": [3000, 6000]},
            {"name": "label", "values": ["=HYPERLINK(1)", "plain"]},
            combine="zip",
        ),
    )
    runs = jobs.of_study(ALICE.user_id, made.study_id)
    jobs.put(replace(runs[0], status=JobState.COMPLETED, metrics={"final_mixing_index": -0.5}))
    rows = studies.study_results(ALICE, made.study_id)
    assert [(r.index, r.status, r.values["blade_speed"], r.metrics) for r in rows] == [
        (0, JobState.COMPLETED, 3000, {"final_mixing_index": -0.5}),
        (1, JobState.DRAFT, 6000, {}),
    ]
    text, filename = studies.results_csv(ALICE, made.study_id)
    lines = text.split("\r\n")
    assert lines[0] == (
        "run,status,blade_speed (rpm),label,time_to_95_mixed (s),final_mixing_index,job_id"
    )
    assert lines[1].startswith("1,COMPLETED,3000,'=HYPERLINK(1),,-0.5,")  # a formula stays text
    assert lines[2].startswith("2,DRAFT,6000,plain,,,")
    assert filename == f"smoothie-study-{made.study_id[-6:]}.csv"
