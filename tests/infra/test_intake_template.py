"""The intake as synthesized: table, signing key, functions, least-privilege roles, API, outputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_cdk.assertions import Match, Template
from moto import mock_aws

from entrix import settings
from entrix.aws import secrets
from entrix.local.apigateway.model import GatewayResponse, RestApi
from entrix.local.apigateway.proxy import GATEWAY_ERRORS, gateway_response
from entrix.local.deploy import Deployer
from entrix.local.template import PseudoParameters
from entrix.local.template import Template as LocalTemplate
from entrix.revocations import DENY_LIST_FILLER_FIELD, DenyList, parse_deny_list
from infra.config import ServiceConfig
from infra.constructs.intake import ERROR_TEMPLATE
from infra.constructs.lambda_code import SDK_LAYER_ID
from tests.support.aliases import live_alias

AUTHORIZER = "entrix.handlers.authorizer.handler"
INGEST = "entrix.handlers.ingest.handler"
ORDER_STATUS = "entrix.handlers.order_status.handler"
ORDER_LIST = "entrix.handlers.order_list.handler"
CANCEL = "entrix.handlers.cancel.handler"
ORDER_HANDLERS = (INGEST, ORDER_STATUS, ORDER_LIST, CANCEL)
INTAKE_HANDLERS = (AUTHORIZER, *ORDER_HANDLERS)
# The variables CDK sets for the Parameters and Secrets Extension (params_and_secrets).
EXTENSION_VARIABLE_PREFIXES = (
    "PARAMETERS_SECRETS_EXTENSION_",
    "SECRETS_MANAGER_",
    "SSM_PARAMETER_",
)


def resources(template: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == type_
    }


def only(template: dict[str, Any], type_: str, prefix: str = "Intake") -> tuple[str, dict]:
    """The one resource of `type_` whose logical id starts with `prefix`."""
    found = {k: v for k, v in resources(template, type_).items() if k.startswith(prefix)}
    assert len(found) == 1, f"expected one {type_} under {prefix}, found {sorted(found)}"
    return next(iter(found.items()))


def function(template: dict[str, Any], handler: str) -> tuple[str, dict[str, Any]]:
    matches = {
        logical_id: resource["Properties"]
        for logical_id, resource in resources(template, "AWS::Lambda::Function").items()
        if resource["Properties"].get("Handler") == handler
    }
    assert len(matches) == 1, f"expected one function for {handler}"
    return next(iter(matches.items()))


def role_statements(template: dict[str, Any], handler: str) -> list[dict[str, Any]]:
    """Every policy statement attached to the function's role (inline and attached policies)."""
    _, props = function(template, handler)
    role_id = props["Role"]["Fn::GetAtt"][0]
    role = template["Resources"][role_id]["Properties"]
    assert "ManagedPolicyArns" not in role, "functions use no managed policies"
    statements = [s for p in role.get("Policies", []) for s in p["PolicyDocument"]["Statement"]]
    for policy in resources(template, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def actions(statement: dict[str, Any]) -> set[str]:
    action = statement["Action"]
    return {action} if isinstance(action, str) else set(action)


def granted(template: dict[str, Any], handler: str) -> dict[str, Any]:
    """Action -> resource, for the statements beyond logging, tracing and the client usage
    table (each API function's one UpdateItem there is tested on its own)."""
    usage_id, _ = only(template, "AWS::DynamoDB::Table", "IntakeClientUsage")
    result: dict[str, Any] = {}
    for statement in role_statements(template, handler):
        assert statement["Effect"] == "Allow"
        if statement["Resource"] == {"Fn::GetAtt": [usage_id, "Arn"]}:
            continue
        for action in actions(statement) - {
            "logs:CreateLogStream",
            "logs:PutLogEvents",
            "xray:PutTraceSegments",
            "xray:PutTelemetryRecords",
        }:
            result[action] = statement["Resource"]
    return result


# --- table ---------------------------------------------------------------------------------


def test_orders_table_is_on_demand_keyed_by_order_key_with_ttl_and_pitr(
    service_template: Template,
) -> None:
    service_template.has_resource(
        "AWS::DynamoDB::Table",
        {
            "Properties": Match.object_like(
                {
                    "KeySchema": [{"AttributeName": "order_key", "KeyType": "HASH"}],
                    "BillingMode": "PAY_PER_REQUEST",
                    "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
                    "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                    "SSESpecification": {"SSEEnabled": True},
                    "DeletionProtectionEnabled": True,
                    "OnDemandThroughput": {
                        "MaxWriteRequestUnits": ServiceConfig().table_max_write_request_units,
                        "MaxReadRequestUnits": ServiceConfig().table_max_read_request_units,
                    },
                }
            ),
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
        },
    )


def test_client_usage_table_is_on_demand_with_ttl_and_the_same_ceilings(
    service_json: dict[str, Any],
) -> None:
    """Counters expire by TTL; no backups (a restored count would be stale), no stream."""
    _, table = only(service_json, "AWS::DynamoDB::Table", "IntakeClientUsage")
    props = table["Properties"]
    assert props["KeySchema"] == [{"AttributeName": "usage_key", "KeyType": "HASH"}]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["SSESpecification"] == {"SSEEnabled": True}
    assert props["OnDemandThroughput"] == {
        "MaxWriteRequestUnits": ServiceConfig().table_max_write_request_units,
        "MaxReadRequestUnits": ServiceConfig().table_max_read_request_units,
    }
    assert "PointInTimeRecoverySpecification" not in props
    assert "StreamSpecification" not in props
    assert table["DeletionPolicy"] == "Delete"


def test_cancel_is_never_charged_to_a_share(service_json: dict[str, Any]) -> None:
    """A cancel takes risk off before an auction closes: no share can refuse it."""
    usage_id, _ = only(service_json, "AWS::DynamoDB::Table", "IntakeClientUsage")
    _, props = function(service_json, CANCEL)
    assert settings.CLIENT_USAGE_TABLE_NAME.name not in props["Environment"]["Variables"]
    assert not [s for s in role_statements(service_json, CANCEL) if usage_id in json.dumps(s)]


@pytest.mark.parametrize(
    "handler",
    [
        "entrix.handlers.ingest.handler",
        "entrix.handlers.order_status.handler",
        "entrix.handlers.order_list.handler",
    ],
)
def test_each_api_function_may_update_the_usage_table_and_nothing_else_there(
    service_json: dict[str, Any], handler: str
) -> None:
    usage_id, _ = only(service_json, "AWS::DynamoDB::Table", "IntakeClientUsage")
    statements = [
        statement
        for statement in role_statements(service_json, handler)
        if usage_id in json.dumps(statement["Resource"])
    ]
    assert statements == [
        {
            "Action": "dynamodb:UpdateItem",
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [usage_id, "Arn"]},
        }
    ], handler


