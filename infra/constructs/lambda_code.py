"""Python Lambda functions and layers built without Docker, with the project's defaults.

Every function runs python3.13 on arm64 with X-Ray tracing, JSON logs into its own log group
with a retention, and its own role that may write only to that log group (no
AWSLambdaBasicExecutionRole). A function whose code imports the AWS SDK gets the SDK layer: the
boto3 and botocore the tests ran, never the runtime's. Every function has the alias `live` on
its current version, and every caller invokes that alias, never $LATEST: a deploy moves the alias
gradually to the new version (infra/constructs/gradual_deploy.py), and a rollback moves it back
(`entrix rollback`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from aws_cdk import AssetHashType, BundlingOptions, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from entrix.settings import Setting
from infra.bundling import SRC_DIR, LayerBundler, ModuleBundler, find_bytecode_compiler
from infra.constructs.log_groups import acknowledge_log_controls
from infra.nag import acknowledge, acknowledge_control

RUNTIME = lambda_.Runtime.PYTHON_3_13
# The alias every caller invokes; `entrix rollback` and the local runtime know it by this name.
LIVE_ALIAS = "live"
ARCHITECTURE = lambda_.Architecture.ARM_64

# The AWS SDK ships with the functions: the boto3 and botocore pinned in uv.lock, which every test
# ran (and whose loader entrix.aws.clients customises), not the runtime's, which Lambda updates
# on its own schedule without a deploy. Layers precede the runtime on the import path.
SDK_PACKAGES = frozenset({"boto3", "botocore"})
SDK_LAYER_ID = "SdkLayer"

# Looked up once per synth: every asset is compiled by the same interpreter, or none is.
_bytecode_compiler = functools.cache(find_bytecode_compiler)

L1_REASON = (
    "python3.13 on purpose: python3.14 cold-starts slower (hello-world init p50 102 ms vs 80 ms "
    "on arm64, measured on Lambda), and PyJWT/pydantic-core wheels are pinned for cp313."
)
XRAY_REASON = (
    "Active tracing adds xray:PutTraceSegments and xray:PutTelemetryRecords, which support no "
    "resource-level permissions (AWS service authorization reference), so Resource is '*'."
)
VPC_REASON = (
    "Every function reaches only AWS APIs (DynamoDB, S3, SNS, Step Functions, Secrets Manager, "
    "X-Ray) and, for the Slack forwarder, Slack over HTTPS: nothing lives in a VPC. In one, each "
    "would need NAT (about $33 a month per AZ) or an interface endpoint per service (about $7 a "
    "month per AZ each) and ENIs, for no resource it could then reach that it cannot now."
)


def _code(bundler: LayerBundler | ModuleBundler) -> lambda_.Code:
    """An asset bundled on this machine by `bundler`, under the bundler's own content hash."""
    return lambda_.Code.from_asset(
        str(SRC_DIR),
        asset_hash=bundler.asset_hash,
        asset_hash_type=AssetHashType.CUSTOM,
        bundling=BundlingOptions(image=RUNTIME.bundling_image, local=bundler),
    )


def python_layer(
    scope: Construct, id: str, *, requirements: Sequence[str], description: str
) -> lambda_.LayerVersion:
    """A layer holding `requirements` and their dependencies at the versions in uv.lock."""
    return lambda_.LayerVersion(
        scope,
        id,
        code=_code(LayerBundler(requirements, compiler=_bytecode_compiler())),
        compatible_runtimes=[RUNTIME],
        compatible_architectures=[ARCHITECTURE],
        description=description,
    )


def sdk_layer(scope: Construct) -> lambda_.LayerVersion:
    """The stack's one SDK layer, made when its first function needs it."""
    stack = Stack.of(scope)
    existing = stack.node.try_find_child(SDK_LAYER_ID)
    if isinstance(existing, lambda_.LayerVersion):
        return existing
    return python_layer(
        stack,
        SDK_LAYER_ID,
        requirements=sorted(SDK_PACKAGES),
        description="boto3 and botocore at the versions the tests ran (uv.lock)",
    )


def python_function(
    scope: Construct,
    id: str,
    *,
    handler: str,
    description: str,
    log_retention: logs.RetentionDays,
    layers: Sequence[lambda_.ILayerVersion] = (),
    settings: Mapping[Setting[Any], Any] | None = None,
    memory_size: int = 256,
    timeout: Duration | None = None,
    params_and_secrets: lambda_.ParamsAndSecretsLayerVersion | None = None,
) -> lambda_.Function:
    """A function whose asset holds the handler's module and the `entrix` modules it imports.

    `handler` is the dotted path "entrix.handlers.x.handler". `settings` maps every setting the
    handler reads to its value (None: the setting's default); each one becomes a variable, so a
    function's environment states all it runs with. `params_and_secrets` attaches the AWS
    Parameters and Secrets Lambda Extension (its layer and its environment variables).
    """
    log_group = logs.LogGroup(
        scope, f"{id}Logs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY
    )
    acknowledge_log_controls(log_group)
    role = iam.Role(
        scope,
        f"{id}Role",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description=f"Runs {handler}",
    )
    log_group.grant_write(role)
    bundler = ModuleBundler([handler.rpartition(".")[0]], compiler=_bytecode_compiler())
    if bundler.third_party_imports() & SDK_PACKAGES:
        layers = [*layers, sdk_layer(scope)]
    function = lambda_.Function(
        scope,
        id,
        runtime=RUNTIME,
        architecture=ARCHITECTURE,
        handler=handler,
        code=_code(bundler),
        description=description,
        layers=list(layers),
        params_and_secrets=params_and_secrets,
        environment={
            setting.name: setting.text(value) for setting, value in (settings or {}).items()
        },
        memory_size=memory_size,
        timeout=timeout or Duration.seconds(10),
        tracing=lambda_.Tracing.ACTIVE,
        log_group=log_group,
        # Lambda writes each stdlib logging record as one JSON object (level, logger, request id),
        # so Logs Insights can filter on fields without a logging library in the asset.
        logging_format=lambda_.LoggingFormat.JSON,
        application_log_level_v2=lambda_.ApplicationLogLevel.INFO,
        system_log_level_v2=lambda_.SystemLogLevel.WARN,
        role=role,
        # Kept when a deploy replaces it (each change gives the version a new logical id): the
        # version before a deploy is the one `entrix rollback` puts the alias back on.
        current_version_options=lambda_.VersionOptions(removal_policy=RemovalPolicy.RETAIN),
    )
    # current_version: a new version whenever the code or the configuration changes.
    function.add_alias(LIVE_ALIAS, description="What every caller invokes; moved by CodeDeploy")
    acknowledge(function.node.find_child("Resource"), "AwsSolutions-L1", L1_REASON)
    acknowledge_control(function, "CT.LAMBDA.PR.3", VPC_REASON)
    # Tracing added the role's default policy; a test keeps '*' there to the X-Ray actions.
    policy = role.node.find_child("DefaultPolicy")
    acknowledge(policy, "AwsSolutions-IAM5[Resource::*]", XRAY_REASON)
    return function


def live_alias(function: lambda_.IFunction) -> lambda_.Alias:
    """The `live` alias of a function made by `python_function`: the one name callers use."""
    alias = function.node.find_child(f"Alias{LIVE_ALIAS}")
    assert isinstance(alias, lambda_.Alias)
    return alias
