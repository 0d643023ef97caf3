"""The `Entrix` stack: the whole service (order intake, results pipeline) in one deployable unit."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Environment, Stack
from constructs import Construct

from infra.config import ServiceConfig
from infra.constructs.gradual_deploy import GradualDeploy
from infra.constructs.history_archive import HistoryArchive
from infra.constructs.intake import Intake
from infra.constructs.lambda_code import python_layer
from infra.constructs.observability import Observability
from infra.constructs.results_pipeline import ResultsPipeline
from infra.constructs.verification_probe import VerificationProbe


class ServiceStack(Stack):
    """One deployment of the service; the delivery pipeline instantiates it once per stage."""

    def __init__(self, scope: Construct, id: str, *, config: ServiceConfig, **kwargs: Any) -> None:
        kwargs.setdefault("env", Environment(account=config.account, region=config.region))
        kwargs.setdefault("description", "Entrix auction order service (intake and results)")
        super().__init__(scope, id, **kwargs)
        self.config = config

        # Layers are shared by every function that needs them, so each is deployed once.
        # An identity provider's RS256/ES256 keys need cryptography, which the default mode's
        # cold request is spared.
        jwks = config.jwt_key_source == "jwks"
        self.jwt_layer = python_layer(
            self,
            "PyJwtLayer",
            requirements=["pyjwt", "cryptography"] if jwks else ["pyjwt"],
            description="PyJWT and cryptography for the authorizer"
            if jwks
            else "PyJWT for the authorizer",
        )
        self.deps_layer = python_layer(
            self,
            "DepsLayer",
            requirements=["pydantic"],
            description="pydantic for Lambda A and B (the intake validates without it)",
        )

        self.intake = Intake(self, "Intake", config=config, jwt_layer=self.jwt_layer)

        self.results = ResultsPipeline(
            self,
            "ResultsPipeline",
            config=config,
            table=self.intake.table,
            deps_layer=self.deps_layer,
        )

        self.history = HistoryArchive(
            self,
            "History",
            config=config,
            table=self.intake.table,
            bucket=self.results.bucket,
        )

        # Every function's `live` alias moves to a new version gradually, and back on an alarm.
        self.gradual_deploy = GradualDeploy(
            self,
            "GradualDeploy",
            config=config,
            intake=self.intake,
            results=self.results,
            history=self.history,
        )

        self.probe = VerificationProbe(
            self, "VerificationProbe", removal_policy=config.data_removal_policy
        )

        # Last: the dashboard shows every alarm of the stack that exists when it is built.
        self.observability = Observability(
            self,
            "Observability",
            intake=self.intake,
            results=self.results,
            history=self.history,
            oldest_pending_alarm_seconds=config.oldest_pending_alarm_minutes * 60,
            no_successful_run_alarm_minutes=config.no_successful_run_alarm_minutes,
            cost_alarm_dollars_per_hour=config.cost_alarm_dollars_per_hour,
            removal_policy=config.data_removal_policy,
            email_addresses=config.ops_email_addresses,
        )

        CfnOutput(self, "ApiUrl", value=self.intake.orders_url, description="POST orders here")
        if self.intake.jwt_secret is not None:
            CfnOutput(self, "JwtSecretArn", value=self.intake.jwt_secret.secret_arn)
        CfnOutput(
            self,
            "AuthorizerFunctionName",
            value=self.intake.authorizer_function.function_name,
            description="`entrix token --stack` reads the signing key's ARN from this function",
        )
        CfnOutput(self, "JwtRevocationsSecretArn", value=self.intake.revocations_secret.secret_arn)
        CfnOutput(
            self,
            "RestApiId",
            value=self.intake.api.rest_api_id,
            description="`entrix revoke --stack` flushes this API's authorizer cache",
        )
        CfnOutput(self, "ApiStageName", value=self.intake.api.deployment_stage.stage_name)
        CfnOutput(self, "OrdersTableName", value=self.intake.table.table_name)
        CfnOutput(self, "ClientUsageTableName", value=self.intake.usage_table.table_name)
        CfnOutput(self, "ResultsBucketName", value=self.results.bucket.bucket_name)
        CfnOutput(self, "AlertTopicArn", value=self.results.topic.topic_arn)
        CfnOutput(
            self, "ResultsStateMachineArn", value=self.results.state_machine.state_machine_arn
        )
        CfnOutput(
            self,
            "ProbeAlarmName",
            value=self.probe.alarm.alarm_name,
            description="`entrix verify` sets this alarm to ALARM and back to prove alarms notify "
            "(its own topic, no subscriber)",
        )
