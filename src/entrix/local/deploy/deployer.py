"""Create every resource of a synthesized template in the embedded AWS endpoint.

This is the local stand-in for a CloudFormation deployment: resources are created in dependency
order through the real AWS APIs (boto3 against moto's server), intrinsic functions are resolved
to the local names and ARNs, and what the endpoint cannot run itself (the REST API, schedules,
TTL) is handed to the local runtime as data (`Deployment.api`, `.schedules`, `.tables`).

Physical names are `<stack>-<LogicalId>` unless the template names the resource, so they stay the
same from one start to the next (the printed `aws ... --table-name` command keeps working).

Supported types are the keys of `Deployer.CREATORS`; `IGNORED_TYPES` are deliberately not
emulated (permissions, logging, monitoring and WAF have no local effect). Any other type stops the
deployment with an error naming it, so a new kind of resource in the CDK code is never dropped
silently.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import secrets
import string
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from entrix.local.lambda_runner import FunctionSpec
from entrix.local.secrets_extension import LocalSecretsExtension, is_extension_layer
from entrix.local.template import PseudoParameters, Resolver, Resource, Template, TemplateError

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
    }
)
# Custom resources run deploy-time code (log retention, bucket auto-delete): nothing to do here.
IGNORED_PREFIXES = ("Custom::", "AWS::CloudFormation::CustomResource")

# REST API parts: no AWS call, the local API Gateway emulation reads them from `Deployment.api`.
API_GATEWAY_TYPES = frozenset(
    {
        "AWS::ApiGateway::RestApi",
        "AWS::ApiGateway::Resource",
        "AWS::ApiGateway::Method",
        "AWS::ApiGateway::Authorizer",
        "AWS::ApiGateway::Deployment",
        "AWS::ApiGateway::Stage",
        "AWS::ApiGateway::GatewayResponse",
        "AWS::ApiGateway::RequestValidator",
        "AWS::ApiGateway::Model",
    }
)

# A valid but empty zip: moto stores function code, the runtime imports the installed package.
_EMPTY_ZIP = io.BytesIO()
zipfile.ZipFile(_EMPTY_ZIP, "w").close()
EMPTY_ZIP = _EMPTY_ZIP.getvalue()

ENTRIX_HANDLER_PREFIX = "entrix."


class DeploymentError(Exception):
    """The template cannot be deployed locally; the message names the resource."""


@dataclass(frozen=True)
class Schedule:
    """An EventBridge rule with a ScheduleExpression and the state machines it starts."""

    logical_id: str
    rule_arn: str
    expression: str
    state_machine_arns: tuple[str, ...]
    inputs: tuple[str | None, ...]
    enabled: bool


@dataclass
class Deployment:
    """What was created: physical names by logical id, and the parts the runtime drives itself."""

    stack_name: str
    region: str
    account_id: str
    names: dict[str, str] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)
    tables: dict[str, str | None] = field(default_factory=dict)  # table name -> TTL attribute
    topics: list[str] = field(default_factory=list)  # topic ARNs
    functions: dict[str, FunctionSpec] = field(default_factory=dict)  # by function name
    state_machines: dict[str, str] = field(default_factory=dict)  # logical id -> ARN
    schedules: list[Schedule] = field(default_factory=list)
    # REST API resources, resolved: logical id -> (type, properties), plus their assigned ids.
    api: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    api_ids: dict[str, str] = field(default_factory=dict)
    ignored: list[tuple[str, str]] = field(default_factory=list)

    def names_of(self, resource_type: str) -> list[str]:
        return [self.names[i] for i, t in self.types.items() if t == resource_type]


def check_supported(template: Template) -> None:
    """Raise `DeploymentError` naming every resource whose type the local runtime cannot handle."""
    unknown = [
        f"{r.logical_id} ({r.type})"
        for r in template.resources.values()
        if r.type not in Deployer.CREATORS
        and r.type not in IGNORED_TYPES
        and r.type not in API_GATEWAY_TYPES
        and not r.type.startswith(IGNORED_PREFIXES)
    ]
    if unknown:
        raise DeploymentError(
            "the local runtime cannot create these resources: "
            + ", ".join(unknown)
            + " (support the type in entrix/local/deploy.py, or list it in IGNORED_TYPES)"
        )


def physical_name(stack_name: str, logical_id: str, max_length: int = 64) -> str:
    """`<stack>-<LogicalId>`, shortened with a hash suffix when longer than the service allows."""
    name = f"{stack_name}-{logical_id}"
    if len(name) <= max_length:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: max_length - 9]}-{digest}"


def generate_secret_string(spec: dict[str, Any]) -> str:
    """A value for `GenerateSecretString`, honouring its character rules, drawn with `secrets`."""
    excluded = set(spec.get("ExcludeCharacters", ""))
    classes = []
    if not spec.get("ExcludeLowercase"):
        classes.append(string.ascii_lowercase)
    if not spec.get("ExcludeUppercase"):
        classes.append(string.ascii_uppercase)
    if not spec.get("ExcludeNumbers"):
        classes.append(string.digits)
    if not spec.get("ExcludePunctuation"):
        classes.append(string.punctuation)
    if spec.get("IncludeSpace"):
        classes.append(" ")
    classes = ["".join(c for c in chars if c not in excluded) for chars in classes]
    classes = [chars for chars in classes if chars]
    if not classes:
        raise DeploymentError("GenerateSecretString excludes every character")
    alphabet = "".join(classes)
    length = int(spec.get("PasswordLength", 32))
    value = [secrets.choice(alphabet) for _ in range(length)]
    if spec.get("RequireEachIncludedType", True) and length >= len(classes):
        positions = secrets.SystemRandom().sample(range(length), len(classes))
        for position, chars in zip(positions, classes, strict=True):
            value[position] = secrets.choice(chars)
    password = "".join(value)
    if "SecretStringTemplate" in spec:
        document = json.loads(spec["SecretStringTemplate"])
        document[spec["GenerateStringKey"]] = password
        return json.dumps(document)
    return password


def cap_wait_seconds(definition: dict[str, Any], max_seconds: int) -> dict[str, Any]:
    """The definition with every Wait state's fixed `Seconds` lowered to at most `max_seconds`.

    Only the local copy changes; the deployed definition keeps its waits.
    """

    def visit(states: dict[str, Any]) -> None:
        for state in states.values():
            if state.get("Type") == "Wait" and isinstance(state.get("Seconds"), int | float):
                state["Seconds"] = min(state["Seconds"], max_seconds)
            for nested in ("Iterator", "ItemProcessor"):
                if nested in state:
                    visit(state[nested].get("States", {}))
            for branch in state.get("Branches", []):
                visit(branch.get("States", {}))

    visit(definition.get("States", {}))
    return definition


class Deployer:
    """Creates the template's resources through `clients(service) -> boto3 client`."""

    CREATORS: ClassVar[dict[str, str]] = {
        "AWS::IAM::Role": "_role",
        "AWS::DynamoDB::Table": "_table",
        "AWS::S3::Bucket": "_bucket",
        "AWS::SNS::Topic": "_topic",
        "AWS::SNS::Subscription": "_subscription",
        "AWS::SQS::Queue": "_queue",
        "AWS::SecretsManager::Secret": "_secret",
        "AWS::Lambda::LayerVersion": "_layer",
        "AWS::Lambda::Function": "_function",
        "AWS::StepFunctions::StateMachine": "_state_machine",
        "AWS::Events::Rule": "_rule",
    }

    def __init__(
        self,
        template: Template,
        clients: Callable[[str], Any],
        *,
        pseudo: PseudoParameters,
        asset_dir: Path | None = None,
        max_wait_seconds: int | None = None,
        secrets_extension: LocalSecretsExtension | None = None,
    ) -> None:
        self.template = template
        self.clients = clients
        self.pseudo = pseudo
        self.asset_dir = asset_dir
        self.max_wait_seconds = max_wait_seconds
        self.secrets_extension = secrets_extension
        self.resolver = Resolver(template, pseudo)
        self.deployment = Deployment(pseudo.stack_name, pseudo.region, pseudo.account_id)
        self._layer_arns: set[str] = set()  # the layers this deployment published

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
        if resource.type in self.CREATORS:
            properties = self.resolver.resolve(resource.properties) or {}
            getattr(self, self.CREATORS[resource.type])(resource, properties)
        elif resource.type in API_GATEWAY_TYPES:
            self._api_part(resource)
        else:
            self._ignored(resource)

    def _name(self, resource: Resource, given: str | None, max_length: int = 64) -> str:
        name = given or physical_name(self.pseudo.stack_name, resource.logical_id, max_length)
        self.deployment.names[resource.logical_id] = name
        return name

    def _arn(self, service: str, resource_part: str, *, region: bool = True) -> str:
        where = (
            f"{self.pseudo.region}:{self.pseudo.account_id}"
            if region
            else (f":{self.pseudo.account_id}")
        )
        return f"arn:{self.pseudo.partition}:{service}:{where}:{resource_part}"

    def _ignored(self, resource: Resource) -> None:
        """Not created; a local name and ARN keep references to it resolvable."""
        name = self._name(resource, None)
        service = resource.type.split("::")[1].lower() if "::" in resource.type else "custom"
        self.resolver.set_ref(resource.logical_id, name)
        self.resolver.set_attribute(resource.logical_id, "Arn", self._arn(service, name))
        self.deployment.ignored.append((resource.logical_id, resource.type))

    def _role(self, resource: Resource, p: dict[str, Any]) -> None:
        """Created so functions have a role moto accepts; policies are not enforced locally."""
        name = self._name(resource, p.get("RoleName"))
        role = self.clients("iam").create_role(
            RoleName=name,
            Path=p.get("Path", "/"),
            AssumeRolePolicyDocument=json.dumps(p.get("AssumeRolePolicyDocument", {})),
        )["Role"]
        self.resolver.set_ref(resource.logical_id, name)
        self.resolver.set_attribute(resource.logical_id, "Arn", role["Arn"])
        self.resolver.set_attribute(resource.logical_id, "RoleId", role["RoleId"])

    def _table(self, resource: Resource, p: dict[str, Any]) -> None:
        name = self._name(resource, p.get("TableName"), 255)
        arguments: dict[str, Any] = {
            "TableName": name,
            "KeySchema": p["KeySchema"],
            "AttributeDefinitions": p["AttributeDefinitions"],
            "BillingMode": p.get("BillingMode", "PROVISIONED"),
        }
        if "ProvisionedThroughput" in p:
            arguments["ProvisionedThroughput"] = _ints(p["ProvisionedThroughput"])
        for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            if key in p:
                arguments[key] = [
                    {k: _ints(v) if k == "ProvisionedThroughput" else v for k, v in index.items()}
                    for index in p[key]
                ]
        if "StreamSpecification" in p:
            arguments["StreamSpecification"] = {"StreamEnabled": True, **p["StreamSpecification"]}
        dynamodb = self.clients("dynamodb")
        table = dynamodb.create_table(**arguments)["TableDescription"]
        ttl = p.get("TimeToLiveSpecification") or {}
        ttl_attribute = ttl.get("AttributeName") if ttl.get("Enabled") else None
        if ttl_attribute:
            dynamodb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl_attribute},
            )
        self.deployment.tables[name] = ttl_attribute
        self.resolver.set_ref(resource.logical_id, name)
        self.resolver.set_attribute(resource.logical_id, "Arn", table["TableArn"])
        if "LatestStreamArn" in table:
            self.resolver.set_attribute(resource.logical_id, "StreamArn", table["LatestStreamArn"])

    def _bucket(self, resource: Resource, p: dict[str, Any]) -> None:
        given = p.get("BucketName")
        name = given or _bucket_name(physical_name(self.pseudo.stack_name, resource.logical_id))
        self._name(resource, name)
        s3 = self.clients("s3")
        arguments: dict[str, Any] = {"Bucket": name}
        if self.pseudo.region != "us-east-1":
            arguments["CreateBucketConfiguration"] = {"LocationConstraint": self.pseudo.region}
        s3.create_bucket(**arguments)
        if p.get("VersioningConfiguration", {}).get("Status") == "Enabled":
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        suffix = self.pseudo.url_suffix
        self.resolver.set_ref(resource.logical_id, name)
        for attribute, value in {
            "Arn": f"arn:{self.pseudo.partition}:s3:::{name}",
            "DomainName": f"{name}.s3.{suffix}",
            "RegionalDomainName": f"{name}.s3.{self.pseudo.region}.{suffix}",
            "WebsiteURL": f"http://{name}.s3-website-{self.pseudo.region}.{suffix}",
        }.items():
            self.resolver.set_attribute(resource.logical_id, attribute, value)

    def _topic(self, resource: Resource, p: dict[str, Any]) -> None:
        name = self._name(resource, p.get("TopicName"), 256)
        attributes = {}
        if p.get("FifoTopic"):
            attributes["FifoTopic"] = "true"
        if "DisplayName" in p:
            attributes["DisplayName"] = p["DisplayName"]
        sns = self.clients("sns")
        arn = sns.create_topic(Name=name, Attributes=attributes)["TopicArn"]
        for subscription in p.get("Subscription", []):
            sns.subscribe(
                TopicArn=arn, Protocol=subscription["Protocol"], Endpoint=subscription["Endpoint"]
            )
        self.deployment.topics.append(arn)
        self.resolver.set_ref(resource.logical_id, arn)
        self.resolver.set_attribute(resource.logical_id, "TopicArn", arn)
        self.resolver.set_attribute(resource.logical_id, "TopicName", name)

    def _subscription(self, resource: Resource, p: dict[str, Any]) -> None:
        arguments: dict[str, Any] = {
            "TopicArn": p["TopicArn"],
            "Protocol": p["Protocol"],
            "Endpoint": p["Endpoint"],
            "ReturnSubscriptionArn": True,
        }
        attributes = {
            key: json.dumps(p[key]) if isinstance(p[key], dict) else str(p[key]).lower()
            for key in ("FilterPolicy", "RawMessageDelivery", "RedrivePolicy")
            if key in p
        }
        if attributes:
            arguments["Attributes"] = attributes
        arn = self.clients("sns").subscribe(**arguments)["SubscriptionArn"]
        self.deployment.names[resource.logical_id] = arn
        self.resolver.set_ref(resource.logical_id, arn)

    def _queue(self, resource: Resource, p: dict[str, Any]) -> None:
        name = p.get("QueueName") or physical_name(self.pseudo.stack_name, resource.logical_id, 80)
        if p.get("FifoQueue") and not name.endswith(".fifo"):
            name = name[:75] + ".fifo"
        self._name(resource, name)
        attributes = {
            key: _attribute_text(value) for key, value in p.items() if key in _QUEUE_ATTRIBUTES
        }
        sqs = self.clients("sqs")
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        self.resolver.set_ref(resource.logical_id, url)
        self.resolver.set_attribute(resource.logical_id, "QueueUrl", url)
        self.resolver.set_attribute(resource.logical_id, "QueueName", name)
        self.resolver.set_attribute(resource.logical_id, "Arn", self._arn("sqs", name))

    def _secret(self, resource: Resource, p: dict[str, Any]) -> None:
        name = self._name(resource, p.get("Name"), 512)
        if "SecretString" in p:
            value = p["SecretString"]
        elif "GenerateSecretString" in p:
            value = generate_secret_string(p["GenerateSecretString"])
        else:
            raise DeploymentError("a secret needs SecretString or GenerateSecretString")
        arguments: dict[str, Any] = {"Name": name, "SecretString": value}
        if "Description" in p:
            arguments["Description"] = p["Description"]
        if p.get("Tags"):
            arguments["Tags"] = p["Tags"]
        arn = self.clients("secretsmanager").create_secret(**arguments)["ARN"]
        self.resolver.set_ref(resource.logical_id, arn)
        self.resolver.set_attribute(resource.logical_id, "Id", arn)

    def _layer(self, resource: Resource, p: dict[str, Any]) -> None:
        name = self._name(resource, p.get("LayerName"), 140)
        arguments: dict[str, Any] = {"LayerName": name, "Content": {"ZipFile": EMPTY_ZIP}}
        for key in ("Description", "CompatibleRuntimes", "CompatibleArchitectures"):
            if key in p:
                arguments[key] = p[key]
        arn = self.clients("lambda").publish_layer_version(**arguments)["LayerVersionArn"]
        self._layer_arns.add(arn)
        self.resolver.set_ref(resource.logical_id, arn)

    def _function(self, resource: Resource, p: dict[str, Any]) -> None:
        name = self._name(resource, p.get("FunctionName"))
        handler = p.get("Handler", "")
        self._check_asset(resource, handler)
        layers, variables = self._layers(name, p.get("Layers", []))
        variables = {**p.get("Environment", {}).get("Variables", {}), **variables}
        arguments: dict[str, Any] = {
            "FunctionName": name,
            "Role": p["Role"],
            "Code": {"ZipFile": EMPTY_ZIP},
            "Handler": handler,
            "Runtime": p.get("Runtime", "python3.13"),
            "Timeout": int(p.get("Timeout", 3)),
            "MemorySize": int(p.get("MemorySize", 128)),
        }
        for key in ("Description", "Architectures", "TracingConfig"):
            if key in p:
                arguments[key] = p[key]
        if layers:
            arguments["Layers"] = layers
        if variables:
            arguments["Environment"] = {"Variables": variables}
        created = self.clients("lambda").create_function(**arguments)
        self.deployment.functions[name] = FunctionSpec(
            function_name=name,
            handler=handler,
            environment=variables,
            function_arn=created["FunctionArn"],
            region=self.pseudo.region,
            memory_size=arguments["MemorySize"],
            timeout=arguments["Timeout"],
            runtime=arguments["Runtime"],
        )
        self.resolver.set_ref(resource.logical_id, name)
        self.resolver.set_attribute(resource.logical_id, "Arn", created["FunctionArn"])

    def _layers(self, function_name: str, layers: list[str]) -> tuple[list[str], dict[str, str]]:
        """The layers moto is given (this deployment's own), and the variables the function
        gets from the emulated Parameters and Secrets Extension when its layer is attached."""
        own, variables = [], {}
        for arn in layers:
            if arn in self._layer_arns:
                own.append(arn)
            elif is_extension_layer(arn):
                if self.secrets_extension is None:
                    raise DeploymentError(
                        f"{function_name} has the AWS Parameters and Secrets Lambda Extension "
                        f"({arn}) and this deployment serves no local extension"
                    )
                variables = self.secrets_extension.register(function_name)
            else:
                raise DeploymentError(
                    f"layer {arn} is neither a layer of this template nor the AWS Parameters "
                    "and Secrets Lambda Extension: the local runtime cannot provide it"
                )
        return own, variables

    def _check_asset(self, resource: Resource, handler: str) -> None:
        """The function's code asset, when synthesized, must hold the module the handler names."""
        asset = resource.metadata.get("aws:asset:path")
        if not (handler.startswith(ENTRIX_HANDLER_PREFIX) and asset and self.asset_dir):
            return
        asset_path = self.asset_dir / asset
        if not asset_path.is_dir():
            return
        module = handler.rpartition(".")[0].replace(".", "/")
        if not (asset_path / f"{module}.py").is_file():
            raise DeploymentError(f"code asset {asset_path} does not contain {module}.py")

    def _state_machine(self, resource: Resource, p: dict[str, Any]) -> None:
        name = self._name(resource, p.get("StateMachineName"), 80)
        if "DefinitionString" in p:
            definition = json.loads(p["DefinitionString"])
        elif "Definition" in p:
            definition = p["Definition"]
        else:
            raise DeploymentError("a state machine needs DefinitionString or Definition")
        for key, value in (p.get("DefinitionSubstitutions") or {}).items():
            definition = json.loads(json.dumps(definition).replace("${" + key + "}", str(value)))
        if self.max_wait_seconds is not None:
            definition = cap_wait_seconds(definition, self.max_wait_seconds)
        arn = self.clients("stepfunctions").create_state_machine(
            name=name,
            definition=json.dumps(definition),
            roleArn=p["RoleArn"],
            type=p.get("StateMachineType", "STANDARD"),
        )["stateMachineArn"]
        self.deployment.state_machines[resource.logical_id] = arn
        self.resolver.set_ref(resource.logical_id, arn)
        self.resolver.set_attribute(resource.logical_id, "Arn", arn)
        self.resolver.set_attribute(resource.logical_id, "Name", name)

    def _rule(self, resource: Resource, p: dict[str, Any]) -> None:
        """Recorded in the endpoint for inspection; the local scheduler fires the schedules."""
        name = self._name(resource, p.get("Name"))
        arguments: dict[str, Any] = {"Name": name, "State": p.get("State", "ENABLED")}
        for key in ("ScheduleExpression", "Description"):
            if key in p:
                arguments[key] = p[key]
        if "EventPattern" in p:
            arguments["EventPattern"] = json.dumps(p["EventPattern"])
        events = self.clients("events")
        arn = events.put_rule(**arguments)["RuleArn"]
        targets = p.get("Targets", [])
        if targets:
            events.put_targets(
                Rule=name,
                Targets=[
                    {k: v for k, v in t.items() if k in ("Id", "Arn", "RoleArn", "Input")}
                    for t in targets
                ],
            )
        if "ScheduleExpression" in p:
            machines = [t for t in targets if ":states:" in t["Arn"]]
            self.deployment.schedules.append(
                Schedule(
                    logical_id=resource.logical_id,
                    rule_arn=arn,
                    expression=p["ScheduleExpression"],
                    state_machine_arns=tuple(t["Arn"] for t in machines),
                    inputs=tuple(t.get("Input") for t in machines),
                    enabled=arguments["State"] == "ENABLED",
                )
            )
        self.resolver.set_ref(resource.logical_id, name)
        self.resolver.set_attribute(resource.logical_id, "Arn", arn)

    def _api_part(self, resource: Resource) -> None:
        """Assign the id API Gateway would, and keep the resolved part for the emulation."""
        api_id = _api_id(self.pseudo.stack_name, resource.logical_id)
        self.deployment.api_ids[resource.logical_id] = api_id
        self.deployment.names[resource.logical_id] = api_id
        self.resolver.set_ref(resource.logical_id, api_id)
        if resource.type == "AWS::ApiGateway::RestApi":
            root_id = _api_id(self.pseudo.stack_name, resource.logical_id + "/")
            self.resolver.set_attribute(resource.logical_id, "RootResourceId", root_id)
            self.deployment.api_ids[resource.logical_id + "/"] = root_id
        if resource.type == "AWS::ApiGateway::Stage":
            self.deployment.names[resource.logical_id] = resource.properties.get(
                "StageName", api_id
            )
            self.resolver.set_ref(resource.logical_id, self.deployment.names[resource.logical_id])
        properties = self.resolver.resolve(resource.properties) or {}
        if resource.type == "AWS::ApiGateway::Authorizer":
            self.resolver.set_attribute(resource.logical_id, "AuthorizerId", api_id)
        self.deployment.api[resource.logical_id] = (resource.type, properties)


