#!/usr/bin/env python3
"""simgate's job wrapper: shipped with every job and run by the scheduler as `python3 simgate_wrapper.py` in the
job's folder.

One file, standard library only, Python 3.8 or later (HPC nodes have python3 but rarely pip). It reads
`simgate_job.json` (0600: it holds the job's token) and then:

1. reports RUNNING to the gateway (`PATCH callback_url` with `Authorization: Bearer <token>`);
2. runs `sh <entry>` in its own process group, stdout and stderr to `simgate-stdout.log` / `simgate-stderr.log`,
   forwarding the scheduler's signals to it, and keeps its exit code in `.simgate-exit-code` (128+N for signal N).
   If the entry writes a number 0-100 to `.simgate-progress`, RUNNING is reported again with it (at most every 10 s);
3. reports FINALIZING; the reply's `upload` grant is a create/write-only SAS on the job's own blob container;
4. uploads the files of every declared output (the job file and the wrapper never) and both logs: one Put Blob up to
   8 MiB, else Put Block (a few blocks in parallel, each with its Content-MD5) and Put Block List, streamed from disk
   over persistent connections;
5. reports COMPLETED with the uploaded outputs, or FAILED with the exit code and what went wrong (for a failed
   entry, the last meaningful line of its stderr log: `failure_summary`); either carries the case's metrics that
   the run wrote (`read_metrics`: a JSON key, or a CSV column's last row; a missing one is logged and left out);
6. exits with the entry's exit code.

The job file is read again before every report: a retried dispatch may have refreshed the token. Requests are
retried with exponential backoff on connection errors, 5xx, 408 and 429; a 409 means the job has ended, and nothing
more is reported. The wrapper writes its own progress lines (`simgate: ...`) to its stderr and never the token or a
SAS signature. `upload_file` is also used by `bench/outputs.py`.
"""

from __future__ import annotations

import base64
import calendar
import contextlib
import csv
import fnmatch
import hashlib
import http.client
import io
import json
import math
import os
import random
import re
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from urllib.parse import quote, unquote, urlsplit

JOB_FILE = "simgate_job.json"
WRAPPER_FILE = "simgate_wrapper.py"
BATCH_FILE = "simgate_batch.sh"
EXIT_CODE_FILE = ".simgate-exit-code"
PROGRESS_FILE = ".simgate-progress"
STDOUT_LOG = "simgate-stdout.log"
STDERR_LOG = "simgate-stderr.log"
LOGS = (("stdout", STDOUT_LOG), ("stderr", STDERR_LOG))
LOG_CONTENT_TYPE = "text/plain"

API_VERSION = (
    "2026-06-06"  # ignored by Azure for SAS requests (the SAS's `sv` rules); Azurite checks it
)
SINGLE_PUT_MAX = 8 << 20  # larger files go in blocks
BLOCK_SIZE = 8 << 20  # grows for files over BLOCK_SIZE * MAX_BLOCKS
MAX_BLOCKS = 50_000  # Azure's limit per blob
UPLOAD_THREADS = 4  # blocks in flight at once
TIMEOUT = 120.0  # seconds for one socket operation

RETRY_ATTEMPTS = (
    8  # per request; the job file's {"retry": {"attempts", "first_delay", "max_delay"}} overrides
)
RETRY_FIRST_DELAY = 1.0
RETRY_MAX_DELAY = 60.0

POLL_INTERVAL = 1.0  # how often the running entry is looked at
PROGRESS_INTERVAL = 10.0  # at most one progress report this often
KILL_GRACE = (
    30.0  # after a forwarded SIGTERM/SIGINT/SIGHUP, SIGKILL the entry's group if it is still there
)
GRANT_MARGIN = (
    300.0  # renew the upload grant (report FINALIZING again) when it has less than this left
)

# What the gateway accepts as an output's file (blob) name: plain segments, no dot files, at most 5 deep; and how
# many outputs one report may name.
SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,99}\Z")
MAX_DEPTH = 5
MAX_OUTPUTS = 200
MAX_METRICS = 50  # the gateway's core.cases.MAX_METRICS
METRIC_JSON_MAX = 1 << 20  # bytes of a JSON metrics file read at most
METRIC_CSV_TAIL = (
    64 << 10
)  # bytes read from a CSV's start (its header) and from its end (its last row)
MAX_MESSAGE = 1500
FORWARDED_SIGNALS = ("SIGTERM", "SIGINT", "SIGHUP", "SIGUSR1", "SIGUSR2")
ENDING_SIGNALS = ("SIGTERM", "SIGINT", "SIGHUP")

_SECRETS = set()  # the token and SAS parts: never in a log line


# ---------------------------------------------------------------------------------------------------- logging


def log(message: str) -> None:
    """One line on the wrapper's stderr, with any known secret blotted out."""
    sys.stderr.write("simgate: " + redact(message) + "\n")
    sys.stderr.flush()


def redact(text: str) -> str:
    """`text` without the token or SAS signatures this process has seen."""
    for secret in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(secret, "[redacted]")
    return text


def remember_secret(value: object) -> None:
    """Keep `value` (and its URL-encoded and decoded forms) out of every log line."""
    if isinstance(value, str) and len(value) >= 8:
        _SECRETS.update({value, quote(value, safe=""), unquote(value)})


def _remember_sas(sas: str) -> None:
    remember_secret(sas)
    for part in sas.split("&"):
        key, _, value = part.partition("=")
        if key == "sig":
            remember_secret(value)


