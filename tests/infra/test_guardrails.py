"""Guardrails over every synthesized template: cdk-nag, the Control Tower proactive controls,
cfn-lint, secrets, log retention, IAM.

A new resource that breaks one of these rules fails here, not in a review or in production.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs

from entrix import settings
from infra.nag import (
    CONTROL_RULES,
    CONTROL_TOWER_PLUGIN,
    acknowledge,
    acknowledge_control,
    add_checks,
    add_control_tower_checks,
)
from tests.permissions.edges import (
    STATE_MACHINE_LOG_DELIVERY_ACTIONS,
    XRAY_ACTIONS,
    XRAY_SAMPLING_ACTIONS,
)

CFN_LINT = Path(sys.executable).with_name("cfn-lint")

# cfn-lint findings we accept, each with the reason it does not apply.
CFN_LINT_IGNORED = {
    # CDK adds an explicit DependsOn on a function's role (and its default policy) next to the
    # GetAtt, so the policy exists before the function runs; the redundancy is harmless.
    "W3005": "redundant DependsOn emitted by CDK",
}


def _is_pipeline_role_arn_join(match: dict[str, Any]) -> bool:
    """E3703 on a CodePipeline CloudFormation action's RoleArn built with Fn::Join by CDK
    Pipelines: CloudFormation resolves it to a plain ARN, so the false positive is ignored."""
    return match["Rule"]["Id"] == "E3703" and match["Location"]["Path"][-2:] == [
        "Configuration",
        "RoleArn",
    ]


# Actions that support no resource-level permissions (AWS service authorization reference), so
# Resource must be "*": X-Ray tracing, and the CloudWatch Logs vended-delivery calls that Step
# Functions logging needs, and dynamodb:ListStreams (the history stream mapping's, which CDK's
# grant_stream_read adds: it lists a table's streams and has no resource type).
RESOURCE_STAR_ACTIONS = {
    "dynamodb:ListStreams",
    *XRAY_ACTIONS,
    *XRAY_SAMPLING_ACTIONS,
    *STATE_MACHINE_LOG_DELIVERY_ACTIONS,
}

SECRET_PATTERNS = {
    "JWT": re.compile(r"eyJ[\w-]{10,}\.[\w-]{10,}"),
    "AWS access key": re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b"),
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "Slack webhook": re.compile(r"hooks\.slack\.com/services/"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"),
}


def _resources(templates: dict[str, dict[str, Any]]) -> Iterator[tuple[str, str, dict]]:
    for stack, template in templates.items():
        for logical_id, resource in template.get("Resources", {}).items():
            yield stack, logical_id, resource


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _acknowledged(resource: dict[str, Any]) -> dict[str, str]:
    rules = resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
    return {rule["id"]: rule["reason"] for rule in rules}


def _allow_statements(resource: dict[str, Any]) -> Iterator[dict[str, Any]]:
    props = resource.get("Properties", {})
    documents = []
    if resource["Type"] in {"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"}:
        documents.append(props["PolicyDocument"])
    if resource["Type"] == "AWS::IAM::Role":
        documents.extend(policy["PolicyDocument"] for policy in props.get("Policies", []))
    for document in documents:
        for statement in document["Statement"]:
            if statement["Effect"] == "Allow":
                yield statement


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- cdk-nag -------------------------------------------------------------------------------

# CDK's own plugin in the validation report: construct warnings (the flag
# @aws-cdk/core:annotationsInValidationReport), not cdk-nag findings.
ANNOTATIONS_PLUGIN = "Construct Annotations"


def test_cdk_nag_finds_nothing_unacknowledged(nag_assembly: Path) -> None:
    report = json.loads((nag_assembly / "validation-report.json").read_text())
    open_findings = [
        f"{violation['ruleName']} at {construct['constructPath']}"
        for plugin in report["pluginReports"]
        if plugin["pluginName"] not in {ANNOTATIONS_PLUGIN, CONTROL_TOWER_PLUGIN}
        for violation in plugin["violations"]
        for construct in violation["violatingConstructs"]
    ]
    assert open_findings == []


def test_the_only_construct_warning_is_the_shared_accounts_one(nag_assembly: Path) -> None:
    """CDK reports construct annotations beside cdk-nag's; cdk.json names no accounts for Dev
    and Prod, which earns exactly that warning (docs/delivery.md, Accounts)."""
    report = json.loads((nag_assembly / "validation-report.json").read_text())
    annotations = {
        (violation["ruleName"], violation["severity"])
        for plugin in report["pluginReports"]
        if plugin["pluginName"] == ANNOTATIONS_PLUGIN
        for violation in plugin["violations"]
    }
    assert annotations == {("Annotation::entrix:prod-shares-an-account", "warning")}


def test_a_new_finding_fails_synth_and_an_acknowledged_one_does_not(tmp_path: Path) -> None:
    app = App(outdir=str(tmp_path), context={"aws:cdk:bundling-stacks": []})
    stack = Stack(app, "Probe")
    accepted = sqs.Queue(stack, "Accepted", enforce_ssl=True)
    acknowledge(accepted, "AwsSolutions-SQS3", "probe: this queue is itself a dead-letter queue")
    sqs.Queue(stack, "Unreviewed", enforce_ssl=True)
    add_checks(app)

    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()

    report = json.loads((tmp_path / "validation-report.json").read_text())
    paths = {
        (violation["ruleName"], construct["constructPath"])
        for plugin in report["pluginReports"]
        for violation in plugin["violations"]
        for construct in violation["violatingConstructs"]
    }
    assert ("AwsSolutions-SQS3", "Probe/Unreviewed/Resource") in paths
    assert not any(path.startswith("Probe/Accepted") for _, path in paths)


def test_every_acknowledgement_gives_a_specific_reason(
    nag_templates: dict[str, dict[str, Any]],
) -> None:
    reasons = {
        finding: reason
        for _, _, resource in _resources(nag_templates)
        for finding, reason in _acknowledged(resource).items()
    }
    assert reasons, "the audit trail of acknowledgements is written into the templates"
    for finding, reason in reasons.items():
        assert len(reason.split()) >= 10, f"{finding}: reason too thin: {reason!r}"


# --- Control Tower proactive controls -------------------------------------------------------


def _control(violation: dict[str, Any]) -> str:
    """The control a Guard finding is for, from its description ("[CT.SQS.PR.1]: Require ...")."""
    match = re.match(r"\[(CT\.[A-Z0-9]+\.PR\.\d+)\]", violation["description"])
    assert match, violation["description"]
    return match.group(1)


def _control_tower_report(assembly: Path) -> dict[str, Any]:
    report = json.loads((assembly / "validation-report.json").read_text())
    plugins = [p for p in report["pluginReports"] if p["pluginName"] == CONTROL_TOWER_PLUGIN]
    assert len(plugins) == 1, "the Control Tower validator did not run"
    plugin: dict[str, Any] = plugins[0]
    return plugin


def test_control_tower_controls_find_nothing_unacknowledged(nag_assembly: Path) -> None:
    """Every template of the app (the service stack, its Dev and Prod copies, the delivery and
    account-settings stacks) meets each control, or the resource acknowledges it."""
    plugin = _control_tower_report(nag_assembly)
    open_findings = [
        f"{_control(violation)} at {construct.get('constructPath') or construct}"
        for violation in plugin["violations"]
        for construct in violation["violatingConstructs"]
    ]
    assert open_findings == []
    assert plugin["conclusion"] == "success"
    templates = {
        construct["cloudFormationResource"]["templatePath"].rpartition("/")[2]
        for violation in plugin["suppressedViolations"]
        for construct in violation["violatingConstructs"]
        if "cloudFormationResource" in construct
    }
    assert {"Entrix.template.json", "EntrixDelivery.template.json"} <= templates
    assert any("Dev" in t for t in templates) and any("Prod" in t for t in templates)


def test_every_control_tower_acknowledgement_names_its_control_and_a_reason(
    nag_assembly: Path,
) -> None:
    """The reason starts with the control the finding is for (so CONTROL_RULES maps each
    control to its own rule), and every control CONTROL_RULES lists is acknowledged somewhere."""
    plugin = _control_tower_report(nag_assembly)
    acknowledged = set()
    for violation in plugin["suppressedViolations"]:
        control = _control(violation)
        acknowledged.add(control)
        assert violation["reason"].startswith(f"{control}: "), violation["reason"]
        assert len(violation["reason"].split()) >= 15, f"{control}: {violation['reason']!r}"
    assert acknowledged == set(CONTROL_RULES)


def test_the_controls_this_app_meets_are_not_acknowledged(nag_assembly: Path) -> None:
    """Met by the resources themselves, not acknowledged: a key policy denying grants but for
    AWS resources, dead-letter queues that say so, and the pipeline artifacts' expiry."""
    plugin = _control_tower_report(nag_assembly)
    acknowledged = {_control(violation) for violation in plugin["suppressedViolations"]}
    assert not acknowledged & {"CT.KMS.PR.3", "CT.SQS.PR.1", "CT.S3.PR.6"}


