"""The seed chart's story, told through the UI in a real browser: Martin never calls the API himself.

cases → smoothie → sign in → job "Test 1" → a value set with the slider (by keyboard), another typed → an
out-of-range value shows the server's own message next to its field → Run → the page follows the job to COMPLETED
by itself → a CSV preview and a chart appear → Download saves a CSV that parses. Then the jobs table, Rerun and
Delete, a phone-sized screen, and a job that is cancelled and one that fails, with their states and reasons.
"""

from __future__ import annotations

import csv
import re
import secrets
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import Gateway
from tests.integration.test_operations import SLOW_MODEL
from tests.integration.test_report_runs import CRASHING_MODEL

pytestmark = [pytest.mark.browser, pytest.mark.azurite]

# Martin, the seed's user; one of this session's own, so that jobs other test folders leave (theirs are "martin"'s
# too, some called "Test 1") are never in his list.
USER = f"martin.{secrets.token_hex(3)}"
JOB_DONE = 120_000  # ms: a coarse two-second smoothie takes a few seconds; dispatch and polling add a few more
ALL_LABELLED = """() => [...document.querySelectorAll('input, select, textarea, button')]
    .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                    && !el.getAttribute('aria-labelledby') && !(el.tagName === 'BUTTON' && el.textContent.trim()))
    .map((el) => el.outerHTML.slice(0, 120))"""
# Nothing sticks out past a phone's screen (elements inside a scrolling region may: they scroll).
TOO_WIDE = """() => [...document.querySelectorAll('body *')]
    .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 1 && !el.closest('.scroll'))
    .map((el) => el.tagName + '.' + el.className + ' ' + Math.round(el.getBoundingClientRect().right))"""


def shot(page: Any, folder: Path, name: str) -> None:
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def sign_in(page: Any, user: str = USER) -> None:
    """From a page showing a Sign in button: devhost's sign-in page, then back where we were."""
    page.get_by_role("button", name="Sign in").first.click()
    page.wait_for_url(re.compile(r"/dev/sign-in\?return="))
    page.get_by_label("User name").fill(user)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/ui/"))
    page.locator("#account .who").filter(has_text=user).wait_for()


def server_says(gateway: Gateway, name: str, value: Any) -> str:
    """What the API itself answers for a bad value, to compare with what the page shows."""
    job = gateway.call("POST", "/job", {"case_id": 2, "job_title": "probe"}, user=USER).body[
        "job_id"
    ]
    reply = gateway.call(
        "PATCH", f"/job/{job}", {"fields": [{"name": name, "value": value}]}, user=USER
    )
    gateway.call("DELETE", f"/job/{job}", user=USER)
    assert reply.status == 422, reply.body
    return str(next(e["detail"] for e in reply.body["errors"] if e["name"] == name))


