"""The `entrix verify` steps' roles, decided as AWS would against the stages' own resources:
each reaches its own stage's stack and no other, and Prod's can start, publish and write
nothing (only set the probe alarm off).

The resources carry the tag CloudFormation puts on each resource it creates
(`aws:cloudformation:stack-name`), which the role's conditions name.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_cdk.cx_api import CloudAssembly

from tests.permissions.conftest import count
from tests.permissions.evaluate import Request, decide
from tests.permissions.model import ACCOUNT, StackModel

STACK_TAG = "aws:cloudformation:stack-name"


@pytest.fixture(scope="module")
def models(nag_assembly: Path) -> dict[str, StackModel]:
    """The delivery stack and the stages' service stacks, each under its deployed name (what
    CloudFormation prefixes its generated names with)."""
    return {
        stack.stack_name: StackModel(
            stack.stack_name,
            json.loads(Path(stack.template_full_path).read_text()),
            stack.environment.region,
        )
        for stack in CloudAssembly(str(nag_assembly)).stacks_recursively
        if stack.stack_name in {"EntrixDelivery", "Dev-Entrix", "Prod-Entrix"}
    }


def _verify_policies(delivery: StackModel, stage: str) -> list[dict]:
    (project,) = [
        p
        for p in delivery.of_type("AWS::CodeBuild::Project")
        if f"verify --stack {stage}-Entrix " in json.dumps(p.properties)
    ]
    role = delivery.props(project.logical_id)["ServiceRole"]
    return list(delivery.role(role).policies)


def _one_arn(model: StackModel, resource_type: str, contains: str) -> str:
    (found,) = [r for r in model.of_type(resource_type) if contains in r.logical_id]
    return model.arn(found.logical_id)


def _requests(verifier: str, delivery: StackModel, target: StackModel) -> dict[str, Request]:
    """What each check calls, on the resources of `target`, as the `verifier` stage's role."""
    policies = _verify_policies(delivery, verifier)
    tagged = {f"aws:ResourceTag/{STACK_TAG}": target.name}
    machine = _one_arn(target, "AWS::StepFunctions::StateMachine", "StateMachine")
    calls = {
        "DescribeAlarms a service alarm": (
            "cloudwatch:DescribeAlarms",
            _one_arn(target, "AWS::CloudWatch::Alarm", "ScheduleDeadLetters"),
            {},
        ),
        "SetAlarmState the probe": (
            "cloudwatch:SetAlarmState",
            _one_arn(target, "AWS::CloudWatch::Alarm", "VerificationProbe"),
            {},
        ),
        "SetAlarmState a service alarm": (
            "cloudwatch:SetAlarmState",
            _one_arn(target, "AWS::CloudWatch::Alarm", "ScheduleDeadLetters"),
            {},
        ),
        "GetSecretValue the signing key": (
            "secretsmanager:GetSecretValue",
            _one_arn(target, "AWS::SecretsManager::Secret", "JwtSigningKey"),
            tagged,
        ),
        "GetTopicAttributes the operations topic": (
            "sns:GetTopicAttributes",
            _one_arn(target, "AWS::SNS::Topic", "OpsTopic"),
            {},
        ),
        "DescribeStateMachine": ("states:DescribeStateMachine", machine, tagged),
        "StartExecution": ("states:StartExecution", machine, tagged),
        "Publish to the alert topic": (
            "sns:Publish",
            _one_arn(target, "AWS::SNS::Topic", "AlertTopic"),
            {},
        ),
        "PutItem an order": (
            "dynamodb:PutItem",
            _one_arn(target, "AWS::DynamoDB::Table", "IntakeOrders"),
            {},
        ),
    }
    return {
        name: Request(
            principal=f"arn:aws:iam::{ACCOUNT}:role/{verifier}-verify",
            action=action,
            resource=resource,
            account=ACCOUNT,
            context=context,
            identity_policies=policies,
        )
        for name, (action, resource, context) in calls.items()
    }


READS = {
    "DescribeAlarms a service alarm",
    "SetAlarmState the probe",
    "GetSecretValue the signing key",
    "GetTopicAttributes the operations topic",
    "DescribeStateMachine",
}


@pytest.mark.parametrize(
    ("verifier", "target", "allowed"),
    [
        ("Prod", "Prod-Entrix", READS),
        ("Dev", "Dev-Entrix", READS | {"StartExecution"}),
        ("Dev", "Prod-Entrix", set()),
        ("Prod", "Dev-Entrix", set()),
    ],
)
def test_a_verify_role_reaches_its_own_stage_and_changes_nothing_there_but_the_probe(
    models: dict[str, StackModel], verifier: str, target: str, allowed: set[str]
) -> None:
    requests = _requests(verifier, models["EntrixDelivery"], models[target])
    decisions = dict(zip(requests, decide(list(requests.values())), strict=True))
    count("verify roles", len(requests), len(requests))
    errors = {name: d.errors for name, d in decisions.items() if d.errors}
    assert not errors, errors
    assert {name for name, d in decisions.items() if d.allowed} == allowed, {
        name: d.explain() for name, d in decisions.items()
    }
