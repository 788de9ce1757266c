"""A case's metrics: declared in case.yaml, named in the job file, read by the wrapper after the entry ends, carried
by its final report, recorded by the gateway (only the case's, only finite numbers) and shown with the job."""

from __future__ import annotations

import json
import math
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from core.bodies import StatusReport, parse_body
from core.catalog import load_catalog
from core.errors import InvalidBody
from core.job_operations import show_job
from core.records import Job, hash_token, iso_time, new_job_id
from core.remote import _job_file, plan_for
from core.reports import report_status
from core.services import Services, use_services
from core.states import JobState
from core.storage.jobs_table import from_entity, to_entity
from tests.fakes import FakeJobs, FakeOutputs, fake_services
from tests.infra import load_wrapper
from tests.unit.test_service_rules import ALICE
from tests.unit.test_wrapper_pieces import WRAPPER, oldest_python

CASES_DIR = Path(__file__).resolve().parents[2] / "cases"
SMOOTHIE = 2
TOKEN = "the-jobs-own-token"
w = load_wrapper()


# ---- declarations -------------------------------------------------------------------------------------------------


def smoothie_with(metrics: list[dict[str, Any]]) -> dict[str, Any]:
    """The shipped smoothie case as a document, with these metrics declared instead."""
    case = load_catalog(CASES_DIR).get("smoothie")
    return {**case.model_dump(exclude_none=True), "metrics": metrics}


def validate(metrics: list[dict[str, Any]]) -> Any:
    return load_catalog(CASES_DIR).get("smoothie").model_validate(smoothie_with(metrics))


JSON_METRIC = {"name": "t95", "label": "Time", "units": "s", "file": "metrics.json", "key": "t"}
CSV_METRIC = {"name": "final", "label": "Final", "file": "out/series.csv", "column": "m"}


def test_a_case_declares_json_and_csv_metrics() -> None:
    case = validate([JSON_METRIC, CSV_METRIC])
    assert [(m.name, m.key, m.column) for m in case.metrics] == [
        ("t95", "t", None),
        ("final", None, "m"),
    ]
    assert case.metric("final") is case.metrics[1]
    assert case.metric("nope") is None


