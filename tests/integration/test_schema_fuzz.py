"""Schema fuzzing: schemathesis generates requests from `/openapi.json` and sends them to the running gateway
(devhost, Azurite), with a user's token, with a job's token, and with none, in the three phases its CLI runs:

* coverage: for each operation, the boundary and just-outside values of every parameter and body member, missing
  required parts, and methods the document does not list (deterministic);
* fuzzing: cases drawn by hypothesis, schema-valid and schema-violating, about half of them aimed at a real job
  (the fuzzing user's, or the job whose token is used) so they reach past "no such job" into the routes' checks;
  `PATCH /job` also gets numbers no float holds (integers of hundreds of digits, floats near the limits);
* stateful: sequences that follow the document's links from a job `POST /job` made.

Every answer goes through every schemathesis check except `unsupported_method` (the project's `schemathesis.toml`
says why): no server error; status, content type, headers and body as documented; schema-valid data accepted and
schema-violating data refused; a deleted job gone, a made one there. Last, the schemathesis CLI itself runs with its
defaults against the gateway and must find nothing: the issue's acceptance, as an outside fuzzer would see it.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
import schemathesis

# Loaded now, at collection, not on first use: CPython 3.11.7 can fail to parse a module later in a session
# ("AST constructor recursion depth mismatch", python/cpython#106905), and pytest rewrites schemathesis' modules
# as it imports them.
import schemathesis.specs.openapi.schemas
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import CHECKS, is_check_class, load_all_checks
from schemathesis.config import SchemathesisConfig
from schemathesis.generation import GenerationMode
from schemathesis.generation.drivers import CoverageGenerator
from schemathesis.generation.feedback import FeedbackSources
from schemathesis.generation.overrides import Override
from schemathesis.schemas import ParameterLocation

import function_app  # noqa: F401  (its blueprints declare the operations: the registry the ids come from)
from blueprints._contract import API
from core.errors import NotFound
from core.job_store import change_job
from core.records import JOB_ID, Job, hash_token, owner_key
from core.services import reset_services
from core.states import JobState
from tests.conftest import ROOT
from tests.integration.conftest import Gateway

pytestmark = pytest.mark.azurite

CASES_PER_OPERATION = 100
STATEFUL_SCENARIOS = 40
CLI_EXAMPLES = 15  # per operation and phase: the whole run stays within about a minute
CONFIG_FILE = ROOT / "schemathesis.toml"
FUZZER = "fuzzer"
SMOOTHIE = 2  # the case of the fuzzing user's jobs
COUNTS: dict[str, int] = {}
OPERATION_IDS = sorted(op.name for op in API if op.documented)


def every_check_but_unsupported_method() -> list[Callable[..., Any]]:
    """Schemathesis's checks, as its CLI runs them by default, less the one the project's config turns off."""
    load_all_checks()
    return [
        c for c in CHECKS.get_all() if not is_check_class(c) and c.__name__ != "unsupported_method"
    ]


@pytest.fixture(scope="module")
def api(gateway: Gateway) -> Any:
    return schemathesis.openapi.from_url(
        f"{gateway.url}/openapi.json", config=SchemathesisConfig.from_path(CONFIG_FILE)
    )


@pytest.fixture(scope="module")
def unreachable_targets() -> Iterator[None]:
    """Every case's target configured, on a port where nothing listens: runs are accepted, and their dispatch
    fails after the host's retries (the job FAILS), so fuzzing never reaches a real simulator."""
    from tests.infra import free_port

    before = os.environ.get("SIMGATE_TARGETS", "{}")
    target = {
        "host": "127.0.0.1",
        "port": free_port(),
        "user": "nobody",
        "key_file": "/nonexistent",
        "base_dir": "/tmp/simgate-fuzz",
        "known_hosts": f"127.0.0.1 ssh-ed25519 {'A' * 68}",
    }
    os.environ["SIMGATE_TARGETS"] = json.dumps({"local": target, "cluster": target})
    reset_services()
    yield
    os.environ["SIMGATE_TARGETS"] = before
    reset_services()


@pytest.fixture(scope="module")
def real_jobs(gateway: Gateway, unreachable_targets: None) -> Iterator[dict[str, Any]]:
    """Jobs of the fuzzing user to aim at, one of them QUEUED with a job token; all ended afterwards."""
    made = [
        gateway.call(
            "POST", "/job", {"case_id": SMOOTHIE, "job_title": f"fuzz {i}"}, user=FUZZER
        ).body["job_id"]
        for i in range(8)
    ]
    token = secrets.token_urlsafe(32)

    def dispatched(job: Job) -> Job:
        return replace(job, status=JobState.QUEUED, token_hash=hash_token(token), scheduler_id="1")

    change_job(made[0], dispatched)
    from core.services import services

    services().outputs.create(made[0])
    yield {"ids": itertools.cycle(made), "reported": made[0], "token": token}
    end_every_job_of(FUZZER)


