"""Create every resource of a synthesized template in the embedded AWS endpoint.

This is the local stand-in for a CloudFormation deployment: resources are created in dependency
order through the real AWS APIs (boto3 against moto's server), intrinsic functions are resolved
to the local names and ARNs, and what the endpoint cannot run itself (the REST API, schedules,
TTL, stream mappings) is handed to the local runtime as data (`Deployment.api`, `.schedules`,
`.tables`, `.stream_mappings`).

Physical names are `<stack>-<LogicalId>` unless the template names the resource, so they stay the
same from one start to the next (the printed `aws ... --table-name` command keeps working).

Supported types are the keys of `CREATORS` (entrix.local.deploy.registry): one creator per type,
registered with `@creates` in the module of its service. `IGNORED_TYPES` are deliberately not
emulated (permissions, logging, monitoring and WAF have no local effect). Any other type stops
the deployment with an error naming it, so a new kind of resource in the CDK code is never
dropped silently.
"""

from __future__ import annotations

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
from entrix.local.deploy.deployment import Deployment, DeploymentError
from entrix.local.deploy.registry import CREATORS, DeployContext
from entrix.local.template import Resource, Template, TemplateError

# The service modules: importing each registers its creators in CREATORS.
SERVICES = (apigateway, dynamodb, events, iam, lambda_, s3, secretsmanager, sns, sqs, stepfunctions)

# Types not created in the endpoint: policies, permissions and keys are read from the template by
# the local enforcement (entrix.local.iam), and nothing reads logs, alarms, dashboards, WAF rules
# or API Gateway's account settings locally. References to them still
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
        "AWS::WAFv2::LoggingConfiguration",
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
            + " (register a creator with @creates in its service's module of entrix/local/deploy,"
            + " or list the type in IGNORED_TYPES)"
        )
    refused = unemulated_features(
        (r.logical_id, r.type, r.properties) for r in template.resources.values()
    )
    if refused:
        raise DeploymentError(
            "the local API Gateway emulation does not serve: " + "; ".join(refused)
        )


class Deployer(DeployContext):
    """Creates the template's resources through `clients(service) -> boto3 client`, each by the
    creator registered for its type."""

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

    def _ignored(self, resource: Resource) -> None:
        """Not created; a local name and ARN keep references to it resolvable."""
        name = self.name(resource, None)
        service = resource.type.split("::")[1].lower() if "::" in resource.type else "custom"
        self.provide(resource, name, Arn=self.arn(service, name))
        self.deployment.ignored.append((resource.logical_id, resource.type))
