"""What the job side can do with its upload grant, tried on real Azurite (HTTPS, basic OAuth): it writes only into
the job's upload container, only while the job is finalizing; what users download is what the gateway recorded.

Every attack from the outside review (shared/reference/security-review.md, F1, F2, F11) is tried with the grant
itself, as a compromised cluster account would: overwriting and re-typing recorded outputs, adding blobs, Copy Blob
from another user's job, Put Blob From URL, claiming a copy, claiming a file twice.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import pytest

from core.job_store import change_job, read_job
from core.records import iso_time
from tests.conftest import AzuriteFixture
from tests.integration.conftest import Gateway
from tests.integration.test_reports import CSV, TOKENS, finish, https, put_blob, queued_job, report

pytestmark = pytest.mark.azurite

VERSION = {"x-ms-version": "2026-06-06"}


@pytest.fixture(autouse=True)
def _end_every_job(gateway: Gateway) -> Iterator[None]:
    yield
    for job_id, token in TOKENS.items():
        report(gateway, job_id, token, "FAILED", message="the test ended")
    TOKENS.clear()


def finalizing(gateway: Gateway, owner: str = "martin") -> tuple[str, str, dict[str, Any]]:
    job_id, token = queued_job(gateway, owner)
    assert report(gateway, job_id, token, "RUNNING").status == 200
    reply = report(gateway, job_id, token, "FINALIZING")
    return job_id, token, reply.body["upload"]


def download(
    gateway: Gateway, azurite: AzuriteFixture, job_id: str, output_id: str, user: str = "martin"
) -> tuple[int, dict[str, str], bytes]:
    url = gateway.call("GET", f"/job/{job_id}/output/{output_id}", user=user).body["url"]
    return https(azurite, "GET", url)


def listed(gateway: Gateway, job_id: str) -> list[dict[str, Any]]:
    return list(gateway.call("GET", f"/job/{job_id}/output", user="martin").body)


def output_uri(gateway: Gateway, job_id: str, user: str) -> str:
    """Where a job's CSV is kept in storage (its URI, without any token)."""
    [csv_output] = [
        o
        for o in gateway.call("GET", f"/job/{job_id}/output", user=user).body
        if o["name"] == "mixing_index"
    ]
    return str(csv_output["uri"])


def with_grant(grant: dict[str, Any], name: str, query: str = "") -> str:
    return f"{grant['url']}/{name}?{query}{'&' if query else ''}{grant['sas']}"


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


# --- after the job has ended, the grant changes nothing users see ------------------------------------------------


def test_after_completed_the_grant_can_neither_change_nor_add_what_users_download(
    gateway: Gateway, azurite: AzuriteFixture
) -> None:
    job_id, token, grant = finalizing(gateway)
    assert put_blob(azurite, grant, "mixing_index.csv", CSV, "text/csv") == 201
    done = report(
        gateway,
        job_id,
        token,
        "COMPLETED",
        outputs=[{"name": "mixing_index", "file": "mixing_index.csv"}],
    )
    assert done.status == 200, done.body
    before = listed(gateway, job_id)

    alice_job, alice_token = queued_job(gateway, "alice")
    finish(gateway, azurite, alice_job, alice_token)
    alice_source = output_uri(gateway, alice_job, "alice")
    attempts = {
        "overwrite": https(
            azurite,
            "PUT",
            with_grant(grant, "mixing_index.csv"),
            b"<script>alert(1)</script>",
            {**VERSION, "x-ms-blob-type": "BlockBlob", "Content-Type": "text/html"},
        ),
        "set properties": https(
            azurite,
            "PUT",
            with_grant(grant, "mixing_index.csv", "comp=properties"),
            b"",
            {
                **VERSION,
                "x-ms-blob-content-type": "text/html",
                "x-ms-blob-content-disposition": "inline",
            },
        ),
        "set metadata": https(
            azurite,
            "PUT",
            with_grant(grant, "mixing_index.csv", "comp=metadata"),
            b"",
            {**VERSION, "x-ms-meta-evil": "1"},
        ),
        "add a blob": https(
            azurite,
            "PUT",
            with_grant(grant, "newfile.txt"),
            b"new",
            {**VERSION, "x-ms-blob-type": "BlockBlob"},
        ),
        "copy blob": https(
            azurite,
            "PUT",
            with_grant(grant, "copied.csv"),
            b"",
            {**VERSION, "x-ms-copy-source": alice_source},
        ),
        "put blob from url": https(
            azurite,
            "PUT",
            with_grant(grant, "from-url.csv"),
            b"",
            {**VERSION, "x-ms-copy-source": alice_source, "x-ms-blob-type": "BlockBlob"},
        ),
        # the output container is not the grant's: writing there is refused outright
        "write where users download": https(
            azurite,
            "PUT",
            f"{grant['url'].replace('/upload-', '/job-')}/mixing_index.csv?{grant['sas']}",
            b"x",
            {**VERSION, "x-ms-blob-type": "BlockBlob"},
        ),
    }
    assert {what: status for what, (status, _, _) in attempts.items() if status < 400} == {}
    assert listed(gateway, job_id) == before
    status, headers, body = download(gateway, azurite, job_id, "mixing_index.csv")
    assert (status, body, headers["content-type"]) == (200, CSV, "text/csv")
    assert headers["content-disposition"].startswith("attachment;")


