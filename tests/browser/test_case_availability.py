"""A case its simulator cannot run, in a real browser: its card and its page say why, and Run is disabled with the
reason next to it (Save still works: a draft can wait for the simulator to be fixed)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.browser.test_seed_story import USER, shot, sign_in
from tests.integration.conftest import Gateway

pytestmark = [pytest.mark.browser, pytest.mark.azurite]

CAVITY_TITLE = "Lid-driven cavity (icoFoam)"
NOTE = "This case needs OpenFOAM, which its simulator does not provide."


def test_an_unavailable_case_says_why_and_cannot_be_run(
    page: Any, ui: Gateway, embedded_simulator: Any, use_targets: Any, screenshots: Path
) -> None:
    use_targets(
        {
            "cluster": {**embedded_simulator.target("cluster"), "provides": []},
            "local": {**embedded_simulator.target("local"), "provides": []},
        }
    )

    # The gallery: the cavity's card carries the note, the smoothie's none.
    page.goto("/ui/")
    cavity = page.locator(".cards > li", has=page.get_by_role("link", name=CAVITY_TITLE))
    assert cavity.locator(".unavailable-note").inner_text() == f"Cannot run: {NOTE}"
    smoothie = page.locator(".cards > li", has=page.get_by_role("link", name="Smoothie blender"))
    assert smoothie.locator(".unavailable-note").count() == 0
    shot(page, screenshots, "20-cases-one-unavailable")

    # The case's page says it too, and once signed in its form's Run is disabled, the reason next to it.
    page.get_by_role("link", name=CAVITY_TITLE).click()
    page.get_by_role("heading", name=CAVITY_TITLE, level=1).wait_for()
    assert page.locator("main .unavailable-note.callout").inner_text() == f"Cannot run: {NOTE}"
    sign_in(page)
    page.wait_for_url("**/ui/case/1")
    run = page.get_by_role("button", name="Run")
    assert run.is_disabled()
    assert page.get_by_role("button", name="Save").is_enabled()
    described = run.get_attribute("aria-describedby")
    assert page.locator(f"#{described}").inner_text() == f"Run is not possible: {NOTE}"
    shot(page, screenshots, "21-case-unavailable")

    # Save makes the draft; on the draft's own page Run stays disabled, and nothing was run.
    page.get_by_label("Job title").fill("Waits for OpenFOAM")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r"/ui/job/[0-9a-f]{16}-"))
    page.locator(".save-status", has_text="Saved").wait_for()
    job_id = page.url.rsplit("/", 1)[1]
    assert page.get_by_role("button", name="Run").is_disabled()
    page.reload()
    page.get_by_role("heading", name="Waits for OpenFOAM").wait_for()
    assert page.get_by_role("button", name="Run").is_disabled()
    assert ui.call("GET", f"/job/{job_id}/status", user=USER).body["status"] == "DRAFT"
    assert ui.call("DELETE", f"/job/{job_id}", user=USER).status == 204
