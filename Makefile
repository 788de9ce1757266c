# simgate: `make run` starts the local stack (setting it up on first use); `make test` runs every check.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := openssh-server:/usr/sbin/sshd slurm-wlm:/usr/sbin/slurmctld munge:/usr/sbin/munged openfoam:/usr/share/openfoam/etc/bashrc chromium:/usr/bin/chromium

.PHONY: run test setup lint typecheck unit bench system-deps clean

run: setup
	$(PY) -m devhost serve

# With `make run` going: the seed chart's story against it, step by step, ending with the CSV's path.
.PHONY: demo
demo: setup
	$(PY) -m devhost demo

test: setup system-deps deploy-tools lint typecheck
	$(PY) -m pytest

setup: $(VENV)/.installed node_modules/.installed ui/dist/index.html
	$(PY) -m devhost setup

# The browser UI: ui/src bundled into ui/dist, which the Function App serves (and a deployment must ship).
ui/dist/index.html: node_modules/.installed ui/build.mjs $(shell find ui/src -type f)
	node ui/build.mjs

# Re-install only when the pins change.
$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Deployment checks (tests/deploy, infra/check.py): Checkov in a venv of its own, and the Functions Python worker's
# indexer in the app's venv. azure-functions-runtime declares Python >= 3.13 but indexes fine on 3.11, so it goes in
# without its dependencies (azure-functions is the app's own). A stamp per pin set: a new pin re-installs.
CHECKOV_VERSION := 3.3.30
WORKER_PINS := azure-functions-runtime==1.3.0 azurefunctions-extensions-base==1.2.0
WORKER_STAMP := $(VENV)/.worker-indexer-$(subst ==,-,$(subst $() ,+,$(WORKER_PINS)))
.PHONY: deploy-tools
deploy-tools: .venv-checkov/.installed-$(CHECKOV_VERSION) $(WORKER_STAMP)

.venv-checkov/.installed-$(CHECKOV_VERSION):
	test -x .venv-checkov/bin/python || $(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/pip install --quiet --disable-pip-version-check checkov==$(CHECKOV_VERSION)
	touch $@

$(WORKER_STAMP): $(VENV)/.installed
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --ignore-requires-python $(WORKER_PINS)
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
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

typecheck: setup
	$(VENV)/bin/mypy

bench: setup
	$(PY) -m bench.cold_start
	$(PY) -m bench.storage_calls
	$(PY) -m bench.dispatch
	$(PY) -m bench.outputs
	$(PY) -m bench.load

clean:
	rm -rf $(VENV) .venv-checkov node_modules ui/dist .local .pytest_cache .mypy_cache .ruff_cache