@pytest.mark.parametrize(
    ("metrics", "says"),
    [
        ([JSON_METRIC, {**CSV_METRIC, "name": "t95"}], "metric names must be unique"),
        ([{**JSON_METRIC, "file": "../metrics.json"}], "relative path"),
        ([{**JSON_METRIC, "file": "/tmp/metrics.json"}], "relative path"),
        ([{**JSON_METRIC, "column": "t"}], "either a `key`"),
        ([{k: v for k, v in JSON_METRIC.items() if k != "key"}], "either a `key`"),
        ([{**JSON_METRIC, "name": "Time 95"}], "pattern"),
        ([{**JSON_METRIC, "colour": "red"}], "colour"),
        ([{**JSON_METRIC, "name": f"m{i}"} for i in range(51)], "at most 50"),
    ],
)
def test_bad_metric_declarations_are_refused(metrics: list[dict[str, Any]], says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        validate(metrics)


def test_the_shipped_cases_declare_metrics_the_wrapper_can_read() -> None:
    catalog = load_catalog(CASES_DIR)
    assert [m.name for m in catalog.get("smoothie").metrics] == [
        "time_to_95_mixed",
        "final_mixing_index",
    ]
    assert [m.name for m in catalog.get("cavity").metrics] == [
        "min_centreline_u",
        "min_centreline_u_height",
    ]
    assert [m.name for m in catalog.get("dam-break").metrics] == ["final_downstream_fraction"]
    for (
        case
    ) in catalog.cases:  # a CSV metric reads a declared output, whose header names the column
        for metric in case.metrics:
            if metric.column is not None:
                output = next(o for o in case.outputs if o.glob == metric.file)
                assert metric.column in output.description


# ---- the job file and the wrapper ---------------------------------------------------------------------------------


def a_job(status: JobState = JobState.SUBMITTED, **changes: Any) -> Job:
    now = iso_time(datetime.now(UTC))
    return Job(
        job_id=new_job_id(ALICE.user_id),
        owner=ALICE.user_id,
        owner_name=ALICE.name,
        case_id=SMOOTHIE,
        title="a job",
        description="",
        status=status,
        created_at=now,
        updated_at=now,
        **changes,
    )


def test_the_job_file_names_the_cases_metrics() -> None:
    with use_services(fake_services()):
        body = json.loads(_job_file(plan_for(a_job()), TOKEN).data)
    assert body["metrics"] == [
        {"name": "time_to_95_mixed", "file": "metrics.json", "key": "time_to_95_mixed_s"},
        {"name": "final_mixing_index", "file": "mixing_index.csv", "column": "mixing_index"},
    ]


def declared(**specs: dict[str, str]) -> list[dict[str, str]]:
    return [{"name": name, **spec} for name, spec in specs.items()]


def test_the_wrapper_reads_a_json_key_and_a_csv_columns_last_row(tmp_path: Path) -> None:
    (tmp_path / "metrics.json").write_text('{"t": 1.25, "n": 3, "other": "x"}')
    rows = "time_s,mixing_index\n" + "".join(f"{i},{i / 10000}\n" for i in range(9000)) + "\n\n"
    (tmp_path / "series.csv").write_text(rows)  # longer than the tail read, blank lines at the end
    found = w.read_metrics(
        declared(
            t={"file": "metrics.json", "key": "t"},
            n={"file": "metrics.json", "key": "n"},
            m={"file": "series.csv", "column": "mixing_index"},
            time={"file": "series.csv", "column": "time_s"},
        ),
        str(tmp_path),
    )
    assert found == {"t": 1.25, "n": 3.0, "m": 0.8999, "time": 8999.0}
    assert all(type(v) is float for v in found.values())


def test_a_metric_that_cannot_be_read_is_left_out_with_a_log_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "metrics.json").write_text(
        '{"null": null, "text": "1.5", "yes": true, "nan": NaN, "huge": 1e999, "big": '
        + "9" * 400
        + ', "list": [1], "ok": -2}'
    )
    (tmp_path / "series.csv").write_text("a,b\n1,\n")
    (tmp_path / "empty.csv").write_text("a,b\n")
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path.parent / "outside.json").write_text('{"x": 1}')
    (tmp_path / "link.json").symlink_to(tmp_path.parent / "outside.json")
    specs = declared(
        **{k: {"file": "metrics.json", "key": k} for k in ("null", "text", "yes", "nan", "huge")},
        **{k: {"file": "metrics.json", "key": k} for k in ("big", "list", "absent")},
        nofile={"file": "gone.json", "key": "x"},
        broken={"file": "broken.json", "key": "x"},
        link={"file": "link.json", "key": "x"},
        up={"file": "../outside.json", "key": "x"},
        nocolumn={"file": "series.csv", "column": "c"},
        blank={"file": "series.csv", "column": "b"},
        norows={"file": "empty.csv", "column": "a"},
        neither={"file": "metrics.json"},
        ok={"file": "metrics.json", "key": "ok"},
    )
    assert w.read_metrics([*specs, "not a spec", {"file": "x"}], str(tmp_path)) == {"ok": -2.0}
    log = capsys.readouterr().err
    for spec in specs[:-1]:
        assert f"simgate: metric {spec['name']} left out: " in log, spec
    assert "read metrics: ok" in log


def test_the_wrapper_reads_at_most_the_gateways_bound(tmp_path: Path) -> None:
    (tmp_path / "m.json").write_text(json.dumps({f"k{i}": i for i in range(60)}))
    specs = [{"name": f"m{i}", "file": "m.json", "key": f"k{i}"} for i in range(60)]
    assert len(w.read_metrics(specs, str(tmp_path))) == w.MAX_METRICS
    assert w.read_metrics(None, str(tmp_path)) == {}


def test_the_final_report_carries_the_metrics_found_either_way() -> None:
    done = w.end_report(0, [], metrics={"t": 1.5})
    assert done == {"status": "COMPLETED", "outputs": [], "metrics": {"t": 1.5}}
    failed = w.end_report(1, [], why="diverged", metrics={"t": 1.5})
    assert (failed["status"], failed["metrics"]) == ("FAILED", {"t": 1.5})
    assert "metrics" not in w.end_report(0, [], metrics={})
    parse_body(StatusReport, done)  # the gateway takes it as sent


# ---- the gateway --------------------------------------------------------------------------------------------------


@pytest.fixture
def services() -> Iterator[Services]:
    made = fake_services(upload_minutes=15)
    with use_services(made):
        yield made


