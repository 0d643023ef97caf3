"""The keys a role's and a service's requests carry, on a template of one role: the policies
that name them decide as on AWS, and the simulator knows every one of them (none ignored)."""

from __future__ import annotations

import dataclasses
from typing import Any

from entrix.local.iam.evaluate import decide
from entrix.local.iam.model import Role, StackModel
from entrix.local.iam.requests import role_request, service_context

TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}
TOPIC = "arn:aws:sns:eu-west-1:123456789012:alerts"


def _model(**role: Any) -> StackModel:
    body = {
        "Resources": {
            "Worker": {
                "Type": "AWS::IAM::Role",
                "Properties": {"AssumeRolePolicyDocument": TRUST, **role},
            }
        }
    }
    return StackModel("Small", body, "eu-west-1")


def _publish_granted_if(condition: dict[str, Any]) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "sns:Publish", "Resource": TOPIC, "Condition": condition}
        ],
    }


def test_a_roles_session_carries_its_role_tags_session_and_function() -> None:
    model = _model(Tags=[{"Key": "team", "Value": "desk"}])
    role = model.role(model.arn("Worker"))
    function = "arn:aws:lambda:eu-west-1:123456789012:function:worker"
    granted = {
        "StringEquals": {
            "aws:PrincipalTag/team": "desk",
            "aws:PrincipalType": "AssumedRole",
            "lambda:SourceFunctionArn": function,
            "aws:RequestedRegion": "eu-west-1",
        },
        "StringLike": {"aws:userid": "*:worker"},
        "ArnEquals": {"aws:PrincipalArn": role.arn},
        "Bool": {"aws:ViaAWSService": "false", "aws:PrincipalIsAWSService": "false"},
    }
    other_team = {"StringEquals": {"aws:PrincipalTag/team": "ops"}}
    ours, another_team, not_from_the_function = decide(
        [
            role_request(model, _with(role, granted), "sns:Publish", TOPIC, None, None, function),
            role_request(
                model, _with(role, other_team), "sns:Publish", TOPIC, None, None, function
            ),
            role_request(model, _with(role, granted), "sns:Publish", TOPIC),
        ]
    )
    assert ours.allowed, ours.explain()
    assert not another_team.allowed and not another_team.ignored
    assert not not_from_the_function.allowed and not not_from_the_function.ignored


def test_a_service_principal_carries_its_name_and_no_principal_arn() -> None:
    context = service_context(_model(), "cloudwatch.amazonaws.com", "arn:aws:cloudwatch:a")
    assert context["aws:PrincipalIsAWSService"] == "true"
    assert context["aws:PrincipalServiceName"] == "cloudwatch.amazonaws.com"
    assert "aws:PrincipalArn" not in context and "aws:userid" not in context


def _with(role: Role, condition: dict[str, Any]) -> Role:
    """The role with one identity policy: sns:Publish on the topic under `condition`."""
    return dataclasses.replace(role, policies=(_publish_granted_if(condition),))
