"""`python -m devhost demo` (`make demo`): the seed chart's story, played against the running local stack.

Martin shows the cases, picks the smoothie, makes it a job called "Test 1", sets values, runs it (on the embedded
SSH simulator that `make run` starts), watches the status, shows his jobs and the job, lists the outputs and
downloads the mixing-index CSV through its SAS URL, as a frontend would. Each step is printed in the chart's words
with its HTTP call and a short summary of the answer; the CSV lands in `.local/downloads/<job id>/`.

Plain urllib, no Azure SDK: what any client of the gateway needs. Anything that goes wrong is one line and a non-zero
exit (`DemoError`), never a traceback: a stack that is not running says to start it with `make run`.
"""

from __future__ import annotations

import csv
import io
import json
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

DEFAULT_URL = "http://127.0.0.1:7071"
DEFAULT_USER = "martin"
DOWNLOADS = Path(".local/downloads")
SMOOTHIE = 2
TITLE = "Test 1"
VALUES: dict[str, Any] = {"blade_speed": 15000, "blend_duration": 5.0, "mesh": "coarse"}
CSV_OUTPUT = "mixing_index.csv"
ENDED = ("COMPLETED", "FAILED", "CANCELLED")
STARTED = ("RUNNING", "FINALIZING", *ENDED)
SHOWN_ROWS = 5


class DemoError(Exception):
    """Why the demo stopped, in one line."""


class NotRunning(DemoError):
    """Nothing answers at the gateway's URL."""


@dataclass
class Answer:
    """An HTTP answer: status, headers and the parsed JSON body (None when empty)."""

    status: int
    headers: dict[str, str]
    body: Any


class Gateway:
    """A tiny HTTP client for the gateway that prints each call as `METHOD path → status`."""

    def __init__(self, url: str, out: TextIO, timeout: float = 30) -> None:
        self.url = url.rstrip("/")
        self.out = out
        self.timeout = timeout
        self.token: str | None = None

    def call(
        self, method: str, path: str, body: Any = None, *, expect: int = 200, quiet: bool = False
    ) -> Answer:
        """Send one request; `DemoError` naming the call unless it answers `expect`."""
        headers = {"Accept": "application/json"}
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                answer = Answer(resp.status, dict(resp.headers.items()), _json(resp.read()))
        except urllib.error.HTTPError as err:
            answer = Answer(err.code, dict(err.headers.items()), _json(err.read()))
        except (urllib.error.URLError, OSError) as exc:
            why = _reason(exc)
            raise NotRunning(
                f"nothing answers at {self.url} ({why}): start it with `make run` first"
            ) from None
        if not quiet:
            sent = f" {json.dumps(body, ensure_ascii=False)}" if body is not None else ""
            self.out.write(f"  {method} {path}{sent} → {answer.status}\n")
        if answer.status != expect:
            raise DemoError(
                f"{method} {path} answered {answer.status}, not {expect}: {_problem(answer.body)}"
            )
        return answer


# --- the story -------------------------------------------------------------------------------------------------


def play(
    url: str,
    token: Callable[[], str],
    downloads: Path,
    ca_file: Path,
    out: TextIO,
    *,
    poll_interval: float = 0.5,
    timeout: float = 120.0,
) -> Path:
    """Play the chart with the smoothie; the downloaded CSV's path. `token` is called once the gateway answers."""
    gateway = Gateway(url, out)
    gateway.call(
        "GET", "/case?page=1&per_page=1", quiet=True
    )  # is it there? (else one line, nothing more)
    out.write(f"The seed chart's story with the smoothie case, against {gateway.url}\n")
    show_all_cases(gateway)
    gateway.token = token()
    show_the_case(gateway)
    job_id = make_a_job(gateway)
    set_values(gateway, job_id)
    run_it(gateway, job_id)
    started = time.monotonic()
    say(out, "Goes home (the frontend polls the status)")
    watch = poll(gateway, job_id, STARTED, None, started, poll_interval, timeout)
    show_all_jobs(gateway, job_id)
    show_the_job(gateway, job_id, f"Show me job {job_id}")
    if watch not in ENDED:
        say(out, "Lunch (the frontend polls on)")
        watch = poll(gateway, job_id, ENDED, watch, started, poll_interval, timeout)
    job = show_the_job(gateway, job_id, "Show me that status again")
    if watch != "COMPLETED":
        raise DemoError(f"job {job_id} ended {watch}: {job.get('reason') or 'no reason given'}")
    show_outputs(gateway, job_id)
    data = download(gateway, job_id, CSV_OUTPUT, ca_file)
    return open_excel(out, data, downloads / job_id / CSV_OUTPUT)