def test_a_download_serves_the_recorded_bytes_with_the_recorded_size_md5_and_type(
    gateway: Gateway, azurite: AzuriteFixture
) -> None:
    job_id, token, grant = finalizing(gateway)
    # The uploader says text/html; the case declares text/csv, and that is what the gateway records and serves.
    assert put_blob(azurite, grant, "mixing_index.csv", CSV, "text/html") == 201
    assert (
        report(
            gateway,
            job_id,
            token,
            "DONE",
            outputs=[{"name": "mixing_index", "file": "mixing_index.csv"}],
        ).status
        == 200
    )
    [output] = listed(gateway, job_id)
    assert (output["size"], output["md5"], output["content_type"]) == (
        len(CSV),
        md5_b64(CSV),
        "text/csv",
    )
    status, headers, body = download(gateway, azurite, job_id, "mixing_index.csv")
    assert status == 200
    assert body == CSV
    assert (headers["content-type"], headers.get("content-md5")) == ("text/csv", md5_b64(CSV))
    assert headers["content-disposition"] == (
        "attachment; filename=\"mixing_index.csv\"; filename*=UTF-8''mixing_index.csv"
    )


def test_the_grant_is_dead_once_the_job_has_ended(
    gateway: Gateway, azurite: AzuriteFixture
) -> None:
    for end in ("COMPLETED", "FAILED", "CANCELLED"):
        job_id, token, grant = finalizing(gateway)
        assert put_blob(azurite, grant, "simgate-stdout.log", b"log\n", "text/plain") == 201
        claims = [{"name": "stdout", "file": "simgate-stdout.log"}]
        assert report(gateway, job_id, token, end, outputs=claims).status == 200
        assert put_blob(azurite, grant, "late.txt", b"late", "text/plain") >= 400, end
        assert put_blob(azurite, grant, "simgate-stdout.log", b"changed\n", "text/plain") >= 400, (
            end
        )
        assert download(gateway, azurite, job_id, "simgate-stdout.log")[2] == b"log\n"


def test_the_grant_dies_with_the_job_however_it_ends(
    gateway: Gateway, azurite: AzuriteFixture
) -> None:
    """Ended by the reconciler (lost) or by a confirmed cancel, not by a report: the upload container goes too."""
    from core.states import JobState
    from core.transitions import advanced
    from core.transitions import cancel_confirmed as cancelled

    lost, _, lost_grant = finalizing(gateway)
    change_job(lost, lambda j: advanced(j, JobState.FAILED, "reconciler", "lost by scheduler"))
    stopped, _, stopped_grant = finalizing(gateway)
    change_job(stopped, lambda j: advanced(j, JobState.CANCELLING, "martin"))
    change_job(stopped, cancelled)
    for grant in (lost_grant, stopped_grant):
        assert put_blob(azurite, grant, "late.txt", b"late", "text/plain") >= 400


# --- claims the gateway refuses --------------------------------------------------------------------------------