def test_the_seed_story_in_a_browser(
    page: Any, ui: Gateway, embedded_simulator: Any, use_targets: Any, screenshots: Path
) -> None:
    use_targets({"local": embedded_simulator.target("local")})

    # Show all cases: the root sends the browser to the UI's gallery.
    page.goto("/")
    page.wait_for_url("**/ui/")
    page.get_by_role("heading", name="Simulation cases").wait_for()
    assert page.locator(".cards > li").count() >= 3
    shot(page, screenshots, "01-cases")

    # Show the smoothie case, reached by keyboard: Tab to its card's link, Enter.
    for _ in range(12):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "Smoothie blender":
            break
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Smoothie blender", level=1).wait_for()
    assert page.evaluate(ALL_LABELLED) == []
    shot(page, screenshots, "02-case-signed-out")

    page.get_by_role("button", name="Sign in").first.click()
    page.wait_for_url(re.compile(r"/dev/sign-in"))
    shot(page, screenshots, "03-dev-sign-in")
    page.get_by_label("User name").fill(USER)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/ui/case/2")
    page.locator("#account .who").filter(has_text=USER).wait_for()
    # The token stays in this tab's sessionStorage: not in the URL, not in localStorage.
    assert page.evaluate("localStorage.length") == 0
    assert page.evaluate("JSON.parse(sessionStorage.getItem('simgate.devToken')).user") == USER
    assert "token" not in page.url

    # Make this a job called "Test 1" and set these values: one with the slider, one by typing.
    page.get_by_label("Job title").fill("Test 1")
    slider = page.get_by_label("Blade speed slider (rpm)")
    slider.focus()
    for _ in range(30):
        page.keyboard.press("ArrowRight")  # 30 steps of 100 rpm from 12 000
    assert page.get_by_role("spinbutton", name="Blade speed").input_value() == "15000"
    page.get_by_role("spinbutton", name="Blend duration").fill("2")
    assert page.get_by_label("Blend duration slider (s)").input_value() == "2"
    page.get_by_label("Mesh resolution").select_option("coarse")

    # An out-of-range value: the server's own words appear next to the field, and nothing is saved.
    page.get_by_role("spinbutton", name="Fruit purée fraction").fill("1.5")
    page.expect_console_error(
        r"status of 422"
    )  # Chromium logs every 4xx load, this expected one too
    page.get_by_role("button", name="Save").click()
    error = page.locator("#f-fruit_fraction-error")
    error.wait_for()
    said = server_says(ui, "fruit_fraction", 1.5)
    assert error.inner_text().lower() == said.lower()
    assert (
        page.get_by_role("spinbutton", name="Fruit purée fraction").get_attribute("aria-invalid")
        == "true"
    )
    assert page.locator(".error-summary").inner_text().count("Fruit purée fraction") == 1
    shot(page, screenshots, "04-case-server-says-no")

    # Put it right and run: the page follows the job to COMPLETED on its own.
    page.get_by_role("spinbutton", name="Fruit purée fraction").fill("0.5")
    page.get_by_role("button", name="Run").click()
    page.wait_for_url(re.compile(r"/ui/job/[0-9a-f]{16}-"))
    job_id = page.url.rsplit("/", 1)[1]
    page.locator(".job-meta .badge", has_text="Completed").wait_for(timeout=JOB_DONE)

    # What outputs are there? A preview of the mixing index and its chart appear.
    preview = page.locator(".preview table.csv")
    preview.wait_for()
    headers = preview.locator("thead th").all_inner_texts()
    assert headers[:2] == ["time_s", "mixing_index"]
    assert preview.locator("tbody tr").count() >= 2
    chart = page.locator("svg.chart")
    chart.wait_for()
    assert "mixing_index against time_s" in (chart.get_attribute("aria-label") or "")
    assert page.locator("svg.chart path.line").get_attribute("d").count("L") >= 2
    values = dict(
        zip(
            page.locator("table.values tbody th").all_inner_texts(),
            page.locator("table.values tbody td").all_inner_texts(),
            strict=True,
        )
    )
    assert (
        values["Blade speed"].replace(",", "").replace("\u202f", "").replace(" ", "") == "15000rpm"
    )
    assert values["Fruit purée fraction"].startswith("0.5")
    assert "(default)" in values["Pulse mode"]
    timeline = page.locator("ol.timeline li .badge").all_inner_texts()
    assert timeline == ["Draft", "Submitted", "Queued", "Running", "Finalizing", "Completed"]
    shot(page, screenshots, "05-job-completed")

    # Download csv1: the SAS URL is fetched on click and the browser saves the file; then open it "in Excel".
    with page.expect_download() as download:
        page.get_by_role("button", name="Download Mixing index over time (CSV)").click()
    saved = Path(download.value.path())
    assert download.value.suggested_filename == "mixing_index.csv"
    rows = list(csv.DictReader(saved.read_text().splitlines()))
    assert len(rows) >= 2
    assert 0 <= float(rows[-1]["mixing_index"]) <= 1
    assert float(rows[-1]["time_s"]) == pytest.approx(2, abs=0.05)

    # Show all jobs: Test 1 is there, completed; the status filter keeps it.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Jobs").click()
    page.get_by_role("heading", name="Your jobs").wait_for()
    row = page.locator(
        "table.jobs tbody tr", has=page.get_by_role("link", name="Test 1", exact=True)
    )
    row.locator(".badge", has_text="Completed").wait_for()
    page.get_by_label("Status").select_option("COMPLETED")
    page.wait_for_url("**/ui/jobs?status=COMPLETED")
    page.get_by_role("link", name="Test 1", exact=True).wait_for()
    shot(page, screenshots, "06-jobs")

    # A phone-sized screen: nothing wider than the screen.
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate(TOO_WIDE) == []
    page.goto(f"/ui/job/{job_id}")
    page.locator("svg.chart").wait_for()
    assert page.evaluate(TOO_WIDE) == []
    shot(page, screenshots, "07-phone-job")
    page.goto("/ui/case/smoothie")
    page.get_by_role("spinbutton", name="Blade speed").wait_for()
    assert page.evaluate(TOO_WIDE) == []
    shot(page, screenshots, "08-phone-case")
    page.set_viewport_size({"width": 1280, "height": 900})

    # Rerun: a new DRAFT with the same values, to edit; Delete removes it.
    page.goto(f"/ui/job/{job_id}")
    page.get_by_role("button", name="Rerun (copy)").click()
    page.get_by_role("heading", name="Test 1 (copy)").wait_for()
    assert page.get_by_role("spinbutton", name="Blade speed").input_value() == "15000"
    shot(page, screenshots, "09-rerun-draft")
    copy_id = page.url.rsplit("/", 1)[1]
    assert copy_id != job_id
    page.get_by_role("button", name="Delete").click()
    page.get_by_role("button", name="Really delete?").click()
    page.wait_for_url("**/ui/jobs")
    assert ui.call("GET", f"/job/{copy_id}", user=USER).status == 404