# Queue properties that are SQS queue attributes of the same name (KMS is not emulated).
_QUEUE_ATTRIBUTES = frozenset(
    {
        "DelaySeconds",
        "MaximumMessageSize",
        "MessageRetentionPeriod",
        "ReceiveMessageWaitTimeSeconds",
        "VisibilityTimeout",
        "RedrivePolicy",
        "RedriveAllowPolicy",
        "FifoQueue",
        "ContentBasedDeduplication",
        "DeduplicationScope",
        "FifoThroughputLimit",
        "SqsManagedSseEnabled",
    }
)


def _attribute_text(value: Any) -> str:
    if isinstance(value, dict):
        return json.dumps(value)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _ints(throughput: dict[str, Any]) -> dict[str, int]:
    return {k: int(v) for k, v in throughput.items()}


def _bucket_name(name: str) -> str:
    """A valid S3 bucket name: lowercase letters, digits and hyphens, 3 to 63 characters."""
    cleaned = re.sub(r"[^a-z0-9-]", "-", name.lower()).strip("-")
    if len(cleaned) <= 63:
        return cleaned
    return f"{cleaned[:54]}-{hashlib.sha256(cleaned.encode()).hexdigest()[:8]}"


def _api_id(stack_name: str, logical_id: str) -> str:
    """A stable ten-character id like the ones API Gateway assigns."""
    return hashlib.sha256(f"{stack_name}/{logical_id}".encode()).hexdigest()[:10]
