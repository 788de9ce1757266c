"""Concurrency on one job, over real HTTP against Azurite: every change is a conditional write (ETag), retried from
a fresh read when it collides, so out-of-order and simultaneous requests neither lose a write nor corrupt the
history."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.integration.conftest import Gateway, Reply
from tests.integration.test_reports import queued_job, report

pytestmark = pytest.mark.azurite

ORDER = ["QUEUED", "RUNNING", "FINALIZING", "COMPLETED"]


def test_fifty_shuffled_reports_at_once_end_in_the_highest_state(gateway: Gateway) -> None:
    job_id, token = queued_job(gateway, owner="racer")
    reports = ["RUNNING"] * 17 + ["clean up"] * 17 + ["done"] * 16
    random.Random(5).shuffle(reports)
    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(lambda status: report(gateway, job_id, token, status), reports))
    assert {a.status for a in answers} <= {200, 409}, [
        a.body for a in answers if a.status not in (200, 409)
    ]
    assert any(a.status == 200 for a in answers)
    job = gateway.call("GET", f"/job/{job_id}", user="racer").body
    assert job["status"] == "COMPLETED"
    states = [h["status"] for h in job["history"]][1:]  # after DRAFT
    assert states[-1] == "COMPLETED"
    assert states == sorted(
        set(states), key=ORDER.index
    )  # in order, none twice: each move recorded once
    accepted = {a.body["status"] for a in answers if a.status == 200}
    assert accepted <= set(states)  # every state a report was told it reached is in the history


def patch(gateway: Gateway, job_id: str, body: dict[str, Any]) -> Reply:
    """A PATCH, sent again after a 503 as a client honouring Retry-After would (without the wait)."""
    for _ in range(5):
        reply = gateway.call("PATCH", f"/job/{job_id}", body, user="racer")
        if reply.status != 503:
            return reply
    return reply


def test_concurrent_edits_of_different_values_lose_none(gateway: Gateway) -> None:
    job_id = gateway.call("POST", "/job", {"case_id": 2, "job_title": "t"}, user="racer").body[
        "job_id"
    ]
    edits = [
        {"name": "fruit_density", "value": 1100.0},
        {"name": "fruit_viscosity", "value": 2.5},
        {"name": "base_liquid", "value": "yoghurt"},
        {"name": "base_density", "value": 1050.0},
        {"name": "base_viscosity", "value": 0.5},
        {"name": "fruit_fraction", "value": 0.3},
        {"name": "blade_speed", "value": 15000},
        {"name": "blend_duration", "value": 20.0},
        {"name": "pulse", "value": True},
        {"name": "mesh", "value": "coarse"},
        {"name": "label", "value": "race"},
    ]
    bodies: list[dict[str, Any]] = [{"fields": [e]} for e in edits] + [
        {"description": "edited at once"}
    ]
    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        answers = list(pool.map(lambda body: patch(gateway, job_id, body), bodies))
    assert [a.status for a in answers] == [200] * len(bodies), [
        a.body for a in answers if a.status != 200
    ]
    job = gateway.call("GET", f"/job/{job_id}", user="racer").body
    values = {v["name"]: v["value"] for v in job["values"] if not v["is_default"]}
    assert values == {e["name"]: e["value"] for e in edits}
    assert job["description"] == "edited at once"
