"""Lambda layers, functions, versions, aliases and stream mappings: moto stores functions with
empty code, the runtime runs the handler (and polls the streams the mappings name).

Versions and aliases are moto's own, so a caller that names `<function>:live` (as every caller
of the template does) runs the version the alias points at, with that version's configuration;
pointing the alias elsewhere (`entrix rollback`) changes what the callers run.

A function's `FunctionSpec` goes into `Deployment.functions` for the local Lambda runner, which
imports the installed package; the only layers a function may have are this template's own and
the AWS Parameters and Secrets Extension, which `LocalSecretsExtension` emulates. A function
that verifies an identity provider's tokens (JWT_KEY_SOURCE jwks) gets the local identity
provider's JWKS URL instead of the template's, which no local system can reach.
"""

from __future__ import annotations

import io
import zipfile
from typing import Any

from entrix import settings
from entrix.local.call_log import Call
from entrix.local.deploy.deployment import DeploymentError
from entrix.local.deploy.registry import DeployContext, creates
from entrix.local.lambda_runner import LOGGING_CONFIG_ATTRIBUTE, FunctionSpec, logging_fields
from entrix.local.secrets_extension import is_extension_layer
from entrix.local.streams import StreamMapping
from entrix.local.template import Resource

# A valid but empty zip: moto stores function code, the runtime imports the installed package.
_EMPTY_ZIP = io.BytesIO()
zipfile.ZipFile(_EMPTY_ZIP, "w").close()
EMPTY_ZIP = _EMPTY_ZIP.getvalue()

ENTRIX_HANDLER_PREFIX = "entrix."


@creates("AWS::Lambda::LayerVersion")
def create_layer(deployer: DeployContext, resource: Resource, p: dict[str, Any]) -> None:
    name = deployer.name(resource, p.get("LayerName"), 140)
    arguments: dict[str, Any] = {"LayerName": name, "Content": {"ZipFile": EMPTY_ZIP}}
    for key in ("Description", "CompatibleRuntimes", "CompatibleArchitectures"):
        if key in p:
            arguments[key] = p[key]
    arn = deployer.clients("lambda").publish_layer_version(**arguments)["LayerVersionArn"]
    deployer.layer_arns.add(arn)
    deployer.provide(resource, arn)


@creates("AWS::Lambda::Function")
def create_function(deployer: DeployContext, resource: Resource, p: dict[str, Any]) -> None:
    name = deployer.name(resource, p.get("FunctionName"))
    handler = p.get("Handler", "")
    _check_asset(deployer, resource, handler)
    layers, variables = _layers(deployer, name, p.get("Layers", []))
    variables = {**p.get("Environment", {}).get("Variables", {}), **variables}
    if variables.get(settings.JWT_KEY_SOURCE.name) == "jwks":
        variables.update(_local_issuer(deployer, name))
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
    created = deployer.clients("lambda").create_function(**arguments)
    logging_config = p.get("LoggingConfig", {})
    _keep_logging_config(deployer, name, logging_config)
    deployer.deployment.functions[name] = FunctionSpec(
        function_name=name,
        handler=handler,
        environment=variables,
        function_arn=created["FunctionArn"],
        region=deployer.pseudo.region,
        memory_size=arguments["MemorySize"],
        timeout=arguments["Timeout"],
        runtime=arguments["Runtime"],
        **logging_fields(logging_config),
    )
    deployer.provide(resource, name, Arn=created["FunctionArn"])


def _keep_logging_config(deployer: DeployContext, name: str, config: dict[str, Any]) -> None:
    """moto drops a function's LoggingConfig; the runner needs it (format, level, log group),
    so it is kept on moto's function object, which each published version copies."""
    from moto.awslambda import lambda_backends

    backend = lambda_backends[deployer.pseudo.account_id][deployer.pseudo.region]
    setattr(backend.get_function(name), LOGGING_CONFIG_ATTRIBUTE, dict(config))


