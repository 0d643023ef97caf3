"""A KMS-encrypted, TLS-only SNS topic that this account's CloudWatch alarms may publish to.

The operations topic and the verification probe's topic are both made here, so the probe's
successful action proves a topic of exactly the operations topic's shape.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.constructs.key_policy import deny_grants_but_for_aws_resources


def alarm_topic(
    scope: Construct,
    *,
    key_id: str,
    topic_id: str,
    key_description: str,
    display_name: str,
    removal_policy: RemovalPolicy,
) -> sns.Topic:
    """The topic (`topic_id`) and its own key (`key_id`) in `scope`."""
    key = kms.Key(
        scope,
        key_id,
        description=key_description,
        enable_key_rotation=True,
        removal_policy=removal_policy,
    )
    deny_grants_but_for_aws_resources(key)
    cloudwatch_principal = iam.ServicePrincipal("cloudwatch.amazonaws.com")
    # An alarm action publishes as CloudWatch's service principal, which has no identity
    # policy: the key policy itself must let it use the key. This is the statement AWS's
    # guidance for encrypted alarm topics gives, with no kms:ViaService condition (nothing
    # documents that condition holding for a service principal's publish).
    key.add_to_resource_policy(
        iam.PolicyStatement(
            principals=[cloudwatch_principal],
            actions=["kms:GenerateDataKey*", "kms:Decrypt"],
            resources=["*"],
        )
    )
    topic = sns.Topic(scope, topic_id, display_name=display_name, master_key=key, enforce_ssl=True)
    # enforce_ssl writes a topic policy holding only the TLS Deny, which replaces SNS's
    # default policy: without this statement no alarm could publish. Only this account's
    # alarms may.
    stack = Stack.of(scope)
    topic.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowThisAccountsAlarms",
            principals=[cloudwatch_principal],
            actions=["sns:Publish"],
            resources=[topic.topic_arn],
            conditions={
                "ArnLike": {
                    "aws:SourceArn": stack.format_arn(
                        service="cloudwatch",
                        resource="alarm",
                        resource_name="*",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                },
                "StringEquals": {"aws:SourceAccount": stack.account},
            },
        )
    )
    return topic
