"""The command in cdk.json (what `cdk synth` and `make synth` run) synthesizes every stack."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

from infra.app import CDK_JSON, DELIVERY_STACK, SERVICE_STACK


def test_cdk_json_app_command_writes_the_templates(tmp_path: Path) -> None:
    command = shlex.split(json.loads(CDK_JSON.read_text())["app"])
    env = {
        **os.environ,
        # What the CDK CLI hands the app: its output folder and context (bundling skipped here,
        # as it needs PyPI).
        "CDK_OUTDIR": str(tmp_path),
        "CDK_CONTEXT_JSON": json.dumps({"aws:cdk:bundling-stacks": []}),
    }
    result = subprocess.run(
        command, cwd=CDK_JSON.parent, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for stack in (SERVICE_STACK, DELIVERY_STACK):
        template = json.loads((tmp_path / f"{stack}.template.json").read_text())
        assert template["Resources"]
    report = json.loads((tmp_path / "validation-report.json").read_text())
    findings = {
        (plugin["pluginName"], violation["ruleName"], violation["severity"])
        for plugin in report["pluginReports"]
        for violation in plugin["violations"]
    }
    # cdk-nag finds nothing; the one annotation is the warning cdk.json's default earns (no
    # accounts of their own for Dev and Prod: docs/delivery.md, Accounts).
    assert findings == {
        ("Construct Annotations", "Annotation::entrix:prod-shares-an-account", "warning")
    }