def end_every_job_of(user: str) -> None:
    """Whatever the fuzzing did to a user's jobs, none stays active (the session's gateway checks at its end)."""
    from core.services import services

    for job in services().jobs.find("PartitionKey eq @pk", {"pk": owner_key(user)}, 1000):
        with contextlib.suppress(NotFound):  # deleted meanwhile: nothing to end
            change_job(
                job.job_id,
                lambda j: replace(j, status=JobState.FAILED) if j.status.active else None,
            )


def _aimed(
    case: Any, operation_id: str, count: int, gateway: Gateway, real_jobs: dict[str, Any]
) -> dict[str, str]:
    """Aim every other case at a real job, and send a token with three cases in four.

    Only a job id the document allows is swapped for a real one: a case that is schema-violating for its job id
    stays so, and one that is schema-violating elsewhere stays so too."""
    job = real_jobs["reported"] if operation_id == "report_status" else next(real_jobs["ids"])
    path = case.path_parameters
    if (
        path
        and isinstance(path.get("job_id"), str)
        and JOB_ID.fullmatch(path["job_id"])
        and count % 2
    ):
        path["job_id"] = job
    if count % 4 == 3 or _negative_in(
        case, ParameterLocation.HEADER
    ):  # a missing or bad token stays so
        return {}
    token = real_jobs["token"] if operation_id == "report_status" else gateway.token(FUZZER)
    return {"Authorization": f"Bearer {token}"}


def _negative_in(case: Any, location: ParameterLocation) -> bool:
    component = case.meta.components.get(location) if case.meta is not None else None
    return component is not None and not component.mode.is_positive


def _send(case: Any, operation_id: str, gateway: Gateway, real_jobs: dict[str, Any]) -> None:
    COUNTS[operation_id] = count = COUNTS.get(operation_id, 0) + 1
    headers = _aimed(case, operation_id, count, gateway, real_jobs)
    case.call_and_validate(
        base_url=gateway.url,
        headers=headers,
        checks=every_check_but_unsupported_method(),
        additional_checks=[numbers_out_of_range_are_named],
        allow_redirects=False,
    )


# -- PATCH /job values that no float holds (finding F3) ---------------------------------------------------------

HOSTILE_NUMBERS = st.one_of(
    st.integers(
        min_value=10**300, max_value=10**450
    ),  # hundreds of digits: Python's float() overflows
    st.integers(min_value=-(10**450), max_value=-(10**300)),
    st.integers(min_value=2**53, max_value=2**70),  # whole, but past what a double holds exactly
    st.sampled_from(
        [
            sys.float_info.max,
            -sys.float_info.max,
            sys.float_info.min,
            5e-324,
            -5e-324,
            1e308,
            2**1024,
            -(2**1024),
            10**308,
            10**309,
        ]
    ),
    st.floats(min_value=1e300, allow_infinity=False),
    st.floats(max_value=-1e300, allow_infinity=False),
)


def _number_fields() -> list[str]:
    from core.catalog import get_catalog

    return [f.name for f in get_catalog().get(SMOOTHIE).leaves() if f.type in ("int", "float")]


