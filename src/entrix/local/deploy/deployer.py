"""Create every resource of a synthesized template in the embedded AWS endpoint.

This is the local stand-in for a CloudFormation deployment: resources are created in dependency
order through the real AWS APIs (boto3 against moto's server), intrinsic functions are resolved
to the local names and ARNs, and what the endpoint cannot run itself (the REST API, schedules,
TTL, stream mappings) is handed to the local runtime as data (`Deployment.api`, `.schedules`,
`.tables`, `.stream_mappings`).

Physical names are `<stack>-<LogicalId>` unless the template names the resource, so they stay the
same from one start to the next (the printed `aws ... --table-name` command keeps working).

Supported types are the keys of `CREATORS`, one creator per type in the module of its service;
`IGNORED_TYPES` are deliberately not emulated (permissions, logging, monitoring and WAF have no
local effect). Any other type stops the deployment with an error naming it, so a new kind of
resource in the CDK code is never dropped silently.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import Any

from entrix.local.apigateway.model import unemulated_features
from entrix.local.deploy import (
    apigateway,
    dynamodb,
    events,
    iam,
    lambda_,
    s3,
    secretsmanager,
    sns,
    sqs,
    stepfunctions,
)
from entrix.local.deploy.deployment import Deployment, DeploymentError, physical_name
from entrix.local.secrets_extension import LocalSecretsExtension
from entrix.local.template import PseudoParameters, Resolver, Resource, Template, TemplateError

# Creates one resource from its resolved properties, and records its Ref and attributes.
Creator = Callable[["Deployer", Resource, dict[str, Any]], None]

CREATORS: dict[str, Creator] = {
    "AWS::IAM::Role": iam.create_role,
    "AWS::DynamoDB::Table": dynamodb.create_table,
    "AWS::S3::Bucket": s3.create_bucket,
    "AWS::SNS::Topic": sns.create_topic,
    "AWS::SNS::Subscription": sns.create_subscription,
    "AWS::SQS::Queue": sqs.create_queue,
    "AWS::SecretsManager::Secret": secretsmanager.create_secret,
    "AWS::SecretsManager::RotationSchedule": secretsmanager.create_rotation_schedule,
    "AWS::Lambda::LayerVersion": lambda_.create_layer,
    "AWS::Lambda::Function": lambda_.create_function,
    "AWS::Lambda::Version": lambda_.create_version,
    "AWS::Lambda::Alias": lambda_.create_alias,
    "AWS::Lambda::EventSourceMapping": lambda_.create_event_source_mapping,
    "AWS::StepFunctions::StateMachine": stepfunctions.create_state_machine,
    "AWS::Events::Rule": events.create_rule,
    **{resource_type: apigateway.record_part for resource_type in apigateway.TYPES},
}

# Types with no local effect: the endpoint does not enforce IAM, and nothing reads logs, alarms,
# dashboards, WAF rules or API Gateway's account settings locally. References to them still
# resolve (to a local name and a made-up ARN) so resources that mention them can be created.
IGNORED_TYPES = frozenset(
    {
        "AWS::CDK::Metadata",
        "AWS::IAM::Policy",
        "AWS::IAM::ManagedPolicy",
        "AWS::Lambda::Permission",
        "AWS::Logs::LogGroup",
        "AWS::Logs::MetricFilter",
        "AWS::CloudWatch::Alarm",
        "AWS::CloudWatch::CompositeAlarm",
        "AWS::CloudWatch::Dashboard",
        "AWS::KMS::Key",
        "AWS::KMS::Alias",
        "AWS::S3::BucketPolicy",
        "AWS::SNS::TopicPolicy",
        "AWS::SQS::QueuePolicy",
        "AWS::WAFv2::WebACL",
        "AWS::WAFv2::WebACLAssociation",
        "AWS::ApiGateway::Account",
        # CodeDeploy shifts an alias gradually in AWS; locally a deployment is all at once.
        "AWS::CodeDeploy::Application",
        "AWS::CodeDeploy::DeploymentGroup",
    }
)
# Custom resources run deploy-time code (log retention, bucket auto-delete): nothing to do here.
IGNORED_PREFIXES = ("Custom::", "AWS::CloudFormation::CustomResource")


def check_supported(template: Template) -> None:
    """Raise `DeploymentError` naming every resource whose type the local runtime cannot handle,
    or that uses a REST API feature its API Gateway emulation does not serve."""
    unknown = [
        f"{r.logical_id} ({r.type})"
        for r in template.resources.values()
        if r.type not in CREATORS
        and r.type not in IGNORED_TYPES
        and not r.type.startswith(IGNORED_PREFIXES)
    ]
    if unknown:
        raise DeploymentError(
            "the local runtime cannot create these resources: "
            + ", ".join(unknown)
            + " (register a creator in CREATORS of entrix/local/deploy/deployer.py,"
            + " or list the type in IGNORED_TYPES)"
        )
    refused = unemulated_features(
        (r.logical_id, r.type, r.properties) for r in template.resources.values()
    )
    if refused:
        raise DeploymentError(
            "the local API Gateway emulation does not serve: " + "; ".join(refused)
        )


@dataclass(eq=False)  # one deployment in progress: compared by identity
class Deployer:
    """Creates the template's resources through `clients(service) -> boto3 client`.

    The creators read what they need from it: the clients, the pseudo parameters, the options
    of one service (`asset_dir`, `secrets_extension`, `jwks_url`, `max_wait_seconds`) and
    `deployment`.
    """

    template: Template
    clients: Callable[[str], Any]
    _: KW_ONLY
    pseudo: PseudoParameters
    asset_dir: Path | None = None
    max_wait_seconds: int | None = None
    secrets_extension: LocalSecretsExtension | None = None
    # The local identity provider's JWKS URL, for functions that verify an issuer's tokens.
    jwks_url: str | None = None
    resolver: Resolver = field(init=False)
    deployment: Deployment = field(init=False)
    layer_arns: set[str] = field(init=False, default_factory=set)  # the layers it published

    def __post_init__(self) -> None:
        self.resolver = Resolver(self.template, self.pseudo)
        self.deployment = Deployment(
            self.pseudo.stack_name, self.pseudo.region, self.pseudo.account_id
        )

    def deploy(self) -> Deployment:
        check_supported(self.template)
        for resource in self.template.creation_order():
            if not self.resolver.is_enabled(resource):
                continue
            try:
                self._create(resource)
            except (TemplateError, DeploymentError) as error:
                raise DeploymentError(f"{resource.logical_id} ({resource.type}): {error}") from None
            self.deployment.types[resource.logical_id] = resource.type
        return self.deployment

    def _create(self, resource: Resource) -> None:
        if resource.type in CREATORS:
            properties = self.resolver.resolve(resource.properties) or {}
            CREATORS[resource.type](self, resource, properties)
        else:
            self._ignored(resource)

    def name(self, resource: Resource, given: str | None, max_length: int = 64) -> str:
        """The physical name: the template's, or `<stack>-<LogicalId>` within `max_length`."""
        name = given or physical_name(self.pseudo.stack_name, resource.logical_id, max_length)
        self.deployment.names[resource.logical_id] = name
        return name

    def arn(self, service: str, resource_part: str) -> str:
        """An ARN in this deployment's partition, region and account."""
        pseudo = self.pseudo
        return (
            f"arn:{pseudo.partition}:{service}:{pseudo.region}:{pseudo.account_id}:{resource_part}"
        )

    def provide(self, resource: Resource, ref: Any, **attributes: Any) -> None:
        """What `Ref` and `Fn::GetAtt` of the resource resolve to from now on."""
        self.resolver.set_ref(resource.logical_id, ref)
        for attribute, value in attributes.items():
            self.resolver.set_attribute(resource.logical_id, attribute, value)

    def _ignored(self, resource: Resource) -> None:
        """Not created; a local name and ARN keep references to it resolvable."""
        name = self.name(resource, None)
        service = resource.type.split("::")[1].lower() if "::" in resource.type else "custom"
        self.provide(resource, name, Arn=self.arn(service, name))
        self.deployment.ignored.append((resource.logical_id, resource.type))