def test_a_control_tower_finding_stays_open_and_an_acknowledged_one_does_not(
    tmp_path: Path,
) -> None:
    """An acknowledgement covers its control on its construct only. The open finding is what
    fails the test above: synth itself does not fail once any finding is acknowledged, because
    aws-cdk-lib then counts a violation as an error only when its plugin set a severity, and
    the validator sets none."""
    app = App(outdir=str(tmp_path), context={"aws:cdk:bundling-stacks": []})
    stack = Stack(app, "Probe")
    week = logs.RetentionDays.ONE_WEEK
    accepted = logs.LogGroup(stack, "Accepted", retention=week)
    acknowledge_control(accepted, "CT.CLOUDWATCH.PR.2", "probe: on this log group only")
    logs.LogGroup(stack, "Unreviewed", retention=week)
    add_control_tower_checks(app)
    app.synth()

    plugin = _control_tower_report(tmp_path)
    open_paths = {
        (_control(violation), construct["constructPath"])
        for violation in plugin["violations"]
        for construct in violation["violatingConstructs"]
    }
    acknowledged_paths = {
        (_control(violation), construct["constructPath"])
        for violation in plugin["suppressedViolations"]
        for construct in violation["violatingConstructs"]
    }
    assert ("CT.CLOUDWATCH.PR.2", "Probe/Unreviewed/Resource") in open_paths
    assert ("CT.CLOUDWATCH.PR.2", "Probe/Accepted/Resource") in acknowledged_paths
    assert ("CT.CLOUDWATCH.PR.2", "Probe/Accepted/Resource") not in open_paths
    # Acknowledged for one control, not for the others.
    assert ("CT.CLOUDWATCH.PR.3", "Probe/Accepted/Resource") in open_paths


