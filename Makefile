# Set-up is part of each target: a git-ignored .venv/ at the repo root is created or reused.
ENV ?= dev
VENV := .venv
PYTHON ?= python3

.PHONY: plan test validate render bench clean

$(VENV)/.installed-base: pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -e .
	touch $@

# torch is pinned in pyproject.toml; the dev extra brings the trainer's stack and pytest.
$(VENV)/.installed-dev: pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $@ $(VENV)/.installed-base

## plan: validate every workload, render ENV's manifests and print what `pulumi up` would do (no Azure needed)
plan: $(VENV)/.installed-base
	$(VENV)/bin/kaito-gitops validate
	$(VENV)/bin/kaito-gitops plan --env $(ENV)

## test: the whole test suite
test: $(VENV)/.installed-dev
	$(VENV)/bin/python -m pytest -q

validate: $(VENV)/.installed-base
	$(VENV)/bin/kaito-gitops validate

render: $(VENV)/.installed-base
	$(VENV)/bin/kaito-gitops render --env $(ENV) --out out/$(ENV)

clean:
	rm -rf $(VENV) out
