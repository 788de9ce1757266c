"""Status reports, upload grants, outputs and downloads over real HTTP against Azurite (HTTPS, basic OAuth).

The dispatcher's part (a job QUEUED with a token) is set up through the core, as the dispatcher would; everything
after is the simulator's and the user's HTTP calls, and plain HTTPS requests to Azurite with the SAS URLs.
"""

from __future__ import annotations

import csv
import io
import secrets
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from core.job_store import change_job, read_job
from core.records import Job, hash_token
from core.states import JobState
from tests.conftest import AzuriteFixture
from tests.integration.conftest import Gateway, Reply

pytestmark = pytest.mark.azurite

SMOOTHIE = 2
CSV = b"time_s,mixing_index\n0,0\n0.5,0.9\n"


TOKENS: dict[str, str] = {}  # job id → token of the jobs made here, so each test can end its own


@pytest.fixture(autouse=True)
def _end_every_job(gateway: Gateway) -> Iterator[None]:
    """Jobs a test leaves active are failed by their own "simulator", as a real one would end them."""
    yield
    for job_id, token in TOKENS.items():
        report(
            gateway, job_id, token, "FAILED", message="the test ended"
        )  # 409 for those that ended: fine
    TOKENS.clear()


def queued_job(gateway: Gateway, owner: str = "martin") -> tuple[str, str]:
    """A smoothie job of `owner`, QUEUED with a fresh token and its outputs container, as dispatch leaves it."""
    from core.services import services

    job_id = gateway.call(
        "POST", "/job", {"case_id": SMOOTHIE, "job_title": "Test 1"}, user=owner
    ).body["job_id"]
    token = secrets.token_urlsafe(32)

    def dispatched(job: Job) -> Job:
        return replace(
            job, status=JobState.QUEUED, token_hash=hash_token(token), scheduler_id="4242"
        )

    change_job(job_id, dispatched)
    services().outputs.create(job_id)
    TOKENS[job_id] = token
    return job_id, token


def report(gateway: Gateway, job_id: str, token: str | None, status: str, **extra: Any) -> Reply:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return gateway.call(
        "PATCH", f"/job/{job_id}/status", {"status": status, **extra}, headers=headers
    )


def https(
    azurite: AzuriteFixture,
    method: str,
    url: str,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """A plain HTTPS request (no Azure SDK): status, headers, body."""
    context = ssl.create_default_context(cafile=str(azurite.ca_path))
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, context=context, timeout=30) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()


def put_blob(
    azurite: AzuriteFixture, grant: dict[str, Any], name: str, data: bytes, content_type: str
) -> int:
    url = f"{grant['url']}/{name}?{grant['sas']}"
    headers = {"x-ms-blob-type": "BlockBlob", "x-ms-blob-content-type": content_type}
    return https(azurite, "PUT", url, data, headers)[0]


def finish(gateway: Gateway, azurite: AzuriteFixture, job_id: str, token: str) -> dict[str, Any]:
    """Run the simulator's side to COMPLETED with one CSV and the stdout log; the last reply's body."""
    assert report(gateway, job_id, token, "RUNNING").status == 200
    grant = report(gateway, job_id, token, "clean up").body["upload"]
    assert put_blob(azurite, grant, "mixing_index.csv", CSV, "text/csv") == 201
    assert put_blob(azurite, grant, "simgate-stdout.log", b"hello\n", "text/plain") == 201
    outputs = [
        {"name": "mixing_index", "file": "mixing_index.csv"},
        {"name": "stdout", "file": "simgate-stdout.log"},
    ]
    done = report(gateway, job_id, token, "done", outputs=outputs)
    assert done.status == 200, done.body
    return dict(done.body)


# --- the story -----------------------------------------------------------------------------------------------