# Terminal escape sequences (colours, cursor moves, titles), and what else a report message must not carry: C0 and
# C1 controls, line and paragraph separators, bidi overrides (the gateway refuses them in text).
_ESCAPES = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
_UNPRINTABLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]+"
)


def _clean(text: str, limit: int = 300) -> str:
    """A short, single-line, printable version of `text` for a report message."""
    text = " ".join(redact(_UNPRINTABLE.sub(" ", _ESCAPES.sub("", text))).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _summary(exc: BaseException) -> str:
    detail = str(exc)
    return type(exc).__name__ + (": " + detail if detail else "")


# ---------------------------------------------------------------------------------------------------- job file


def load_job(path: str = JOB_FILE) -> dict:
    """The job file, checked for what the wrapper needs; the token is remembered as a secret."""
    with open(path, encoding="utf-8") as handle:
        job = json.load(handle)
    if not isinstance(job, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    remember_secret(job.get("token"))
    for key in ("job_id", "token", "callback_url", "entry"):
        if not isinstance(job.get(key), str) or not job[key]:
            raise ValueError(f"{path} has no {key!r}")
    if not isinstance(job.get("outputs", []), list):
        raise ValueError(f"{path}: 'outputs' is not a list")
    return job


class Retry:
    """How often and how patiently a request is tried again."""

    def __init__(
        self,
        attempts: float | None = None,
        first_delay: float | None = None,
        max_delay: float | None = None,
    ) -> None:
        self.attempts = max(1, int(RETRY_ATTEMPTS if attempts is None else attempts))
        self.first_delay = max(
            0.0, float(RETRY_FIRST_DELAY if first_delay is None else first_delay)
        )
        self.max_delay = max(0.0, float(RETRY_MAX_DELAY if max_delay is None else max_delay))

    @classmethod
    def from_job(cls, job: dict) -> Retry:
        """The module's defaults, overridden by the job file's optional `retry` object."""
        given = job.get("retry")
        given = given if isinstance(given, dict) else {}
        return cls(given.get("attempts"), given.get("first_delay"), given.get("max_delay"))

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (0 first), with a little jitter."""
        wait_s = min(self.max_delay, self.first_delay * (2**attempt))
        if retry_after and retry_after.strip().isdigit():
            wait_s = max(wait_s, min(self.max_delay, float(retry_after.strip())))
        return wait_s * (1 + random.random() * 0.1)


def ca_path(job: dict, folder: str = ".") -> str | None:
    """The job's CA file (relative to the job folder), or None for the system's trust store."""
    name = job.get("ca_file")
    return os.path.join(folder, name) if isinstance(name, str) and name else None


# ---------------------------------------------------------------------------------------------------- HTTP


class TransportError(Exception):
    """A request that got no usable answer after every retry."""


class Response:
    """An HTTP answer: status, headers with lower-case names, body."""

    def __init__(self, status: int, headers: dict, body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def error_code(self) -> str:
        """Storage's `x-ms-error-code`, or an empty string."""
        return self.headers.get("x-ms-error-code", "")


def retryable(status: int) -> bool:
    """Whether an answer with this status is worth another try."""
    return status >= 500 or status in (408, 429)


def proxy_for(scheme: str, host: str) -> tuple[str, int, dict] | None:
    """The HTTP proxy (host, port, extra headers) for a request, from the usual environment variables, or None."""
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(scheme)
    if not proxy or urllib.request.proxy_bypass_environment(host, proxies):
        return None
    parts = urlsplit(proxy if "://" in proxy else "http://" + proxy)
    if not parts.hostname:
        return None
    headers = {}
    if parts.username is not None:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        headers["Proxy-Authorization"] = "Basic " + base64.b64encode(credentials.encode()).decode()
    return parts.hostname, parts.port or 80, headers


class Http:
    """HTTP(S) with persistent connections (one per thread and server) and retries.

    A request that fails on a connection that already served one (the server may have closed it while idle) is sent
    again at once on a new connection; every other failure waits the retry delay.
    """

    def __init__(
        self, ca_file: str | None = None, retry: Retry | None = None, timeout: float | None = None
    ) -> None:
        self.ca_file = ca_file
        self.retry = retry or Retry()
        self.timeout = TIMEOUT if timeout is None else timeout
        self._context: ssl.SSLContext | None = None
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list = []

    def tls(self) -> ssl.SSLContext:
        """The TLS context: the system's trust store plus the job's CA file, if any."""
        with self._lock:
            if self._context is None:
                context = ssl.create_default_context()
                if self.ca_file:
                    try:
                        context.load_verify_locations(cafile=self.ca_file)
                    except (OSError, ssl.SSLError) as exc:
                        raise TransportError(
                            f"cannot use the CA file {self.ca_file}: {_summary(exc)}"
                        ) from None
                self._context = context
            return self._context

    def request(
        self, method: str, url: str, headers: dict, body: bytes = b"", what: str = "request"
    ) -> Response:
        """Send one request, retrying as the class says; TransportError when no answer came."""
        parts = urlsplit(url)
        key = (
            parts.scheme,
            parts.hostname or "",
            parts.port or (443 if parts.scheme == "https" else 80),
        )
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        attempt, fresh_retry = 0, True
        while True:
            conn, reused = self._connection(key)
            proxy_headers = getattr(conn, "simgate_proxy_headers", None)
            path = (
                url if proxy_headers is not None else target
            )  # a plain-HTTP proxy takes the whole URL
            retry_after = None
            try:
                conn.request(
                    method, path, body=body, headers=dict(headers, **(proxy_headers or {}))
                )
                resp = conn.getresponse()
                answer = Response(
                    resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
                )
            except (OSError, http.client.HTTPException) as exc:
                self._drop(key)
                if isinstance(exc, ssl.SSLCertVerificationError):  # no retry will make it trusted
                    raise TransportError(f"{what}: {_summary(exc)}") from None
                if reused and fresh_retry:
                    fresh_retry = (
                        False  # a stale keep-alive connection: try once more straight away
                    )
                    continue
                if attempt + 1 >= self.retry.attempts:
                    raise TransportError(f"{what}: {_summary(exc)}") from None
                log(f"{what}: {_summary(exc)}; trying again")
            else:
                conn.simgate_used = True
                if resp.will_close:
                    self._drop(key)
                if not retryable(answer.status) or attempt + 1 >= self.retry.attempts:
                    return answer
                retry_after = answer.headers.get("retry-after")
                log(f"{what}: HTTP {answer.status}; trying again")
            time.sleep(self.retry.delay(attempt, retry_after))
            attempt, fresh_retry = attempt + 1, True

    def _connection(self, key: tuple) -> tuple:
        conns = self._local.__dict__.setdefault("conns", {})
        conn = conns.get(key)
        if conn is None:
            conn = conns[key] = self._connect(*key)
            with self._lock:
                self._all.append(conn)
        return conn, getattr(conn, "simgate_used", False)

    def _connect(self, scheme: str, host: str, port: int) -> http.client.HTTPConnection:
        proxy = proxy_for(scheme, host)
        if scheme == "https":
            if proxy is None:
                return http.client.HTTPSConnection(
                    host, port, timeout=self.timeout, context=self.tls()
                )
            conn = http.client.HTTPSConnection(
                proxy[0], proxy[1], timeout=self.timeout, context=self.tls()
            )
            conn.set_tunnel(host, port, headers=proxy[2])
            return conn
        if scheme != "http":
            raise TransportError(f"unsupported URL scheme {scheme!r}")
        if proxy is None:
            return http.client.HTTPConnection(host, port, timeout=self.timeout)
        conn = http.client.HTTPConnection(proxy[0], proxy[1], timeout=self.timeout)
        conn.simgate_proxy_headers = proxy[2]
        return conn

    def _drop(self, key: tuple) -> None:
        conn = self._local.__dict__.get("conns", {}).pop(key, None)
        if conn is not None:
            conn.close()
            with self._lock:
                self._all.remove(conn)

    def close(self) -> None:
        """Close every connection this object opened, in any thread."""
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()


# ---------------------------------------------------------------------------------------------------- uploads


class UploadError(Exception):
    """An upload that failed; the message is short and holds no secret."""


class Grant:
    """The job container's URL and SAS; renewed through `renew` (a new FINALIZING report) shortly before it expires."""

    def __init__(
        self, url: str, sas: str, expires_on: str | None = None, renew: object = None
    ) -> None:
        self._lock = threading.Lock()
        self._renew = renew
        self._retry_renew_at = 0.0
        self._set(url, sas, expires_on)

    def _set(self, url: str, sas: str, expires_on: str | None) -> None:
        self.url, self.sas = url.rstrip("/"), sas.lstrip("?")
        self.expires_at = parse_time(expires_on) if expires_on else None
        _remember_sas(self.sas)

    @classmethod
    def from_reply(cls, reply: object, renew: object = None) -> Grant | None:
        """The grant in a FINALIZING reply, or None when it has none."""
        upload = reply.get("upload") if isinstance(reply, dict) else None
        if (
            not isinstance(upload, dict)
            or not upload.get("url")
            or not isinstance(upload.get("sas"), str)
        ):
            return None
        return cls(str(upload["url"]), upload["sas"], upload.get("expires_on"), renew)

    def current(self) -> tuple[str, str]:
        """(container URL, SAS), renewed first when it is about to expire and a renewal is possible."""
        with self._lock:
            now = time.time()
            due = self.expires_at is not None and self.expires_at - now < GRANT_MARGIN
            if due and self._renew is not None and now >= self._retry_renew_at:
                fresh = Grant.from_reply(self._renew())
                if fresh is None:
                    self._retry_renew_at = now + 60  # keep the old one; ask again in a minute
                    log("could not renew the upload grant; going on with the old one")
                else:
                    self._set(fresh.url, fresh.sas, None)
                    self.expires_at = fresh.expires_at
                    log("renewed the upload grant")
            return self.url, self.sas


def parse_time(text: str) -> float | None:
    """Seconds since the epoch for an ISO 8601 UTC time such as 2025-01-31T12:00:00.000Z; None if unreadable."""
    try:
        return float(calendar.timegm(time.strptime(str(text)[:19], "%Y-%m-%dT%H:%M:%S")))
    except ValueError:
        return None


def block_id(index: int) -> str:
    """The base64 id of block `index`: every id of a blob has the same length, as the service requires."""
    return base64.b64encode(f"simgate-block-{index:06d}".encode()).decode()


def block_size_for(size: int) -> int:
    """BLOCK_SIZE, or more (whole MiB) when the file would otherwise need more than MAX_BLOCKS blocks."""
    needed = -(-size // MAX_BLOCKS)
    return max(BLOCK_SIZE, -(-needed // (1 << 20)) << 20)


def _md5() -> object:
    """A new MD5 hasher, or None where MD5 is unavailable (FIPS mode): then no Content-MD5 is sent."""
    try:
        return hashlib.new("md5", usedforsecurity=False)
    except TypeError:  # Python 3.8
        try:
            return hashlib.md5()
        except ValueError:
            return None
    except ValueError:
        return None


def _md5_b64(data: bytes) -> str | None:
    hasher = _md5()
    if hasher is None:
        return None
    hasher.update(data)
    return base64.b64encode(hasher.digest()).decode()


class Uploader:
    """Uploads files to one container through a grant: Put Blob for small files, Put Block + Put Block List else."""

    def __init__(
        self,
        grant: Grant,
        ca_file: str | None = None,
        threads: int | None = None,
        retry: Retry | None = None,
    ) -> None:
        self.grant = grant
        self.http = Http(ca_file, retry)
        self.threads = max(1, UPLOAD_THREADS if threads is None else threads)
        self._pool = (
            ThreadPoolExecutor(self.threads, thread_name_prefix="simgate-upload")
            if self.threads > 1
            else None
        )

    def __enter__(self) -> Uploader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the threads and close the connections."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self.http.close()

    def upload(self, path: str, blob: str, content_type: str) -> None:
        """Upload the file at `path` as `blob`; UploadError says why not."""
        try:
            with open(path, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                if size <= SINGLE_PUT_MAX:
                    self._put_blob(blob, handle.read(SINGLE_PUT_MAX + 1), content_type)
                else:
                    self._put_blocks(blob, handle, block_size_for(size), content_type)
        except OSError as exc:
            raise UploadError(_summary(exc)) from None
        except TransportError as exc:
            raise UploadError(str(exc)) from None

    def _url(self, blob: str, query: str = "") -> str:
        url, sas = self.grant.current()
        return f"{url}/{quote(blob)}?{sas}" + ("&" + query if query else "")

    def _put(self, url: str, headers: dict, body: bytes, what: str) -> None:
        headers = dict(headers, **{"x-ms-version": API_VERSION})
        answer = self.http.request("PUT", url, headers, body, what)
        if not 200 <= answer.status < 300:
            raise UploadError(f"{what}: HTTP {answer.status} {answer.error_code()}".strip())

    def _put_blob(self, blob: str, data: bytes, content_type: str) -> None:
        headers = {"x-ms-blob-type": "BlockBlob", "x-ms-blob-content-type": content_type}
        md5 = _md5_b64(data)
        if md5:
            headers["Content-MD5"] = md5
        self._put(self._url(blob), headers, data, "put blob")

    def _put_block(self, blob: str, block: str, data: bytes) -> None:
        headers = {}
        md5 = _md5_b64(data)
        if md5:
            headers["Content-MD5"] = md5
        self._put(
            self._url(blob, "comp=block&blockid=" + quote(block, safe="")),
            headers,
            data,
            "put block",
        )

    def _put_blocks(self, blob: str, handle: object, block_size: int, content_type: str) -> None:
        """Read blocks in order (hashing the whole file on the way) while up to `threads` are sent at once."""
        whole, ids, pending = _md5(), [], set()
        try:
            while True:
                data = handle.read(block_size)
                if not data:
                    break
                if whole is not None:
                    whole.update(data)
                ids.append(block_id(len(ids)))
                if self._pool is None:
                    self._put_block(blob, ids[-1], data)
                    continue
                while len(pending) >= self.threads:  # at most `threads` blocks in memory
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        future.result()
                pending.add(self._pool.submit(self._put_block, blob, ids[-1], data))
            for future in pending:
                future.result()
        finally:
            for future in pending:
                future.cancel()
        self._put_block_list(blob, ids, content_type, whole)

    def _put_block_list(self, blob: str, ids: list, content_type: str, whole: object) -> None:
        body = (
            '<?xml version="1.0" encoding="utf-8"?><BlockList>'
            + "".join(f"<Latest>{i}</Latest>" for i in ids)
            + "</BlockList>"
        ).encode()
        headers = {"Content-Type": "application/xml", "x-ms-blob-content-type": content_type}
        if whole is not None:
            headers["x-ms-blob-content-md5"] = base64.b64encode(whole.digest()).decode()
        self._put(self._url(blob, "comp=blocklist"), headers, body, "put block list")


def upload_file(
    container_url: str,
    sas: str,
    path: str,
    blob_name: str,
    content_type: str,
    ca_file: str | None = None,
    threads: int | None = None,
) -> None:
    """Upload one file to `container_url` (a container SAS allowing create and write is enough); UploadError on
    failure. For a single file: the job's own uploads share one Uploader (threads and connections)."""
    with Uploader(Grant(container_url, sas), ca_file, threads) as uploader:
        uploader.upload(path, blob_name, content_type)


# ---------------------------------------------------------------------------------------------------- what to upload


class Planned:
    """One file to upload: the output's name, its path relative to the job folder (also the blob name), type."""

    def __init__(self, name: str, file: str, content_type: str) -> None:
        self.name, self.file, self.content_type = name, file, content_type

    def __repr__(self) -> str:
        return f"Planned({self.name!r}, {self.file!r}, {self.content_type!r})"


class Selection:
    """The files to upload, and notes on matching files that are left out."""

    def __init__(self, files: list, notes: list) -> None:
        self.files, self.notes = files, notes


def _inside(root: str, path: str) -> bool:
    return os.path.commonpath([root, path]) == root


def _candidates(root: str, skip: set) -> tuple[list, list]:
    """Files under `root` that could be outputs: regular files (or links to one inside `root`), with names the
    gateway accepts, at most MAX_DEPTH deep; and the files left out for their name or for leaving the folder."""
    real_root = os.path.realpath(root)
    found, refused = [], []
    for folder, dirs, files in os.walk(root):
        rel_folder = os.path.relpath(folder, root)
        depth = 0 if rel_folder == "." else rel_folder.count(os.sep) + 1
        dirs[:] = sorted(d for d in dirs if SEGMENT.match(d) and depth + 1 < MAX_DEPTH)
        for name in files:
            rel = name if depth == 0 else os.path.join(rel_folder, name).replace(os.sep, "/")
            full = os.path.join(folder, name)
            real = os.path.realpath(full)
            if real in skip or name.startswith("."):  # hidden files are never outputs
                continue
            if not SEGMENT.match(name):
                refused.append((rel, "its name is not one the gateway accepts"))
            elif not (_inside(real_root, real) and os.path.isfile(real)):
                refused.append((rel, "not a regular file inside the job folder"))
            else:
                found.append(rel)
    return sorted(found), refused


def select_files(root: str, outputs: list, skip_files: tuple = ()) -> Selection:
    """The declared outputs' files (in output order, each output's files sorted, a file under its first output
    only) then the two logs. Never the job file, the wrapper or `skip_files` (paths relative to `root`)."""
    logs = {file for _, file in LOGS}
    skip = {
        os.path.realpath(os.path.join(root, f))
        for f in (JOB_FILE, WRAPPER_FILE, BATCH_FILE, *skip_files)
    }
    skip |= {os.path.realpath(os.path.join(root, f)) for f in logs}
    found, refused = _candidates(root, skip)
    chosen, seen, notes = [], set(), []
    for output in outputs:
        if not isinstance(output, dict) or not output.get("name") or not output.get("glob"):
            continue
        pattern = str(output["glob"])
        for rel in found:
            if rel not in seen and fnmatch.fnmatchcase(rel, pattern):
                seen.add(rel)
                chosen.append(
                    Planned(
                        str(output["name"]),
                        rel,
                        str(output.get("content_type") or "application/octet-stream"),
                    )
                )
        notes += [
            f"{rel} not uploaded: {why}"
            for rel, why in refused
            if fnmatch.fnmatchcase(rel, pattern)
        ]
    if len(chosen) > MAX_OUTPUTS - len(LOGS):
        notes.append(
            f"{len(chosen) - (MAX_OUTPUTS - len(LOGS))} matching files not uploaded: at most "
            f"{MAX_OUTPUTS} outputs per job"
        )
        chosen = chosen[: MAX_OUTPUTS - len(LOGS)]
    for name, file in LOGS:
        if os.path.isfile(os.path.join(root, file)):
            chosen.append(Planned(name, file, LOG_CONTENT_TYPE))
    return Selection(chosen, notes)


class UploadResult:
    """How one planned upload went: `error` is None when it worked."""

    def __init__(self, planned: Planned, error: str | None = None) -> None:
        self.name, self.file, self.error = planned.name, planned.file, error


def upload_all(
    selection: Selection,
    grant: Grant,
    root: str = ".",
    ca_file: str | None = None,
    retry: Retry | None = None,
) -> list:
    """Upload every selected file, going on past failures; one UploadResult each."""
    results = []
    with Uploader(grant, ca_file, retry=retry) as uploader:
        for planned in selection.files:
            started = time.monotonic()
            try:
                uploader.upload(
                    os.path.join(root, planned.file), planned.file, planned.content_type
                )
            except UploadError as exc:
                results.append(UploadResult(planned, _clean(str(exc), 200)))
                log(f"upload of {planned.file} failed: {exc}")
            else:
                results.append(UploadResult(planned))
                log(f"uploaded {planned.file} ({time.monotonic() - started:.1f} s)")
    return results


# ---------------------------------------------------------------------------------------------------- metrics


class MetricMissing(Exception):
    """Why a declared metric could not be read; short, for the log."""


def read_metrics(declared: object, root: str = ".") -> dict:
    """The declared metrics (the job file's `metrics`) the run wrote, by name, as finite numbers. One that cannot
    be read (no file, no such key or column, not a number) is left out with a line in the log: a metric never
    fails the job."""
    found = {}
    for spec in declared[:MAX_METRICS] if isinstance(declared, list) else []:
        name = spec.get("name") if isinstance(spec, dict) else None
        if not isinstance(name, str) or not name:
            continue
        try:
            found[name] = metric_value(spec, root)
        except MetricMissing as exc:
            log(f"metric {_clean(name, 64)} left out: {_clean(str(exc), 200)}")
    if found:
        log(f"read metrics: {', '.join(sorted(found))}")
    return found


def metric_value(spec: dict, root: str = ".") -> float:
    """One metric's value: `key` of the JSON object in `file`, or `column` of the CSV `file`'s last row."""
    file = spec.get("file")
    if not isinstance(file, str) or not file or os.path.isabs(file) or ".." in file.split("/"):
        raise MetricMissing(f"{file!r} is not a path inside the job folder")
    path = os.path.join(root, file)
    real_root = os.path.realpath(root)
    if not _inside(real_root, os.path.realpath(path)):
        raise MetricMissing(f"{file} leads out of the job folder")
    try:
        if isinstance(spec.get("key"), str):
            value = _json_value(path, spec["key"])
            if isinstance(value, str):  # only the CSV's cells are text
                raise MetricMissing(f"{file}: {value[:40]!r} is a string, not a number")
            return _finite(value, file)
        if isinstance(spec.get("column"), str):
            return _finite(_csv_value(path, spec["column"]), file)
    except OSError as exc:
        raise MetricMissing(f"cannot read {file}: {_summary(exc)}") from None
    raise MetricMissing("it names neither a key nor a column")


def _json_value(path: str, key: str) -> object:
    with open(path, "rb") as handle:
        data = handle.read(METRIC_JSON_MAX + 1)
    if len(data) > METRIC_JSON_MAX:
        raise MetricMissing(f"{os.path.basename(path)} is larger than {METRIC_JSON_MAX} bytes")
    try:
        document = json.loads(data.decode("utf-8"))
    except ValueError as exc:
        raise MetricMissing(f"{os.path.basename(path)} is not JSON: {_summary(exc)}") from None
    if not isinstance(document, dict) or key not in document:
        raise MetricMissing(f"{os.path.basename(path)} has no key {key!r}")
    return document[key]


def _csv_value(path: str, column: str) -> str:
    """The cell of `column` in the CSV's last non-blank row (the header is its first line)."""
    with open(path, "rb") as handle:
        header = _csv_row(handle.readline(METRIC_CSV_TAIL))
        handle.seek(0, os.SEEK_END)
        start = max(0, handle.tell() - METRIC_CSV_TAIL)
        handle.seek(start)
        lines = handle.read(METRIC_CSV_TAIL).decode("utf-8", "replace").splitlines()
    rows = [line for line in lines[1:] if line.strip()]  # the first is cut, or the header
    if column not in header:
        raise MetricMissing(f"{os.path.basename(path)} has no column {column!r}")
    if not rows:
        raise MetricMissing(f"{os.path.basename(path)} has no rows")
    cells = _csv_row(rows[-1].encode())
    index = header.index(column)
    if index >= len(cells):
        raise MetricMissing(f"the last row of {os.path.basename(path)} has no {column!r} cell")
    return cells[index].strip()


def _csv_row(line: bytes) -> list:
    return next(csv.reader(io.StringIO(line.decode("utf-8-sig", "replace"))), [])


def _finite(value: object, file: str) -> float:
    """`value` as a finite float: a JSON number, or a CSV cell's text; MetricMissing for anything else (a JSON
    string or true is not a number)."""
    shown = repr(value)[:40]
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise MetricMissing(f"{file}: {shown} is not a number") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MetricMissing(f"{file}: {shown} is not a number")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise MetricMissing(f"{file}: {shown} is not a finite number")
    return number


# ---------------------------------------------------------------------------------------------------- why it failed


SUMMARY_MAX = (
    240  # characters of the entry's last words in a FAILED report (the gateway's reason keeps ~300)
)
STDERR_TAIL = 64 << 10  # bytes read from the end of the stderr log to find them
_FOAM_FATAL = re.compile(r"-->\s*FOAM FATAL (?:IO )?ERROR")
_FOAM_BLOCK_END = re.compile(r"(?:From |in file |FOAM exiting|FOAM aborting)")
# Which OpenFOAM program failed: its log banner's `Exec : name`, or a `log.<name>` (OpenFOAM's naming of logs).
_FOAM_PROGRAM = re.compile(r"^Exec\s*:\s*([A-Za-z][\w.-]*)|\blog\.([A-Za-z][\w-]*)")
_FOAM_BANNER = re.compile(
    r"[|\\]|/\*|\*/"
)  # the boxed banner OpenFOAM puts at the top of its output


def failure_summary(path: str = STDERR_LOG, limit: int = SUMMARY_MAX) -> str | None:
    """What the entry's stderr log says went wrong, on one short, clean line; None when it says nothing.

    OpenFOAM's `--> FOAM FATAL ERROR` block (the last one), named after the program that wrote it, if there is one;
    else the last line that says something: not blank, not only decoration (rules, banners, "FOAM exiting").
    """
    lines = _tail_lines(path)
    text = _foam_fatal(lines)
    if text is None:
        text = next((line.strip() for line in reversed(lines) if _meaningful(line)), None)
    return _clean(text, limit) if text else None


def _tail_lines(path: str, size: int = STDERR_TAIL) -> list:
    """The lines of the last `size` bytes of the file (a first, cut line dropped), escape sequences removed."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            start = max(0, handle.tell() - size)
            handle.seek(start)
            data = handle.read(size)
    except OSError:
        return []
    lines = data.decode(
        "utf-8", "replace"
    ).splitlines()  # \r too: what a progress bar overwrote is a line of its own
    return [_ESCAPES.sub("", line) for line in (lines[1:] if start else lines)]


def _meaningful(line: str) -> bool:
    text = line.strip()
    if not re.search(r"[^\W_]", text) or _FOAM_BANNER.match(text):
        return False
    return not re.match(r"FOAM (?:exiting|aborting)", text)


def _foam_fatal(lines: list) -> str | None:
    """`program: message` of the last FOAM FATAL ERROR block in `lines`, or None when there is none."""
    starts = [i for i, line in enumerate(lines) if _FOAM_FATAL.search(line)]
    if not starts:
        return None
    body = []
    for line in lines[starts[-1] + 1 :]:
        text = line.strip()
        if _FOAM_BLOCK_END.match(text):
            break
        if text:
            body.append(text)
    message = " ".join(body) or "FOAM FATAL ERROR"
    program = _foam_program(lines[max(0, starts[-1] - 40) : starts[-1]])
    return f"{program}: {message}" if program else f"FOAM FATAL ERROR: {message}"


def _foam_program(before: list) -> str | None:
    """The program named nearest above an OpenFOAM error block, by its banner's `Exec :` or a `log.<program>`."""
    for line in reversed(before):
        found = _FOAM_PROGRAM.findall(line.strip())
        if found:
            return next(name for name in found[-1] if name)
    return None


# ---------------------------------------------------------------------------------------------------- reports


def end_report(
    exit_code: int,
    results: list,
    problem: str | None = None,
    notes: tuple = (),
    why: str | None = None,
    metrics: dict | None = None,
) -> dict:
    """The final report: COMPLETED when the entry exited 0 and every upload worked (and nothing else went wrong),
    else FAILED with the exit code and the first thing that went wrong. Lists what did upload, and the `metrics`
    that were found, either way. `why` is what the entry said went wrong (`failure_summary`), given after a
    non-zero exit code."""
    outputs = [{"name": r.name, "file": r.file} for r in results if r.error is None]
    failed = [r for r in results if r.error is not None]
    problems = []
    if exit_code != 0:
        problems.append(f"exit code {exit_code}" + (f": {why}" if why else ""))
    if problem:
        problems.append(problem)
    if failed:
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        problems.append(f"upload failed: {failed[0].file}: {failed[0].error}{more}")
    found = {"metrics": dict(metrics)} if metrics else {}
    if not problems:
        body = {"status": "COMPLETED", "outputs": outputs, **found}
        if notes:
            body["message"] = _clean("; ".join(notes), MAX_MESSAGE)
        return body
    message = _clean("; ".join(problems + list(notes)), MAX_MESSAGE)
    return {
        "status": "FAILED",
        "exit_code": exit_code,
        "message": message,
        "outputs": outputs,
        **found,
    }


class Reporter:
    """Status reports to the gateway: the job file is read again before each one (the token may have changed).

    `report` answers the reply's JSON, or None when the report did not go through; after a 409 (the job has
    ended) nothing more is sent. `last_status` is the HTTP status of the last answer (None when none came)."""

    def __init__(self, path: str = JOB_FILE) -> None:
        self.path = path
        self.job = load_job(path)
        self.retry = Retry.from_job(self.job)
        self.http = Http(ca_path(self.job, os.path.dirname(path) or "."), self.retry)
        self.stopped = False
        self.last_status: int | None = None

    def _reload(self) -> None:
        try:
            self.job = load_job(self.path)
        except (OSError, ValueError) as exc:
            log(f"could not read {self.path} again ({_summary(exc)}); using what it said before")

    def report(self, body: dict) -> dict | None:
        """Send one report; see the class."""
        if self.stopped:
            return None
        what = f"report {body.get('status')}"
        self._reload()
        answer = self._send(body, what)
        if answer is not None and answer.status == 401:
            log(f"{what}: HTTP 401; reading the job file again for a new token")
            time.sleep(min(self.retry.first_delay, 1.0))
            self._reload()
            answer = self._send(body, what)
        if answer is None:
            return None
        if 200 <= answer.status < 300:
            log(
                f"reported {body.get('status')}"
                + (f" ({body['progress']}%)" if "progress" in body else "")
            )
            try:
                reply = json.loads(answer.body or b"{}")
            except ValueError:
                reply = {}
            return reply if isinstance(reply, dict) else {}
        if answer.status == 409:
            self.stopped = True
            log(f"{what}: HTTP 409, the job has ended or is being cancelled; no more reports")
            return None
        log(f"{what} refused: HTTP {answer.status} {_problem_detail(answer.body)}".rstrip())
        return None

    def _send(self, body: dict, what: str) -> Response | None:
        headers = {
            "Authorization": "Bearer " + self.job["token"],
            "Content-Type": "application/json",
        }
        try:
            answer = self.http.request(
                "PATCH", self.job["callback_url"], headers, json.dumps(body).encode(), what
            )
        except TransportError as exc:
            self.last_status = None
            log(f"could not {what}: {exc}")
            return None
        self.last_status = answer.status
        return answer

    def close(self) -> None:
        """Close the connections."""
        self.http.close()


def _problem_detail(body: bytes) -> str:
    try:
        detail = json.loads(body).get("detail") or ""
    except (ValueError, AttributeError):
        detail = body[:200].decode("utf-8", "replace")
    return _clean(str(detail), 200)


# ---------------------------------------------------------------------------------------------------- the entry


def exit_status(returncode: int) -> int:
    """A process's exit code as a shell tells it: 128 + N for death by signal N."""
    return returncode if returncode >= 0 else 128 - returncode


class SignalForwarder:
    """While the entry runs, the scheduler's signals to the wrapper go to the entry's whole process group; SIGKILL
    follows KILL_GRACE seconds after an ending signal if the group is still there."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.ending_since: float | None = None
        self.killed = False
        self._previous = {}

    def __enter__(self) -> SignalForwarder:
        for name in FORWARDED_SIGNALS:
            number = getattr(signal, name, None)
            if number is not None:
                self._previous[number] = signal.signal(number, self._forward)
        return self

    def __exit__(self, *exc: object) -> None:
        ending = [getattr(signal, n, None) for n in ENDING_SIGNALS]
        for number, handler in self._previous.items():
            # A scheduler's cancel signals every process of the job at once: the entry may die of it before the
            # wrapper's own copy arrives. That copy must not end the wrapper before it reports how the job ended.
            signal.signal(number, _late_signal if number in ending else handler)

    def _forward(self, number: int, frame: object) -> None:
        if number in [getattr(signal, n) for n in ENDING_SIGNALS] and self.ending_since is None:
            self.ending_since = time.monotonic()
        self._signal(number)

    def _signal(self, number: int) -> None:
        with contextlib.suppress(OSError):  # the group is gone already
            os.killpg(self.proc.pid, number)

    def escalate_if_due(self) -> None:
        """SIGKILL the entry's group when an ending signal was forwarded long enough ago."""
        if (
            self.ending_since is not None
            and not self.killed
            and time.monotonic() - self.ending_since > KILL_GRACE
        ):
            self.killed = True
            log(f"the entry outlived SIGTERM by {KILL_GRACE:.0f} s; killing it")
            self._signal(signal.SIGKILL)


def _late_signal(number: int, frame: object) -> None:
    log(f"signal {number} after the entry ended: finishing the reports first")


def read_progress(path: str = PROGRESS_FILE) -> float | None:
    """The number 0-100 in the progress file, or None when there is none (or it is not such a number)."""
    try:
        with open(path, "rb") as handle:
            value = float(handle.read(64).decode("ascii", "replace").strip())
    except (OSError, ValueError):
        return None
    return round(value, 2) if 0 <= value <= 100 else None


def run_entry(entry: str, reporter: Reporter | None = None) -> int:
    """Run `sh entry` in its own process group with its output in the two logs; its exit status."""
    with open(STDOUT_LOG, "wb") as out, open(STDERR_LOG, "wb") as err:
        try:
            proc = subprocess.Popen(
                ["sh", entry],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        except OSError as exc:
            err.write(f"simgate: could not start sh {entry}: {_summary(exc)}\n".encode())
            log(f"could not start sh {entry}: {_summary(exc)}")
            return 127
    log(f"started sh {entry} (pid {proc.pid})")
    last_progress, next_progress = None, 0.0
    with SignalForwarder(proc) as forwarder:
        while True:
            try:
                return exit_status(proc.wait(timeout=POLL_INTERVAL))
            except subprocess.TimeoutExpired:
                pass
            forwarder.escalate_if_due()
            if reporter is not None and time.monotonic() >= next_progress:
                progress = read_progress()
                if progress is not None and progress != last_progress:
                    last_progress, next_progress = progress, time.monotonic() + PROGRESS_INTERVAL
                    _report_progress(reporter, progress)


def _report_progress(reporter: Reporter, progress: float) -> None:
    try:
        reporter.report({"status": "RUNNING", "progress": progress})
    except Exception as exc:  # a report must never stop the wait for the entry
        log(f"reporting progress failed: {_summary(exc)}")


def write_exit_code(code: int, path: str = EXIT_CODE_FILE) -> None:
    """`code` and a newline in `path`, written whole or not at all."""
    temporary = path + ".tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(f"{code}\n")
    os.replace(temporary, path)


# ---------------------------------------------------------------------------------------------------- main


def finish(reporter: Reporter, code: int) -> None:
    """FINALIZING, the uploads, and the final report."""
    reply = reporter.report({"status": "FINALIZING"})
    if reporter.stopped:
        return

    def renew() -> dict | None:
        return reporter.report({"status": "FINALIZING"})

    grant = Grant.from_reply(reply, renew)
    job = reporter.job
    if grant is None:
        results, selection = [], Selection([], [])
        problem = "no upload grant: FINALIZING was " + (
            "answered without one" if reply is not None else "not taken"
        )
        log(f"{problem}; nothing uploaded")
    else:
        ca_file = ca_path(job)
        selection = select_files(".", job.get("outputs") or [], (ca_file,) if ca_file else ())
        for note in selection.notes:
            log(note)
        results, problem = upload_all(selection, grant, ".", ca_file, reporter.retry), None
    why = failure_summary() if code != 0 else None
    metrics = read_metrics(job.get("metrics"))
    body = end_report(code, results, problem, tuple(selection.notes), why, metrics)
    if (
        reporter.report(body) is None
        and body["status"] == "COMPLETED"
        and _refused(reporter.last_status)
    ):
        # Without the metrics: they may be what was refused, and the run's outputs matter more.
        reporter.report(
            {
                "status": "FAILED",
                "exit_code": code,
                "outputs": body["outputs"],
                "message": f"the gateway refused the COMPLETED report (HTTP {reporter.last_status})",
            }
        )


def _refused(status: int | None) -> bool:
    return status is not None and 400 <= status < 500 and status not in (401, 409)


def main() -> int:
    """Report, run, upload, report; the entry's exit code (2 when the job file cannot be used)."""
    try:
        reporter = Reporter(JOB_FILE)
    except (OSError, ValueError) as exc:
        log(f"cannot use {JOB_FILE}: {_summary(exc)}")
        return 2
    try:
        reporter.report({"status": "RUNNING"})
    except Exception as exc:  # a report must never keep the job from running
        log(f"reporting RUNNING failed: {_summary(exc)}")
    if (
        reporter.stopped
    ):  # the gateway answered 409: the job was cancelled (or failed) before it could start
        log("the job has already ended at the gateway; the entry is not run")
        reporter.close()
        return 0
    code = run_entry(reporter.job["entry"], reporter)
    write_exit_code(code)
    log(f"the entry exited with code {code}")
    try:
        finish(reporter, code)
    except Exception as exc:  # nor lose the entry's exit code
        log(f"finishing failed: {_summary(exc)}")
    finally:
        reporter.close()
    return code


if __name__ == "__main__":
    sys.exit(main())
