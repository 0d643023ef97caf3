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

.PHONY: help install run test lint format unit infra-tests e2e synth diff deploy bench openapi clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

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

clean: ## remove the environments and build output
	rm -rf $(VENV) $(TOOLS) node_modules cdk.out .pytest_cache .mypy_cache .ruff_cache