def _layers(
    deployer: DeployContext, function_name: str, layers: list[str]
) -> tuple[list[str], dict[str, str]]:
    """The layers moto is given (this deployment's own), and the variables the function
    gets from the emulated Parameters and Secrets Extension when its layer is attached."""
    own, variables = [], {}
    for arn in layers:
        if arn in deployer.layer_arns:
            own.append(arn)
        elif is_extension_layer(arn):
            if deployer.secrets_extension is None:
                raise DeploymentError(
                    f"{function_name} has the AWS Parameters and Secrets Lambda Extension "
                    f"({arn}) and this deployment serves no local extension"
                )
            variables = deployer.secrets_extension.register(function_name)
        else:
            raise DeploymentError(
                f"layer {arn} is neither a layer of this template nor the AWS Parameters "
                "and Secrets Lambda Extension: the local runtime cannot provide it"
            )
    return own, variables


def _local_issuer(deployer: DeployContext, function_name: str) -> dict[str, str]:
    if deployer.jwks_url is None:
        raise DeploymentError(
            f"{function_name} verifies an identity provider's tokens and this deployment runs "
            "no local identity provider"
        )
    return {
        settings.JWT_JWKS_URL.name: deployer.jwks_url,
        settings.JWT_JWKS_ALLOW_LOOPBACK_HTTP.name: "true",
    }


def _check_asset(deployer: DeployContext, resource: Resource, handler: str) -> None:
    """The function's code asset, when synthesized, must hold the module the handler names."""
    asset = resource.metadata.get("aws:asset:path")
    if not (handler.startswith(ENTRIX_HANDLER_PREFIX) and asset and deployer.asset_dir):
        return
    asset_path = deployer.asset_dir / asset
    if not asset_path.is_dir():
        return
    module = handler.rpartition(".")[0].replace(".", "/")
    if not (asset_path / f"{module}.py").is_file():
        raise DeploymentError(f"code asset {asset_path} does not contain {module}.py")


@creates("AWS::Lambda::Version")
def create_version(deployer: DeployContext, resource: Resource, p: dict[str, Any]) -> None:
    """A published version: Ref is its ARN, `Version` its number."""
    arguments = {"FunctionName": p["FunctionName"]}
    if "Description" in p:
        arguments["Description"] = p["Description"]
    published = deployer.clients("lambda").publish_version(**arguments)
    deployer.provide(
        resource,
        published["FunctionArn"],
        Version=published["Version"],
        FunctionArn=published["FunctionArn"],
    )


@creates("AWS::Lambda::Alias")
def create_alias(deployer: DeployContext, resource: Resource, p: dict[str, Any]) -> None:
    """An alias on one version (a weighted RoutingConfig is CodeDeploy's, mid-deployment, and
    not in a template): Ref is its ARN."""
    if "RoutingConfig" in p:
        raise DeploymentError("an alias with a RoutingConfig (weighted versions) is not emulated")
    arguments = {
        "FunctionName": p["FunctionName"],
        "Name": p["Name"],
        "FunctionVersion": str(p["FunctionVersion"]),
    }
    if "Description" in p:
        arguments["Description"] = p["Description"]
    created = deployer.clients("lambda").create_alias(**arguments)
    deployer.deployment.names[resource.logical_id] = created["AliasArn"]
    deployer.provide(resource, created["AliasArn"], AliasArn=created["AliasArn"])


