"""What every customer managed key's policy says beyond its own grants."""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms


def deny_grants_but_for_aws_resources(key: kms.IKey) -> None:
    """Only AWS services, or callers creating a grant for an AWS resource, may create grants on
    `key` (Control Tower's CT.KMS.PR.3): a grant is a second, unlisted way to use a key, and
    nothing of this app creates one for itself."""
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="DenyGrantsButForAwsResources",
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=["kms:CreateGrant"],
            resources=["*"],
            conditions={
                "BoolIfExists": {
                    "kms:GrantIsForAWSResource": "false",
                    "aws:PrincipalIsAWSService": "false",
                }
            },
        )
    )
