"""Studies over real HTTP through devhost against Azurite: a dry run, one 422 for every bad value, runs stored in
Table Storage's batched transactions, a study run for real on the embedded simulator, rerun, delete."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from tests.integration.conftest import Gateway
from tests.integration.test_dispatch import wait_for

pytestmark = pytest.mark.azurite

SMOOTHIE = 2
USER = "scientist"


def study_body(*axes: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"case_id": SMOOTHIE, "title": "blade sweep", "axes": list(axes), **extra}


def test_a_dry_run_answers_the_runs_and_makes_nothing(gateway: Gateway) -> None:
    axes = (
        {"name": "blade_speed", "values": [3000, 12000]},
        {"name": "blend_duration", "from": 1, "to": 3, "step": 1},
    )
    reply = gateway.call("POST", "/study?dry_run=true", study_body(*axes), user=USER)
    assert reply.status == 200, reply.body
    assert reply.body["runs"] == 6
    assert reply.body["values"][1] == {"blade_speed": 3000, "blend_duration": 2.0}
    assert gateway.call("GET", "/study", user=USER).body == []


def test_every_bad_value_is_named_in_one_422(gateway: Gateway) -> None:
    reply = gateway.call(
        "POST",
        "/study",
        study_body(
            {"name": "blade_speed", "values": [3000, 99999]},
            {"name": "fruit_fraction", "from": 0.1, "to": 2, "count": 3},
        ),
        user=USER,
    )
    assert reply.status == 422, reply.body
    assert [e["name"] for e in reply.body["errors"]] == [
        "axes[0].values[1]",
        "axes[1] (value 1.05)",  # 0.1, 1.05 and 2.0: the last two are over the field's 0.95
        "axes[1] (value 2.0)",
    ]


def test_a_study_of_246_runs_is_stored_in_batches_and_paged(gateway: Gateway) -> None:
    """More than two transactions of a hundred, on Azurite's real Table Storage API."""
    made = gateway.call(
        "POST",
        "/study",
        study_body({"name": "blade_speed", "from": 500, "to": 25000, "step": 100}),
        user=USER,
    )
    assert made.status == 201, made.body
    study = made.body
    assert made.headers["location"] == f"/study/{study['study_id']}"
    assert (study["runs"], study["counts"]) == (246, {"DRAFT": 246})
    seen: list[int] = []
    path = f"/study/{study['study_id']}/runs?per_page=100"
    while path:
        page = gateway.call("GET", path, user=USER)
        seen += [r["index"] for r in page.body]
        link = page.headers.get("link", "")
        path = link[link.index("<") + 1 : link.index(">")] if link else ""
    assert seen == list(range(246))
    one = gateway.call("GET", f"/study/{study['study_id']}/runs?per_page=1", user=USER).body[0]
    job = gateway.call("GET", one["links"]["job"], user=USER).body
    assert (job["study_id"], job["study_index"], job["status"]) == (study["study_id"], 0, "DRAFT")
    assert gateway.call("GET", f"/study/{study['study_id']}", user="someone-else").status == 404
    assert gateway.call("DELETE", f"/study/{study['study_id']}", user=USER).status == 204
    assert gateway.call("GET", one["links"]["job"], user=USER).status == 404


@pytest.mark.ssh
def test_a_study_runs_on_the_embedded_simulator_and_its_counts_follow_its_runs(
    gateway: Gateway, embedded_simulator: Any, use_targets: Any
) -> None:
    use_targets({"local": embedded_simulator.target("local")})
    made = gateway.call(
        "POST",
        "/study",
        study_body(
            {"name": "blade_speed", "values": [6000, 12000, 24000]},
            values=[{"name": "blend_duration", "value": 2}],
        ),
        user=USER,
    ).body
    study_id = made["study_id"]
    ran = gateway.call("POST", f"/study/{study_id}", user=USER)
    assert ran.status == 202, ran.body

    def ended() -> Any:
        shown = gateway.call("GET", f"/study/{study_id}", user=USER).body
        return shown if shown["ended"] else None

    shown = wait_for(ended, "every run of the study to end", timeout=180)
    assert shown["counts"] == {"COMPLETED": 3}
    assert shown["progress"] == 100.0
    runs = gateway.call("GET", f"/study/{study_id}/runs", user=USER).body
    assert [(r["values"], r["status"]) for r in runs] == [
        ({"blade_speed": 6000}, "COMPLETED"),
        ({"blade_speed": 12000}, "COMPLETED"),
        ({"blade_speed": 24000}, "COMPLETED"),
    ]
    results = gateway.call("GET", f"/study/{study_id}/results", user=USER).body
    assert [r["values"]["blade_speed"] for r in results] == [6000, 12000, 24000]
    assert all(0 < r["metrics"]["final_mixing_index"] <= 1 for r in results)
    table = gateway.call("GET", f"/study/{study_id}/results?format=csv", user=USER)
    assert table.headers["content-type"].startswith("text/csv")
    assert "attachment" in table.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(table.raw.decode("utf-8"))))
    assert [(r["run"], r["status"], r["blade_speed (rpm)"]) for r in rows] == [
        ("1", "COMPLETED", "6000"),
        ("2", "COMPLETED", "12000"),
        ("3", "COMPLETED", "24000"),
    ]
    assert gateway.call("POST", f"/study/{study_id}/rerun", user=USER).status == 409  # none failed
    assert gateway.call("DELETE", f"/study/{study_id}", user=USER).status == 204
