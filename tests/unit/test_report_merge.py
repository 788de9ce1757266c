"""The pure parts of status reports and output settings: state names, the ordered merge, reasons, ids, lifetimes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.bodies import StatusReport, parse_body
from core.config import _blob_service_url, _minutes
from core.errors import Conflict, InvalidBody, Unauthenticated, Unavailable
from core.records import Job, Output, hash_token, iso_time
from core.reports import bounded, merged, output_id, report_reason, reported_state
from core.services import get_settings
from core.states import JobState
from core.storage.azurite import AzuriteCredential
from core.transitions import RENEW_WITHIN
from tests.infra import load_wrapper

TOKEN = "t" * 43


def job(status: JobState, **changes: Any) -> Job:
    return Job(
        job_id="0123456789abcdef-8765432109876-abcdef",
        owner="o",
        owner_name="o",
        case_id=2,
        title="t",
        description="",
        status=status,
        created_at="c",
        updated_at="u",
        token_hash=hash_token(TOKEN),
        **changes,
    )


def merge(current: Job, status: str, token: str = TOKEN, **extra: Any) -> Job | None:
    report = parse_body(StatusReport, {"status": status, **extra})
    return merged(current, report, reported_state(status), token, None)


@pytest.mark.parametrize(
    ("text", "state"),
    [
        ("running", JobState.RUNNING),
        ("Running", JobState.RUNNING),
        ("clean up", JobState.FINALIZING),
        ("Clean Up", JobState.FINALIZING),
        ("done", JobState.COMPLETED),
        ("DONE", JobState.COMPLETED),
        (" failed ", JobState.FAILED),
        ("cancelled", JobState.CANCELLED),
    ],
)
def test_status_names_are_case_insensitive_with_the_seeds_aliases(
    text: str, state: JobState
) -> None:
    assert reported_state(text) is state


@pytest.mark.parametrize(
    "text", ["DRAFT", "submitted", "QUEUED", "cancelling", "bogus", "clean-up"]
)
def test_states_a_simulator_does_not_report_are_refused_naming_status(text: str) -> None:
    with pytest.raises(InvalidBody) as caught:
        reported_state(text)
    assert caught.value.errors[0].name == "status"


def test_a_report_moves_the_job_forward_and_is_stamped() -> None:
    moved = merge(job(JobState.QUEUED), "RUNNING", progress=5, message="step 1")
    assert moved is not None
    assert (moved.status, moved.progress, moved.message) == (JobState.RUNNING, 5, "step 1")
    assert moved.history[-1].status is JobState.RUNNING
    assert moved.history[-1].by == "simulator"


def in_minutes(minutes: float) -> str:
    return iso_time(datetime.now(UTC) + timedelta(minutes=minutes))


def test_late_and_repeated_reports_change_nothing() -> None:
    assert merge(job(JobState.FINALIZING), "RUNNING") is None
    assert merge(job(JobState.RUNNING), "RUNNING") is None
    assert merge(job(JobState.CANCELLING, upload_expires=in_minutes(10)), "FINALIZING") is None
    assert merge(job(JobState.FINALIZING, upload_expires=in_minutes(10)), "FINALIZING") is None


def test_the_first_finalizing_report_opens_a_grant_window_of_the_set_length() -> None:
    for current in (JobState.RUNNING, JobState.CANCELLING):
        moved = merge(job(current), "FINALIZING")
        assert moved is not None
        assert moved.status is (
            JobState.FINALIZING if current is JobState.RUNNING else JobState.CANCELLING
        )
        assert moved.upload_expires is not None
        left = datetime.fromisoformat(moved.upload_expires) - datetime.now(UTC)
        assert (
            timedelta(minutes=get_settings().upload_minutes - 1)
            < left
            <= timedelta(minutes=get_settings().upload_minutes)
        )


def test_a_grant_about_to_end_is_renewed_and_one_with_time_left_is_reused() -> None:
    renewed = merge(job(JobState.FINALIZING, upload_expires=in_minutes(4)), "FINALIZING")
    assert renewed is not None
    assert renewed.upload_expires is not None
    assert renewed.upload_expires > in_minutes(5)
    assert renewed.history == ()  # no state change, only the window
    assert (
        merge(
            job(
                JobState.FINALIZING,
                upload_expires=in_minutes(RENEW_WITHIN.total_seconds() / 60 + 1),
            ),
            "FINALIZING",
        )
        is None
    )


def test_the_gateway_renews_before_the_wrapper_asks() -> None:
    """The wrapper asks again with GRANT_MARGIN left; the gateway must then answer with a new grant, not the old."""
    assert RENEW_WITHIN.total_seconds() > load_wrapper().GRANT_MARGIN


def test_a_job_that_never_finalized_gets_no_grant_window() -> None:
    for status in ("RUNNING", "FAILED"):
        moved = merge(job(JobState.RUNNING), status)
        assert moved is None or moved.upload_expires is None


def test_progress_within_a_state_is_kept_without_a_history_entry() -> None:
    updated = merge(job(JobState.RUNNING, progress=10.0), "RUNNING", progress=40)
    assert updated is not None
    assert updated.progress == 40
    assert updated.history == ()


def test_a_finished_job_refuses_reports() -> None:
    for status in (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED):
        with pytest.raises(Conflict):
            merge(job(status), "RUNNING")


def test_a_token_replaced_meanwhile_is_refused() -> None:
    with pytest.raises(Unauthenticated):
        merge(job(JobState.RUNNING), "FINALIZING", token="another")


def test_a_final_report_replaces_the_outputs() -> None:
    found = (Output("a.csv", "a", "a.csv", "A", "text/csv", 3),)
    report = parse_body(StatusReport, {"status": "done"})
    done = merged(job(JobState.FINALIZING), report, JobState.COMPLETED, TOKEN, found)
    assert done is not None
    assert done.outputs == found


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"status": "FAILED", "exit_code": 3, "message": "exit code 3"}, "exit code 3"),
        (
            {"status": "FAILED", "exit_code": 3, "message": "upload failed: a.csv"},
            "exit code 3: upload failed: a.csv",
        ),
        # What the wrapper says of a failed entry is the reason, not lost behind the bare code.
        (
            {
                "status": "FAILED",
                "exit_code": 1,
                "message": "exit code 1: blockMesh: Could not find mandatory etc entry",
            },
            "exit code 1: blockMesh: Could not find mandatory etc entry",
        ),
        (
            {"status": "FAILED", "exit_code": 137, "message": "exit code 137; no upload grant"},
            "exit code 137; no upload grant",
        ),
        (
            {"status": "FAILED", "exit_code": 1, "message": "exit code 143: killed"},
            "exit code 1: exit code 143: killed",
        ),
        (
            {"status": "FAILED", "exit_code": 2, "message": "line one\n\tline two\r\n"},
            "exit code 2: line one line two",
        ),
        ({"status": "FAILED", "message": "out of disk"}, "out of disk"),
        ({"status": "FAILED"}, "the simulator reported a failure"),
        ({"status": "RUNNING", "exit_code": 3}, None),
    ],
)
def test_failed_always_carries_a_reason(body: dict[str, Any], reason: str | None) -> None:
    assert report_reason(parse_body(StatusReport, body), reported_state(body["status"])) == reason


def test_a_reason_is_bounded() -> None:
    report = parse_body(
        StatusReport, {"status": "FAILED", "exit_code": 1, "message": "exit code 1: " + "x" * 1900}
    )
    reason = report_reason(report, JobState.FAILED)
    assert reason is not None
    assert len(reason) == 300
    assert reason.startswith("exit code 1: xxx")
    assert reason.endswith("…")


def test_output_ids_are_path_safe() -> None:
    assert output_id("mixing_index.csv") == "mixing_index.csv"
    assert output_id("postProcessing/u.csv") == "postProcessing~u.csv"


@pytest.mark.parametrize(
    "file", ["../x", "/etc/passwd", ".hidden", "a//b", "a b", "x/../y", "é.csv", ""]
)
def test_claimed_file_names_are_plain_relative_paths(file: str) -> None:
    with pytest.raises(InvalidBody) as caught:
        parse_body(StatusReport, {"status": "done", "outputs": [{"name": "x", "file": file}]})
    assert caught.value.errors[0].name == "outputs[0].file"


@pytest.mark.parametrize(("text", "minutes"), [("10", 10), ("0", 1), ("600", 60), ("60", 60)])
def test_sas_lifetimes_stay_within_an_hour(text: str, minutes: int) -> None:
    assert _minutes(text) == minutes


@pytest.mark.parametrize(
    ("env", "url"),
    [
        ({"SIMGATE_OUTPUTS_URL": "https://x.example/"}, "https://x.example"),
        (
            {"AzureWebJobsStorage__blobServiceUri": "https://acct.blob.core.windows.net"},
            "https://acct.blob.core.windows.net",
        ),
        ({"AzureWebJobsStorage__accountName": "acct"}, "https://acct.blob.core.windows.net"),
        (
            {
                "AzureWebJobsStorage": "DefaultEndpointsProtocol=https;AccountName=d;BlobEndpoint=https://127.0.0.1:1/d/;"
            },
            "https://127.0.0.1:1/d",
        ),
        ({}, ""),
    ],
)
def test_the_blob_endpoint_comes_from_the_settings_azure_uses(
    env: dict[str, str], url: str
) -> None:
    assert _blob_service_url(lambda name, default: env.get(name, default)) == url


def test_the_azurite_credential_serves_only_local_endpoints() -> None:
    AzuriteCredential.for_endpoint("https://127.0.0.1:10000/devstoreaccount1")
    with pytest.raises(Unavailable):
        AzuriteCredential.for_endpoint("https://acct.blob.core.windows.net")


def test_a_reason_is_one_bounded_line() -> None:
    assert bounded("exit code 1:\n  blockMesh   failed") == "exit code 1: blockMesh failed"
    long = bounded("x" * 1000)
    assert long is not None
    assert len(long) == 300
    assert long.endswith("…")
