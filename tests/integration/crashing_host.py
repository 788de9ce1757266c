"""devhost with a crash planted at one seam between two writes: `python -m tests.integration.crashing_host
[--seam SEAM] [--lease SECONDS] [--marker PATH] -- serve ...` (the rest is devhost's command line).

The crash is the process killing itself with SIGKILL, as an operator's `kill -9`: no clean-up, no flush, no answer
to the request in flight. Seams (the app's code is not changed; its functions are wrapped from here):

    run:after-state          right after a run's SUBMITTED write: before its outputs container and its message
    run:after-message        right after a run's dispatch message is sent: before the 202
    cancel:after-state       right after a cancel's CANCELLING write: before its message
    cancel:after-message     right after a cancel's message is sent: before the 202
    dispatch:after-claim     right after a dispatcher's claim: before the remote submit
    dispatch:before-cancel   a dispatcher that has submitted touches `--marker` and waits for `<marker>.go` (the
                             test cancels the job meanwhile), records the scheduler's id on the CANCELLING job,
                             and dies right before sending the cancel

`--lease` shortens devhost's queue lease (the host's ten minutes, after which a message whose worker died is
delivered again), so that such a message comes back within a test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import functools
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

SEAMS = (
    "none",
    "run:after-state",
    "run:after-message",
    "cancel:after-state",
    "cancel:after-message",
    "dispatch:after-claim",
    "dispatch:before-cancel",
)
_submitted_here = contextvars.ContextVar(
    "submitted_here", default=False
)  # in the dispatcher that waited


def die() -> None:
    """SIGKILL this process, as an operator's `kill -9` would."""
    sys.stderr.write("crashing_host: SIGKILL at the seam\n")
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def after_write(when: Callable[[Any], bool]) -> None:
    """Die right after the first job write that `when` accepts."""
    from core.storage.jobs_table import JobsTable

    real = JobsTable.replace

    @functools.wraps(real)
    def replace(self: JobsTable, job: Any) -> Any:
        written = real(self, job)
        if when(written):
            die()
        return written

    JobsTable.replace = replace  # type: ignore[method-assign]


def around_message(wanted: str | None, *, before: bool) -> None:
    """Die right before (or right after) sending a message whose action is `wanted`."""
    from core.storage.queues import QueueDispatch

    real = QueueDispatch.send

    @functools.wraps(real)
    def send(
        self: QueueDispatch, job_id: str, action: str | None = None, target: str | None = None
    ) -> None:
        ours = action == wanted and (not before or _submitted_here.get())
        if ours and before:
            die()
        real(self, job_id, action, target)
        if ours:
            die()

    QueueDispatch.send = send  # type: ignore[method-assign]


def wait_for_cancel(marker: Path) -> None:
    """The dispatcher, once it has submitted, waits for the test (which cancels the job) before it records it."""
    from core import dispatch

    real = dispatch._submit
    go = marker.with_name(marker.name + ".go")

    async def submit(plan: Any, message_id: str) -> Any:
        submitted = await real(plan, message_id)
        marker.touch()
        while not go.exists():
            await asyncio.sleep(0.1)
        _submitted_here.set(True)  # this task's cancel, not the user's, is the one to die before
        return submitted

    dispatch._submit = submit


def plant(seam: str, marker: Path | None) -> None:
    """Wrap the app's functions so that the process dies at `seam`."""
    from core.states import JobState

    if seam == "run:after-state":
        after_write(
            lambda j: (
                j.status is JobState.SUBMITTED
                and j.dispatch_message is None
                and j.checked_at is None
            )
        )
    elif seam == "run:after-message":
        around_message(None, before=False)
    elif seam == "cancel:after-state":
        after_write(lambda j: j.status is JobState.CANCELLING)
    elif seam == "cancel:after-message":
        around_message("cancel", before=False)
    elif seam == "dispatch:after-claim":
        after_write(lambda j: j.status is JobState.SUBMITTED and j.dispatch_message is not None)
    elif seam == "dispatch:before-cancel":
        assert marker is not None, "dispatch:before-cancel needs --marker"
        wait_for_cancel(marker)
        around_message("cancel", before=True)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.integration.crashing_host")
    parser.add_argument("--seam", choices=SEAMS, default="none")
    parser.add_argument(
        "--lease", type=int, help="devhost's queue lease in seconds (the host's is 600)"
    )
    parser.add_argument(
        "--marker", type=Path, help="touched when the dispatcher waits for a cancel"
    )
    parser.add_argument("devhost", nargs=argparse.REMAINDER, help="-- and devhost's own arguments")
    args = parser.parse_args()
    import devhost.queues
    from devhost.__main__ import main as devhost_main

    if args.lease:
        devhost.queues.LEASE_SECONDS = args.lease
    plant(args.seam, args.marker)
    return devhost_main([a for a in args.devhost if a != "--"])


if __name__ == "__main__":
    sys.exit(main())
