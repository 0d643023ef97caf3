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
# The Node that package.json pins (`make install` puts it in node_modules) runs every recipe's
# node: the CDK CLI, jsii under every Python process that imports aws_cdk, the policy simulator.
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)
export PYTHONDONTWRITEBYTECODE := 1

# python3.13, the Lambda runtime's, for the unit tests and the cold requests on it (make py313, make
# test, make bench): PYTHON313, else python3.13 on PATH, else pyenv's. Sets $python313 to the real
# executable (not a pyenv shim), or to nothing when there is none.
VENV313 := .venv313
FIND_PYTHON313 = is313='import sys; print(sys.executable) if sys.version_info[:2] == (3, 13) else sys.exit(1)'; \
	if [ -n "$${PYTHON313:-}" ]; then \
		python313=$$("$$PYTHON313" -c "$$is313" 2>/dev/null) \
			|| { echo "PYTHON313=$$PYTHON313 does not run as Python 3.13" >&2; exit 1; }; \
	else \
		python313=$$(for candidate in $$(command -v python3.13) \
				$${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.13.*/bin/python3.13; do \
			"$$candidate" -c "$$is313" 2>/dev/null && break; \
		done); \
	fi
# .venv313 from uv.lock without the CDK (no test under tests/unit needs it).
SYNC_VENV313 = UV_PROJECT_ENVIRONMENT=$(VENV313) $(UV) sync --quiet --frozen --compile-bytecode \
	--no-group infra --python "$$python313"
NO_PYTHON313 = python3.13 not found (PYTHON313=/path/to/python3.13 to choose one)

STACK ?= Entrix
CDK := npx --no-install cdk

# The test tiers: tests/conftest.py marks each test with its directory's tier (unit, infra,
# integration) unless it is marked e2e; slow is marked where a test is, or by directory.
# Everything but the unit and infra tiers lives in these directories (their collection alone
# does not synthesize anything).
RUNTIME_TESTS := tests/pipeline tests/local tests/faults tests/properties tests/bench
# No unit test uses Schemathesis, whose pytest plugin takes about a second to import.
UNIT_OPTIONS := -p no:schemathesis

.PHONY: help install run test lint format unit infra-tests integration e2e slow synth diff deploy \
	bench openapi order-schema clean py313

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet uv==$(UV_VERSION)

# Bytecode is compiled once here: with PYTHONDONTWRITEBYTECODE, Python would compile every
# installed module it imports again in every process.
$(VENV)/.synced: $(UV) uv.lock pyproject.toml
	$(UV) sync --frozen --compile-bytecode --python $(PYTHON)
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

install: $(VENV)/.synced node_modules/.installed ## create .venv from uv.lock, install the pinned Node and CDK CLI

run: install ## start the whole system locally (entrix local)
	$(BIN)/entrix local

test: install lint ## lint, every test (all tiers) with coverage, unit on python3.13
	$(BIN)/pytest --cov --cov-report=
	@$(MAKE) --no-print-directory py313
	$(BIN)/coverage report

unit: $(VENV)/.synced ## unit tests: one module at a time, AWS in moto's mock (seconds)
	$(BIN)/pytest tests/unit $(UNIT_OPTIONS)

infra-tests: install ## assertions on the synthesized templates and their permissions
	$(BIN)/pytest tests/infra tests/permissions

integration: install ## the pipeline under moto, the local runtime's parts (not slow)
	$(BIN)/pytest $(RUNTIME_TESTS) -m "integration and not slow"

e2e: install ## the whole local system over HTTP (not slow)
	$(BIN)/pytest $(RUNTIME_TESTS) -m "e2e and not slow"

slow: install ## 100,000 orders, Schemathesis, fault suites, property tests, time budgets
	$(BIN)/pytest $(RUNTIME_TESTS) -m slow

lint: $(VENV)/.synced ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(VENV)/.synced ## apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

openapi: $(VENV)/.synced ## regenerate docs/openapi.json from the order model
	$(BIN)/python -m entrix.orders.openapi --output docs/openapi.json

order-schema: $(VENV)/.synced ## regenerate the ingest validator's schema from the order model
	$(BIN)/python -m entrix.orders.schema_export --output src/entrix/orders/order_schema.py

synth: install ## synthesize every stack into cdk.out (no AWS account needed)
	$(CDK) synth --quiet

diff: install ## cdk diff against the account in your AWS credentials
	$(CDK) diff $(STACK)

deploy: install ## deploy STACK (default Entrix) with the CDK CLI
	$(CDK) deploy $(STACK) --require-approval broadening

bench: synth ## print the benchmark table (ratios against baselines measured in the same run)
	@$(FIND_PYTHON313); \
	if [ -n "$$python313" ]; then \
		$(SYNC_VENV313) || exit 1; \
		interpreters="--python $(BIN)/python --python $(VENV313)/bin/python"; \
	else \
		echo "$(NO_PYTHON313): cold requests on python3.13 skipped"; \
	fi; \
	set -x; $(BIN)/python -m bench $$interpreters

py313: $(UV) ## unit tests on python3.13 (the Lambda runtime's) in .venv313; skipped without one
	@$(FIND_PYTHON313); \
	if [ -z "$$python313" ]; then echo "$(NO_PYTHON313): unit tests on python3.13 skipped"; exit 0; fi; \
	echo "unit tests on $$python313"; \
	$(SYNC_VENV313) && $(VENV313)/bin/pytest tests/unit -q $(UNIT_OPTIONS)

clean: ## remove the environments and build output
	rm -rf $(VENV) $(VENV313) $(TOOLS) node_modules cdk.out .pytest_cache .mypy_cache .ruff_cache
