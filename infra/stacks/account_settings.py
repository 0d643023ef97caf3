"""Account-wide settings the service needs, in a stack of their own: one per account and region.

API Gateway writes access and execution logs through one CloudWatch Logs role per account and
region (`AWS::ApiGateway::Account`). A service stack that owned it would fight any other stack
in the same account and region for it (Dev and Prod by default), and deleting one stack would
take the role from the others. So the service stacks leave it alone (`cloud_watch_role=False`)
and this stack, deployed before them, owns it.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.nag import acknowledge

PUSH_TO_CLOUDWATCH_POLICY = "service-role/AmazonAPIGatewayPushToCloudWatchLogs"


class AccountSettingsStack(Stack):
    """API Gateway's CloudWatch Logs role for this account and region."""

    def __init__(self, scope: Construct, id: str, **kwargs: Any) -> None:
        kwargs.setdefault(
            "description", "Entrix account settings: API Gateway's CloudWatch Logs role"
        )
        super().__init__(scope, id, **kwargs)
        role = iam.Role(
            self,
            "ApiGatewayCloudWatchRole",
            assumed_by=iam.ServicePrincipal("apigateway.amazonaws.com"),
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name(PUSH_TO_CLOUDWATCH_POLICY)
            ],
        )
        # Kept if this stack is deleted: the account setting would otherwise name a role that no
        # longer exists, and every API in the account and region would stop logging.
        role.apply_removal_policy(RemovalPolicy.RETAIN)
        account = apigw.CfnAccount(self, "ApiGatewayAccount", cloud_watch_role_arn=role.role_arn)
        account.node.add_dependency(role)
        acknowledge(
            role,
            f"AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/{PUSH_TO_CLOUDWATCH_POLICY}]",
            "API Gateway's account-wide CloudWatch role (needed for access and execution logs) "
            "uses the AWS managed policy made for exactly that role.",
        )
