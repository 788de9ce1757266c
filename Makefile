# simgate: `make run` starts the local stack (setting it up on first use); `make test` runs every check.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := openssh-server:/usr/sbin/sshd slurm-wlm:/usr/sbin/slurmctld munge:/usr/sbin/munged openfoam:/usr/share/openfoam/etc/bashrc

.PHONY: run test setup lint typecheck unit bench system-deps clean

run: setup
	$(PY) -m devhost serve

test: setup system-deps lint typecheck
	$(PY) -m pytest

setup: $(VENV)/.installed node_modules/.installed
	$(PY) -m devhost setup

# Re-install only when the pins change.
$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Components the integration tests run for real; installed when missing (needs root, as in CI).
# APT_PACKAGES pairs each package with a file it installs: the package is missing when the file is.
system-deps:
	@missing=""; \
	for pair in $(APT_PACKAGES); do [ -e "$${pair#*:}" ] || missing="$$missing $${pair%%:*}"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else echo "not root, not installing:$$missing (their tests skip; they fail under CI=true)"; fi; \
	fi

lint: setup
	$(VENV)/bin/ruff check .

typecheck: setup
	$(VENV)/bin/mypy

bench: setup
	$(PY) -m bench.cold_start
	$(PY) -m bench.storage_calls
	$(PY) -m bench.dispatch
	$(PY) -m bench.outputs

clean:
	rm -rf $(VENV) node_modules .local .pytest_cache .mypy_cache .ruff_cache
