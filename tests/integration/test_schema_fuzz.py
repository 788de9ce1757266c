"""Schema fuzzing: schemathesis generates requests for every operation of `/openapi.json` and sends them to the
running gateway (devhost, Azurite): with a user's token, with a job's token, and with none.

Each answer must not be a server error, and its status code, content type, headers and body must be the ones the
document gives. Half of the requests that name a job name a real one (the fuzzing user's, or the job whose token
is used), so the fuzzing reaches past the "no such job" answer into the routes' own checks.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from core.api import OPERATIONS
from core.errors import NotFound
from core.job import Job, hash_token
from core.jobs import change_job
from core.states import JobState
from tests.integration.conftest import Gateway

pytestmark = pytest.mark.azurite

CASES_PER_OPERATION = 100
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
FUZZER = "fuzzer"
COUNTS: dict[str, int] = {}


@pytest.fixture(scope="module")
def api(gateway: Gateway) -> Any:
    return schemathesis.openapi.from_url(f"{gateway.url}/openapi.json")


@pytest.fixture(scope="module")
def unreachable_target() -> Iterator[None]:
    """The smoothie's target configured, on a port where nothing listens: runs are accepted, and their dispatch
    fails after the host's retries (the job FAILS), so fuzzing never reaches a real simulator."""
    from core.targets import get_targets
    from tests.infra import free_port

    before = os.environ.get("SIMGATE_TARGETS", "{}")
    target = {"host": "127.0.0.1", "port": free_port(), "user": "nobody", "key_file": "/nonexistent",
              "base_dir": "/tmp/simgate-fuzz", "known_hosts": f"127.0.0.1 ssh-ed25519 {'A' * 68}"}
    os.environ["SIMGATE_TARGETS"] = json.dumps({"local": target})
    get_targets.cache_clear()
    yield
    os.environ["SIMGATE_TARGETS"] = before
    get_targets.cache_clear()


@pytest.fixture(scope="module")
def real_jobs(gateway: Gateway, unreachable_target: None) -> Iterator[dict[str, Any]]:
    """Jobs of the fuzzing user to aim at, one of them QUEUED with a job token; all ended afterwards."""
    made = [gateway.call("POST", "/job", {"case_id": 2, "job_title": f"fuzz {i}"}, user=FUZZER).body["job_id"]
            for i in range(8)]
    token = secrets.token_urlsafe(32)

    def dispatched(job: Job) -> Job:
        return replace(job, status=JobState.QUEUED, token_hash=hash_token(token), scheduler_id="1")

    change_job(made[0], dispatched)
    from core.storage.outputs import job_outputs

    job_outputs().create(made[0])
    yield {"ids": itertools.cycle(made), "reported": made[0], "token": token}
    for job_id in made:  # whatever the fuzzing did to them, none stays active
        with contextlib.suppress(NotFound):  # deleted by the fuzzing: nothing to end
            change_job(job_id, lambda j: replace(j, status=JobState.FAILED) if j.status.active else None)


OPERATION_IDS = sorted(name for name, op in OPERATIONS.items() if op.documented)


@pytest.mark.parametrize("operation_id", OPERATION_IDS)
def test_every_operation_answers_as_documented(
    api: Any, gateway: Gateway, real_jobs: dict[str, Any], operation_id: str
) -> None:
    operation = api.find_operation_by_id(operation_id)

    @given(operation.as_strategy())
    @settings(max_examples=CASES_PER_OPERATION, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def fuzz(case: Any) -> None:
        COUNTS[operation_id] = count = COUNTS.get(operation_id, 0) + 1
        case.call_and_validate(base_url=gateway.url, headers=_aimed(case, operation_id, count, gateway, real_jobs),
                               checks=CHECKS, allow_redirects=False)

    fuzz()


def _aimed(case: Any, operation_id: str, count: int, gateway: Gateway, real_jobs: dict[str, Any]) -> dict[str, str]:
    """Aim every other case at a real job, and send a token with three cases in four."""
    job = real_jobs["reported"] if operation_id == "report_status" else next(real_jobs["ids"])
    if case.path_parameters and "job_id" in case.path_parameters and count % 2:
        case.path_parameters["job_id"] = job
    if count % 4 == 3:
        return {}
    token = real_jobs["token"] if operation_id == "report_status" else gateway.token(FUZZER)
    return {"Authorization": f"Bearer {token}"}


def test_enough_cases_ran_for_every_operation() -> None:
    """Runs after the fuzzing (file order): every documented operation got its share of generated cases."""
    assert set(COUNTS) == set(OPERATION_IDS), COUNTS
    fixed = {"openapi"}  # no parameters and no body: one request is all there is to send
    assert {op: n for op, n in COUNTS.items() if op not in fixed and n < CASES_PER_OPERATION} == {}
