"""Gradual deploys: CodeDeploy moves each function's `live` alias to its new version a share at a
time, and moves it back by itself when one of the function's rollback alarms goes off.

The API functions take a canary (api_deployment_config): requests are many, so a few minutes of
a tenth of them show a bad version. The pipeline and background functions go linearly
(pipeline_deployment_config): the pipeline runs every 5 minutes, so a 5-minute canary of Lambda A
would see about one run, and with 10% of the traffic most often none; ten steps of 3 minutes
give the new version a growing share of about six runs, and each retry of a failed task is routed
afresh (often to the old version).

A function's rollback alarm counts the errors of its new version only: Lambda publishes an
alias's metrics per version that ran (`FunctionName`, `Resource=<function>:live`,
`ExecutedVersion`), and the alarm names the version being deployed, so errors the old version
keeps making while the traffic shifts roll nothing back. An alarm goes off on 2 of 3 one-minute
datapoints with an error (or the API's 5xx), not on one stray error; a minute with no data
counts as fine (a canary may get no traffic). The authorizer has no errors alarm:
it refuses a token by raising "Unauthorized", which Lambda counts as an error, and a client with
an expired token would roll a good version back. A crashing or timing-out authorizer makes API
Gateway answer 500, which the API's 5xx alarm counts; every API function is rolled back on that
alarm too. These alarms belong to the rollout and are made here; the operations alarms
(infra/constructs/observability.py) notify people and are a different set.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_codedeploy as codedeploy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from entrix.rollback_command import ROLLBACK_ALARM_PREFIX
from infra.config import ServiceConfig
from infra.constructs.history_archive import HistoryArchive
from infra.constructs.intake import Intake
from infra.constructs.lambda_code import live_alias
from infra.constructs.results_pipeline import ResultsPipeline
from infra.nag import acknowledge, acknowledge_control

PERIOD = Duration.minutes(1)


class GradualDeploy(Construct):
    """One CodeDeploy application, and a deployment group for each function of the stack."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: ServiceConfig,
        intake: Intake,
        results: ResultsPipeline,
        history: HistoryArchive,
    ) -> None:
        super().__init__(scope, id)
        self.application = codedeploy.LambdaApplication(self, "Application")
        # One service role for every group: CodeDeploy's managed policy for Lambda.
        self.role = iam.Role(
            self,
            "ServiceRole",
            assumed_by=iam.ServicePrincipal("codedeploy.amazonaws.com"),
            description="CodeDeploy shifts the live aliases of this stack's functions",
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name(
                    "service-role/AWSCodeDeployRoleForLambdaLimited"
                )
            ],
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AWSCodeDeployRoleForLambdaLimited]",
            "CodeDeploy's own managed policy for Lambda deployments: it reads functions, updates "
            "aliases and publishes to SNS topics named CodeDeployTopic*; no customer policy "
            "could name the aliases more tightly without listing each one, and only CodeDeploy "
            "assumes the role.",
        )
        self.groups: dict[str, codedeploy.LambdaDeploymentGroup] = {}
        self.alarms: dict[str, cloudwatch.Alarm] = {}

        api_5xx = self.alarm(
            "Api5xx",
            intake.api.metric_server_error(period=PERIOD, statistic="Sum"),
            "the API answered 5xx (a failed handler or authorizer) in 2 of 3 minutes",
        )
        self.deploy(
            "Authorizer",
            intake.authorizer_function,
            config=config.api_deployment_config,
            alarms=[api_5xx],
        )
        api_functions = {
            "Ingest": intake.ingest_function,
            "OrderStatus": intake.order_status_function,
            "OrderList": intake.order_list_function,
            "Cancel": intake.cancel_function,
        }
        for name, function in api_functions.items():
            self.deploy(
                name,
                function,
                config=config.api_deployment_config,
                alarms=[api_5xx, self.errors_alarm(name, function)],
            )

        background: dict[str, lambda_.IFunction] = {
            "Results": results.results_function,
            "Process": results.process_function,
            "RunSummary": results.summary_function,
            "HistoryArchive": history.function,
        }
        if results.slack is not None:
            background["Slack"] = results.slack.function
        if intake.key_rotation is not None:
            background["KeyRotation"] = intake.key_rotation.function
        for name, background_function in background.items():
            self.deploy(
                name,
                background_function,
                config=config.pipeline_deployment_config,
                alarms=[self.errors_alarm(name, background_function)],
            )

    def alarm(self, id: str, metric: cloudwatch.IMetric, description: str) -> cloudwatch.Alarm:
        """An alarm in ALARM when 2 of the last 3 minutes had any of `metric` (a Sum); a minute
        with no data is fine (a canary may get no traffic)."""
        self.alarms[id] = cloudwatch.Alarm(
            self,
            id,
            metric=metric,
            threshold=1,
            evaluation_periods=3,
            datapoints_to_alarm=2,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=f"{ROLLBACK_ALARM_PREFIX}{description}",
        )
        acknowledge_control(
            self.alarms[id],
            "CT.CLOUDWATCH.PR.1",
            "A rollback alarm's reader is CodeDeploy, which stops and rolls back a deployment "
            "while it is in ALARM; it notifies no one on purpose: a rollback needs no one, and "
            "people are paged by the operations alarms (infra/constructs/observability.py).",
        )
        return self.alarms[id]

    def errors_alarm(self, id: str, function: lambda_.IFunction) -> cloudwatch.Alarm:
        """Errors of the version being deployed, invoked through the function's live alias."""
        alias = live_alias(function)
        errors = cloudwatch.Metric(
            namespace="AWS/Lambda",
            metric_name="Errors",
            dimensions_map={
                "FunctionName": function.function_name,
                "Resource": f"{function.function_name}:{alias.alias_name}",
                "ExecutedVersion": alias.version.version,
            },
            period=PERIOD,
            statistic="Sum",
        )
        return self.alarm(
            f"{id}AliasErrors",
            errors,
            f"invocations of {id}'s new version through its {alias.alias_name} alias failed",
        )

    def deploy(
        self,
        id: str,
        function: lambda_.IFunction,
        *,
        config: str,
        alarms: Sequence[cloudwatch.IAlarm],
    ) -> codedeploy.LambdaDeploymentGroup:
        """The deployment group of `function`'s live alias: `config` (a LambdaDeploymentConfig
        name) shifts the traffic; a failed or stopped deployment, or one of `alarms`, rolls it
        back."""
        group = codedeploy.LambdaDeploymentGroup(
            self,
            id,
            application=self.application,
            alias=live_alias(function),
            role=self.role,
            deployment_config=getattr(codedeploy.LambdaDeploymentConfig, config),
            alarms=list(alarms),
            auto_rollback=codedeploy.AutoRollbackConfig(
                failed_deployment=True, stopped_deployment=True, deployment_in_alarm=True
            ),
        )
        self.groups[id] = group
        return group
