"""The requests AWS authorizes when a role or a service calls a service: the call itself (the
caller's identity policies and the target's resource policy) and, for a target encrypted with a
customer managed key, the data-key requests the service makes with the role's permissions (the
key policy).

A request's context is what AWS sends with it (IAM's "AWS global condition context keys", each
key's Availability), and nothing it does not:

- every request: aws:SecureTransport, aws:RequestedRegion, aws:CurrentTime, aws:EpochTime,
  aws:PrincipalIsAWSService and aws:ViaAWSService;
- a role's session: aws:PrincipalArn (the role, not the session), aws:PrincipalAccount,
  aws:PrincipalType (AssumedRole), aws:userid (role id:session name),
  aws:MultiFactorAuthPresent (false: temporary credentials without MFA), aws:TokenIssueTime,
  aws:SourceIp, aws:PrincipalTag/<key> for each tag of the role; and lambda:SourceFunctionArn
  when a function's code calls with it;
- a service principal: aws:PrincipalServiceName, and aws:SourceArn and aws:SourceAccount when it
  acts for one of the account's resources;
- a service calling on a role's behalf (SNS asking KMS for a data key): aws:ViaAWSService true
  and kms:ViaService.

Left out: aws:PrincipalOrgID, aws:PrincipalOrgPaths and aws:ResourceOrgID (AWS sends them in an
organization; the model knows no organization id, so no policy of ours may rely on them);
because AWS does not send them here: aws:username (roles),
aws:SourceVpc/aws:SourceVpce/aws:VpcSourceIp (no function runs in a VPC), aws:CalledVia (only for
calls through Athena, CloudFormation, DynamoDB or KMS). aws:UserAgent is the client's own string
and is not sent: a policy relying on it is not proven.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from entrix.local.iam.evaluate import Request
from entrix.local.iam.model import ModelError, Role, StackModel

TLS = {"aws:SecureTransport": "true"}
KMS_DATA_KEY_ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt")
# Lambda's functions outside a VPC call AWS from AWS-owned public addresses the account neither
# chooses nor knows: one from the documentation range (RFC 5737) stands for them, so a policy
# that grants by source address fails for them here as it would on AWS.
LAMBDA_SOURCE_IP = "192.0.2.10"
# The session name of a role assumed by a service that does not document it (Step Functions,
# EventBridge, CodeBuild): a policy naming a session is not proven.
SERVICE_SESSION = "service-session"


def request_context(model: StackModel, at: float | None = None) -> dict[str, str]:
    """What every request carries: TLS, the region called and the time of the request."""
    now = datetime.fromtimestamp(int(time.time() if at is None else at), UTC)
    return {
        **TLS,
        "aws:RequestedRegion": model.region,
        "aws:CurrentTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "aws:EpochTime": str(int(now.timestamp())),
        "aws:ViaAWSService": "false",
        # The resource's account: this model's stacks are in one account (a role of another
        # stack acting on the model's resources gets the model's, in role_request).
        "aws:ResourceAccount": model.account,
    }


def role_context(
    model: StackModel, role: Role, function: str | None = None, at: float | None = None
) -> dict[str, str]:
    """A role session's request: the role, its id, session name (Lambda names the session
    after the function) and tags, and the function's ARN when its code makes the call."""
    if role.logical_id not in model.body.get("Resources", {}):
        raise ModelError(f"role {role.arn} is not in stack {model.name}: use its own stack's")
    role_id = model.resolve({"Fn::GetAtt": [role.logical_id, "RoleId"]})
    session = function.rsplit(":", 1)[-1] if function else SERVICE_SESSION
    base = request_context(model, at)
    context = {
        **base,
        "aws:PrincipalArn": role.arn,
        "aws:PrincipalAccount": model.account,
        "aws:PrincipalType": "AssumedRole",
        "aws:PrincipalIsAWSService": "false",
        "aws:userid": f"{role_id}:{session}",
        "aws:MultiFactorAuthPresent": "false",
        # Credentials issued at the request stand in for Lambda's (hours old at most).
        "aws:TokenIssueTime": base["aws:CurrentTime"],
        "aws:SourceIp": LAMBDA_SOURCE_IP,
    }
    for tag in model.props(role.logical_id).get("Tags", []):
        context[f"aws:PrincipalTag/{tag['Key']}"] = tag["Value"]
    if function:
        context["lambda:SourceFunctionArn"] = function
    return context


def service_context(
    model: StackModel, service: str, source_arn: str | None, at: float | None = None
) -> dict[str, str]:
    """A service principal's request, for the resource `source_arn` when it names one."""
    context = {
        **request_context(model, at),
        "aws:PrincipalIsAWSService": "true",
        "aws:PrincipalServiceName": service,
    }
    if source_arn is not None:
        context |= {"aws:SourceArn": source_arn, "aws:SourceAccount": model.account}
    return context


def role_request(
    model: StackModel,
    role: Role,
    action: str,
    resource: str,
    resource_policy: dict[str, Any] | None = None,
    context: Mapping[str, str | list[str]] | None = None,
    function: str | None = None,
    at: float | None = None,
    owner: StackModel | None = None,
) -> Request:
    """`role` calling `action` on `resource` of `model` (from `function`'s code when given) at
    the time `at` (now when not given), with the action's own context keys in `context`; the
    role is `owner`'s when it is another stack's (a pipeline's role acting on a stage)."""
    return Request(
        principal=role.arn,
        action=action,
        resource=resource,
        account=model.account,
        context={
            **role_context(owner or model, role, function, at),
            "aws:ResourceAccount": model.account,
            **(context or {}),
        },
        identity_policies=role.policies,
        resource_policy=resource_policy,
    )


def key_context(model: StackModel, via: str | None) -> dict[str, str]:
    """KMS's own keys for a data-key request on a symmetric key of the account, through the
    service `via` (e.g. "sns") on the caller's behalf when given."""
    context = {"kms:CallerAccount": model.account, "kms:EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}
    if via is not None:
        context |= {
            "kms:ViaService": f"{via}.{model.region}.amazonaws.com",
            "aws:ViaAWSService": "true",
        }
    return context


def role_uses_key(
    model: StackModel,
    role: Role,
    key: str,
    via: str,
    function: str | None = None,
    at: float | None = None,
) -> list[Request]:
    """The data-key requests `via`'s service makes to KMS with the role's permissions."""
    context = key_context(model, via)
    return [
        role_request(model, role, action, key, model.key_policy(key), context, function, at)
        for action in KMS_DATA_KEY_ACTIONS
    ]


def role_publishes(
    model: StackModel,
    role: Role,
    topic_arn: str,
    function: str | None = None,
    at: float | None = None,
) -> list[Request]:
    """sns:Publish by a role, plus the data key SNS asks KMS for with the role's permissions."""
    policy = model.topic_policy(topic_arn)
    requests = [role_request(model, role, "sns:Publish", topic_arn, policy, None, function, at)]
    key = model.topic_key(topic_arn)
    if key is not None:
        requests += role_uses_key(model, role, key, "sns", function, at)
    return requests