def test_reports_move_the_job_and_the_csv_downloads_through_its_sas_url(
    gateway: Gateway, azurite: AzuriteFixture
) -> None:
    job_id, token = queued_job(gateway)
    running = report(gateway, job_id, token, "Running", progress=12.5, message="time step 40")
    assert running.status == 200
    assert running.body["status"] == "RUNNING"
    polled = gateway.call("GET", f"/job/{job_id}/status", user="martin").body
    assert (polled["progress"], polled["message"]) == (12.5, "time step 40")

    finalizing = report(gateway, job_id, token, "clean up")
    grant = finalizing.body["upload"]
    assert finalizing.body["status"] == "FINALIZING"
    assert grant["url"].endswith(f"/upload-{job_id}")
    assert "sig=" in grant["sas"]
    assert put_blob(azurite, grant, "mixing_index.csv", CSV, "text/csv") == 201
    done = report(
        gateway,
        job_id,
        token,
        "DONE",
        outputs=[{"name": "mixing_index", "file": "mixing_index.csv"}],
    )
    assert done.status == 200
    assert done.body["status"] == "COMPLETED"

    listed = gateway.call("GET", f"/job/{job_id}/output", user="martin")
    assert listed.status == 200
    [output] = listed.body
    assert (output["output_id"], output["name"], output["content_type"], output["size"]) == (
        "mixing_index.csv",
        "mixing_index",
        "text/csv",
        len(CSV),
    )
    assert f"/job-{job_id}/" in output["uri"]
    assert output["uri"].endswith("/mixing_index.csv")
    assert "?" not in output["uri"]

    signed = gateway.call("GET", f"/job/{job_id}/output/mixing_index.csv", user="martin")
    assert signed.status == 200
    assert signed.headers["cache-control"] == "no-store"
    grant = signed.body
    assert grant["url"] == f"{grant['uri']}?{grant['token']}"
    assert grant["url"].startswith("https://")
    status, headers, body = https(azurite, "GET", grant["url"])
    assert status == 200, headers
    assert headers["content-disposition"] == (
        "attachment; filename=\"mixing_index.csv\"; filename*=UTF-8''mixing_index.csv"
    )
    assert headers["content-type"] == "text/csv"
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    assert [r["mixing_index"] for r in rows] == ["0", "0.9"]

    shown = gateway.call("GET", f"/job/{job_id}", user="martin").body
    assert [h["status"] for h in shown["history"]][-3:] == ["RUNNING", "FINALIZING", "COMPLETED"]
    assert shown["outputs"][0]["size"] == len(CSV)


def test_redirect_answers_302_to_the_sas_url(gateway: Gateway, azurite: AzuriteFixture) -> None:
    job_id, token = queued_job(gateway)
    finish(gateway, azurite, job_id, token)
    moved = gateway.call(
        "GET", f"/job/{job_id}/output/mixing_index.csv?redirect=true", user="martin"
    )
    assert moved.status == 302
    assert https(azurite, "GET", moved.headers["location"])[2] == CSV
    bad = gateway.call(
        "GET", f"/job/{job_id}/output/mixing_index.csv?redirect=maybe", user="martin"
    )
    assert bad.status == 400
    assert bad.body["errors"][0]["name"] == "redirect"


def test_downloads_cost_one_storage_request_once_the_key_is_cached(
    gateway: Gateway, azurite: AzuriteFixture
) -> None:
    from core.storage import observe_requests

    job_id, token = queued_job(gateway)
    finish(gateway, azurite, job_id, token)
    path = f"/job/{job_id}/output/mixing_index.csv"
    gateway.call("GET", path, user="martin")  # may fetch the delegation key, if nothing has yet
    seen: list[str] = []
    stop = observe_requests(lambda method, url: seen.append(f"{method} {url}"))
    try:
        for _ in range(3):
            assert gateway.call("GET", path, user="martin").status == 200
    finally:
        stop()
    assert len(seen) == 3, seen


# --- the grants' limits, on real Azurite -----------------------------------------------------------------------


def test_the_read_sas_reads_one_blob_and_nothing_else(
    gateway: Gateway, azurite: AzuriteFixture
) -> None:
    job_id, token = queued_job(gateway)
    finish(gateway, azurite, job_id, token)
    grant = gateway.call("GET", f"/job/{job_id}/output/mixing_index.csv", user="martin").body
    assert https(azurite, "PUT", grant["url"], b"x", {"x-ms-blob-type": "BlockBlob"})[0] == 403
    assert https(azurite, "DELETE", grant["url"])[0] == 403
    other = f"{grant['uri'].rsplit('/', 1)[0]}/simgate-stdout.log?{grant['token']}"
    assert https(azurite, "GET", other)[0] == 403
    assert "spr=https" in grant["token"]
    assert "sp=r&" in grant["token"]