def test_a_claimed_output_made_by_a_copy_is_refused(
    gateway: Gateway, azurite: AzuriteFixture
) -> None:
    alice_job, alice_token = queued_job(gateway, "alice")
    finish(gateway, azurite, alice_job, alice_token)
    source = output_uri(gateway, alice_job, "alice")
    job_id, token, grant = finalizing(gateway, "bob")
    copy = {**VERSION, "x-ms-copy-source": source}
    status = https(azurite, "PUT", with_grant(grant, "mixing_index.csv"), b"", copy)[0]
    # Azurite copies without asking the source (Azure/Azurite#2317); Azure would refuse (403). Either way:
    assert status in (202, 403)
    claims = [{"name": "mixing_index", "file": "mixing_index.csv"}]
    refused = report(gateway, job_id, token, "COMPLETED", outputs=claims)
    assert refused.status == 422, refused.body
    assert refused.body["errors"][0]["name"] == "outputs[0].file"
    assert gateway.call("GET", f"/job/{job_id}/status", user="bob").body["status"] == "FINALIZING"
    failed = report(gateway, job_id, token, "FAILED", outputs=claims)
    assert failed.status == 200
    assert (
        gateway.call("GET", f"/job/{job_id}/output", user="bob").body == []
    )  # not recorded on FAILED either


def test_duplicate_claims_are_refused(gateway: Gateway, azurite: AzuriteFixture) -> None:
    job_id, token, grant = finalizing(gateway)
    assert put_blob(azurite, grant, "mixing_index.csv", CSV, "text/csv") == 201
    claims = [{"name": "mixing_index", "file": "mixing_index.csv"}] * 3
    refused = report(gateway, job_id, token, "COMPLETED", outputs=claims)
    assert refused.status == 422
    assert [e["name"] for e in refused.body["errors"]] == ["outputs[1].file", "outputs[2].file"]
    assert report(gateway, job_id, token, "COMPLETED", outputs=claims[:1]).status == 200
    assert len(listed(gateway, job_id)) == 1


# --- how long a grant lives ------------------------------------------------------------------------------------


def expiry_of(grant: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(parse_qs(grant["sas"])["se"][0].replace("Z", "+00:00"))


def test_finalizing_reports_reuse_a_valid_grant_and_renew_one_about_to_end(
    gateway: Gateway,
) -> None:
    from core.services import get_settings

    job_id, token, first = finalizing(gateway)
    lifetime = timedelta(minutes=get_settings().upload_minutes)
    assert timedelta(0) < expiry_of(first) - datetime.now(UTC) <= lifetime
    again = report(gateway, job_id, token, "FINALIZING").body["upload"]
    assert again == first  # the same grant, not a new one each time

    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(
        minutes=3
    )  # as if the grant were ending
    change_job(job_id, lambda j: replace(j, upload_expires=iso_time(soon)))
    renewed = report(gateway, job_id, token, "FINALIZING").body["upload"]
    assert expiry_of(renewed) > soon + timedelta(minutes=1)
    assert expiry_of(renewed) > datetime.now(UTC) + lifetime - timedelta(minutes=1)
    assert report(gateway, job_id, token, "FINALIZING").body["upload"] == renewed


def test_no_grant_before_finalizing(gateway: Gateway) -> None:
    job_id, token = queued_job(gateway)
    assert "upload" not in report(gateway, job_id, token, "RUNNING").body
    assert read_job(job_id).upload_expires is None


# --- the token comes first -------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [{"status": "bogus"}, {"progress": 500}, {}, [1, 2]])
def test_a_report_without_the_job_token_is_401_whatever_its_body(
    gateway: Gateway, body: Any
) -> None:
    job_id, token = queued_job(gateway)
    for headers in ({}, {"Authorization": "Bearer not-the-token"}):
        reply = gateway.call("PATCH", f"/job/{job_id}/status", body, headers=headers)
        assert reply.status == 401, (headers, reply.body)
    with_token = gateway.call(
        "PATCH", f"/job/{job_id}/status", body, headers={"Authorization": f"Bearer {token}"}
    )
    assert with_token.status == 422


def test_a_large_or_unreadable_body_without_the_token_is_401(gateway: Gateway) -> None:
    job_id, _ = queued_job(gateway)
    big = gateway.call("PATCH", f"/job/{job_id}/status", {"message": "x" * 100_000})
    assert big.status == 401