def test_a_running_job_is_cancelled_and_a_failed_one_says_why(
    page: Any, ui: Gateway, embedded_simulator: Any, use_targets: Any, screenshots: Path
) -> None:
    # A model that sleeps, so the job stays RUNNING until it is cancelled.
    use_targets({"local": embedded_simulator.target("local", setup=SLOW_MODEL)})
    slow = run_by_api(ui, "Slow one")
    page.goto("/ui/jobs")
    sign_in(page)
    row = page.locator("table.jobs tbody tr", has=page.get_by_role("link", name="Slow one"))
    row.locator(".badge", has_text="Running").wait_for(timeout=60_000)  # the table refreshes itself
    page.get_by_role("link", name="Slow one").click()
    page.locator(".job-meta .badge", has_text="Running").wait_for()
    assert page.locator("progress#job-progress").is_visible()
    shot(page, screenshots, "10-job-running")
    page.get_by_role("button", name="Cancel job").click()
    page.locator(".job-meta .badge", has_text="Cancelled").wait_for(timeout=90_000)
    assert page.get_by_role("button", name="Cancel job").count() == 0
    assert ui.call("GET", f"/job/{slow}/status", user=USER).body["status"] == "CANCELLED"

    # A model that exits 3: the job fails, and its page says why.
    use_targets({"local": embedded_simulator.target("local", setup=CRASHING_MODEL)})
    crashing = run_by_api(ui, "Crashes")
    page.goto(f"/ui/job/{crashing}")
    page.locator(".job-meta .badge", has_text="Failed").wait_for(timeout=60_000)
    reason = ui.call("GET", f"/job/{crashing}", user=USER).body["reason"]
    assert reason == "exit code 3: model crashed"
    assert page.locator(".callout.failed").inner_text().endswith(reason)
    log = page.locator("pre.log")  # the error log is shown, and can be downloaded
    log.wait_for()
    assert "model crashed" in log.inner_text()
    assert page.get_by_role("button", name="Download Job error log").is_visible()
    shot(page, screenshots, "11-job-failed")


def run_by_api(gateway: Gateway, title: str) -> str:
    """A smoothie job of USER's, run (coarse and short)."""
    job = gateway.call("POST", "/job", {"case_id": 2, "job_title": title}, user=USER).body["job_id"]
    fields = [{"name": "mesh", "value": "coarse"}, {"name": "blend_duration", "value": 2.0}]
    assert gateway.call("PATCH", f"/job/{job}", {"fields": fields}, user=USER).status == 200
    assert gateway.call("POST", f"/job/{job}", user=USER).status == 202
    return str(job)