def test_an_expired_read_sas_is_refused(gateway: Gateway, azurite: AzuriteFixture) -> None:
    from core.services import services

    job_id, token = queued_job(gateway)
    finish(gateway, azurite, job_id, token)
    blob = read_job(job_id).outputs[0].blob_name
    grant = services().outputs.read_grant(
        job_id, blob, minutes=0, filename="m.csv", content_type="text/csv"
    )
    time.sleep(1.5)
    assert https(azurite, "GET", grant.url)[0] == 403


def test_the_upload_grant_writes_only_into_its_own_job(
    gateway: Gateway, azurite: AzuriteFixture
) -> None:
    job_id, token = queued_job(gateway)
    other_id, _ = queued_job(gateway)
    assert report(gateway, job_id, token, "RUNNING").status == 200
    grant = report(gateway, job_id, token, "FINALIZING").body["upload"]
    assert put_blob(azurite, grant, "mixing_index.csv", CSV, "text/csv") == 201
    blob = f"{grant['url']}/mixing_index.csv?{grant['sas']}"
    assert https(azurite, "GET", blob)[0] == 403
    assert https(azurite, "DELETE", blob)[0] == 403
    assert (
        https(azurite, "GET", f"{grant['url']}?restype=container&comp=list&{grant['sas']}")[0]
        == 403
    )
    elsewhere = {**grant, "url": grant["url"].replace(job_id, other_id)}
    assert put_blob(azurite, elsewhere, "mixing_index.csv", CSV, "text/csv") == 403
    assert "sp=cw&" in grant["sas"]
    assert "spr=https" in grant["sas"]


# --- who may report, and when ----------------------------------------------------------------------------------


def test_reports_without_the_jobs_own_token_are_refused(gateway: Gateway) -> None:
    job_a, token_a = queued_job(gateway)
    job_b, token_b = queued_job(gateway)
    refused = [
        report(gateway, job_b, token_a, "RUNNING"),
        report(gateway, job_b, None, "RUNNING"),
        report(gateway, job_b, "not-a-token", "RUNNING"),
        report(
            gateway, job_b[:-6] + "abcdef", token_b, "RUNNING"
        ),  # no such job: answered like a bad token
    ]
    assert [r.status for r in refused] == [401, 401, 401, 401]
    assert all(r.headers["content-type"].startswith("application/problem+json") for r in refused)
    user_token = gateway.token("martin")
    assert (
        report(gateway, job_b, user_token, "RUNNING").status == 401
    )  # a user's token is not a job token
    assert gateway.call("GET", f"/job/{job_b}/status", user="martin").body["status"] == "QUEUED"
    assert report(gateway, job_a, token_a, "RUNNING").status == 200


def test_a_finished_job_takes_no_more_reports(gateway: Gateway, azurite: AzuriteFixture) -> None:
    job_id, token = queued_job(gateway)
    finish(gateway, azurite, job_id, token)
    for status in ("RUNNING", "COMPLETED", "FAILED"):
        again = report(gateway, job_id, token, status)
        assert again.status == 409, (status, again.body)
    assert gateway.call("GET", f"/job/{job_id}/status", user="martin").body["status"] == "COMPLETED"


def test_late_and_repeated_reports_change_nothing(gateway: Gateway) -> None:
    job_id, token = queued_job(gateway)
    assert report(gateway, job_id, token, "RUNNING").status == 200
    first = report(gateway, job_id, token, "FINALIZING")
    late = report(gateway, job_id, token, "RUNNING", progress=50)
    repeated = report(gateway, job_id, token, "clean up")
    assert late.status == 200
    assert late.body["status"] == "FINALIZING"
    assert "progress" not in late.body
    assert repeated.status == 200
    assert "upload" in repeated.body
    assert "upload" in first.body
    history = gateway.call("GET", f"/job/{job_id}", user="martin").body["history"]
    assert [h["status"] for h in history].count("FINALIZING") == 1
    assert history[-1]["by"] == "simulator"


