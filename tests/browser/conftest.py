"""Browser tests: Playwright for Python driving Debian's Chromium (`/usr/bin/chromium`, never a downloaded browser)
through the UI that devhost serves, against the session's Azurite and devhost's embedded SSH simulator.

The gateway is the session's (`tests/gateway.py`), shared with every other test folder.

Every page records its console: an error there, or an uncaught exception, fails the test unless the test said it
expects it (`page.expect_console_error(...)`, for a 422 the browser reports as a failed load). Screenshots go to
`.local/screenshots/` (git-ignored) for review.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from devhost.azurite import allow_browser_reads
from devhost.signin import KEY_SETTING
from tests.conftest import ROOT, AzuriteFixture, _missing_component
from tests.gateway import Gateway

CHROMIUM = Path("/usr/bin/chromium")
UI_INDEX = ROOT / "ui" / "dist" / "index.html"
SCREENSHOTS = ROOT / ".local" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="package")
def ui(gateway: Gateway, azurite: AzuriteFixture) -> Iterator[Gateway]:
    """The gateway, made ready for a browser: dev sign-in with its key, and Azurite letting the page read blobs."""
    if not UI_INDEX.exists():
        _missing_component(
            f"{UI_INDEX.relative_to(ROOT)} is missing: build the UI (`node ui/build.mjs`)"
        )
    before = os.environ.get(KEY_SETTING)
    os.environ[KEY_SETTING] = str(gateway.signing_key)
    allow_browser_reads(azurite.connection_string, azurite.ca_path, [gateway.url])
    yield gateway
    if before is None:
        os.environ.pop(KEY_SETTING, None)
    else:
        os.environ[KEY_SETTING] = before


@pytest.fixture(scope="package")
def chromium(azurite: AzuriteFixture) -> Iterator[Any]:
    """Debian's Chromium, headless, trusting the test Azurite's certificate (and no other unknown one)."""
    if not CHROMIUM.exists():
        _missing_component(
            f"{CHROMIUM} is missing: `apt-get install chromium` (`make system-deps` as root)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",  # as root (CI) Chromium refuses to start with its sandbox
                f"--ignore-certificate-errors-spki-list={spki_hash(azurite.ca_path)}",
            ],
        )
        try:
            yield browser
        finally:
            browser.close()


def spki_hash(cert_path: Path) -> str:
    """Base64 SHA-256 of a certificate's public key: what Chromium's SPKI allow-list takes."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


@dataclass
class ConsoleWatch:
    """Console errors and page exceptions of one page, and the ones a test said it expects."""

    errors: list[str] = field(default_factory=list)
    expected: list[re.Pattern[str]] = field(default_factory=list)

    def on_console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text} ({message.location.get('url', '')})")

    def on_page_error(self, error: Any) -> None:
        self.errors.append(f"uncaught: {error}")

    def expect(self, pattern: str) -> None:
        """The next console error matching `pattern` is expected (once)."""
        self.expected.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        """Errors no expectation accounts for; each expectation covers one error."""
        left = list(self.expected)
        found = []
        for error in self.errors:
            match = next((p for p in left if p.search(error)), None)
            if match is None:
                found.append(error)
            else:
                left.remove(match)
        return found


@pytest.fixture
def page(chromium: Any, ui: Gateway) -> Iterator[Any]:
    """A fresh browser tab (its own context: empty sessionStorage) that fails the test on any unexpected error."""
    context = chromium.new_context(viewport=DESKTOP, accept_downloads=True, base_url=ui.url)
    tab = context.new_page()
    watch = ConsoleWatch()
    tab.on("console", watch.on_console)
    tab.on("pageerror", watch.on_page_error)
    tab.expect_console_error = watch.expect
    tab.set_default_timeout(15_000)
    try:
        yield tab
    finally:
        context.close()
    assert watch.unexpected() == []


@pytest.fixture(scope="package")
def screenshots() -> Path:
    """Where the tests save their screenshots."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
