"""The job folder's contract: the names of the files the gateway writes there and the job wrapper reads or leaves.

The gateway (`core.remote`) and the job wrapper (`simulator/wrapper.py`, stdlib only, run on the cluster) are two
processes on two machines, and the wrapper cannot import this module. So the names are written here once for the
gateway, the wrapper keeps its own copies, and `tests/unit/test_wrapper_pieces.py` fails when the two disagree.
"""

from __future__ import annotations

JOB_FILE = "simgate_job.json"  # the wrapper's instructions and the job's token: readable by the job's user only
WRAPPER_FILE = "simgate_wrapper.py"  # the job wrapper itself
BATCH_FILE = "simgate_batch.sh"  # the scheduler's batch script, which runs the wrapper
CA_FILE = "simgate_ca.pem"  # a private CA (Azurite's, locally) the wrapper trusts for its uploads and callbacks
SUBMITTED_MARKER = (
    ".simgate-submitted"  # the scheduler's id, written by the command that submitted: submit once
)
EXIT_CODE_FILE = ".simgate-exit-code"  # the entry script's exit code, left by the wrapper
STDOUT_LOG = "simgate-stdout.log"  # the entry script's output, uploaded with every job
STDERR_LOG = "simgate-stderr.log"

# The storage service version both sides pin: the SDK's newest is ahead of what Azurite (local) accepts.
STORAGE_API_VERSION = "2026-06-06"


def folder_of(base_dir: str, job_id: str) -> str:
    """The job's folder on its target: below the target's base, named by the job id (never a path of the user's)."""
    return f"{base_dir.rstrip('/')}/{job_id}"
