"""The gateway over real HTTP: devhost serving `function_app` on a free port, against the session's Azurite.

One per test session: `tests/conftest.py` registers these fixtures for every test folder (integration, e2e,
browser, devhost), so all of them talk to the same host, and its teardown checks that no test left a job active.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from core.services import reset_services
from core.states import JobState
from devhost.host import DevHost
from devhost.tokens import DEV_AUDIENCE, DEV_ISSUER, DEV_SCOPE, make_key_pair, mint
from tests.conftest import ROOT, AzuriteFixture


@dataclass
class Reply:
    """An HTTP answer: status, headers (lower-case names) and the parsed JSON body (None when empty)."""

    status: int
    headers: dict[str, str]
    raw: bytes

    @property
    def body(self) -> Any:
        return json.loads(self.raw) if self.raw else None


@dataclass
class Gateway:
    """A running gateway and a tiny HTTP client for it, with tokens for named users."""

    url: str
    signing_key: Path
    tokens: dict[str, str] = field(default_factory=dict)

    def token(self, user: str, *, admin: bool = False) -> str:
        key = f"{user}:{admin}"
        if key not in self.tokens:
            self.tokens[key] = mint(self.signing_key, user, admin=admin)
        return self.tokens[key]

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        user: str | None = None,
        admin: bool = False,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> Reply:
        sent = dict(headers or {})
        if user is not None:
            sent.setdefault("Authorization", f"Bearer {self.token(user, admin=admin)}")
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            sent.setdefault("Content-Type", "application/json")
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=sent)
        try:
            with _OPENER.open(request, timeout=30) as resp:
                return Reply(
                    resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
                )
        except urllib.error.HTTPError as err:
            return Reply(err.code, {k.lower(): v for k, v in err.headers.items()}, err.read())


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Answers are seen as they are: a 302 is returned to the test, not followed."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


@pytest.fixture(scope="session")
def gateway(azurite: AzuriteFixture, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    keys = tmp_path_factory.mktemp("keys")
    make_key_pair(keys / "signing.pem", keys / "jwks.json")
    settings = {
        **azurite.app_settings(),
        "AUTH_ISSUER": DEV_ISSUER,
        "AUTH_AUDIENCE": DEV_AUDIENCE,
        "AUTH_JWKS": str(keys / "jwks.json"),
        "AUTH_REQUIRED_SCOPE": DEV_SCOPE,  # as in Azure: user routes take delegated tokens only (the tokens' scp)
        "SIMGATE_JOBS_TABLE": "jobs" + azurite.unique_name("").replace("-", ""),
        "SIMGATE_TARGETS": "{}",
        "SIMGATE_CALLBACK_URL": "http://127.0.0.1:7071",
        # The reconciler's timer waits for New Year: tests run its passes themselves, when they choose.
        "SIMGATE_RECONCILE_SCHEDULE": "0 0 0 1 1 *",
    }
    _forget_cached_settings()
    with DevHost(
        "function_app:app",
        root=ROOT,
        port=0,
        settings=settings,
        load_settings=False,
        host_json=FAST_RETRIES,
    ) as host:
        os.environ["SIMGATE_CALLBACK_URL"] = host.url.rstrip(
            "/"
        )  # the port is known once the host listens
        _forget_cached_settings()
        yield Gateway(host.url.rstrip("/"), keys / "signing.pem")
        left = _jobs_left_active()
    _forget_cached_settings()
    assert not left, f"jobs left active when the tests ended: {left}"


def _jobs_left_active(grace: float = 60) -> list[str]:
    """Active jobs once those still finishing have had `grace` seconds: every test must end its jobs."""
    from core.reconcile import SWEPT
    from core.services import services

    active = " or ".join(f"status eq '{s.value}'" for s in (JobState.SUBMITTED, *SWEPT))
    deadline = time.monotonic() + grace
    while True:
        jobs = services().jobs.find(active, {}, 100)
        if not jobs or time.monotonic() > deadline:
            return [f"{j.job_id} ({j.status.value}: {j.title})" for j in jobs]
        time.sleep(0.5)


@pytest.fixture
def use_targets() -> Iterator[Any]:
    """Point the running gateway at the given targets (dispatch reads them per job), and back afterwards."""
    before = os.environ.get("SIMGATE_TARGETS", "{}")

    def use(targets: dict[str, dict[str, Any]]) -> None:
        os.environ["SIMGATE_TARGETS"] = json.dumps(targets)
        reset_services()

    yield use
    os.environ["SIMGATE_TARGETS"] = before
    reset_services()


# host.json as shipped, but retrying a failed message after 1 s and giving up after 3 tries, so tests are quick.
FAST_RETRIES = {
    **json.loads((ROOT / "host.json").read_text()),
    "extensions": {
        "http": {"routePrefix": ""},
        "queues": {
            "messageEncoding": "base64",
            "maxDequeueCount": 3,
            "visibilityTimeout": "00:00:01",
            "maxPollingInterval": "00:00:00.200",
            "batchSize": 8,
        },
    },
}


def _forget_cached_settings() -> None:

    reset_services()
    reset_services()
    reset_services()
