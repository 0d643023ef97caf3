"""The JWT signing key's rotation: a schedule on the secret and the function Secrets Manager
invokes for each step (entrix.handlers.rotate_key).

The rotation is declared with the L1 `CfnRotationSchedule` rather than `Secret.add_rotation_
schedule`: the latter also grants the function secretsmanager:GetRandomPassword on `*`, and this
function draws its keys itself (Python's `secrets`), so its role holds the four calls it makes,
on this secret only. Secrets Manager may invoke the function for this account only
(aws:SourceAccount, as AWS recommends for rotation functions), and the schedule waits for that
permission, since Secrets Manager checks it when the rotation is configured.

`RotateImmediatelyOnUpdate` is false: CloudFormation would otherwise rotate on creation and on
every change of the schedule, and two deployments in a row would retire a key whose tokens may
still be valid (see ServiceConfig.signing_key_rotation_days). A rotation then happens on the
schedule or by hand (`aws secretsmanager rotate-secret`, docs/delivery.md).
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.constructs.lambda_code import live_alias, python_function
from infra.nag import SCOPED_PERMISSION_REASON, acknowledge_control

ROTATION_HANDLER = "entrix.handlers.rotate_key.handler"
# What the rotation steps call (entrix.aws.rotation_store), and nothing else.
ROTATION_ACTIONS = (
    "secretsmanager:DescribeSecret",
    "secretsmanager:GetSecretValue",
    "secretsmanager:PutSecretValue",
    "secretsmanager:UpdateSecretVersionStage",
)
SECRETS_MANAGER = "secretsmanager.amazonaws.com"


class KeyRotation(Construct):
    """Rotates `secret` every `rotation_days` days."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        secret: secretsmanager.ISecret,
        rotation_days: int,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, id)
        self.function = python_function(
            self,
            "Function",
            handler=ROTATION_HANDLER,
            description="Rotates the JWT signing key: Secrets Manager's four rotation steps",
            log_retention=log_retention,
            timeout=Duration.seconds(30),
        )
        self.function.add_to_role_policy(
            iam.PolicyStatement(actions=list(ROTATION_ACTIONS), resources=[secret.secret_arn])
        )
        # Secrets Manager invokes the live alias, as every caller does.
        alias_arn = live_alias(self.function).function_arn
        permission = lambda_.CfnPermission(
            self,
            "SecretsManagerInvokes",
            action="lambda:InvokeFunction",
            function_name=alias_arn,
            principal=SECRETS_MANAGER,
            source_account=Stack.of(self).account,
        )
        acknowledge_control(
            permission,
            "CT.LAMBDA.PR.2",
            SCOPED_PERMISSION_REASON.format(scope="SourceAccount (AWS's advice for rotation)"),
        )
        self.schedule = secretsmanager.CfnRotationSchedule(
            self,
            "Schedule",
            secret_id=secret.secret_arn,
            rotation_lambda_arn=alias_arn,
            rotation_rules=secretsmanager.CfnRotationSchedule.RotationRulesProperty(
                schedule_expression=f"rate({rotation_days} days)"
            ),
            rotate_immediately_on_update=False,
        )
        self.schedule.add_resource_dependency(permission)