def test_a_failed_run_keeps_its_exit_code_and_its_logs(
    gateway: Gateway, azurite: AzuriteFixture
) -> None:
    job_id, token = queued_job(gateway)
    report(gateway, job_id, token, "RUNNING")
    grant = report(gateway, job_id, token, "FINALIZING").body["upload"]
    assert put_blob(azurite, grant, "simgate-stderr.log", b"boom\n", "text/plain") == 201
    claims = [
        {"name": "stderr", "file": "simgate-stderr.log"},
        {"name": "mixing_index", "file": "mixing_index.csv"},
    ]
    failed = report(
        gateway, job_id, token, "FAILED", exit_code=3, message="exit code 3", outputs=claims
    )
    assert failed.status == 200
    assert failed.body["reason"] == "exit code 3"
    [log] = gateway.call(
        "GET", f"/job/{job_id}/output", user="martin"
    ).body  # the CSV was never uploaded
    assert log["name"] == "stderr"
    url = gateway.call("GET", f"/job/{job_id}/output/{log['output_id']}", user="martin").body["url"]
    assert https(azurite, "GET", url)[2] == b"boom\n"


def test_completed_with_a_missing_output_is_refused_whole(
    gateway: Gateway, azurite: AzuriteFixture
) -> None:
    job_id, token = queued_job(gateway)
    report(gateway, job_id, token, "RUNNING")
    report(gateway, job_id, token, "FINALIZING")
    claims = [
        {"name": "mixing_index", "file": "mixing_index.csv"},
        {"name": "mixing_index", "file": "other.csv"},
        {"name": "nonsense", "file": "x.csv"},
    ]
    refused = report(gateway, job_id, token, "COMPLETED", outputs=claims)
    assert refused.status == 422
    assert [e["name"] for e in refused.body["errors"]] == [
        "outputs[0].file",
        "outputs[1].file",
        "outputs[2].file",
    ]
    assert (
        gateway.call("GET", f"/job/{job_id}/status", user="martin").body["status"] == "FINALIZING"
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "RUNNING", "progress": 101}, "progress"),
        ({"status": "RUNNING", "progress": "half"}, "progress"),
        ({"status": "bogus"}, "status"),
        ({"status": "QUEUED"}, "status"),
        (
            {"status": "DONE", "outputs": [{"name": "x", "file": "../../etc/passwd"}]},
            "outputs[0].file",
        ),
        ({"status": "RUNNING", "colour": "red"}, "colour"),
        ({}, "status"),
    ],
)
def test_bad_reports_are_422_naming_the_field(
    gateway: Gateway, body: dict[str, Any], field: str
) -> None:
    job_id, token = queued_job(gateway)
    reply = gateway.call(
        "PATCH", f"/job/{job_id}/status", body, headers={"Authorization": f"Bearer {token}"}
    )
    assert reply.status == 422, reply.body
    assert field in [e["name"] for e in reply.body["errors"]]
    assert gateway.call("GET", f"/job/{job_id}/status", user="martin").body["status"] == "QUEUED"


# --- ownership of outputs --------------------------------------------------------------------------------------


def test_another_users_outputs_are_not_found(gateway: Gateway, azurite: AzuriteFixture) -> None:
    job_id, token = queued_job(gateway)
    finish(gateway, azurite, job_id, token)
    assert gateway.call("GET", f"/job/{job_id}/output", user="eve").status == 404
    assert gateway.call("GET", f"/job/{job_id}/output/mixing_index.csv", user="eve").status == 404
    assert gateway.call("GET", f"/job/{job_id}/output/mixing_index.csv").status == 401
    assert gateway.call("GET", f"/job/{job_id}/output/nothing.csv", user="martin").status == 404
    assert gateway.call("GET", f"/job/{job_id}/output", user="root", admin=True).status == 200


def test_deleting_a_finished_job_removes_its_outputs(
    gateway: Gateway, azurite: AzuriteFixture
) -> None:
    job_id, token = queued_job(gateway)
    finish(gateway, azurite, job_id, token)
    url = gateway.call("GET", f"/job/{job_id}/output/mixing_index.csv", user="martin").body["url"]
    assert gateway.call("DELETE", f"/job/{job_id}", user="martin").status == 204
    assert https(azurite, "GET", url)[0] == 404
