"""The app is synthesized once per test session, with cdk-nag on, and every infra test reads
that one cloud assembly: synthesis costs seconds, each assertion after it is cheap.

Bundling is skipped (`aws:cdk:bundling-stacks: []`): templates do not depend on asset content,
and the custom asset hashes are still computed from the real files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from infra.app import SERVICE_STACK, build_app

NO_BUNDLING = {"aws:cdk:bundling-stacks": []}


@pytest.fixture(scope="session")
def nag_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The whole app (cdk.json's settings) synthesized with the cdk-nag plugin and the Control
    Tower proactive controls.

    Synth raises on an open cdk-nag finding, after writing the templates and
    validation-report.json; the guardrail tests read the report so that they name each finding
    (an open Control Tower finding does not make synth raise: infra.nag.add_control_tower_checks).
    """
    outdir = tmp_path_factory.mktemp("cdk.out")
    try:
        build_app(NO_BUNDLING, str(outdir), nag=True, control_tower=True).synth()
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


@pytest.fixture(scope="session")
def service_json(nag_templates: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The `Entrix` stack's template, as `cdk synth` writes it."""
    return nag_templates[SERVICE_STACK]


@pytest.fixture(scope="session")
def service_template(service_json: dict[str, Any]) -> Template:
    return Template.from_json(service_json)