def say(out: TextIO, step: str) -> None:
    """A step of the chart, in its words."""
    out.write(f"\nMartin: {step}\n")


def show_all_cases(gateway: Gateway) -> None:
    say(gateway.out, "Show all cases")
    answer = gateway.call("GET", "/case?page=1&per_page=5")
    total = answer.headers.get("X-Total-Count", "?")
    gateway.out.write(f"    {total} case(s) in all; this page:\n")
    for case in answer.body:
        gateway.out.write(f"      {case['id']:>3}  {case['name']:<12} {case['title']}\n")


def show_the_case(gateway: Gateway) -> None:
    say(gateway.out, "Show the smoothie case")
    case = gateway.call("GET", f"/case/{SMOOTHIE}").body
    leaves = {leaf["name"]: leaf for leaf in _leaves(case["fields"])}
    gateway.out.write(
        f"    {case['title']}: {len(leaves)} fields, outputs "
        f"{', '.join(o['name'] for o in case['outputs'])}\n"
    )
    for name in VALUES:
        gateway.out.write(f"      {_spec(leaves[name])}\n")


def make_a_job(gateway: Gateway) -> str:
    say(gateway.out, f'Make this a job called "{TITLE}"')
    job = gateway.call("POST", "/job", {"case_id": SMOOTHIE, "job_title": TITLE}, expect=201).body
    gateway.out.write(f"    job {job['job_id']}: {job['status']}\n")
    return str(job["job_id"])


def set_values(gateway: Gateway, job_id: str) -> None:
    say(gateway.out, "Set these values")
    fields = [{"name": name, "value": value} for name, value in VALUES.items()]
    job = gateway.call("PATCH", f"/job/{job_id}", {"fields": fields}).body
    shown = {v["name"]: v for v in job["values"]}
    gateway.out.write(
        f"    {', '.join(_value(shown[name]) for name in VALUES)}; the rest at their defaults\n"
    )


def run_it(gateway: Gateway, job_id: str) -> None:
    say(gateway.out, "Run this job")
    status = gateway.call("POST", f"/job/{job_id}", expect=202).body
    gateway.out.write(f"    {status['status']}: queued for dispatch to the simulator over SSH\n")


def poll(
    gateway: Gateway,
    job_id: str,
    until: tuple[str, ...],
    last: str | None,
    started: float,
    interval: float,
    timeout: float,
) -> str:
    """Poll the status, a line per change from `last`, until it is one of `until`; that status."""
    path = f"/job/{job_id}/status"
    while True:
        status = gateway.call("GET", path, quiet=True).body
        if status["status"] != last:
            last = status["status"]
            gateway.out.write(
                f"  GET {path} → 200  {last:<10} ({time.monotonic() - started:4.1f} s)\n"
            )
        if last in until:
            return str(last)
        if time.monotonic() - started > timeout:
            raise DemoError(f"job {job_id} is still {last} after {timeout:.0f} s")
        time.sleep(interval)


def show_all_jobs(gateway: Gateway, job_id: str) -> None:
    say(gateway.out, "Show all jobs")
    jobs = gateway.call("GET", "/job").body
    gateway.out.write(f"    {len(jobs)} job(s) on this page, newest first:\n")
    for job in jobs[:SHOWN_ROWS]:
        mark = "  <- this one" if job["job_id"] == job_id else ""
        gateway.out.write(
            f"      {job['created_at'][:19].replace('T', ' ')}  {job['job_title']:<10} "
            f"case {job['case_id']}  {job['status']}{mark}\n"
        )


def show_the_job(gateway: Gateway, job_id: str, step: str) -> dict[str, Any]:
    say(gateway.out, step)
    job: dict[str, Any] = gateway.call("GET", f"/job/{job_id}").body
    history = " → ".join(f"{h['status']} {h['at'][11:19]}" for h in job["history"])
    scheduler = f", scheduler id {job['scheduler_id']}" if job.get("scheduler_id") else ""
    gateway.out.write(
        f"    {job['job_title']}: {job['status']}{scheduler}\n    history: {history}\n"
    )
    if job.get("reason"):
        gateway.out.write(f"    reason: {job['reason']}\n")
    return job


