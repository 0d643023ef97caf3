"""The JWT signing key's rotation in the template: the schedule from settings, the rotation
function's least-privilege role, Secrets Manager's permission to invoke it, cdk-nag clean; and
the setting's check that a rotation never retires a key whose tokens are still valid."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App

from entrix.aws.signing_keys import PROPAGATION_MARGIN_SECONDS
from entrix.identity import LEEWAY_SECONDS
from infra.config import ServiceConfig
from infra.constructs.key_rotation import ROTATION_ACTIONS, ROTATION_HANDLER
from tests.support.aliases import live_alias


def _of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == resource_type}


def _signing_key(template: dict[str, Any]) -> str:
    (logical_id,) = [
        k for k in _of_type(template, "AWS::SecretsManager::Secret") if "JwtSigning" in k
    ]
    return logical_id


def _rotation_function(template: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    (found,) = [
        (k, r)
        for k, r in _of_type(template, "AWS::Lambda::Function").items()
        if r["Properties"]["Handler"] == ROTATION_HANDLER
    ]
    return found


def test_the_signing_key_rotates_on_the_configured_schedule(service_json: dict[str, Any]) -> None:
    (schedule,) = _of_type(service_json, "AWS::SecretsManager::RotationSchedule").values()
    function, _ = _rotation_function(service_json)
    p = schedule["Properties"]
    assert p["SecretId"] == {"Ref": _signing_key(service_json)}
    assert p["RotationLambdaARN"] == {"Ref": live_alias(service_json, function)}
    assert p["RotationRules"] == {"ScheduleExpression": "rate(30 days)"}
    # On a change of the schedule CloudFormation does not rotate: only the schedule, or a person.
    assert p["RotateImmediatelyOnUpdate"] is False
    (permission,) = schedule["DependsOn"]
    assert service_json["Resources"][permission]["Type"] == "AWS::Lambda::Permission"


def test_only_secrets_manager_of_this_account_may_invoke_the_rotation_function(
    service_json: dict[str, Any],
) -> None:
    function, _ = _rotation_function(service_json)
    alias = {"Ref": live_alias(service_json, function)}
    permissions = [
        r["Properties"]
        for r in _of_type(service_json, "AWS::Lambda::Permission").values()
        if r["Properties"]["FunctionName"] in (alias, {"Fn::GetAtt": [function, "Arn"]})
    ]
    assert permissions == [
        {
            "Action": "lambda:InvokeFunction",
            "FunctionName": alias,
            "Principal": "secretsmanager.amazonaws.com",
            "SourceAccount": {"Ref": "AWS::AccountId"},
        }
    ]


def test_the_rotation_role_makes_its_four_calls_on_the_signing_key_only(
    service_json: dict[str, Any],
) -> None:
    _, function = _rotation_function(service_json)
    role = function["Properties"]["Role"]["Fn::GetAtt"][0]
    statements = [
        statement
        for policy in _of_type(service_json, "AWS::IAM::Policy").values()
        if {"Ref": role} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    secrets = [s for s in statements if "secretsmanager:" in json.dumps(s["Action"])]
    assert secrets == [
        {
            "Action": sorted(ROTATION_ACTIONS),
            "Effect": "Allow",
            "Resource": {"Ref": _signing_key(service_json)},
        }
    ]
    assert set(ROTATION_ACTIONS) == {
        "secretsmanager:DescribeSecret",
        "secretsmanager:GetSecretValue",
        "secretsmanager:PutSecretValue",
        "secretsmanager:UpdateSecretVersionStage",
    }
    # Nothing else of the role reaches Secrets Manager, or any other data: logs and traces.
    others = {a for s in statements if s not in secrets for a in _actions(s)}
    assert {a.split(":")[0] for a in others} <= {"logs", "xray"}, others
    # No other function may change the key.
    writers = [
        k
        for k, policy in _of_type(service_json, "AWS::IAM::Policy").items()
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if {"secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage"}
        & set(_actions(s))
    ]
    assert len(writers) == 1, writers


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def test_no_acknowledgement_says_the_signing_key_is_not_rotated(
    service_json: dict[str, Any], nag_assembly: Path
) -> None:
    secret = service_json["Resources"][_signing_key(service_json)]
    rules = secret.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
    assert "AwsSolutions-SMG4" not in [rule["id"] for rule in rules]
    report = json.loads((nag_assembly / "validation-report.json").read_text())
    findings = json.dumps(report)
    assert "SMG4" not in findings or "JwtSigningKey" not in findings


def _config(**values: Any) -> ServiceConfig:
    return ServiceConfig.from_context(
        App(context={f"entrix:{k}": v for k, v in values.items()}).node
    )


def test_the_rotation_interval_comes_from_its_setting() -> None:
    assert ServiceConfig().signing_key_rotation_days == 30
    assert _config(signing_key_rotation_days="7").signing_key_rotation_days == 7


def test_a_rotation_interval_that_would_retire_a_key_of_valid_tokens_is_refused() -> None:
    # The least interval: a token's whole life after the signers' last use of the key.
    lifetime, ttl = 3 * 86400, 300
    least = lifetime + ttl + PROPAGATION_MARGIN_SECONDS + LEEWAY_SECONDS
    assert least > 3 * 86400
    with pytest.raises(ValueError, match="signing_key_rotation_days"):
        _config(
            signing_key_rotation_days=3,
            max_token_lifetime_seconds=lifetime,
            secret_cache_ttl_seconds=ttl,
        )
    config = _config(
        signing_key_rotation_days=4,
        max_token_lifetime_seconds=lifetime,
        secret_cache_ttl_seconds=ttl,
    )
    assert config.signing_key_rotation_days * 86400 > least


@pytest.mark.parametrize("days", [0, 1001])
def test_the_rotation_interval_is_one_that_secrets_manager_takes(days: int) -> None:
    with pytest.raises(ValueError, match=r"1\.\.1000"):
        _config(signing_key_rotation_days=days)
