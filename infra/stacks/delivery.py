"""Continuous delivery: a self-mutating CDK pipeline that deploys the service to Dev, then Prod.

Every push to `main` (through a CodeStar connection to GitHub) starts the pipeline. Its synth step
installs from the lock files and runs `make test` (lint, unit, infra guardrails, local end-to-end)
before `make synth`; the pipeline then updates itself, deploys the Dev stage, and deploys Prod
after a manual approval (unless switched off). A failed execution, and a Prod deployment waiting
for approval, are published to an encrypted, TLS-only SNS topic: the team's "Slack" channel.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import cast

from aws_cdk import (
    Annotations,
    Aws,
    CfnOutput,
    Duration,
    Environment,
    RemovalPolicy,
    Stack,
    Stage,
    Token,
    pipelines,
)
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_ssm as ssm
from constructs import Construct, IConstruct

from infra.config import DeliveryConfig, ServiceConfig
from infra.constructs.key_policy import deny_grants_but_for_aws_resources
from infra.constructs.verification_probe import PROBE_ALARM
from infra.nag import acknowledge, acknowledge_control, logical_id, partition
from infra.stacks.account_settings import AccountSettingsStack
from infra.stacks.service import ServiceStack

# CodeBuild's Ubuntu 22.04 standard image. The synth step picks Python 3.11 (the project's
# interpreter, as in GitHub Actions) and the major of the Node that package.json pins (in
# .node-version; the image offers 18 to 24) in its install phase; `make install` then puts that
# exact build in node_modules. Lambda assets are bundled locally for python3.13 through platform
# flags, never in Docker, so the build interpreter need not be the Lambda runtime and the build
# needs no privileged mode.
BUILD_IMAGE = codebuild.LinuxBuildImage.STANDARD_7_0
NODE_VERSION = (Path(__file__).resolve().parents[2] / ".node-version").read_text().strip()
BUILD_RUNTIMES = {"python": "3.11", "nodejs": NODE_VERSION.split(".")[0]}
INSTALL_COMMANDS = ["make install"]
BUILD_COMMANDS = ["make test", "make synth"]
# Download caches of uv (wheels for the venv and the Lambda layers) and npm (the CDK CLI).
BUILD_CACHE_PATHS = ["/root/.cache/uv/**/*", "/root/.npm/**/*"]

# Self-mutation deploys with the CDK CLI version that `make synth` used (pinned in package.json),
# not whatever `aws-cdk@2` is newest on the day.
CDK_CLI_VERSION: str = json.loads(
    (Path(__file__).resolve().parents[2] / "package.json").read_text()
)["devDependencies"]["aws-cdk"]

# `entrix verify`'s mode per stage: Dev runs the end-to-end checks (an order through the
# auction, alerts published, runs started); Prod only what changes nothing a trader or the
# on-call engineer sees (entrix.verify_command).
VERIFY_MODES = {"Dev": "full", "Prod": "quiet"}
# The verify step installs entrix and its runtime dependencies only, from uv.lock (`--frozen`:
# the lock as committed, never re-resolved), with the uv the Makefile pins.
VERIFY_INSTALL_COMMANDS = [
    "make .tools/bin/uv",
    "UV_PYTHON_DOWNLOADS=never .tools/bin/uv sync --frozen --no-default-groups --python python3",
]
VERIFY_ENTRIX = ".venv/bin/entrix"

PIPELINE_NAME = "entrix-delivery"
# Build logs are for diagnosing a failed run; older runs are rebuilt from git, not from logs.
BUILD_LOG_RETENTION = logs.RetentionDays.ONE_MONTH
# Pipeline artifacts (source zips, cdk.out) serve their own execution: a Prod approval waits at
# most 7 days (CodePipeline's limit), so a month covers every execution still running.
ARTIFACT_RETENTION = Duration.days(30)


class ServiceStage(Stage):
    """One deployment target (Dev or Prod): the service stack built with that stage's config
    (and, in another account than the pipeline's, the VerifierStack the pipeline adds)."""

    def __init__(self, scope: Construct, construct_id: str, *, config: ServiceConfig) -> None:
        super().__init__(
            scope, construct_id, env=Environment(account=config.account, region=config.region)
        )
        self.service = ServiceStack(self, "Entrix", config=config)


class AccountSettingsStage(Stage):
    """The account-wide settings of one account and region the service deploys to."""

    def __init__(self, scope: Construct, construct_id: str, *, env: Environment) -> None:
        super().__init__(scope, construct_id, env=env)
        self.settings = AccountSettingsStack(self, "EntrixAccountSettings")


def _account_environments(stages: dict[str, ServiceConfig]) -> dict[str, Environment]:
    """One account-settings stage per distinct (account, region) of the service stages:
    `AccountSettings` for the first stage's, `AccountSettings-<stage>` for another stage's own
    (an account of None is the pipeline's)."""
    named: dict[tuple[str | None, str], str] = {}
    environments: dict[str, Environment] = {}
    for stage, config in stages.items():
        where = (config.account, config.region)
        if where not in named:
            named[where] = "AccountSettings" + (f"-{stage}" if named else "")
            environments[named[where]] = Environment(account=config.account, region=config.region)
    return environments


def _prod_shares_an_account(
    config: DeliveryConfig, dev: ServiceConfig, prod: ServiceConfig
) -> bool:
    """Whether Prod deploys into Dev's account or the pipeline's (an account of None is that of
    the credentials the pipeline is deployed with, so two Nones are one account)."""
    return prod.account in (None, config.account, dev.account)


def verify_statements(name: str, region: str, account: str, mode: str) -> list[iam.PolicyStatement]:
    """What `entrix verify --mode <mode>` calls, on the resources of stack `name` only."""

    def arn(service: str, resource: str) -> str:
        return f"arn:{Aws.PARTITION}:{service}:{region}:{account}:{resource}"

    # CloudFormation tags every resource that takes tags with its stack's name: the state
    # machine's generated name does not start with the stack's.
    this_stack = {"StringEquals": {"aws:ResourceTag/aws:cloudformation:stack-name": name}}
    statements = [
        iam.PolicyStatement(
            actions=["cloudformation:DescribeStacks"],
            resources=[arn(service="cloudformation", resource=f"stack/{name}/*")],
        ),
        # The authorizer's settings: the issuer and audience of the tokens the checks send.
        iam.PolicyStatement(
            actions=["lambda:GetFunctionConfiguration"],
            resources=[arn(service="lambda", resource=f"function:{name}-*")],
        ),
        iam.PolicyStatement(
            actions=["cloudwatch:DescribeAlarms"],
            resources=[arn(service="cloudwatch", resource=f"alarm:{name}-*")],
        ),
        # Only the probe alarm, whose topic pages nobody, is ever set.
        iam.PolicyStatement(
            actions=["cloudwatch:SetAlarmState", "cloudwatch:DescribeAlarmHistory"],
            resources=[arn(service="cloudwatch", resource=f"alarm:{name}-{PROBE_ALARM}")],
        ),
        iam.PolicyStatement(
            actions=["sns:GetTopicAttributes"],
            resources=[arn(service="sns", resource=f"{name}-*")],
        ),
        iam.PolicyStatement(
            actions=["states:DescribeStateMachine"],
            resources=[arn(service="states", resource="stateMachine:*")],
            conditions=this_stack,
        ),
    ]
    if mode == "full":
        statements += [
            # The signing key, which signs the verify subject's token (orders stored and read).
            # Never in `quiet` mode: the key is shared, so whoever reads it can sign a token for
            # any trader's subject.
            iam.PolicyStatement(
                actions=["secretsmanager:GetSecretValue"],
                resources=[arn(service="secretsmanager", resource="secret:*")],
                conditions=this_stack,
            ),
            iam.PolicyStatement(
                actions=["states:StartExecution"],
                resources=[arn(service="states", resource="stateMachine:*")],
                conditions=this_stack,
            ),
            iam.PolicyStatement(
                actions=["states:DescribeExecution"],
                resources=[arn(service="states", resource="execution:*")],
            ),
            iam.PolicyStatement(actions=["states:TestState"], resources=["*"]),
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[f"arn:{Aws.PARTITION}:iam::{account}:role/{name}-*"],
                conditions={"StringEquals": {"iam:PassedToService": "states.amazonaws.com"}},
            ),
        ]
    return statements


