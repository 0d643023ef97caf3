"""Order intake: the REST API, its JWT authorizer, the orders table and the signing key.

POST /orders -> ingest, GET /orders -> order_list, GET /orders/{record_id} -> order_status,
DELETE /orders/{record_id} -> cancel, all behind a REQUEST authorizer that verifies HS256 tokens
with a key generated into Secrets Manager at deploy time, or (jwt_key_source "jwks") an identity
provider's RS256/ES256 tokens with its public keys, when the stack has no signing key at all. Each
function's role may make only the calls its handler makes, on the table (or the one index) it
makes them on.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from aws_cdk import Duration, Stack, Tags
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from entrix import settings
from entrix.revocations import DENY_LIST_FILLER_FIELD, DenyList
from infra.config import ServiceConfig
from infra.constructs.client_usage import client_usage_table
from infra.constructs.key_rotation import KeyRotation
from infra.constructs.lambda_code import live_alias, python_function
from infra.constructs.log_groups import acknowledge_log_controls
from infra.constructs.orders_table import orders_table
from infra.constructs.waf import ApiWebAcl
from infra.nag import SCOPED_PERMISSION_REASON, acknowledge, acknowledge_control

AUTHORIZATION_HEADER = "Authorization"
STAGE_NAME = "prod"

# One JSON shape for every error API Gateway answers itself, the same as the handlers' refusals
# (entrix.http.error): `code` is the gateway response type (UNAUTHORIZED, ACCESS_DENIED,
# MISSING_AUTHENTICATION_TOKEN, ...), $context.error.messageString is already a quoted JSON string.
ERROR_TEMPLATE = (
    '{"message": $context.error.messageString, "code": "$context.error.responseType", '
    '"request_id": "$context.requestId"}'
)
# The types with a status of their own are listed for it; DEFAULT_4XX and DEFAULT_5XX give the
# same shape to every other type the API can answer (MISSING_AUTHENTICATION_TOKEN for an unknown
# route, BAD_REQUEST_PARAMETERS, AUTHORIZER_CONFIGURATION_ERROR, a failed integration, ...), with
# API Gateway's own status.
GATEWAY_RESPONSES: dict[str, tuple[apigw.ResponseType, str | None]] = {
    "Unauthorized": (apigw.ResponseType.UNAUTHORIZED, "401"),
    "AccessDenied": (apigw.ResponseType.ACCESS_DENIED, "403"),
    "RequestTooLarge": (apigw.ResponseType.REQUEST_TOO_LARGE, "413"),
    "UnsupportedMediaType": (apigw.ResponseType.UNSUPPORTED_MEDIA_TYPE, "415"),
    "Throttled": (apigw.ResponseType.THROTTLED, "429"),
    "Default4xx": (apigw.ResponseType.DEFAULT_4_XX, None),
    "Default5xx": (apigw.ResponseType.DEFAULT_5_XX, None),
}

_ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "requestTime": "$context.requestTime",
    "ip": "$context.identity.sourceIp",
    "httpMethod": "$context.httpMethod",
    "resourcePath": "$context.resourcePath",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "principalId": "$context.authorizer.principalId",
    "authorizerError": "$context.authorizer.error",
    "integrationLatency": "$context.integrationLatency",
    "integrationError": "$context.integration.error",
    "errorMessage": "$context.error.message",
    "xrayTraceId": "$context.xrayTraceId",
}


class Intake(Construct):
    """The API side of the service: everything between a client's POST and the orders table."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: ServiceConfig,
        jwt_layer: lambda_.ILayerVersion,
    ) -> None:
        super().__init__(scope, id)
        self.table = orders_table(self, "Orders", config=config)
        self.usage_table = client_usage_table(self, "ClientUsage", config=config)

        # Tokens of an identity provider need no key of ours: then there is none that could
        # mint a token, and nothing to rotate.
        self.jwt_secret: secretsmanager.Secret | None = None
        self.key_rotation: KeyRotation | None = None
        if config.jwt_key_source == "secret":
            self.jwt_secret = self._signing_key(config)
            # Rotated on a schedule with no refused token: verifiers accept the current and the
            # previous key, signers switch to a new one only once every verifier has seen it
            # (entrix.aws.signing_keys; docs/delivery.md, "Rotating the signing key").
            self.key_rotation = KeyRotation(
                self,
                "JwtKeyRotation",
                secret=self.jwt_secret,
                rotation_days=config.signing_key_rotation_days,
                log_retention=config.log_retention,
            )
        # The deny list (entrix.revocations) starts empty; `entrix revoke` edits it. Generated
        # from a template rather than given as a SecretString: CloudFormation would write a
        # literal value back on an update that changes it, un-revoking every token, while it
        # never generates a value again. The generated field means nothing and is dropped at
        # the first revocation.
        self.revocations_secret = secretsmanager.Secret(
            self,
            "JwtRevocations",
            description="Revoked tokens (by jti) and subjects of the Entrix API: the deny list",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                secret_string_template=DenyList().text(),
                generate_string_key=DENY_LIST_FILLER_FIELD,
                password_length=8,
                exclude_punctuation=True,
            ),
            removal_policy=config.data_removal_policy,
        )
        Tags.of(self.revocations_secret).add("entrix:purpose", "jwt-deny-list")
        acknowledge(
            self.revocations_secret,
            "AwsSolutions-SMG4",
            "A list of revoked token ids, not a credential: nothing to rotate.",
        )

        function = functools.partial(python_function, self, log_retention=config.log_retention)
        self.authorizer_function = function(
            "Authorizer",
            handler="entrix.handlers.authorizer.handler",
            description=(
                "REQUEST authorizer: verifies the Bearer JWT "
                f"({'HS256' if self.jwt_secret else 'RS256/ES256 of the identity provider'}) "
                "and the deny list"
            ),
            layers=[jwt_layer],
            settings={
                settings.JWT_KEY_SOURCE: config.jwt_key_source,
                **self._key_settings(config),
                settings.JWT_ISSUER: config.jwt_issuer,
                settings.JWT_AUDIENCE: config.jwt_audience,
                settings.MAX_TOKEN_LIFETIME_SECONDS: config.max_token_lifetime_seconds,
                settings.JWT_REVOCATIONS_SECRET_ARN: self.revocations_secret.secret_arn,
                settings.REVOCATIONS_CACHE_TTL_SECONDS: config.revocations_cache_ttl_seconds,
            },
            memory_size=256,
            timeout=Duration.seconds(5),
            # The keys and the deny list come from the extension over localhost, so a cold
            # request imports no boto3 (entrix.aws.secrets). Its cache is off: the authorizer
            # keeps each secret for its own TTL, and a second cache in front of that one would let
            # a rotated key be refused, or a revoked token accepted, for up to twice as long.
            params_and_secrets=lambda_.ParamsAndSecretsLayerVersion.from_version(
                lambda_.ParamsAndSecretsVersions.V1_0_103,
                cache_enabled=False,
                log_level=lambda_.ParamsAndSecretsLogLevel.WARN,
            ),
        )
        # The extension calls Secrets Manager with the function's role. GetSecretValue alone:
        # grant_read() would add DescribeSecret, which nothing calls. The secrets use the AWS
        # managed key, so no KMS grant is needed.
        self.authorizer_function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["secretsmanager:GetSecretValue"],
                resources=[
                    secret.secret_arn
                    for secret in (self.jwt_secret, self.revocations_secret)
                    if secret is not None
                ],
            )
        )

        table_arn = self.table.table_arn
        orders_setting: dict[settings.Setting[Any], Any] = {
            settings.ORDERS_TABLE_NAME: self.table.table_name
        }
        # The API functions but cancel charge each request to its caller's share
        # (entrix.handlers.fair_share): the usage table and the limits. A cancel is never
        # refused for the share: it is how a desk takes risk off before an auction closes.
        table_setting: dict[settings.Setting[Any], Any] = {
            **orders_setting,
            settings.CLIENT_USAGE_TABLE_NAME: self.usage_table.table_name,
            settings.CLIENT_RATE_LIMIT: config.client_rate_limit,
            settings.CLIENT_RATE_WINDOW_SECONDS: config.client_rate_window_seconds,
            settings.CLIENT_DAILY_ORDER_QUOTA: config.client_daily_order_quota,
            settings.CLIENT_LIMITS: settings.CLIENT_LIMITS.parse(config.client_limits),
        }
        # Explicit statements on the table (or the one index) each handler uses: Table.grant()
        # would add `<table>/index/*`, the pending-results index included, which no intake
        # function reads.
        self.ingest_function = function(
            "Ingest",
            handler="entrix.handlers.ingest.handler",
            description="POST /orders: validates the orders and stores each with a conditional put",
            settings=table_setting,
            memory_size=512,
            timeout=Duration.seconds(28),
        )
        # One conditional PutItem per order (new, expired, or an amend of an unclaimed pending
        # order): a batch write takes no condition, so there is no BatchWriteItem.
        self.ingest_function.add_to_role_policy(
            iam.PolicyStatement(actions=["dynamodb:PutItem"], resources=[table_arn])
        )

        self.order_status_function = function(
            "OrderStatus",
            handler="entrix.handlers.order_status.handler",
            description="GET /orders/{record_id}: the caller's stored order and its result",
            settings=table_setting,
        )
        self.order_status_function.add_to_role_policy(
            iam.PolicyStatement(actions=["dynamodb:GetItem"], resources=[table_arn])
        )

        owner_index = settings.ORDERS_OWNER_INDEX_NAME.text()
        self.order_list_function = function(
            "OrderList",
            handler="entrix.handlers.order_list.handler",
            description="GET /orders: the caller's orders, newest first, a page at a time",
            settings={**table_setting, settings.ORDERS_OWNER_INDEX_NAME: owner_index},
        )
        # The owner index's 16 shards are queried for the page's keys (the index projects keys
        # only), then the page's items are read from the table.
        self.order_list_function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["dynamodb:Query"], resources=[f"{table_arn}/index/{owner_index}"]
            )
        )
        self.order_list_function.add_to_role_policy(
            iam.PolicyStatement(actions=["dynamodb:BatchGetItem"], resources=[table_arn])
        )

        self.cancel_function = function(
            "Cancel",
            handler="entrix.handlers.cancel.handler",
            description="DELETE /orders/{record_id}: cancels the caller's pending, unclaimed order",
            settings=orders_setting,
        )
        # One conditional UpdateItem: pending, unclaimed and unexpired, or already cancelled.
        self.cancel_function.add_to_role_policy(
            iam.PolicyStatement(actions=["dynamodb:UpdateItem"], resources=[table_arn])
        )

        # One conditional UpdateItem per charge (and a POST's refund) on the caller's counters.
        for api_function in (
            self.ingest_function,
            self.order_status_function,
            self.order_list_function,
        ):
            api_function.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["dynamodb:UpdateItem"], resources=[self.usage_table.table_arn]
                )
            )

        self.api = self._rest_api(config)
        self.orders_url = self.api.url_for_path("/orders")
        if config.waf_enabled:
            ApiWebAcl(
                self,
                "Waf",
                stage=self.api.deployment_stage,
                rate_limit=config.waf_rate_limit,
                log_retention=config.log_retention,
            )
        else:
            acknowledge(
                self.api.deployment_stage,
                "AwsSolutions-APIG3",
                (
                    "WAF is a configuration switch (entrix:waf_enabled) turned on for Prod; "
                    "without it the stage is still throttled and every method needs a JWT."
                ),
            )

    def _key_settings(self, config: ServiceConfig) -> dict[settings.Setting[Any], Any]:
        """Where the authorizer's keys are: the signing secret (kept SECRET_CACHE_TTL_SECONDS),
        or the identity provider's JWKS URL, https:// only in AWS."""
        if self.jwt_secret is not None:
            return {
                settings.JWT_SECRET_ARN: self.jwt_secret.secret_arn,
                settings.SECRET_CACHE_TTL_SECONDS: config.secret_cache_ttl_seconds,
            }
        return {
            settings.JWT_JWKS_URL: config.jwt_jwks_url,
            settings.JWT_JWKS_ALLOW_LOOPBACK_HTTP: False,
        }

    def _signing_key(self, config: ServiceConfig) -> secretsmanager.Secret:
        # The raw HS256 key is the whole SecretString; CloudFormation generates it, so it is in
        # neither the code nor the template. Each version's id is its key's `kid`.
        secret = secretsmanager.Secret(
            self,
            "JwtSigningKey",
            description="HS256 signing key of the Entrix API's JWTs (SecretString is the key)",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=64, exclude_punctuation=True
            ),
            removal_policy=config.data_removal_policy,
        )
        Tags.of(secret).add("entrix:purpose", "jwt-signing-key")
        return secret

    def _rest_api(self, config: ServiceConfig) -> apigw.RestApi:
        access_logs = logs.LogGroup(self, "ApiAccessLogs", retention=config.log_retention)
        acknowledge_log_controls(access_logs)
        api = apigw.RestApi(
            self,
            "Api",
            # Unique per stack: the API's CloudWatch metrics (and its 5xx alarm) are keyed on
            # the name, and Dev and Prod may share an account and region.
            rest_api_name=f"{Stack.of(self).stack_name}-orders",
            description="Entrix auction order intake",
            # The ingest Lambda must get POST /orders bodies byte-exact (base64): as text, invalid
            # UTF-8 would arrive replaced by U+FFFD and be stored. The Content-Type's media type
            # is matched without parameters (`; charset=utf-8`). Text replies (isBase64Encoded
            # false) and gateway responses pass unchanged. Not */*: every body would turn binary,
            # which breaks request mapping templates (MOCK, CORS preflight).
            binary_media_types=["application/json"],
            endpoint_types=[apigw.EndpointType.REGIONAL],
            # The account-wide logging role belongs to AccountSettingsStack (one per account and
            # region), not to each service stack.
            cloud_watch_role=False,
            deploy_options=apigw.StageOptions(
                stage_name=STAGE_NAME,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.custom(json.dumps(_ACCESS_LOG_FIELDS)),
                throttling_rate_limit=config.api_rate_limit,
                throttling_burst_limit=config.api_burst_limit,
                tracing_enabled=True,
                metrics_enabled=True,
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,
            ),
        )
        for id, (response_type, status) in GATEWAY_RESPONSES.items():
            api.add_gateway_response(
                id,
                type=response_type,
                status_code=status,
                response_headers={"Content-Type": "'application/json'"},
                templates={"application/json": ERROR_TEMPLATE},
            )

        authorizer = apigw.RequestAuthorizer(
            self,
            "JwtAuthorizer",
            handler=live_alias(self.authorizer_function),
            identity_sources=[apigw.IdentitySource.header(AUTHORIZATION_HEADER)],
            results_cache_ttl=Duration.seconds(config.authorizer_cache_ttl_seconds),
        )
        # The alias's one permission: API Gateway invoking it for this API's authorizer.
        acknowledge_control(
            live_alias(self.authorizer_function),
            "CT.LAMBDA.PR.2",
            SCOPED_PERMISSION_REASON.format(scope="SourceArn (this API's authorizer ARN)"),
        )
        validator = api.add_request_validator(
            "ParameterValidator", validate_request_parameters=True, validate_request_body=False
        )
        acknowledge(
            api.node.find_child("Resource"),
            "AwsSolutions-APIG2",
            "The gateway validates the required header and path parameter; the body is checked "
            "by the ingest handler against the order schema, because the API must list every "
            "problem (index, field, reason) and API Gateway models answer one generic message.",
        )
        auth_header = f"method.request.header.{AUTHORIZATION_HEADER}"

        orders = api.root.add_resource("orders")
        order = orders.add_resource("{record_id}")
        record_id = "method.request.path.record_id"
        # GET /orders: every query string parameter is optional (the handler checks values).
        list_parameters = {
            f"method.request.querystring.{name}": False
            for name in ("result_status", "limit", "cursor")
        }
        routes = (
            (orders, "POST", self.ingest_function, {auth_header: True}),
            (orders, "GET", self.order_list_function, {auth_header: True, **list_parameters}),
            (order, "GET", self.order_status_function, {auth_header: True, record_id: True}),
            (order, "DELETE", self.cancel_function, {auth_header: True, record_id: True}),
        )
        for resource, http_method, handler, parameters in routes:
            method = resource.add_method(
                http_method,
                apigw.LambdaIntegration(live_alias(handler), allow_test_invoke=False),
                authorizer=authorizer,
                request_validator=validator,
                request_parameters=parameters,
            )
            acknowledge(
                method.node.find_child("Resource"),
                "AwsSolutions-COG4",
                "Clients are trading systems holding HS256 JWTs, verified by the REQUEST Lambda "
                "authorizer the product specifies; there are no Cognito users.",
            )
            acknowledge_control(
                method,
                "CT.LAMBDA.PR.2",
                SCOPED_PERMISSION_REASON.format(
                    scope="SourceArn (this API's stage, method and path)"
                ),
            )
        return api