def show_outputs(gateway: Gateway, job_id: str) -> None:
    say(gateway.out, "What outputs are there?")
    for output in gateway.call("GET", f"/job/{job_id}/output").body:
        gateway.out.write(
            f"      {output['output_id']:<22} {output['content_type']:<12} {_size(output['size']):>9}\n"
        )


def download(gateway: Gateway, job_id: str, output_id: str, ca_file: Path) -> bytes:
    """Martin: Download csv1. The gateway signs a read-only SAS URL; the file comes straight from storage."""
    say(gateway.out, "Download csv1")
    grant = gateway.call("GET", f"/job/{job_id}/output/{quote(output_id)}").body
    gateway.out.write(
        f"    a read-only SAS URL for {output_id}, valid until {grant['expires_on']}\n"
    )
    shown = f"{grant['url'].split('?', 1)[0]}?<SAS>"
    context = ssl.create_default_context(cafile=str(ca_file))
    try:
        with urllib.request.urlopen(grant["url"], context=context, timeout=gateway.timeout) as resp:
            data = bytes(resp.read())
            status = resp.status
    except urllib.error.HTTPError as err:
        raise DemoError(f"GET {shown} answered {err.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise DemoError(f"GET {shown} failed: {_reason(exc)}") from None
    gateway.out.write(
        f"  GET {shown} → {status}  ({_size(len(data))}, no bearer token: the SAS is the permission)\n"
    )
    return data


def open_excel(out: TextIO, data: bytes, path: Path) -> Path:
    """Martin: Open Excel. Save the CSV and show its first rows."""
    say(out, "Open Excel")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"))))
    out.write(f"    saved {_shown_path(path)} ({len(rows) - 1} rows); the first ones:\n")
    widths = [
        max(len(row[i]) for row in rows[: SHOWN_ROWS + 1] if i < len(row))
        for i in range(len(rows[0]))
    ]
    for row in rows[: SHOWN_ROWS + 1]:
        out.write(
            "      "
            + "  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=False))
            + "\n"
        )
    out.write(f"    {_mixed(rows)}\n")
    return path


# --- the command -----------------------------------------------------------------------------------------------


def run(
    url: str,
    token: Callable[[], str],
    downloads: Path,
    ca_file: Path,
    out: TextIO,
    err: TextIO,
    **options: float,
) -> int:
    """The demo as a command: 0 and the CSV's path last, or 1 and one line on `err` saying why it stopped."""
    try:
        path = play(url, token, downloads, ca_file, out, **options)
    except DemoError as exc:
        out.flush()
        err.write(f"demo: {exc}\n")
        return 1
    out.write(f"\n{_shown_path(path)}\n")
    return 0


# --- formatting ------------------------------------------------------------------------------------------------


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode("utf-8", "replace")[:200]


def _problem(body: Any) -> str:
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("title") or body)
    return str(body)


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", exc)
    return getattr(reason, "strerror", None) or str(reason)


def _leaves(nodes: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for node in nodes:
        if node.get("type") == "group":
            yield from _leaves(node["fields"])
        else:
            yield node


def _spec(leaf: dict[str, Any]) -> str:
    units = f" {leaf['units']}" if leaf.get("units") else ""
    if leaf.get("options"):
        kind = " | ".join(str(o["value"]) for o in leaf["options"])
    elif leaf.get("min") is not None and leaf.get("max") is not None:
        kind = f"{leaf['type']} {leaf['min']}–{leaf['max']}{units}"
    else:
        kind = str(leaf["type"])
    return f"{leaf['name']}: {leaf['label']}, {kind} (default {leaf['default']})"


def _value(shown: dict[str, Any]) -> str:
    units = f" {shown['units']}" if shown.get("units") else ""
    return f"{shown['name']} = {shown['value']}{units}"


def _size(size: int) -> str:
    return f"{size} B" if size < 1024 else f"{size / 1024:.1f} KiB"


def _shown_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _mixed(rows: list[list[str]]) -> str:
    """What the mixing index says, in a sentence (the CSV's columns: time_s, mixing_index, ...)."""
    try:
        series = [(float(row[0]), float(row[1])) for row in rows[1:]]
    except (IndexError, ValueError):
        return "(not the mixing-index columns)"
    if not series:
        return "(no rows)"
    mixed = next((t for t, m in series if m >= 0.95), None)
    when = f"95 % mixed at t = {mixed:.2f} s" if mixed is not None else "not yet 95 % mixed"
    return (
        f"mixing index {series[0][1]:.2f} → {series[-1][1]:.3f} over {series[-1][0]:.1f} s; {when}"
    )
