"""`AWS::SecretsManager::RotationSchedule` in the local deployer: configured with RotateSecret as
CloudFormation does, `RotateImmediatelyOnUpdate` mirrored, the function run in process."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from entrix.handlers import rotate_key
from entrix.local.deploy import Deployer, DeploymentError
from entrix.local.deploy.secretsmanager import rotation_days
from entrix.local.lambda_runner import moto_lambdas_in_process
from entrix.local.rotation import moto_rotation_keeps_its_function
from entrix.local.template import PseudoParameters, Template

REGION = "eu-west-1"

TEMPLATE: dict[str, Any] = {
    "Resources": {
        "Key": {
            "Type": "AWS::SecretsManager::Secret",
            "Properties": {
                "GenerateSecretString": {"PasswordLength": 64, "ExcludePunctuation": True}
            },
        },
        "RotationRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": {
                    "Statement": [
                        {
                            "Action": "sts:AssumeRole",
                            "Effect": "Allow",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                        }
                    ],
                    "Version": "2012-10-17",
                }
            },
        },
        "Rotation": {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Code": {"S3Bucket": "b", "S3Key": "k.zip"},
                "Handler": "entrix.handlers.rotate_key.handler",
                "Role": {"Fn::GetAtt": ["RotationRole", "Arn"]},
                "Runtime": "python3.13",
            },
        },
        "Invoke": {
            "Type": "AWS::Lambda::Permission",
            "Properties": {
                "Action": "lambda:InvokeFunction",
                "FunctionName": {"Fn::GetAtt": ["Rotation", "Arn"]},
                "Principal": "secretsmanager.amazonaws.com",
                "SourceAccount": {"Ref": "AWS::AccountId"},
            },
        },
        "Schedule": {
            "Type": "AWS::SecretsManager::RotationSchedule",
            "Properties": {
                "SecretId": {"Ref": "Key"},
                "RotationLambdaARN": {"Fn::GetAtt": ["Rotation", "Arn"]},
                "RotationRules": {"ScheduleExpression": "rate(30 days)"},
                "RotateImmediatelyOnUpdate": False,
            },
            "DependsOn": ["Invoke"],
        },
    }
}


def client(service: str) -> Any:
    return boto3.client(service, region_name=REGION)  # type: ignore[call-overload]


@pytest.fixture
def endpoint() -> Iterator[None]:
    with mock_aws(), moto_lambdas_in_process(), moto_rotation_keeps_its_function():
        rotate_key.store.cache_clear()
        yield
        rotate_key.store.cache_clear()


def deploy(template: dict[str, Any]) -> str:
    deployment = Deployer(
        Template.from_dict(template), client, pseudo=PseudoParameters(region=REGION)
    ).deploy()
    (arn,) = [s["ARN"] for s in client("secretsmanager").list_secrets()["SecretList"]]
    assert deployment.types["Schedule"] == "AWS::SecretsManager::RotationSchedule"
    return arn


def stages(arn: str) -> list[list[str]]:
    versions = client("secretsmanager").describe_secret(SecretId=arn)["VersionIdsToStages"]
    return sorted(sorted(labels) for labels in versions.values() if labels)


def test_without_immediate_rotation_the_secret_starts_with_its_one_version(
    endpoint: None,
) -> None:
    arn = deploy(TEMPLATE)
    described = client("secretsmanager").describe_secret(SecretId=arn)
    assert described["RotationEnabled"] is True
    assert described["RotationRules"]["AutomaticallyAfterDays"] == 30
    # testSecret ran on a pending copy, which is gone again.
    assert stages(arn) == [["AWSCURRENT"]]


def test_a_rotation_by_hand_runs_the_configured_function(endpoint: None) -> None:
    arn = deploy(TEMPLATE)
    secrets = client("secretsmanager")
    before = secrets.get_secret_value(SecretId=arn)["SecretString"]
    secrets.rotate_secret(SecretId=arn)  # `aws secretsmanager rotate-secret --secret-id`
    assert stages(arn) == [["AWSCURRENT"], ["AWSPREVIOUS"]]
    after = secrets.get_secret_value(SecretId=arn)["SecretString"]
    assert after != before and len(after) == 64
    previous = secrets.get_secret_value(SecretId=arn, VersionStage="AWSPREVIOUS")
    assert previous["SecretString"] == before


def test_immediate_rotation_as_cloudformation_defaults_leaves_a_previous_key(
    endpoint: None,
) -> None:
    template = copy.deepcopy(TEMPLATE)
    del template["Resources"]["Schedule"]["Properties"]["RotateImmediatelyOnUpdate"]
    arn = deploy(template)
    assert stages(arn) == [["AWSCURRENT"], ["AWSPREVIOUS"]]


@pytest.mark.parametrize(
    ("rules", "days"),
    [({"AutomaticallyAfterDays": 7}, 7), ({"ScheduleExpression": "rate(1 day)"}, 1)],
)
def test_rotation_rules_in_days(rules: dict[str, Any], days: int) -> None:
    assert rotation_days(rules) == days


@pytest.mark.parametrize(
    "rules", [{"ScheduleExpression": "rate(4 hours)"}, {"ScheduleExpression": "cron(0 8 * * ? *)"}]
)
def test_rules_the_local_endpoint_cannot_store_are_refused(rules: dict[str, Any]) -> None:
    with pytest.raises(DeploymentError, match="rate\\(N days\\)"):
        rotation_days(rules)
