"""The requests AWS authorizes when a role calls a service: the call itself (the role's identity
policies and the target's resource policy) and, for a target encrypted with a customer managed
key, the data-key requests the service makes with the role's permissions (the key policy).

A request's context is what AWS sends with it: TLS (aws:SecureTransport) always, and
kms:ViaService where a service uses a key on the caller's behalf.
"""

from __future__ import annotations

from typing import Any

from entrix.local.iam.evaluate import Request
from entrix.local.iam.model import Role, StackModel

TLS = {"aws:SecureTransport": "true"}
KMS_DATA_KEY_ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt")


def role_request(
    model: StackModel,
    role: Role,
    action: str,
    resource: str,
    resource_policy: dict[str, Any] | None = None,
    context: dict[str, str] | None = None,
) -> Request:
    return Request(
        principal=role.arn,
        action=action,
        resource=resource,
        account=model.account,
        context={**TLS, **(context or {})},
        identity_policies=role.policies,
        resource_policy=resource_policy,
    )


def role_publishes(model: StackModel, role: Role, topic_arn: str) -> list[Request]:
    """sns:Publish by a role, plus the data key SNS asks KMS for with the role's permissions."""
    requests = [role_request(model, role, "sns:Publish", topic_arn, model.topic_policy(topic_arn))]
    key = model.topic_key(topic_arn)
    if key is not None:
        via_sns = {"kms:ViaService": f"sns.{model.region}.amazonaws.com"}
        requests += [
            role_request(model, role, action, key, model.key_policy(key), via_sns)
            for action in KMS_DATA_KEY_ACTIONS
        ]
    return requests
