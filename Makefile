# One entry point for people and CI. Every target installs what it needs first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9

export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := 1
export PYTHONDONTWRITEBYTECODE := 1

STACK ?= Entrix
CDK := npx --no-install cdk

.PHONY: help install run test lint format unit infra-tests e2e synth diff deploy bench openapi clean py313

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) uv.lock pyproject.toml
	$(UV) sync --frozen --python $(PYTHON)
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

install: $(VENV)/.synced node_modules/.installed ## create .venv from uv.lock and install the pinned CDK CLI

run: install ## start the whole system locally (entrix local)
	$(BIN)/entrix local

test: install lint ## lint, then every test (unit, infra, pipeline, local end-to-end)
	$(BIN)/pytest

lint: $(VENV)/.synced ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(VENV)/.synced ## apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

openapi: $(VENV)/.synced ## regenerate docs/openapi.json from the order model
	$(BIN)/python -m entrix.orders.openapi > docs/openapi.json

synth: install ## synthesize every stack into cdk.out (no AWS account needed)
	$(CDK) synth --quiet

diff: install ## cdk diff against the account in your AWS credentials
	$(CDK) diff $(STACK)

deploy: install ## deploy STACK (default Entrix) with the CDK CLI
	$(CDK) deploy $(STACK) --require-approval broadening

bench: synth ## print the benchmark table (ratios against baselines measured in the same run)
	$(BIN)/python -m bench

py313: $(UV) ## unit tests on Python 3.13 (the Lambda runtime's) in .venv313; skipped without one
	@python313=$$(for candidate in $${PYTHON313:-} $$(command -v python3.13) \
			$${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.13.*/bin/python3.13; do \
		"$$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null \
			&& { echo "$$candidate"; break; }; \
	done); \
	if [ -n "$${PYTHON313:-}" ] && [ "$$python313" != "$$PYTHON313" ]; then \
		echo "PYTHON313=$$PYTHON313 is not a Python 3.13" >&2; exit 1; \
	fi; \
	if [ -z "$$python313" ]; then \
		echo "python3.13 not found: skipped (PYTHON313=/path/to/python3.13 to choose one)"; exit 0; \
	fi; \
	echo "unit tests on $$python313"; \
	UV_PROJECT_ENVIRONMENT=.venv313 $(UV) sync --frozen --no-group infra --python "$$python313" \
		&& .venv313/bin/pytest tests/unit -q

clean: ## remove the environments and build output
	rm -rf $(VENV) $(TOOLS) node_modules cdk.out .pytest_cache .mypy_cache .ruff_cache