class VerifierStack(Stack):
    """For a stage in another account than the pipeline: the role `entrix verify` runs as there
    (CodeBuild's own role reaches no other account's resources). Only the role of this stage's
    VerifyDeploy project in the pipeline's account, named by its fixed name, may assume it: not
    the synth or self-mutation roles, which run the repository's and third parties' code."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        service: ServiceStack,
        mode: str,
        pipeline_account: str,
        verify_project_role: str,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            description=f"Entrix: the role entrix verify runs as in {service.stack_name}",
        )
        self.role = iam.Role(
            self,
            "VerifyRole",
            role_name=verify_role_name(service.stack_name),
            # A condition rather than the role as principal: IAM would pin a principal to the
            # role's unique id, and a VerifyDeploy role replaced by a redeploy would be locked out.
            assumed_by=iam.AccountPrincipal(pipeline_account).with_conditions(
                {
                    "ArnEquals": {
                        "aws:PrincipalArn": f"arn:{Aws.PARTITION}:iam::{pipeline_account}:"
                        f"role/{verify_project_role}"
                    }
                }
            ),
            max_session_duration=Duration.hours(1),
        )
        for statement in verify_statements(
            service.stack_name, service.region, service.account, mode
        ):
            self.role.add_to_policy(statement)


def verify_role_name(stack_name: str) -> str:
    """The verify role's name in a stage's account: known to the pipeline before it exists, and
    outside the `<stack>-*` roles that Dev's verify may pass to Step Functions."""
    return f"EntrixVerify-{stack_name}"