@creates("AWS::Lambda::EventInvokeConfig")
def create_event_invoke_config(
    deployer: DeployContext, resource: Resource, p: dict[str, Any]
) -> None:
    """Stored through the Lambda API, so `get-function-event-invoke-config` answers as in AWS,
    on what the `Qualifier` names (the template's is the `live` alias). Locally a failed
    asynchronous invocation (SNS delivering to the Slack forwarder) is neither retried nor sent
    to the on-failure destination: moto keeps the setting and runs neither."""
    fields = ("MaximumRetryAttempts", "MaximumEventAgeInSeconds", "DestinationConfig")
    arguments = {name: p[name] for name in fields if name in p}
    function, qualifier = p["FunctionName"], p.get("Qualifier")
    for outcome in ("OnSuccess", "OnFailure"):
        destination = p.get("DestinationConfig", {}).get(outcome, {}).get("Destination")
        if destination:
            _check_destination(deployer, function, destination)
    if qualifier:
        _own_event_invoke_config(deployer, function, qualifier)
    # The Lambda API also takes the qualifier in the name (`name:live`); moto reads only that,
    # ignoring a separate Qualifier.
    arguments["FunctionName"] = f"{function}:{qualifier}" if qualifier else function
    deployer.clients("lambda").put_function_event_invoke_config(**arguments)
    deployer.provide(resource, deployer.name(resource, None))


def _own_event_invoke_config(deployer: DeployContext, function: str, qualifier: str) -> None:
    """moto's published versions share the function's list of event invoke configs (a shallow
    copy); the qualified version gets its own, so the unqualified function and the other
    versions keep none, as in AWS. An alias stands for the version it points at."""
    from moto.awslambda import lambda_backends

    backend = lambda_backends[deployer.pseudo.account_id][deployer.pseudo.region]
    backend.get_function(function, qualifier).event_invoke_config = []


# A destination's service -> the call Lambda makes on it with the function's execution role:
# the API operation, the IAM action AWS's refusal names, and the parameter naming the target.
# (Lambda and EventBridge destinations are not checked locally: the permission model maps no
# call to them.)
DESTINATION_CALLS = {
    "sqs": ("SendMessage", "SendMessage", "QueueUrl"),
    "sns": ("Publish", "Publish", "TopicArn"),
}


def _check_destination(deployer: DeployContext, function: str, destination: str) -> None:
    """AWS's PutFunctionEventInvokeConfig refuses a destination the function's execution role
    may not send to; with enforcement on, so does the local deploy, decided by the same
    enforcer as the function's own calls. That decision also weighs the queue's or topic's
    policy and a customer managed key's policy, which AWS may only meet at delivery: locally
    the deploy can be the stricter (docs/local-runtime.md)."""
    from entrix.local.iam import enforcement

    enforcer = enforcement.active()
    if enforcer is None or enforcer.deployment is not deployer.deployment:
        return
    service = destination.split(":")[2]
    if service not in DESTINATION_CALLS:
        raise DeploymentError(f"{destination}: the local deploy checks no {service} destination")
    operation, action, parameter = DESTINATION_CALLS[service]
    target = destination
    if service == "sqs":
        name = destination.rsplit(":", 1)[-1]
        target = deployer.clients("sqs").get_queue_url(QueueName=name)["QueueUrl"]
    name = function.split(":function:")[-1].split(":")[0]
    if enforcer.check(Call(name, service, operation, {parameter: target})) is not None:
        raise DeploymentError(
            "InvalidParameterValueException: The function's execution role does not have "
            f"permissions to call {action} on {destination}"
        )


@creates("AWS::Lambda::EventSourceMapping")
def create_event_source_mapping(
    deployer: DeployContext, resource: Resource, p: dict[str, Any]
) -> None:
    """Recorded for the runtime's stream poller (entrix.local.streams), not created in moto:
    moto's own mapping would invoke the function in Docker on every write."""
    source = p["EventSourceArn"]
    if ":dynamodb:" not in source or "/stream/" not in source:
        raise DeploymentError(f"only DynamoDB stream mappings run locally, not {source}")
    name = deployer.name(resource, None)
    mapping = StreamMapping(
        logical_id=resource.logical_id,
        function_name=p["FunctionName"],
        stream_arn=source,
        batch_size=int(p.get("BatchSize", 100)),
        starting_position=p.get("StartingPosition", "TRIM_HORIZON"),
        retry_attempts=int(p.get("MaximumRetryAttempts", 10)),
        on_failure_arn=p.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination"),
    )
    deployer.deployment.stream_mappings.append(mapping)
    deployer.provide(resource, name)