def test_orders_table_has_the_pending_and_owner_indexes_keys_only(
    service_json: dict[str, Any],
) -> None:
    """Both indexes sort on `version` (receipt time, then the request's nonce): a run takes the
    oldest pending orders, the listing the caller's newest. Their partitions are sharded (16
    pending shards, 16 per owner), so neither has one hot key; each projects the keys only."""
    _, table = only(service_json, "AWS::DynamoDB::Table", "IntakeOrders")
    props = table["Properties"]
    indexes = {index["IndexName"]: index for index in props["GlobalSecondaryIndexes"]}
    assert indexes == {
        settings.ORDERS_PENDING_INDEX_NAME.text(): {
            "IndexName": "pending-results",
            "KeySchema": [
                {"AttributeName": "pending_shard", "KeyType": "HASH"},
                {"AttributeName": "version", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
        },
        settings.ORDERS_OWNER_INDEX_NAME.text(): {
            "IndexName": "owner-orders",
            "KeySchema": [
                {"AttributeName": "owner_shard", "KeyType": "HASH"},
                {"AttributeName": "version", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
        },
    }
    # Every key attribute is a string, and no other attribute is declared.
    assert sorted(props["AttributeDefinitions"], key=lambda a: a["AttributeName"]) == [
        {"AttributeName": name, "AttributeType": "S"}
        for name in ("order_key", "owner_shard", "pending_shard", "version")
    ]


def test_the_synthesized_table_deploys_locally_and_serves_both_indexes(
    service_json: dict[str, Any],
) -> None:
    """The stack's table, deployed as `entrix local` deploys it (moto): keyed on order_key, and
    both keys-only indexes sorted on `version` answer their queries (a pending shard oldest
    first, one owner's shard newest first)."""
    table_id, table_resource = only(service_json, "AWS::DynamoDB::Table", "IntakeOrders")
    template = {"Resources": {table_id: table_resource}}

    def client(service: str) -> Any:
        return boto3.client(service, region_name="eu-west-1")

    with mock_aws():
        deployment = Deployer(
            LocalTemplate.from_dict(template), client, pseudo=PseudoParameters()
        ).deploy()
        (name,) = deployment.tables
        dynamodb = client("dynamodb")
        table = dynamodb.describe_table(TableName=name)["Table"]
        assert table["KeySchema"] == [{"AttributeName": "order_key", "KeyType": "HASH"}]
        assert sorted(i["IndexName"] for i in table["GlobalSecondaryIndexes"]) == [
            "owner-orders",
            "pending-results",
        ]
        for n, version in enumerate(
            ("2026-01-01T00:00:00.000Z/a/0000", "2026-01-01T00:00:01.000Z/b/0000")
        ):
            dynamodb.put_item(
                TableName=name,
                Item={
                    "order_key": {"S": f"desk-a#r{n}"},
                    "version": {"S": version},
                    "pending_shard": {"S": "03"},
                    "owner_shard": {"S": "desk-a#07"},
                    "parameter_1": {"S": "p"},
                },
            )

        def query(index: str, key: str, value: str, forward: bool) -> list[Any]:
            return dynamodb.query(
                TableName=name,
                IndexName=index,
                KeyConditionExpression="#k = :v",
                ExpressionAttributeNames={"#k": key},
                ExpressionAttributeValues={":v": {"S": value}},
                ScanIndexForward=forward,
            )["Items"]

        pending = query("pending-results", "pending_shard", "03", True)
        owned = query("owner-orders", "owner_shard", "desk-a#07", False)
        assert [i["order_key"]["S"] for i in pending] == ["desk-a#r0", "desk-a#r1"]
        assert [i["order_key"]["S"] for i in owned] == ["desk-a#r1", "desk-a#r0"]
        assert all("parameter_1" not in item for item in [*pending, *owned]), "keys only"


# --- signing key ---------------------------------------------------------------------------


def secret_for(template: dict[str, Any], purpose: str) -> tuple[str, dict[str, Any]]:
    """The one secret tagged `entrix:purpose=<purpose>`."""
    (found,) = [
        (logical_id, resource)
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::SecretsManager::Secret"
        and {"Key": "entrix:purpose", "Value": purpose} in resource["Properties"].get("Tags", [])
    ]
    return found


def test_signing_key_is_generated_by_secrets_manager_and_never_in_the_template(
    service_json: dict[str, Any],
) -> None:
    _, secret = secret_for(service_json, "jwt-signing-key")
    props = secret["Properties"]
    assert "SecretString" not in props
    assert props["GenerateSecretString"]["PasswordLength"] >= 32
    assert "SecretStringTemplate" not in props["GenerateSecretString"], "the key is the raw string"
    assert {"Key": "entrix:purpose", "Value": "jwt-signing-key"} in props["Tags"]
    assert secret["DeletionPolicy"] == "Retain"


# --- functions -----------------------------------------------------------------------------


@pytest.mark.parametrize("handler", INTAKE_HANDLERS)
def test_functions_run_python313_on_arm64_traced_with_their_own_log_group(
    service_json: dict[str, Any], handler: str
) -> None:
    _, props = function(service_json, handler)
    assert props["Runtime"] == "python3.13"
    assert props["Architectures"] == ["arm64"]
    assert props["TracingConfig"] == {"Mode": "Active"}
    assert props["LoggingConfig"]["LogFormat"] == "JSON"
    assert props["LoggingConfig"]["ApplicationLogLevel"] == "INFO"
    log_group_id = props["LoggingConfig"]["LogGroup"]["Ref"]
    assert service_json["Resources"][log_group_id]["Properties"]["RetentionInDays"] == 30
    assert props["Timeout"] <= 29, "API Gateway gives up after 29 s"


def test_each_function_has_its_own_code_asset(service_json: dict[str, Any]) -> None:
    keys = [function(service_json, h)[1]["Code"]["S3Key"] for h in INTAKE_HANDLERS]
    assert len(set(keys)) == len(INTAKE_HANDLERS)


def test_authorizer_environment_names_the_secret_and_cache_ttl(
    service_json: dict[str, Any],
) -> None:
    _, props = function(service_json, AUTHORIZER)
    secret_id, _ = secret_for(service_json, "jwt-signing-key")
    deny_list_id, _ = secret_for(service_json, "jwt-deny-list")
    own = {
        name: value
        for name, value in props["Environment"]["Variables"].items()
        if not name.startswith(EXTENSION_VARIABLE_PREFIXES)
    }
    assert own == {
        settings.JWT_KEY_SOURCE.name: "secret",
        settings.JWT_SECRET_ARN.name: {"Ref": secret_id},
        settings.JWT_ISSUER.name: "https://auth.entrix.example",
        settings.JWT_AUDIENCE.name: "entrix-auction-orders",
        settings.MAX_TOKEN_LIFETIME_SECONDS.name: "43200",
        settings.SECRET_CACHE_TTL_SECONDS.name: "300",
        settings.JWT_REVOCATIONS_SECRET_ARN.name: {"Ref": deny_list_id},
        settings.REVOCATIONS_CACHE_TTL_SECONDS.name: "30",
    }


def test_the_deny_list_starts_empty_and_outlives_the_stack(service_json: dict[str, Any]) -> None:
    """Generated, never a literal: an update of a literal SecretString would write it back over
    the revocations made since."""
    _, secret = secret_for(service_json, "jwt-deny-list")
    generated = secret["Properties"]["GenerateSecretString"]
    assert "SecretString" not in secret["Properties"]
    assert parse_deny_list(generated["SecretStringTemplate"]) == DenyList()
    assert generated["GenerateStringKey"] == DENY_LIST_FILLER_FIELD
    assert (
        parse_deny_list(json.dumps({"tokens": {}, "subjects": {}, "created": "x1"})) == DenyList()
    )
    assert secret["DeletionPolicy"] == "Retain"


def test_authorizer_reads_the_key_through_the_parameters_and_secrets_extension(
    service_json: dict[str, Any],
) -> None:
    """The extension's arm64 layer for the stack's region, on the port entrix.aws.secrets reads,
    with its own cache off: the key is cached once, for SECRET_CACHE_TTL_SECONDS, so a rotated
    key is used within that time (a second cache would add its TTL to the bound)."""
    _, props = function(service_json, AUTHORIZER)
    extension_layers = [layer for layer in props["Layers"] if isinstance(layer, str)]
    assert extension_layers == [
        "arn:aws:lambda:eu-west-1:015030872274:layer:"
        "AWS-Parameters-and-Secrets-Lambda-Extension-Arm64:4"
    ]
    assert props["Architectures"] == ["arm64"]
    variables = props["Environment"]["Variables"]
    assert variables[secrets.EXTENSION_PORT_VARIABLE] == "2773"
    assert variables["PARAMETERS_SECRETS_EXTENSION_CACHE_ENABLED"] == "false"
    assert variables["PARAMETERS_SECRETS_EXTENSION_LOG_LEVEL"] == "warn"


@pytest.mark.parametrize("handler", ORDER_HANDLERS)
def test_only_the_authorizer_has_the_extension(service_json: dict[str, Any], handler: str) -> None:
    _, props = function(service_json, handler)
    assert all(isinstance(layer, dict) for layer in props.get("Layers", []))
    assert not [
        name
        for name in props["Environment"]["Variables"]
        if name.startswith(EXTENSION_VARIABLE_PREFIXES)
    ]


@pytest.mark.parametrize("handler", ORDER_HANDLERS)
def test_order_handlers_get_the_tables_and_limits_and_the_listing_its_index(
    service_json: dict[str, Any], handler: str
) -> None:
    table_id, _ = only(service_json, "AWS::DynamoDB::Table", "IntakeOrders")
    usage_id, _ = only(service_json, "AWS::DynamoDB::Table", "IntakeClientUsage")
    _, props = function(service_json, handler)
    config = ServiceConfig()
    expected: dict[str, Any] = {
        settings.ORDERS_TABLE_NAME.name: {"Ref": table_id},
        settings.CLIENT_USAGE_TABLE_NAME.name: {"Ref": usage_id},
        settings.CLIENT_RATE_LIMIT.name: str(config.client_rate_limit),
        settings.CLIENT_RATE_WINDOW_SECONDS.name: str(config.client_rate_window_seconds),
        settings.CLIENT_DAILY_ORDER_QUOTA.name: str(config.client_daily_order_quota),
        settings.CLIENT_LIMITS.name: "{}",
    }
    if handler == CANCEL:  # never charged to a share
        expected = {settings.ORDERS_TABLE_NAME.name: {"Ref": table_id}}
    if handler == ORDER_LIST:
        expected[settings.ORDERS_OWNER_INDEX_NAME.name] = "owner-orders"
    assert props["Environment"]["Variables"] == expected


def test_layers_pyjwt_for_the_authorizer_and_none_for_the_order_handlers(
    service_json: dict[str, Any],
) -> None:
    layers = {
        handler: [
            layer["Ref"]
            for layer in function(service_json, handler)[1].get("Layers", [])
            # The extension's layer is an ARN (tested above); the SDK layer is every SDK user's
            # (tests/infra/test_sdk_layer.py).
            if isinstance(layer, dict) and not layer["Ref"].startswith(SDK_LAYER_ID)
        ]
        for handler in INTAKE_HANDLERS
    }
    # The order handlers validate and answer without pydantic or Powertools: their asset is all
    # they load (the cold-request bench builds its load path from these layers).
    assert all(layers[handler] == [] for handler in ORDER_HANDLERS)
    (authorizer_layer,) = layers[AUTHORIZER]
    layer = service_json["Resources"][authorizer_layer]["Properties"]
    assert layer["CompatibleRuntimes"] == ["python3.13"]
    assert layer["CompatibleArchitectures"] == ["arm64"]
    assert "PyJWT" in layer["Description"]


# --- least privilege -----------------------------------------------------------------------


def test_authorizer_may_only_read_its_signing_key_and_the_deny_list(
    service_json: dict[str, Any],
) -> None:
    secret_id, _ = secret_for(service_json, "jwt-signing-key")
    deny_list_id, _ = secret_for(service_json, "jwt-deny-list")
    grants = granted(service_json, AUTHORIZER)
    assert list(grants) == ["secretsmanager:GetSecretValue"]
    # Compared without order: CDK sorts a statement's resources (minimizePolicies).
    readable = [resource["Ref"] for resource in grants["secretsmanager:GetSecretValue"]]
    assert sorted(readable) == sorted([secret_id, deny_list_id])


def _table_arn(template: dict[str, Any]) -> dict[str, Any]:
    table_id, _ = only(template, "AWS::DynamoDB::Table", "IntakeOrders")
    return {"Fn::GetAtt": [table_id, "Arn"]}


def test_ingest_may_only_put_items_into_the_table(service_json: dict[str, Any]) -> None:
    """One conditional PutItem per order; BatchWriteItem takes no condition, so it is gone."""
    assert granted(service_json, INGEST) == {"dynamodb:PutItem": _table_arn(service_json)}


def test_order_status_may_only_get_items(service_json: dict[str, Any]) -> None:
    assert granted(service_json, ORDER_STATUS) == {"dynamodb:GetItem": _table_arn(service_json)}


def test_order_list_may_only_query_the_owner_index_and_batch_get_items(
    service_json: dict[str, Any],
) -> None:
    """The owner index only: not `<table>/index/*`, which would add the pending index."""
    table_arn = _table_arn(service_json)
    assert granted(service_json, ORDER_LIST) == {
        "dynamodb:Query": {"Fn::Join": ["", [table_arn, "/index/owner-orders"]]},
        "dynamodb:BatchGetItem": table_arn,
    }


def test_cancel_may_only_update_items(service_json: dict[str, Any]) -> None:
    assert granted(service_json, CANCEL) == {"dynamodb:UpdateItem": _table_arn(service_json)}


@pytest.mark.parametrize("handler", INTAKE_HANDLERS)
def test_functions_write_logs_only_to_their_own_group(
    service_json: dict[str, Any], handler: str
) -> None:
    _, props = function(service_json, handler)
    log_group = props["LoggingConfig"]["LogGroup"]["Ref"]
    log_statements = [
        s
        for s in role_statements(service_json, handler)
        if any(a.startswith("logs:") for a in actions(s))
    ]
    assert log_statements == [
        {
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [log_group, "Arn"]},
        }
    ]


# --- API -----------------------------------------------------------------------------------


def test_stage_prod_logs_throttles_traces_and_records_metrics(
    service_json: dict[str, Any],
) -> None:
    _, stage = only(service_json, "AWS::ApiGateway::Stage")
    props = stage["Properties"]
    assert props["StageName"] == "prod"
    assert props["TracingEnabled"] is True
    # The group's ARN without the ":*" its Arn attribute ends in (CDK's
    # logGroupDestinationArnWithoutWildcard): arn:...:log-group:<name>.
    *_, prefix, name = props["AccessLogSetting"]["DestinationArn"]["Fn::Join"][1]
    assert prefix == ":log-group:"
    access_log_group = name["Ref"]
    assert service_json["Resources"][access_log_group]["Properties"]["RetentionInDays"] == 30
    access_format = json.loads(props["AccessLogSetting"]["Format"])
    assert access_format["requestId"] == "$context.requestId"
    assert access_format["status"] == "$context.status"
    assert access_format["authorizerError"] == "$context.authorizer.error"
    assert props["MethodSettings"] == [
        {
            "HttpMethod": "*",
            "ResourcePath": "/*",
            "ThrottlingRateLimit": 50,
            "ThrottlingBurstLimit": 100,
            "LoggingLevel": "ERROR",
            "MetricsEnabled": True,
            "DataTraceEnabled": False,
        }
    ]


def test_authorizer_reads_the_authorization_header_and_caches_for_300_s(
    service_json: dict[str, Any],
) -> None:
    _, authorizer = only(service_json, "AWS::ApiGateway::Authorizer")
    props = authorizer["Properties"]
    assert props["Type"] == "REQUEST"
    assert props["IdentitySource"] == "method.request.header.Authorization"
    assert props["AuthorizerResultTtlInSeconds"] == 300
    authorizer_fn, _ = function(service_json, AUTHORIZER)
    alias = {"Ref": live_alias(service_json, authorizer_fn)}
    assert alias in props["AuthorizerUri"]["Fn::Join"][1]
    assert "Fn::GetAtt" not in json.dumps(props["AuthorizerUri"])


def _method_routes(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """'POST /orders' -> method properties, with paths rebuilt from the resource tree."""
    api_resources = resources(template, "AWS::ApiGateway::Resource")

    def path(resource_ref: dict[str, Any]) -> str:
        if "Ref" not in resource_ref:
            return ""
        props = api_resources[resource_ref["Ref"]]["Properties"]
        return f"{path(props['ParentId'])}/{props['PathPart']}"

    return {
        f"{m['Properties']['HttpMethod']} {path(m['Properties']['ResourceId'])}": m["Properties"]
        for m in resources(template, "AWS::ApiGateway::Method").values()
    }


ROUTES = {
    "POST /orders": INGEST,
    "GET /orders": ORDER_LIST,
    "GET /orders/{record_id}": ORDER_STATUS,
    "DELETE /orders/{record_id}": CANCEL,
}


def test_routes_are_exactly_the_four_and_each_reaches_its_function(
    service_json: dict[str, Any],
) -> None:
    routes = _method_routes(service_json)
    assert sorted(routes) == sorted(ROUTES)
    for route, handler in ROUTES.items():
        integration = routes[route]["Integration"]
        assert integration["Type"] == "AWS_PROXY", route
        alias = live_alias(service_json, function(service_json, handler)[0])
        assert {"Ref": alias} in integration["Uri"]["Fn::Join"][1], route


def test_request_parameters_the_gateway_requires(service_json: dict[str, Any]) -> None:
    """The record id is required in its path; the listing's query string parameters are all
    optional (their values are checked by the handler, which lists every problem)."""
    authorization = "method.request.header.Authorization"
    routes = _method_routes(service_json)
    assert {route: props["RequestParameters"] for route, props in routes.items()} == {
        "POST /orders": {authorization: True},
        "GET /orders": {
            authorization: True,
            "method.request.querystring.result_status": False,
            "method.request.querystring.limit": False,
            "method.request.querystring.cursor": False,
        },
        "GET /orders/{record_id}": {authorization: True, "method.request.path.record_id": True},
        "DELETE /orders/{record_id}": {
            authorization: True,
            "method.request.path.record_id": True,
        },
    }
    (validator_id,) = resources(service_json, "AWS::ApiGateway::RequestValidator")
    for route, props in routes.items():
        assert props["RequestValidatorId"] == {"Ref": validator_id}, route


def test_every_method_is_behind_the_jwt_authorizer(service_json: dict[str, Any]) -> None:
    authorizer_id, _ = only(service_json, "AWS::ApiGateway::Authorizer")
    for route, props in _method_routes(service_json).items():
        assert props["AuthorizationType"] == "CUSTOM", route
        assert props["AuthorizerId"] == {"Ref": authorizer_id}, route
        assert props["RequestParameters"]["method.request.header.Authorization"] is True, route


def _gateway_responses(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        r["Properties"]["ResponseType"]: r["Properties"]
        for r in resources(template, "AWS::ApiGateway::GatewayResponse").values()
    }


def test_gateway_responses_keep_aws_statuses_and_cover_every_type(
    service_json: dict[str, Any],
) -> None:
    """DEFAULT_4XX and DEFAULT_5XX set no status (each type keeps API Gateway's own); the
    types listed on their own keep AWS's status too."""
    by_type = _gateway_responses(service_json)
    assert {type_: props.get("StatusCode") for type_, props in by_type.items()} == {
        "UNAUTHORIZED": "401",
        "ACCESS_DENIED": "403",
        "REQUEST_TOO_LARGE": "413",
        "UNSUPPORTED_MEDIA_TYPE": "415",
        "THROTTLED": "429",
        "DEFAULT_4XX": None,
        "DEFAULT_5XX": None,
    }
    for type_, props in by_type.items():
        assert props["ResponseParameters"] == {
            "gatewayresponse.header.Content-Type": "'application/json'"
        }, type_
        assert props["ResponseTemplates"] == {"application/json": ERROR_TEMPLATE}, type_


# Every gateway response type of a REST API and API Gateway's own status for it (the AWS API
# Gateway developer guide, "Gateway response types"); DEFAULT_4XX/5XX have none of their own.
AWS_RESPONSE_TYPES = {
    "ACCESS_DENIED": 403,
    "API_CONFIGURATION_ERROR": 500,
    "AUTHORIZER_CONFIGURATION_ERROR": 500,
    "AUTHORIZER_FAILURE": 500,
    "BAD_REQUEST_PARAMETERS": 400,
    "BAD_REQUEST_BODY": 400,
    "EXPIRED_TOKEN": 403,
    "INTEGRATION_FAILURE": 504,
    "INTEGRATION_TIMEOUT": 504,
    "INVALID_API_KEY": 403,
    "INVALID_SIGNATURE": 403,
    "MISSING_AUTHENTICATION_TOKEN": 403,
    "QUOTA_EXCEEDED": 429,
    "REQUEST_TOO_LARGE": 413,
    "RESOURCE_NOT_FOUND": 404,
    "THROTTLED": 429,
    "UNAUTHORIZED": 401,
    "UNSUPPORTED_MEDIA_TYPE": 415,
    "WAF_FILTERED": 403,
}


@pytest.mark.parametrize("response_type", sorted(AWS_RESPONSE_TYPES))
def test_every_response_type_gets_the_error_shape_and_aws_status(
    service_json: dict[str, Any], response_type: str
) -> None:
    """Whatever API Gateway answers itself, through its own gateway response or the family's
    default, the client gets one JSON shape naming the type, at API Gateway's own status."""
    by_type = _gateway_responses(service_json)
    aws_status = AWS_RESPONSE_TYPES[response_type]
    family = "DEFAULT_5XX" if aws_status >= 500 else "DEFAULT_4XX"
    props = by_type.get(response_type) or by_type[family]
    assert int(props.get("StatusCode") or aws_status) == aws_status
    body = (
        props["ResponseTemplates"]["application/json"]
        .replace("$context.error.messageString", json.dumps("Some message"))
        .replace("$context.error.responseType", response_type)
        .replace("$context.requestId", "req-1")
    )
    assert json.loads(body) == {
        "message": "Some message",
        "code": response_type,
        "request_id": "req-1",
    }


@pytest.mark.parametrize("response_type", sorted(GATEWAY_ERRORS))
def test_every_gateway_answer_has_the_one_error_shape(
    service_json: dict[str, Any], response_type: str
) -> None:
    """Each answer API Gateway can give this API, rendered from the template's own gateway
    responses (by the local emulation, which substitutes the $context variables as AWS does):
    `{"message", "code", "request_id"}`, the code being the response type, with AWS's status."""
    api = RestApi(
        api_id="a1b2c3d4e5",
        stage="prod",
        routes=(),
        gateway_responses={
            type_: GatewayResponse(
                status=int(props["StatusCode"]) if props.get("StatusCode") else None,
                headers=(("Content-Type", "application/json"),),
                template=props["ResponseTemplates"]["application/json"],
            )
            for type_, props in _gateway_responses(service_json).items()
        },
    )
    message = 'a "quoted" message'
    reply = gateway_response(api, response_type, message, "req-1")
    assert reply.json() == {"message": message, "code": response_type, "request_id": "req-1"}
    assert reply.status == GATEWAY_ERRORS[response_type][0]


def test_json_bodies_reach_the_lambdas_as_raw_bytes(service_json: dict[str, Any]) -> None:
    """A binary media type is the only way a Lambda proxy integration gets the body's bytes
    (base64); as text, invalid UTF-8 would reach the ingest handler replaced by U+FFFD."""
    _, api = only(service_json, "AWS::ApiGateway::RestApi")
    assert api["Properties"]["BinaryMediaTypes"] == ["application/json"]


def test_api_gateway_may_invoke_the_functions_only_from_this_api(
    service_json: dict[str, Any],
) -> None:
    permissions = resources(service_json, "AWS::Lambda::Permission")
    api_id, _ = only(service_json, "AWS::ApiGateway::RestApi")
    intake = [p["Properties"] for k, p in permissions.items() if k.startswith("Intake")]
    # Secrets Manager's, on the key's rotation function, is checked in test_key_rotation.py.
    others = [p for p in intake if p["Principal"] != "apigateway.amazonaws.com"]
    assert [p["Principal"] for p in others] == ["secretsmanager.amazonaws.com"]
    intake = [p for p in intake if p not in others]
    assert len(intake) == len(ROUTES) + 1, (
        "one per route and one for the authorizer; no test-invoke grants"
    )
    for props in intake:
        assert props["Principal"] == "apigateway.amazonaws.com"
        assert {"Ref": api_id} in props["SourceArn"]["Fn::Join"][1]


# --- outputs -------------------------------------------------------------------------------


def test_outputs_give_the_api_url_secret_authorizer_and_table(
    service_json: dict[str, Any],
) -> None:
    outputs = service_json["Outputs"]
    secret_id, _ = secret_for(service_json, "jwt-signing-key")
    deny_list_id, _ = secret_for(service_json, "jwt-deny-list")
    table_id, _ = only(service_json, "AWS::DynamoDB::Table", "IntakeOrders")
    assert outputs["JwtSecretArn"]["Value"] == {"Ref": secret_id}
    assert outputs["JwtRevocationsSecretArn"]["Value"] == {"Ref": deny_list_id}
    api_id, _ = only(service_json, "AWS::ApiGateway::RestApi")
    stage_id, _ = only(service_json, "AWS::ApiGateway::Stage")
    assert outputs["RestApiId"]["Value"] == {"Ref": api_id}
    assert outputs["ApiStageName"]["Value"] == {"Ref": stage_id}
    assert outputs["OrdersTableName"]["Value"] == {"Ref": table_id}
    assert outputs["AuthorizerFunctionName"]["Value"] == {
        "Ref": function(service_json, AUTHORIZER)[0]
    }
    url_parts = outputs["ApiUrl"]["Value"]["Fn::Join"][1]
    assert url_parts[0] == "https://" and url_parts[-1] == "/orders"


def test_stack_deploys_to_eu_west_1_by_default(nag_assembly: Path) -> None:
    manifest = json.loads((nag_assembly / "manifest.json").read_text())
    assert manifest["artifacts"]["Entrix"]["environment"] == "aws://unknown-account/eu-west-1"
