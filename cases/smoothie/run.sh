#!/bin/sh
# simgate case "smoothie": run the mixing model on the rendered parameters.
# Runs in the job folder; writes mixing_index.csv and concentration.csv there. Needs only python3 (3.8 or later,
# standard library only).
set -eu

if ! command -v python3 >/dev/null 2>&1; then
    echo "run.sh: python3 is not on PATH" >&2
    exit 127
fi
if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 8))'; then
    echo "run.sh: model.py needs Python 3.8 or later, but python3 is $(python3 -V 2>&1)" >&2
    exit 1
fi
# exec: the model's exit status is the job's.
exec python3 model.py params.json