def with_hostile_numbers(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`PATCH /job` cases, one in two with its `fields` replaced by hostile numbers for the smoothie's number
    fields (still schema-valid: any JSON is a value, as far as the document knows)."""
    names = _number_fields()
    fields = st.lists(
        st.tuples(st.sampled_from(names), HOSTILE_NUMBERS),
        min_size=1,
        max_size=3,
        unique_by=lambda pair: pair[0],
    )

    def apply(case: Any, chosen: list[tuple[str, Any]], hostile: bool) -> Any:
        positive = case.meta is not None and case.meta.generation.mode.is_positive
        if hostile and positive and isinstance(case.body, dict):
            case.body = {**case.body, "fields": [{"name": n, "value": v} for n, v in chosen]}
        return case

    return st.builds(apply, strategy, fields, st.booleans())


def numbers_out_of_range_are_named(ctx: Any, response: Any, case: Any) -> bool | None:
    """A 422 to a PATCH with hostile numbers names every such field (a 500 fails `not_a_server_error` before)."""
    fields = case.body.get("fields") if isinstance(case.body, dict) else None
    sent = (
        {f.get("name") for f in fields if isinstance(f, dict) and _is_hostile(f.get("value"))}
        if isinstance(fields, list)
        else set()
    )
    if case.operation.method.upper() != "PATCH" or response.status_code != 422 or not sent:
        return None
    named = {e.get("name") for e in response.json().get("errors") or ()}
    assert sent <= named, f"422 without naming {sorted(sent - named)}: {response.text}"
    return True


def _is_hostile(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and abs(value) >= 2**53


# -- the three phases ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("operation_id", OPERATION_IDS)
def test_coverage_phase_answers_as_documented(
    api: Any, gateway: Gateway, real_jobs: dict[str, Any], operation_id: str
) -> None:
    """Schemathesis's coverage phase, case by case: every boundary and just-outside value of every parameter."""
    operation = api.find_operation_by_id(operation_id)
    generation = api.config.generation_for(operation=operation, phase="coverage")
    generator = CoverageGenerator(
        operation=operation,
        generation_modes=list(GenerationMode),
        generation_config=generation,
        auth_storage=None,
        override=Override(),
        feedback=FeedbackSources(),
    )
    cases = list(generator)
    assert cases, f"no coverage cases for {operation_id}"
    for case in cases:
        _send(case, operation_id, gateway, real_jobs)


@pytest.mark.parametrize("operation_id", OPERATION_IDS)
def test_fuzzing_phase_answers_as_documented(
    api: Any, gateway: Gateway, real_jobs: dict[str, Any], operation_id: str
) -> None:
    operation = api.find_operation_by_id(operation_id)
    strategy = st.one_of([operation.as_strategy(generation_mode=mode) for mode in GenerationMode])
    if operation_id == "update_job":
        strategy = with_hostile_numbers(strategy)

    @given(strategy)
    @settings(
        max_examples=CASES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case: Any) -> None:
        _send(case, operation_id, gateway, real_jobs)

    fuzz()


def test_stateful_phase_follows_the_links(
    api: Any, gateway: Gateway, real_jobs: dict[str, Any]
) -> None:
    """Sequences from the document's links: a job made, then edited, run, copied, cancelled, deleted, looked at."""
    base = api.as_state_machine()
    headers = {"Authorization": f"Bearer {gateway.token(FUZZER)}"}
    checks = every_check_but_unsupported_method()
    steps: list[str] = []

    class Machine(base):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            steps.append(case.operation.label)
            return {"base_url": gateway.url, "headers": headers, "allow_redirects": False}

        def validate_response(
            self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any
        ) -> None:
            case.validate_response(
                response,
                checks=checks,
                headers=headers,
                transport_kwargs=kwargs,
                recorder=getattr(self, "recorder", None),
            )

    # Not derandomized: what a scenario can draw depends on the answers (the links' values), which differ per run.
    Machine.run(
        settings=settings(
            max_examples=STATEFUL_SCENARIOS,
            deadline=None,
            database=None,
            stateful_step_count=6,
            suppress_health_check=list(HealthCheck),
        )
    )
    job_routes = {label for label in steps if "{job_id}" in label}
    assert "POST /job" in steps, sorted(set(steps))
    assert len(job_routes) >= 4, sorted(
        set(steps)
    )  # the links took it from the jobs it made to their routes


def test_enough_cases_ran_for_every_operation() -> None:
    """Runs after the fuzzing (file order): every documented operation got its share of generated cases."""
    assert set(COUNTS) == set(OPERATION_IDS), COUNTS
    fixed = {"openapi"}  # no parameters and no body: one request is all there is to send
    assert {op: n for op, n in COUNTS.items() if op not in fixed and n < CASES_PER_OPERATION} == {}


# -- the acceptance: an outside fuzzer, with its defaults, finds nothing --------------------------------

CLI_USER = "schemathesis-cli"


def test_the_schemathesis_cli_with_its_defaults_finds_nothing(
    gateway: Gateway, unreachable_targets: None
) -> None:
    """`schemathesis run <url>/openapi.json` from the checkout, as a newcomer would: every default phase (examples,
    coverage, fuzzing, stateful) and check; `schemathesis.toml` leaves out only `unsupported_method`."""
    command = [
        str(ROOT / ".venv" / "bin" / "schemathesis"),
        "run",
        f"{gateway.url}/openapi.json",
        "--header",
        f"Authorization: Bearer {gateway.token(CLI_USER)}",
        "--max-examples",
        str(CLI_EXAMPLES),
        "--no-color",
    ]
    try:
        done = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, timeout=240, check=False
        )
    finally:
        end_every_job_of(CLI_USER)
    report = done.stdout + done.stderr
    assert f"Configuration:    {CONFIG_FILE}" in report, report
    phases = {
        name: re.search(rf"(\S+) {name}\n", report) for name in ("Coverage", "Fuzzing", "Stateful")
    }
    assert {name: m.group(1) if m else None for name, m in phases.items()} == dict.fromkeys(
        phases, "✅"
    ), report
    # Every operation but `GET /openapi.json`, the document itself, which schemathesis does not test.
    assert f"Selected: {len(OPERATION_IDS) - 1}/{len(OPERATION_IDS) - 1}" in report, report
    assert f"Tested: {len(OPERATION_IDS) - 1}" in report, report
    assert done.returncode == 0, report