# --- cfn-lint ------------------------------------------------------------------------------


def test_cfn_lint_reports_nothing_beyond_documented_false_positives(nag_assembly: Path) -> None:
    templates = sorted(str(p) for p in nag_assembly.rglob("*.template.json"))
    result = subprocess.run(
        [str(CFN_LINT), "--format", "json", "--ignore-checks", *CFN_LINT_IGNORED, "--", *templates],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.stdout.strip(), result.stderr
    matches = [m for m in json.loads(result.stdout) if not _is_pipeline_role_arn_join(m)]
    findings = [
        f"{m['Level']} {m['Rule']['Id']} {Path(m['Filename']).name} "
        f"{'/'.join(map(str, m['Location']['Path']))}: {m['Message']}"
        for m in matches
        if m["Level"] in {"Error", "Warning"}
    ]
    assert findings == []


# --- template content ----------------------------------------------------------------------


def test_templates_hold_no_secret_value(nag_templates: dict[str, dict[str, Any]]) -> None:
    for stack, logical_id, resource in _resources(nag_templates):
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::SecretsManager::Secret":
            assert "SecretString" not in props, f"{stack}/{logical_id} has a literal value"
        for text in _strings(props):
            for kind, pattern in SECRET_PATTERNS.items():
                assert not pattern.search(text), f"{stack}/{logical_id} holds a {kind}"


def test_no_function_gets_a_secret_through_its_environment(
    nag_templates: dict[str, dict[str, Any]],
) -> None:
    """Secret-looking variables carry a reference (ARN, name), a number of seconds or one of a
    closed set of words, never a literal value; the Parameters and Secrets Extension's settings
    carry a number, a switch or a log level."""
    secret_like = re.compile(r"SECRET|TOKEN|PASSWORD|PRIVATE|WEBHOOK|(^|_)KEY($|_)")
    reference = re.compile(r"_(ARN|NAME|ID)$")
    seconds = re.compile(r"_SECONDS$")
    closed_sets = {settings.JWT_KEY_SOURCE.name: settings.JWT_KEY_SOURCES}
    extension_setting = re.compile(
        r"^(PARAMETERS_SECRETS_EXTENSION_[A-Z_]+|SECRETS_MANAGER_(TTL|TIMEOUT_MILLIS))$"
    )
    setting_value = re.compile(r"^(\d+|true|false|debug|info|warn|error|none)$")
    for stack, logical_id, resource in _resources(nag_templates):
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        variables = resource["Properties"].get("Environment", {}).get("Variables", {})
        for name, value in variables.items():
            if extension_setting.match(name):
                assert setting_value.match(value), f"{stack}/{logical_id}: {name}={value!r}"
            elif seconds.search(name):
                assert re.fullmatch(r"\d+(\.\d+)?", value), f"{stack}/{logical_id}: {name}"
            elif name in closed_sets:
                assert value in closed_sets[name], f"{stack}/{logical_id}: {name}={value!r}"
            elif secret_like.search(name):
                assert reference.search(name), f"{stack}/{logical_id}: {name} carries a value"
                if name.endswith("_ARN"):
                    assert not isinstance(value, str) or value.startswith("arn:"), name


def test_every_log_group_has_a_retention(nag_templates: dict[str, dict[str, Any]]) -> None:
    for stack, logical_id, resource in _resources(nag_templates):
        if resource["Type"] == "AWS::Logs::LogGroup":
            assert resource["Properties"].get("RetentionInDays"), f"{stack}/{logical_id}"


def test_every_function_logs_to_a_log_group_the_stack_owns(
    nag_templates: dict[str, dict[str, Any]],
) -> None:
    """Otherwise Lambda creates /aws/lambda/<name> itself, with no retention."""
    for stack, logical_id, resource in _resources(nag_templates):
        if resource["Type"] == "AWS::Lambda::Function":
            log_group = resource["Properties"].get("LoggingConfig", {}).get("LogGroup")
            assert log_group, f"{stack}/{logical_id} has no log group of its own"
            assert nag_templates[stack]["Resources"][log_group["Ref"]]["Type"] == (
                "AWS::Logs::LogGroup"
            )


def test_every_function_is_built_by_the_project_helper(
    nag_templates: dict[str, dict[str, Any]],
) -> None:
    """python3.13 on arm64, traced, JSON logs: what `python_function` gives every function."""
    for stack, logical_id, resource in _resources(nag_templates):
        if resource["Type"] == "AWS::Lambda::Function":
            props = resource["Properties"]
            assert props["Runtime"] == "python3.13", f"{stack}/{logical_id}"
            assert props["Architectures"] == ["arm64"], f"{stack}/{logical_id}"
            assert props["TracingConfig"] == {"Mode": "Active"}, f"{stack}/{logical_id}"
            assert props["LoggingConfig"]["LogFormat"] == "JSON", f"{stack}/{logical_id}"


def test_no_wildcard_action_unless_acknowledged(nag_templates: dict[str, dict[str, Any]]) -> None:
    for stack, logical_id, resource in _resources(nag_templates):
        acknowledged = _acknowledged(resource)
        for statement in _allow_statements(resource):
            for action in _as_list(statement["Action"]):
                if "*" in action:
                    finding = f"AwsSolutions-IAM5[Action::{action}]"
                    assert finding in acknowledged, f"{stack}/{logical_id}: {action}"


def test_resource_star_only_for_actions_without_resource_level_permissions(
    nag_templates: dict[str, dict[str, Any]],
) -> None:
    """In the service stacks (those running `entrix` handlers), '*' is only for actions that
    cannot be scoped; the acknowledgement of `IAM5[Resource::*]` cannot hide anything else."""
    service = {
        stack: template
        for stack, template in nag_templates.items()
        if any(
            str(r.get("Properties", {}).get("Handler", "")).startswith("entrix.handlers.")
            for r in template["Resources"].values()
        )
    }
    assert "Entrix" in service
    for stack, logical_id, resource in _resources(service):
        for statement in _allow_statements(resource):
            if "*" in _as_list(statement["Resource"]):
                extra = set(_as_list(statement["Action"])) - RESOURCE_STAR_ACTIONS
                assert not extra, f"{stack}/{logical_id}: {sorted(extra)} on every resource"
