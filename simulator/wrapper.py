#!/usr/bin/env python3
"""simgate's job wrapper: shipped with every job and run by the scheduler in the job's folder.

Standard library only (HPC login nodes have python3 but rarely pip). It runs the case's entry script and keeps its
exit code in `.simgate-exit-code`, so the gateway can tell how a job ended even if no report reaches it. Status
reports and output uploads come with the reporting issue; until then this is the whole of it.
"""

import json
import subprocess
import sys

JOB_FILE = "simgate_job.json"
EXIT_CODE_FILE = ".simgate-exit-code"


def main() -> int:
    """Run the entry script; record and return its exit code."""
    with open(JOB_FILE, encoding="utf-8") as handle:
        job = json.load(handle)
    code = subprocess.call(["sh", job["entry"]])
    with open(EXIT_CODE_FILE, "w", encoding="utf-8") as handle:
        handle.write(f"{code}\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
