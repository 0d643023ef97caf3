"""The intake as synthesized: table, signing key, functions, least-privilege roles, API, outputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from entrix import settings
from entrix.aws import secrets

AUTHORIZER = "entrix.handlers.authorizer.handler"
INGEST = "entrix.handlers.ingest.handler"
ORDER_STATUS = "entrix.handlers.order_status.handler"
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
    """Action -> resource, for the statements beyond logging and tracing."""
    result: dict[str, Any] = {}
    for statement in role_statements(template, handler):
        assert statement["Effect"] == "Allow"
        for action in actions(statement) - {
            "logs:CreateLogStream",
            "logs:PutLogEvents",
            "xray:PutTraceSegments",
            "xray:PutTelemetryRecords",
        }:
            result[action] = statement["Resource"]
    return result


# --- table ---------------------------------------------------------------------------------


def test_orders_table_is_on_demand_keyed_by_record_id_with_ttl_and_pitr(
    service_template: Template,
) -> None:
    service_template.has_resource(
        "AWS::DynamoDB::Table",
        {
            "Properties": Match.object_like(
                {
                    "KeySchema": [{"AttributeName": "record_id", "KeyType": "HASH"}],
                    "AttributeDefinitions": Match.array_with(
                        [{"AttributeName": "record_id", "AttributeType": "S"}]
                    ),
                    "BillingMode": "PAY_PER_REQUEST",
                    "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
                    "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                    "SSESpecification": {"SSEEnabled": True},
                    "DeletionProtectionEnabled": True,
                }
            ),
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
        },
    )


# --- signing key ---------------------------------------------------------------------------


def test_signing_key_is_generated_by_secrets_manager_and_never_in_the_template(
    service_json: dict[str, Any],
) -> None:
    _, secret = only(service_json, "AWS::SecretsManager::Secret")
    props = secret["Properties"]
    assert "SecretString" not in props
    assert props["GenerateSecretString"]["PasswordLength"] >= 32
    assert "SecretStringTemplate" not in props["GenerateSecretString"], "the key is the raw string"
    assert {"Key": "entrix:purpose", "Value": "jwt-signing-key"} in props["Tags"]
    assert secret["DeletionPolicy"] == "Retain"


# --- functions -----------------------------------------------------------------------------


@pytest.mark.parametrize("handler", [AUTHORIZER, INGEST, ORDER_STATUS])
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
    keys = [
        function(service_json, h)[1]["Code"]["S3Key"] for h in (AUTHORIZER, INGEST, ORDER_STATUS)
    ]
    assert len(set(keys)) == 3


def test_authorizer_environment_names_the_secret_and_cache_ttl(
    service_json: dict[str, Any],
) -> None:
    _, props = function(service_json, AUTHORIZER)
    secret_id, _ = only(service_json, "AWS::SecretsManager::Secret")
    own = {
        name: value
        for name, value in props["Environment"]["Variables"].items()
        if not name.startswith(EXTENSION_VARIABLE_PREFIXES)
    }
    assert own == {
        settings.JWT_SECRET_ARN.name: {"Ref": secret_id},
        settings.JWT_ISSUER.name: "",
        settings.JWT_AUDIENCE.name: "",
        settings.SECRET_CACHE_TTL_SECONDS.name: "300",
    }


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


@pytest.mark.parametrize("handler", [INGEST, ORDER_STATUS])
def test_only_the_authorizer_has_the_extension(service_json: dict[str, Any], handler: str) -> None:
    _, props = function(service_json, handler)
    assert all(isinstance(layer, dict) for layer in props.get("Layers", []))
    assert not [
        name
        for name in props["Environment"]["Variables"]
        if name.startswith(EXTENSION_VARIABLE_PREFIXES)
    ]


@pytest.mark.parametrize("handler", [INGEST, ORDER_STATUS])
def test_order_handlers_get_the_table_name(service_json: dict[str, Any], handler: str) -> None:
    table_id, _ = only(service_json, "AWS::DynamoDB::Table")
    _, props = function(service_json, handler)
    assert props["Environment"]["Variables"] == {settings.ORDERS_TABLE_NAME.name: {"Ref": table_id}}


def test_layers_pyjwt_for_the_authorizer_and_none_for_the_order_handlers(
    service_json: dict[str, Any],
) -> None:
    layers = {
        handler: [
            layer["Ref"]
            for layer in function(service_json, handler)[1].get("Layers", [])
            if isinstance(layer, dict)  # the extension's layer is an ARN (tested above)
        ]
        for handler in (AUTHORIZER, INGEST, ORDER_STATUS)
    }
    # Ingest and order status validate and answer without pydantic or Powertools: their
    # asset is all they load (the cold-request bench builds its load path from these layers).
    assert layers[INGEST] == layers[ORDER_STATUS] == []
    (authorizer_layer,) = layers[AUTHORIZER]
    layer = service_json["Resources"][authorizer_layer]["Properties"]
    assert layer["CompatibleRuntimes"] == ["python3.13"]
    assert layer["CompatibleArchitectures"] == ["arm64"]
    assert "PyJWT" in layer["Description"]


# --- least privilege -----------------------------------------------------------------------


def test_authorizer_may_only_read_its_signing_key(service_json: dict[str, Any]) -> None:
    secret_id, _ = only(service_json, "AWS::SecretsManager::Secret")
    assert granted(service_json, AUTHORIZER) == {
        "secretsmanager:GetSecretValue": {"Ref": secret_id}
    }


def test_ingest_may_only_write_items_to_the_table(service_json: dict[str, Any]) -> None:
    table_id, _ = only(service_json, "AWS::DynamoDB::Table")
    table_arn = {"Fn::GetAtt": [table_id, "Arn"]}
    assert granted(service_json, INGEST) == {
        "dynamodb:BatchWriteItem": table_arn,
        "dynamodb:PutItem": table_arn,
    }


def test_order_status_may_only_get_items(service_json: dict[str, Any]) -> None:
    table_id, _ = only(service_json, "AWS::DynamoDB::Table")
    assert granted(service_json, ORDER_STATUS) == {
        "dynamodb:GetItem": {"Fn::GetAtt": [table_id, "Arn"]}
    }


@pytest.mark.parametrize("handler", [AUTHORIZER, INGEST, ORDER_STATUS])
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
    access_log_group = props["AccessLogSetting"]["DestinationArn"]["Fn::GetAtt"][0]
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
    assert {"Fn::GetAtt": [authorizer_fn, "Arn"]} in props["AuthorizerUri"]["Fn::Join"][1]


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


def test_routes_are_exactly_post_orders_and_get_one_order(service_json: dict[str, Any]) -> None:
    routes = _method_routes(service_json)
    assert sorted(routes) == ["GET /orders/{record_id}", "POST /orders"]
    for handler, route in ((INGEST, "POST /orders"), (ORDER_STATUS, "GET /orders/{record_id}")):
        integration = routes[route]["Integration"]
        assert integration["Type"] == "AWS_PROXY"
        assert {"Fn::GetAtt": [function(service_json, handler)[0], "Arn"]} in integration["Uri"][
            "Fn::Join"
        ][1]


def test_every_method_is_behind_the_jwt_authorizer(service_json: dict[str, Any]) -> None:
    authorizer_id, _ = only(service_json, "AWS::ApiGateway::Authorizer")
    for route, props in _method_routes(service_json).items():
        assert props["AuthorizationType"] == "CUSTOM", route
        assert props["AuthorizerId"] == {"Ref": authorizer_id}, route
        assert props["RequestParameters"]["method.request.header.Authorization"] is True, route


def test_gateway_errors_answer_json(service_json: dict[str, Any]) -> None:
    by_type = {
        r["Properties"]["ResponseType"]: r["Properties"]
        for r in resources(service_json, "AWS::ApiGateway::GatewayResponse").values()
    }
    assert {
        "UNAUTHORIZED",
        "ACCESS_DENIED",
        "REQUEST_TOO_LARGE",
        "DEFAULT_4XX",
        "DEFAULT_5XX",
    } <= set(by_type)
    assert by_type["UNAUTHORIZED"]["StatusCode"] == "401"
    assert by_type["REQUEST_TOO_LARGE"]["StatusCode"] == "413"
    for props in by_type.values():
        assert props["ResponseParameters"] == {
            "gatewayresponse.header.Content-Type": "'application/json'"
        }
        assert "$context.error.messageString" in props["ResponseTemplates"]["application/json"]


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
    assert len(intake) == 3, "one per route and one for the authorizer; no test-invoke grants"
    for props in intake:
        assert props["Principal"] == "apigateway.amazonaws.com"
        assert {"Ref": api_id} in props["SourceArn"]["Fn::Join"][1]


# --- outputs -------------------------------------------------------------------------------


def test_outputs_give_the_api_url_secret_authorizer_and_table(
    service_json: dict[str, Any],
) -> None:
    outputs = service_json["Outputs"]
    secret_id, _ = only(service_json, "AWS::SecretsManager::Secret")
    table_id, _ = only(service_json, "AWS::DynamoDB::Table")
    assert outputs["JwtSecretArn"]["Value"] == {"Ref": secret_id}
    assert outputs["OrdersTableName"]["Value"] == {"Ref": table_id}
    assert outputs["AuthorizerFunctionName"]["Value"] == {
        "Ref": function(service_json, AUTHORIZER)[0]
    }
    url_parts = outputs["ApiUrl"]["Value"]["Fn::Join"][1]
    assert url_parts[0] == "https://" and url_parts[-1] == "/orders"


def test_stack_deploys_to_eu_west_1_by_default(nag_assembly: Path) -> None:
    manifest = json.loads((nag_assembly / "manifest.json").read_text())
    assert manifest["artifacts"]["Entrix"]["environment"] == "aws://unknown-account/eu-west-1"