def reporting(services: Services, status: JobState = JobState.FINALIZING) -> str:
    job = a_job(status, scheduler_id="4242", dispatch_message="m1", token_hash=hash_token(TOKEN))
    jobs: FakeJobs = services.jobs  # type: ignore[assignment]
    outputs: FakeOutputs = services.outputs  # type: ignore[assignment]
    outputs.create(job.job_id)
    return jobs.put(job).job_id


def report(job_id: str, body: dict[str, Any]) -> Any:
    return report_status(job_id, f"Bearer {TOKEN}", lambda: body)


def test_a_final_report_records_the_cases_metrics_and_the_job_shows_them(
    services: Services,
) -> None:
    job_id = reporting(services)
    metrics = {"final_mixing_index": 0.97, "time_to_95_mixed": 3, "retired_metric": 1.0}
    report(job_id, {"status": "COMPLETED", "metrics": metrics})
    job = services.jobs.get(job_id)
    # One the case does not declare (any more) is left out, not refused: a good run does not fail over it.
    assert job.metrics == {"final_mixing_index": 0.97, "time_to_95_mixed": 3.0}
    shown = show_job(ALICE, job_id).model_dump()["metrics"]
    assert shown == [  # in the case's order, with its labels and units
        {"name": "time_to_95_mixed", "label": "Time to 95 % mixed", "units": "s", "value": 3.0},
        {"name": "final_mixing_index", "label": "Final mixing index", "units": None, "value": 0.97},
    ]


def test_metrics_are_recorded_only_with_the_jobs_end(services: Services) -> None:
    job_id = reporting(services, JobState.RUNNING)
    report(job_id, {"status": "RUNNING", "progress": 50, "metrics": {"final_mixing_index": 0.5}})
    assert services.jobs.get(job_id).metrics == {}
    report(job_id, {"status": "FAILED", "exit_code": 1, "metrics": {"final_mixing_index": 0.6}})
    assert services.jobs.get(job_id).metrics == {"final_mixing_index": 0.6}


@pytest.mark.parametrize(
    ("metrics", "named"),
    [
        ({"final_mixing_index": math.nan}, "metrics.final_mixing_index"),
        ({"final_mixing_index": math.inf}, "metrics.final_mixing_index"),
        ({"final_mixing_index": "0.9"}, "metrics.final_mixing_index"),
        ({"final_mixing_index": True}, "metrics.final_mixing_index"),
        ({"Final Index": 0.9}, "metrics.Final Index"),
        ({f"m{i}": 1.0 for i in range(51)}, "metrics"),
        ([0.9], "metrics"),
    ],
)
def test_a_bad_metric_is_refused_naming_it(services: Services, metrics: Any, named: str) -> None:
    job_id = reporting(services)
    with pytest.raises(InvalidBody) as caught:  # a 422 (blueprints/_http.py)
        report(job_id, {"status": "COMPLETED", "metrics": metrics})
    assert [p.name for p in caught.value.errors] == [named]
    assert services.jobs.get(job_id).status is JobState.FINALIZING


def test_metrics_survive_the_table_entity() -> None:
    job = a_job(JobState.COMPLETED, metrics={"final_mixing_index": 0.97, "time_to_95_mixed": 3.0})
    entity = to_entity(job)
    assert json.loads(entity["metrics"]) == job.metrics
    assert from_entity(entity).metrics == job.metrics
    assert "metrics" not in to_entity(a_job())
    assert from_entity(to_entity(a_job())).metrics == {}


def test_the_wrapper_reads_metrics_on_python_3_8(tmp_path: Path) -> None:
    python = oldest_python()
    if python is None:
        pytest.skip(
            "no Python 3.8 here (the integration tests then run the wrapper on this Python)"
        )
    (tmp_path / "m.json").write_text('{"t": 2.5}')
    (tmp_path / "s.csv").write_text("a,b\n1,2\n3,4\n")
    code = (
        "import importlib.util as u, sys; s = u.spec_from_file_location('w', sys.argv[1]); "
        "m = u.module_from_spec(s); s.loader.exec_module(m); "
        "print(m.read_metrics([{'name': 't', 'file': 'm.json', 'key': 't'}, "
        "{'name': 'b', 'file': 's.csv', 'column': 'b'}], sys.argv[2]))"
    )
    done = subprocess.run(
        [python, "-c", code, str(WRAPPER), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "{'t': 2.5, 'b': 4.0}"
