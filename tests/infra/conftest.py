"""Apps built once per test session: synthesis costs seconds, every assertion after it is cheap.

Bundling is skipped (`aws:cdk:bundling-stacks: []`): templates do not depend on asset content,
and the custom asset hashes are still computed from the real files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import Stack
from aws_cdk.assertions import Template
from infra.app import SERVICE_STACK, build_app

NO_BUNDLING = {"aws:cdk:bundling-stacks": []}


@pytest.fixture(scope="session")
def service_stack() -> Stack:
    """The `Entrix` stack with cdk.json's settings (no cdk-nag: see the guardrail tests)."""
    app = build_app(NO_BUNDLING, nag=False)
    stack = app.node.find_child(SERVICE_STACK)
    assert isinstance(stack, Stack)
    return stack


@pytest.fixture(scope="session")
def service_template(service_stack: Stack) -> Template:
    return Template.from_stack(service_stack)


@pytest.fixture(scope="session")
def service_json(service_template: Template) -> dict[str, Any]:
    return service_template.to_json()


@pytest.fixture(scope="session")
def nag_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The whole app synthesized with the cdk-nag plugin.

    Synth raises on an open finding, after writing the templates and validation-report.json;
    the nag test reads the report so that it names each finding.
    """
    outdir = tmp_path_factory.mktemp("cdk.out")
    try:
        build_app(NO_BUNDLING, str(outdir), nag=True).synth()
    except RuntimeError as error:
        if "ValidationFailed" not in str(error):
            raise
    return outdir


@pytest.fixture(scope="session")
def nag_templates(nag_assembly: Path) -> dict[str, dict[str, Any]]:
    """Every stack template of the assembly by stack name (nested stages included)."""
    return {
        path.name.removesuffix(".template.json"): json.loads(path.read_text())
        for path in sorted(nag_assembly.rglob("*.template.json"))
    }
