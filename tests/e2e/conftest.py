"""The end-to-end tests' fixture `openfoam`, the set-up lines a target needs to run OpenFOAM jobs. The gateway and
`use_targets` are the session's (`tests/gateway.py`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import _missing_component

OPENFOAM_BASHRC = Path("/usr/share/openfoam/etc/bashrc")


@pytest.fixture(scope="session")
def openfoam() -> list[str]:
    """A target's `setup` lines that load OpenFOAM into a job's batch script.

    The batch script is `#!/bin/sh` with `set -eu` (core/schedulers/common.py), and /bin/sh is dash here: it has no
    `source`, and OpenFOAM's bashrc reads unset variables and finds its own folder through `BASH_SOURCE`, which
    only bash sets (without it, the bashrc points WM_PROJECT_DIR at ~/OpenFOAM/OpenFOAM-v1912 and the solvers
    stop: "Could not find mandatory etc entry 'controlDict'"). So: `-u` off, `BASH_SOURCE` named, `.`, `-u` back
    on. The environment it gives equals bash's `source` of the same file. The bashrc's complaints about helper
    scripts Debian does not ship are harmless and kept out of the job's log.
    """
    if not OPENFOAM_BASHRC.is_file():
        _missing_component(
            f"OpenFOAM is not installed ({OPENFOAM_BASHRC} is missing; `make system-deps` as root)"
        )
    return [
        "set +u",
        f"BASH_SOURCE={OPENFOAM_BASHRC}; . {OPENFOAM_BASHRC} >/dev/null 2>&1; unset BASH_SOURCE",
        "set -u",
    ]
