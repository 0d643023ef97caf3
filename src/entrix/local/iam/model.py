"""A synthesized CloudFormation template read as AWS would see it deployed: names, ARNs and the
policies that govern each resource.

Intrinsic functions are resolved with the local runtime's resolver (entrix.local.template), fed
with the names and ARNs CloudFormation would return: a resource's name is the one the template
gives it, else `<stack>-<LogicalId>`, in the account ACCOUNT. Nothing here is hand-kept about
this project: roles, policies and resources are whatever the template holds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from entrix.local.synth import stack_region
from entrix.local.template import PseudoParameters, Resolver, Resource, Template, TemplateError

ACCOUNT = "123456789012"

# AWS managed policies a template may attach by ARN: their documents as AWS publishes them, as
# the template cannot show them. A role with any other managed policy is reported, not guessed.
AWS_MANAGED_POLICIES: dict[str, dict[str, Any]] = {
    "service-role/AmazonAPIGatewayPushToCloudWatchLogs": {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:DescribeLogGroups",
                    "logs:DescribeLogStreams",
                    "logs:PutLogEvents",
                    "logs:GetLogEvents",
                    "logs:FilterLogEvents",
                ],
                "Resource": "*",
            }
        ],
    },
    # CodeDeploy's role for Lambda deployments (the gradual deploys' aliases).
    "service-role/AWSCodeDeployRoleForLambdaLimited": {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [
                    "cloudwatch:DescribeAlarms",
                    "lambda:UpdateAlias",
                    "lambda:GetAlias",
                    "lambda:GetProvisionedConcurrencyConfig",
                    "sns:Publish",
                ],
                "Resource": "*",
            },
            {
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                "Resource": "arn:aws:s3:::*/CodeDeploy/*",
            },
            {
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                "Resource": "*",
                "Condition": {"StringEquals": {"s3:ExistingObjectTag/UseWithCodeDeploy": "true"}},
            },
            {
                "Effect": "Allow",
                "Action": "lambda:InvokeFunction",
                "Resource": "arn:aws:lambda:*:*:function:CodeDeployHook_*",
            },
        ],
    },
    "service-role/AWSLambdaBasicExecutionRole": {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": "*",
            }
        ],
    },
}


class ModelError(Exception):
    """The template holds something the model cannot read; the message names it."""


class _TemplateResolver(Resolver):
    """The local resolver, answering any attribute it was not told with a readable stand-in
    (only ARNs and names matter to permissions, and those are all set)."""

    def get_att(self, logical_id: str, attribute: str) -> Any:
        try:
            return super().get_att(logical_id, attribute)
        except TemplateError:
            return f"{logical_id}.{attribute}"


# The property that names a resource, where the template may set the name itself.
_NAME_PROPERTIES = {
    "AWS::S3::Bucket": "BucketName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::IAM::Role": "RoleName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::SecretsManager::Secret": "Name",
    "AWS::StepFunctions::StateMachine": "StateMachineName",
    "AWS::Events::Rule": "Name",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::CodeStarNotifications::NotificationRule": "Name",
}


# Types whose Ref is their ARN.
_REF_IS_ARN = frozenset(
    {
        "AWS::SNS::Topic",
        "AWS::SecretsManager::Secret",
        "AWS::StepFunctions::StateMachine",
        "AWS::Lambda::Version",
        "AWS::Lambda::Alias",
    }
)


def _service(resource_type: str) -> str:
    return resource_type.split("::")[1].lower()


@dataclass(frozen=True)
class Role:
    """An IAM role of the template: who may assume it, and every policy attached to it."""

    logical_id: str
    arn: str
    trust_policy: dict[str, Any]
    policies: tuple[dict[str, Any], ...]


class StackModel:
    """One stack template, resolved: `arn(logical_id)`, `props(logical_id)`, its roles and the
    resource policies and encryption keys of its topics, buckets, queues and functions."""

    def __init__(self, name: str, template: dict[str, Any], region: str) -> None:
        self.name = name
        self.body = template
        self.template = Template.from_dict(template)
        self.region = region
        self.account = ACCOUNT
        self.pseudo = PseudoParameters(region=region, account_id=ACCOUNT, stack_name=name)
        self.resolver = _TemplateResolver(self.template, self.pseudo)
        # As CloudFormation creates them: a name built from another resource's name resolves.
        for resource in self.template.creation_order():
            self._name_resource(resource)

    @classmethod
    def load(cls, path: Path) -> StackModel:
        name = path.name.removesuffix(".template.json")
        return cls(name, json.loads(path.read_text()), stack_region(path, name))

    # -- names and ARNs ------------------------------------------------------------------------

    def _name_resource(self, r: Resource) -> None:
        """Tell the resolver what `Ref` and `Fn::GetAtt` return for this resource."""
        region, account = self.region, self.account
        name_property = _NAME_PROPERTIES.get(r.type)
        given = r.properties.get(name_property) if name_property else None
        if given is not None:
            name = str(self.resolver.resolve(given))
        else:
            name = f"{self.name}-{r.logical_id}"
            if r.type == "AWS::S3::Bucket":
                name = name.lower()
        ref: str = name
        attributes: dict[str, str] = {}
        t = r.type
        if t == "AWS::S3::Bucket":
            attributes["Arn"] = f"arn:aws:s3:::{name}"
        elif t == "AWS::SNS::Topic":
            ref = f"arn:aws:sns:{region}:{account}:{name}"
            attributes |= {"TopicArn": ref, "TopicName": name}
        elif t == "AWS::SQS::Queue":
            ref = f"https://sqs.{region}.amazonaws.com/{account}/{name}"
            attributes |= {
                "Arn": f"arn:aws:sqs:{region}:{account}:{name}",
                "QueueName": name,
                "QueueUrl": ref,
            }
        elif t == "AWS::Lambda::Function":
            attributes["Arn"] = f"arn:aws:lambda:{region}:{account}:function:{name}"
        elif t == "AWS::IAM::Role":
            attributes["Arn"] = f"arn:aws:iam::{account}:role/{name}"
        elif t == "AWS::DynamoDB::Table":
            attributes["Arn"] = f"arn:aws:dynamodb:{region}:{account}:table/{name}"
            # A stream's ARN ends in the time DynamoDB enabled it.
            attributes["StreamArn"] = f"{attributes['Arn']}/stream/2026-01-01T00:00:00.000"
        elif t == "AWS::SecretsManager::Secret":
            # Secrets Manager appends six random characters to the name.
            ref = f"arn:aws:secretsmanager:{region}:{account}:secret:{name}-AbCdEf"
            attributes["Id"] = ref
        elif t == "AWS::KMS::Key":
            ref = r.logical_id.lower()
            attributes |= {"Arn": f"arn:aws:kms:{region}:{account}:key/{ref}", "KeyId": ref}
        elif t == "AWS::StepFunctions::StateMachine":
            ref = f"arn:aws:states:{region}:{account}:stateMachine:{name}"
            attributes |= {"Arn": ref, "Name": name}
        elif t == "AWS::Events::Rule":
            attributes["Arn"] = f"arn:aws:events:{region}:{account}:rule/{name}"
        elif t == "AWS::Logs::LogGroup":
            attributes["Arn"] = f"arn:aws:logs:{region}:{account}:log-group:{name}:*"
        elif t == "AWS::CloudWatch::Alarm":
            attributes["Arn"] = f"arn:aws:cloudwatch:{region}:{account}:alarm:{name}"
        elif t == "AWS::CodeBuild::Project":
            attributes["Arn"] = f"arn:aws:codebuild:{region}:{account}:project/{name}"
        elif t == "AWS::CodeStarNotifications::NotificationRule":
            ref = f"arn:aws:codestar-notifications:{region}:{account}:notificationrule/{name}"
            attributes["Arn"] = ref
        elif t == "AWS::ApiGateway::Stage" and isinstance(r.properties.get("StageName"), str):
            ref = r.properties["StageName"]
        elif t in ("AWS::Lambda::Version", "AWS::Lambda::Alias"):
            # A qualified ARN: the function's, then the version's number or the alias's name.
            function = self.resolver.resolve(r.properties["FunctionName"])
            qualifier = r.properties.get("Name", "1")
            ref = f"arn:aws:lambda:{region}:{account}:function:{function}:{qualifier}"
            if t == "AWS::Lambda::Version":
                attributes |= {"Version": qualifier, "FunctionArn": ref}
        elif t == "AWS::Lambda::LayerVersion":
            ref = f"arn:aws:lambda:{region}:{account}:layer:{name}:1"
        else:
            attributes["Arn"] = f"arn:aws:{_service(t)}:{region}:{account}:{name}"
        self.resolver.set_ref(r.logical_id, ref)
        for attribute, value in attributes.items():
            self.resolver.set_attribute(r.logical_id, attribute, value)

    def resolve(self, value: Any) -> Any:
        return self.resolver.resolve(value)

    def ref(self, logical_id: str) -> Any:
        return self.resolve({"Ref": logical_id})

    def arn(self, logical_id: str) -> str:
        if self.template.resources[logical_id].type in _REF_IS_ARN:
            return str(self.ref(logical_id))
        return str(self.resolve({"Fn::GetAtt": [logical_id, "Arn"]}))

    def props(self, logical_id: str) -> dict[str, Any]:
        return self.resolve(self.template.resources[logical_id].properties) or {}

    def of_type(self, resource_type: str) -> list[Resource]:
        return [r for r in self.template.of_type(resource_type) if self.resolver.is_enabled(r)]

    def logical_id_of(self, resource_type: str, arn_or_ref: str) -> str | None:
        """The resource of that type whose ARN or Ref is `arn_or_ref`, if the template has it."""
        for resource in self.of_type(resource_type):
            if arn_or_ref in (self.arn(resource.logical_id), self.ref(resource.logical_id)):
                return resource.logical_id
        return None

    def function_of(self, name_or_arn: str) -> str | None:
        """The function a caller names by its name or ARN, either of them possibly qualified
        (`:live`, `:3`): the logical id of the AWS::Lambda::Function, if in the template."""
        if not name_or_arn.startswith("arn:"):
            name_or_arn = f"arn:aws:lambda:{self.region}:{self.account}:function:{name_or_arn}"
        unqualified = ":".join(name_or_arn.split(":")[:7])
        return self.logical_id_of("AWS::Lambda::Function", unqualified)

    def alias_arns(self) -> set[str]:
        """The ARN of every Lambda alias of the template."""
        return {self.ref(alias.logical_id) for alias in self.of_type("AWS::Lambda::Alias")}

    # -- roles ---------------------------------------------------------------------------------

    def role(self, arn: str) -> Role:
        logical_id = self.logical_id_of("AWS::IAM::Role", arn)
        if logical_id is None:
            raise ModelError(f"role {arn} is not defined in stack {self.name}")
        p = self.props(logical_id)
        name = self.ref(logical_id)
        policies = [inline["PolicyDocument"] for inline in p.get("Policies", [])]
        for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            for policy in self.of_type(kind):
                attached = self.props(policy.logical_id)
                if name in attached.get("Roles", []):
                    policies.append(attached["PolicyDocument"])
        for managed in p.get("ManagedPolicyArns", []):
            policies.append(self._managed_policy(managed))
        return Role(logical_id, arn, p.get("AssumeRolePolicyDocument", {}), tuple(policies))

    def _managed_policy(self, arn: str) -> dict[str, Any]:
        own = self.logical_id_of("AWS::IAM::ManagedPolicy", arn)
        if own is not None:
            document: dict[str, Any] = self.props(own)["PolicyDocument"]
            return document
        prefix = "arn:aws:iam::aws:policy/"
        if arn.startswith(prefix) and arn[len(prefix) :] in AWS_MANAGED_POLICIES:
            return AWS_MANAGED_POLICIES[arn[len(prefix) :]]
        raise ModelError(f"managed policy {arn} is neither in the template nor a known AWS one")

    def function_role(self, function_logical_id: str) -> Role:
        return self.role(self.props(function_logical_id)["Role"])

    # -- resource policies and keys ------------------------------------------------------------

    def _policies_naming(self, kind: str, key: str, value: str) -> dict[str, Any] | None:
        """The statements of every `kind` policy resource whose `key` list (or value) holds
        `value`, as one document; None when there is none."""
        statements: list[Any] = []
        for policy in self.of_type(kind):
            p = self.props(policy.logical_id)
            targets = p.get(key)
            if value in (targets if isinstance(targets, list) else [targets]):
                document = p["PolicyDocument"]
                found = document["Statement"]
                statements.extend(found if isinstance(found, list) else [found])
        return {"Version": "2012-10-17", "Statement": statements} if statements else None

    def topic_policy(self, topic_arn: str) -> dict[str, Any] | None:
        return self._policies_naming("AWS::SNS::TopicPolicy", "Topics", topic_arn)

    def queue_policy(self, queue_arn: str) -> dict[str, Any] | None:
        logical_id = self.logical_id_of("AWS::SQS::Queue", queue_arn)
        url = self.ref(logical_id) if logical_id else queue_arn
        return self._policies_naming("AWS::SQS::QueuePolicy", "Queues", url)

    def bucket_policy(self, bucket_name: str) -> dict[str, Any] | None:
        return self._policies_naming("AWS::S3::BucketPolicy", "Bucket", bucket_name)

    def key_policy(self, key_arn: str) -> dict[str, Any]:
        logical_id = self.logical_id_of("AWS::KMS::Key", key_arn)
        if logical_id is None:
            raise ModelError(f"KMS key {key_arn} is not defined in stack {self.name}")
        policy: dict[str, Any] = self.props(logical_id)["KeyPolicy"]
        return policy

    def function_policy(self, function_arn: str) -> dict[str, Any] | None:
        """The function's resource policy, as Lambda builds it from its Permission resources."""
        statements = []
        for permission in self.of_type("AWS::Lambda::Permission"):
            p = self.props(permission.logical_id)
            target = p["FunctionName"]
            if not target.startswith("arn:"):
                target = f"arn:aws:lambda:{self.region}:{self.account}:function:{target}"
            if target != function_arn:
                continue
            principal = p["Principal"]
            condition: dict[str, Any] = {}
            if "SourceArn" in p:
                condition["ArnLike"] = {"AWS:SourceArn": p["SourceArn"]}
            if "SourceAccount" in p:
                condition["StringEquals"] = {"AWS:SourceAccount": p["SourceAccount"]}
            statement: dict[str, Any] = {
                "Effect": "Allow",
                "Principal": {"Service": principal}
                if principal.endswith(".amazonaws.com")
                else {"AWS": principal},
                "Action": p["Action"],
                "Resource": function_arn,
            }
            if condition:
                statement["Condition"] = condition
            statements.append(statement)
        return {"Version": "2012-10-17", "Statement": statements} if statements else None

    def topic_key(self, topic_arn: str) -> str | None:
        """The ARN of the customer managed key encrypting the topic, if any."""
        logical_id = self.logical_id_of("AWS::SNS::Topic", topic_arn)
        if logical_id is None:
            return None
        return self._key_arn(self.props(logical_id).get("KmsMasterKeyId"))

    def queue_key(self, queue_arn: str) -> str | None:
        logical_id = self.logical_id_of("AWS::SQS::Queue", queue_arn)
        if logical_id is None:
            return None
        return self._key_arn(self.props(logical_id).get("KmsMasterKeyId"))

    def _key_arn(self, key: str | None) -> str | None:
        """A customer managed key's ARN; None for no key or an AWS managed one (alias/aws/...)."""
        if not key or key.startswith("alias/aws/"):
            return None
        if key.startswith("arn:"):
            return key
        for resource in self.of_type("AWS::KMS::Key"):
            if key == self.ref(resource.logical_id):
                return self.arn(resource.logical_id)
        raise ModelError(f"key {key} is not a key of stack {self.name}")