def verify_project_role_name(pipeline_stack: str, stage: str) -> str:
    """The fixed name of a stage's VerifyDeploy CodeBuild role in the pipeline's account: the one
    principal its VerifierStack role trusts."""
    return f"{pipeline_stack}-VerifyDeploy-{stage}"


class DeliveryStack(Stack):
    """The CodePipeline (V2) that tests and deploys the service, and redeploys itself first."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeliveryConfig,
        dev: ServiceConfig,
        prod: ServiceConfig,
    ) -> None:
        # CDK Pipelines refuses stages with a region unless the pipeline stack has one too.
        super().__init__(
            scope,
            construct_id,
            env=Environment(account=config.account, region=config.region),
            description="Entrix delivery: CDK Pipelines deploying the service to Dev and Prod",
        )
        self.config = config
        source = pipelines.CodePipelineSource.connection(
            config.repository,
            config.branch,
            connection_arn=self._connection_arn(),
            trigger_on_push=True,
        )
        build_logs = logs.LogGroup(
            self,
            "BuildLogs",
            retention=BUILD_LOG_RETENTION,
            removal_policy=RemovalPolicy.DESTROY,
        )
        acknowledge_control(
            build_logs,
            "CT.CLOUDWATCH.PR.2",
            "Build logs diagnose a failed pipeline run and are kept a month: any commit is built "
            "again from git, and what was deployed is in CloudFormation's and CodePipeline's "
            "own history.",
        )
        acknowledge_control(
            build_logs,
            "CT.CLOUDWATCH.PR.3",
            "Build logs are encrypted at rest by CloudWatch Logs with an AWS owned key; they "
            "hold test output and command lines, never a secret (the tests' guardrails keep "
            "secrets out of templates and code).",
        )
        self.pipeline = pipelines.CodePipeline(
            self,
            "Pipeline",
            pipeline_name=PIPELINE_NAME,
            pipeline_type=codepipeline.PipelineType.V2,
            synth=pipelines.CodeBuildStep(
                "Synth",
                input=source,
                install_commands=INSTALL_COMMANDS,
                commands=BUILD_COMMANDS,
                primary_output_directory="cdk.out",
                partial_build_spec=codebuild.BuildSpec.from_object(
                    {
                        "phases": {"install": {"runtime-versions": BUILD_RUNTIMES}},
                        "cache": {"paths": BUILD_CACHE_PATHS},
                    }
                ),
                # Kept on the build host between close runs: no bucket, no cost.
                cache=codebuild.Cache.local(codebuild.LocalCacheMode.CUSTOM),
            ),
            self_mutation=True,
            cli_version=CDK_CLI_VERSION,
            docker_enabled_for_synth=False,
            # One CodeBuild project publishes every file asset, instead of one project per asset.
            publish_assets_in_parallel=False,
            # A customer-managed, rotated KMS key for the artifacts bucket and every CodeBuild
            # project; it also lets Dev and Prod live in other accounts than the pipeline.
            cross_account_keys=True,
            enable_key_rotation=True,
            code_build_defaults=pipelines.CodeBuildOptions(
                build_environment=codebuild.BuildEnvironment(
                    build_image=BUILD_IMAGE, compute_type=codebuild.ComputeType.SMALL
                ),
                logging=codebuild.LoggingOptions(
                    cloud_watch=codebuild.CloudWatchLoggingOptions(log_group=build_logs)
                ),
            ),
        )
        # API Gateway's account-wide logging role, once for each account and region a stage
        # deploys to, before any service stack there needs it.
        self.account_stages = [
            AccountSettingsStage(self, name, env=env)
            for name, env in _account_environments({"Dev": dev, "Prod": prod}).items()
        ]
        for stage in self.account_stages:
            self.pipeline.add_stage(stage)
        # (stage, stack name, region, its VerifierStack or None) of each stage verified.
        self.verified_stacks: list[tuple[str, str, str, VerifierStack | None]] = []
        self.dev_stage = ServiceStage(self, "Dev", config=dev)
        self.pipeline.add_stage(
            self.dev_stage, post=self._post_deploy_checks(self.dev_stage, dev, source)
        )
        self.prod_stage = ServiceStage(self, "Prod", config=prod)
        approval = pipelines.ManualApprovalStep(
            "PromoteToProd", comment="Dev is deployed from this commit. Deploy it to Prod?"
        )
        self.pipeline.add_stage(
            self.prod_stage,
            pre=[approval] if config.prod_approval else [],
            post=self._post_deploy_checks(self.prod_stage, prod, source),
        )
        if _prod_shares_an_account(config, dev, prod):
            Annotations.of(self).add_warning_v2(
                "entrix:prod-shares-an-account",
                "Prod deploys into the account of Dev or of the pipeline: their roles and "
                "people can reach Prod's resources, and they share its account-wide quotas. Set "
                "entrix:stages Dev and Prod accounts of their own (docs/delivery.md, Accounts).",
            )
        # Built now rather than at synth time, so the CodePipeline exists for the failure rule.
        self.pipeline.build_pipeline()
        self._name_verify_roles()

        self.alerts = self._alerts_topic()
        self.pipeline.pipeline.notify_on(
            "NotifyOnFailure",
            self.alerts,
            events=[codepipeline.PipelineNotificationEvents.PIPELINE_EXECUTION_FAILED],
            notification_rule_name=f"{PIPELINE_NAME}-failed",
        )
        if config.prod_approval:
            # Someone has to know that Prod is waiting for them.
            self.pipeline.pipeline.notify_on(
                "NotifyOnApprovalNeeded",
                self.alerts,
                events=[codepipeline.PipelineNotificationEvents.MANUAL_APPROVAL_NEEDED],
                notification_rule_name=f"{PIPELINE_NAME}-approval-needed",
            )
        CfnOutput(self, "PipelineName", value=self.pipeline.pipeline.pipeline_name)
        CfnOutput(
            self,
            "AlertsTopicArn",
            value=self.alerts.topic_arn,
            description="Failed executions and pending Prod approvals; subscribe the team",
        )
        self._acknowledge_pipeline_findings()

    def _post_deploy_checks(
        self, stage: ServiceStage, config: ServiceConfig, source: pipelines.IFileSetProducer
    ) -> list[pipelines.Step]:
        """The smoke test, then `entrix verify` in the stage's mode (VERIFY_MODES): from
        CodeBuild's own role for a stage in the pipeline's account, else through the stage's
        VerifierStack role (which needs the pipeline's account named in
        `entrix:delivery:account`; without it the stage gets the smoke test only)."""
        smoke = self._smoke_test(stage)
        mode = VERIFY_MODES[stage.node.id]
        service = stage.service
        verifier = None
        if config.account not in (None, self.config.account):
            if self.config.account is None:
                return [smoke]
            verifier = VerifierStack(
                stage,
                "EntrixVerifier",
                service=service,
                mode=mode,
                pipeline_account=self.config.account,
                verify_project_role=verify_project_role_name(self.stack_name, stage.node.id),
            )
        role_arn = (
            None
            if verifier is None
            else f"arn:{Aws.PARTITION}:iam::{config.account}:role/"
            f"{verify_role_name(service.stack_name)}"
        )
        verify = self._verify_step(service, mode, source, role_arn)
        self.verified_stacks.append((stage.node.id, service.stack_name, service.region, verifier))
        verify.add_step_dependency(smoke)
        return [smoke, verify]

    def _verify_step(
        self,
        service: ServiceStack,
        mode: str,
        source: pipelines.IFileSetProducer,
        role_arn: str | None,
    ) -> pipelines.CodeBuildStep:
        """`entrix verify --stack <stage stack> --mode <mode>`, installed from uv.lock: with
        `verify_statements` on CodeBuild's own role, or, for a stage in another account, as the
        role `role_arn` there, which is all CodeBuild's role may assume."""
        command = f"{VERIFY_ENTRIX} verify --stack {service.stack_name} --region {service.region}"
        command += f" --mode {mode}"
        if role_arn is None:
            statements = verify_statements(service.stack_name, service.region, self.account, mode)
        else:
            command += f" --role-arn {role_arn}"
            statements = [iam.PolicyStatement(actions=["sts:AssumeRole"], resources=[role_arn])]
        return pipelines.CodeBuildStep(
            "VerifyDeploy",
            input=source,
            install_commands=VERIFY_INSTALL_COMMANDS,
            commands=[command],
            partial_build_spec=codebuild.BuildSpec.from_object(
                {"phases": {"install": {"runtime-versions": {"python": BUILD_RUNTIMES["python"]}}}}
            ),
            # A run polls for up to 5 minutes before results are ready; allow for two.
            timeout=Duration.minutes(30),
            role_policy_statements=statements,
        )

    @staticmethod
    def _smoke_test(stage: ServiceStage) -> pipelines.ShellStep:
        """After a stage deploys: its API answers, and refuses an order without a token (401).
        In Dev this keeps a broken API or authorizer from being offered for Prod; in Prod a
        failure reaches the alerts topic like any failed execution."""
        orders_url = stage.service.node.find_child("ApiUrl")
        assert isinstance(orders_url, CfnOutput)
        return pipelines.ShellStep(
            "SmokeTest",
            env_from_cfn_outputs={"ORDERS_URL": orders_url},
            commands=[
                "code=$(curl -s -o /dev/null -w '%{http_code}' -X POST"
                " -H 'Content-Type: application/json' -d '[]' \"$ORDERS_URL\")",
                'echo "POST $ORDERS_URL without a token: HTTP $code"',
                'test "$code" = 401',
            ],
        )

    def _verify_project(self, stage_id: str) -> codebuild.Project:
        """The CodeBuild project CDK Pipelines made for a stage's VerifyDeploy step."""
        (project,) = [
            node
            for node in self.pipeline.node.find_all()
            if isinstance(node, codebuild.Project)
            and node.node.path.endswith(f"/{stage_id}/VerifyDeploy/VerifyDeploy")
        ]
        return project

    def _name_verify_roles(self) -> None:
        """Give each VerifyDeploy project's role its fixed name (`verify_project_role_name`), so
        a VerifierStack can trust that one role. CDK Pipelines makes the role: its name is set on
        the generated resource."""
        for stage_id, _, _, _ in self.verified_stacks:
            role = self._verify_project(stage_id).role
            assert isinstance(role, iam.Role)
            cfn_role = role.node.default_child
            assert isinstance(cfn_role, iam.CfnRole)
            cfn_role.role_name = verify_project_role_name(self.stack_name, stage_id)

    def _connection_arn(self) -> str:
        """The CodeStar connection ARN from context, else read from SSM when CloudFormation deploys
        the stack, so no account-specific ARN lives in the code."""
        if self.config.connection_arn:
            return self.config.connection_arn
        return ssm.StringParameter.value_for_string_parameter(
            self, self.config.connection_arn_parameter
        )

    def _alerts_topic(self) -> sns.Topic:
        """KMS-encrypted, TLS-only topic that CodeStar Notifications may publish to."""
        key = kms.Key(
            self,
            "AlertsKey",
            enable_key_rotation=True,
            description="Encrypts the Entrix delivery alerts topic",
        )
        deny_grants_but_for_aws_resources(key)
        # CodeStar Notifications encrypts each message for the topic with this key, through SNS.
        key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("codestar-notifications.amazonaws.com")],
                actions=["kms:GenerateDataKey*", "kms:Decrypt"],
                resources=["*"],
                conditions={"StringEquals": {"kms:ViaService": f"sns.{self.region}.amazonaws.com"}},
            )
        )
        return sns.Topic(
            self,
            "Alerts",
            display_name="Entrix delivery alerts",
            master_key=key,
            enforce_ssl=True,
        )

    def _acknowledge(self, scope: IConstruct, finding: str, marker: str, reason: str) -> None:
        """Acknowledge `finding` on each IAM policy under `scope` whose document contains
        `marker`, so the acceptance sits on the exact policies that carry the wildcard. A marker
        that matches nothing fails synth: a finding CDK no longer produces must not stay
        acknowledged."""
        policies = [
            node
            for node in scope.node.find_all()
            if isinstance(node, iam.Policy) and marker in json.dumps(self.resolve(node.document))
        ]
        if not policies:
            raise ValueError(f"{finding}: no policy under {scope.node.path} contains {marker!r}")
        for policy in policies:
            acknowledge(policy, finding, reason)

    def _harden_artifacts(self, bucket: s3.IBucket) -> None:
        """The artifacts bucket and key CDK Pipelines makes: a lifetime for the artifacts, no
        grants on the key, and the Control Tower controls it does not meet, with the reasons."""
        cast(s3.Bucket, bucket).add_lifecycle_rule(
            id="ExpireArtifacts",
            expiration=ARTIFACT_RETENTION,
            abort_incomplete_multipart_upload_after=Duration.days(1),
        )
        if bucket.encryption_key is not None:
            deny_grants_but_for_aws_resources(bucket.encryption_key)
        transient = (
            "The artifacts bucket holds only transient pipeline artifacts (source zips, "
            "cdk.out), new keys for every execution, expired after "
            f"{ARTIFACT_RETENTION.to_days()} days; any of them is built again from git."
        )
        for control, reason in {
            "CT.S3.PR.2": "Access logs would need a second bucket that could not log itself; "
            "only this pipeline's roles can reach the bucket (CloudTrail records them).",
            "CT.S3.PR.4": "Nothing reacts to an artifact being written: CodePipeline hands "
            "each artifact to the next action itself.",
            "CT.S3.PR.9": "Object Lock would keep every artifact past its expiry, and must be "
            "set when CDK Pipelines creates the bucket.",
            "CT.S3.PR.11": "Artifacts are written once under new keys and never overwritten, "
            "so versions would only keep expired artifacts.",
        }.items():
            acknowledge_control(bucket, control, f"{transient} {reason}")

    def _acknowledge_pipeline_findings(self) -> None:
        """The AwsSolutions findings on the roles CDK Pipelines generates, each with its reason."""
        pipeline = self.pipeline
        bucket = logical_id(pipeline.pipeline.artifact_bucket)
        artifacts = (
            "CDK Pipelines grants its own roles read/write on the pipeline's artifacts bucket; "
            "the wildcards are S3 action groups and object keys inside that one bucket, whose "
            "keys change with every execution."
        )
        for action in (
            "s3:GetObject*",
            "s3:GetBucket*",
            "s3:List*",
            "s3:DeleteObject*",
            "s3:Abort*",
        ):
            self._acknowledge(
                pipeline, f"AwsSolutions-IAM5[Action::{action}]", f'"{action}"', artifacts
            )
        self._acknowledge(
            pipeline, f"AwsSolutions-IAM5[Resource::<{bucket}.Arn>/*]", f'"{bucket}"', artifacts
        )
        for action in ("kms:GenerateDataKey*", "kms:ReEncrypt*"):
            self._acknowledge(
                pipeline,
                f"AwsSolutions-IAM5[Action::{action}]",
                f'"{action}"',
                "Pipeline roles encrypt and decrypt artifacts with the pipeline's artifacts key; "
                "the statement names that one key's ARN, the wildcard only spans the KMS "
                "GenerateDataKey/ReEncrypt variants the S3 client uses.",
            )
        self._harden_artifacts(pipeline.pipeline.artifact_bucket)
        acknowledge(
            pipeline.pipeline.artifact_bucket,
            "AwsSolutions-S1",
            "The artifacts bucket holds only transient pipeline artifacts (source zips, cdk.out), "
            "written and read only by this pipeline's roles under its KMS key; each object "
            "belongs to an execution in the pipeline's history. Access logs would need a second "
            "bucket that could not log itself.",
        )

        # cdk-nag prints a configured account as digits, an env-agnostic one as a placeholder.
        account = "<AWS::AccountId>" if Token.is_unresolved(self.account) else self.account
        logs_arn = f"{partition(self)}:logs:{self.region}:{account}"
        reports_arn = f"{partition(self)}:codebuild:{self.region}:{account}"
        unused_logs = (
            "CodeBuild's default grant on its default log group /aws/codebuild/<project>; the "
            "projects log to BuildLogs (with a retention) instead, so the grant is never used, "
            "and CDK adds it unconditionally."
        )
        reports = (
            "CodeBuild's default grant to create test reports, scoped to report groups named "
            "after the project; CodeBuild names them at run time and the builds write none."
        )
        assets = pipeline.node.find_child("Assets")
        # Synth, self-mutation and smoke test each have a role of their own; the asset projects
        # share one role, granted on every CodeBuild log and report group at once.
        own_role = [
            node
            for node in pipeline.node.find_all()
            if isinstance(node, codebuild.Project)
            and not node.node.path.startswith(f"{assets.node.path}/")
        ]
        # (scope, log group name and report group name as cdk-nag spells them)
        codebuild_defaults: list[tuple[IConstruct, str, str]] = [
            (project, f"<{logical_id(project)}>:*", f"<{logical_id(project)}>-*")
            for project in own_role
        ]
        codebuild_defaults.append((assets, "*", "*"))
        for scope, log_group, report_group in codebuild_defaults:
            self._acknowledge(
                scope,
                f"AwsSolutions-IAM5[Resource::arn:{logs_arn}:log-group:/aws/codebuild/{log_group}]",
                ":log-group:/aws/codebuild/",
                unused_logs,
            )
            self._acknowledge(
                scope,
                f"AwsSolutions-IAM5[Resource::arn:{reports_arn}:report-group/{report_group}]",
                ":report-group/",
                reports,
            )

        mutation = pipeline.self_mutation_project
        self._acknowledge(
            mutation,
            f"AwsSolutions-IAM5[Resource::arn:*:iam::{account}:role/*]",
            ":role/*",
            "Self-mutation assumes the CDK bootstrap roles to deploy this stack; the statement "
            "is conditioned on the iam:ResourceTag/aws-cdk:bootstrap-role tag (deploy and "
            "publishing roles only), whose names depend on the bootstrap qualifier.",
        )
        self._acknowledge(
            mutation,
            "AwsSolutions-IAM5[Resource::*]",
            '"Resource": "*"',
            "Self-mutation runs `cdk deploy`, which calls cloudformation:DescribeStacks and "
            "s3:ListBucket before it knows which stack or bootstrap bucket it talks to; both are "
            "read-only.",
        )
        self._acknowledge(
            assets,
            "AwsSolutions-IAM5[Resource::*]",
            '"Resource": "*"',
            "The asset-publishing role starts and watches its CodeBuild builds "
            "(codebuild:StartBuild/BatchGetBuilds/StopBuild), as CDK Pipelines generates it "
            "before the project names exist.",
        )
        self._acknowledge_verify_findings(account)
        self._acknowledge_cross_region_findings()

    def _acknowledge_verify_findings(self, account: str) -> None:
        """The wildcards of each `entrix verify` step's role: resources of its stage's stack,
        whose physical names CloudFormation generates at deploy time (unknown to this stack)."""
        for stage_id, stack_name, region, verifier in self.verified_stacks:
            scope: IConstruct
            if verifier is None:
                (scope,) = [
                    node
                    for node in self.pipeline.node.find_all()
                    if node.node.path.endswith(f"/{stage_id}/VerifyDeploy")
                ]
                owner = account
            else:
                scope, owner = verifier.role, verifier.account
            where = f"arn:<AWS::Partition>:{{}}:{region}:{owner}:{{}}"
            named = (
                f"entrix verify reads the resources of stack {stack_name}, whose names "
                "CloudFormation generates with the stack's name as prefix."
            )
            findings = {
                where.format("cloudformation", f"stack/{stack_name}/*"): (
                    f":stack/{stack_name}/*",
                    named,
                ),
                where.format("lambda", f"function:{stack_name}-*"): (
                    f":function:{stack_name}-*",
                    named,
                ),
                where.format("cloudwatch", f"alarm:{stack_name}-*"): (
                    f":alarm:{stack_name}-*",
                    named + " DescribeAlarms only; SetAlarmState names the probe alarm.",
                ),
                where.format("sns", f"{stack_name}-*"): (f":sns:{region}:", named),
                where.format("states", "stateMachine:*"): (
                    ":stateMachine:*",
                    "Only the state machine CloudFormation tagged with the stage's stack name "
                    "(condition on aws:cloudformation:stack-name); its generated name does not "
                    "start with the stack's.",
                ),
            }
            if VERIFY_MODES[stage_id] == "full":
                findings |= {
                    where.format("secretsmanager", "secret:*"): (
                        ":secret:*",
                        "GetSecretValue only on secrets CloudFormation tagged with the stage's "
                        "stack name (condition on aws:cloudformation:stack-name): its JWT key.",
                    ),
                    f"arn:<AWS::Partition>:iam::{owner}:role/{stack_name}-*": (
                        f":role/{stack_name}-*",
                        named + " PassRole is limited to Step Functions.",
                    ),
                    where.format("states", "execution:*"): (
                        ":execution:*",
                        "DescribeExecution of the runs entrix verify starts; execution names "
                        "are made at run time.",
                    ),
                    "*": (
                        '"Resource": "*"',
                        "states:TestState has no resource-level permissions; the role a test "
                        "runs with is limited by the PassRole statement to the stage's own "
                        "roles.",
                    ),
                }
            for resource, (marker, reason) in findings.items():
                self._acknowledge(scope, f"AwsSolutions-IAM5[Resource::{resource}]", marker, reason)

    def _acknowledge_cross_region_findings(self) -> None:
        """A stage in another region than the pipeline gets a replication bucket there, in a
        support stack CodePipeline generates; its findings, when there is such a stage."""
        pipeline = self.pipeline.pipeline
        for support in pipeline.cross_region_support.values():
            bucket = support.replication_bucket
            acknowledge(
                bucket,
                "AwsSolutions-S1",
                "CodePipeline's replication bucket for a stage in another region holds only "
                "copies of this pipeline's KMS-encrypted artifacts, read by the deploy role; "
                "access logs would need another bucket in that region that could not log itself.",
            )
            name = self.resolve(bucket.bucket_name)
            self._acknowledge(
                pipeline.role,
                f"AwsSolutions-IAM5[Resource::arn:{partition(self)}:s3:::{name}/*]",
                name,
                "The pipeline copies artifacts into its replication bucket in the stage's "
                "region; object keys change with every execution.",
            )
        if pipeline.cross_region_support:
            # Not `"Resource": "*"`: @aws-cdk/aws-iam:minimizePolicies merges this statement
            # with the artifact key's (same actions), so "*" is one of its resources.
            self._acknowledge(
                pipeline.role,
                "AwsSolutions-IAM5[Resource::*]",
                '"*"',
                "KMS use of the replication buckets' keys: they live in support stacks of other "
                "regions and are referenced by alias, so their ARNs are unknown to this stack.",
            )
