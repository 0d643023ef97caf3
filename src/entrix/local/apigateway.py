"""A local API Gateway (REST, v1) that serves the routes the template defines.

moto's API Gateway runs no Lambda proxy integration and no authorizer, so this module does what
the deployed API does for this service, from the template's `AWS::ApiGateway::*` resources:

- routes from `Resource`/`Method` (path parameters such as `{record_id}`, `ANY`, greedy `{x+}`);
  an unknown path or method gets API Gateway's 403 `{"message":"Missing Authentication Token"}`;
- the Lambda authorizer of a method (`AuthorizerId`): REQUEST or TOKEN, run with the same code.
  A missing identity source is a 401 without calling it; `Unauthorized` raised is a 401; a policy
  that denies, or allows nothing matching the method ARN, is a 403; any other failure a 500.
  Its result is cached for `AuthorizerResultTtlInSeconds`, keyed on the identity source values,
  and the cached policy is evaluated against each request's method ARN, as API Gateway does;
- required request parameters of the method's request validator (400 when missing);
- bodies over API Gateway's 10 MB limit refused with 413 before they are read;
- a body whose Content-Type matches the API's `BinaryMediaTypes` reaches the Lambda base64-encoded
  (`isBase64Encoded`), any other as text with invalid UTF-8 replaced by U+FFFD; a proxy reply's
  base64 body is decoded only when the request's first Accept type matches;
- the Lambda proxy event (`resource`, `path`, `httpMethod`, `headers`, `multiValueHeaders`, query
  and path parameters, `requestContext` with stage, request id, identity and the authorizer's
  context) and the proxy response (`statusCode`, `headers`, `multiValueHeaders`, `body`,
  `isBase64Encoded`); a malformed response or a failed function is a 502;
- `MOCK` integrations (CORS preflight) answer with their first integration response;
- the template's `GatewayResponse`s shape every answer the gateway gives itself.

Not emulated: throttling, usage plans and API keys, request body models, WAF, VTL mapping
templates beyond the `$context` variables of gateway responses.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from entrix.local.lambda_runner import Invocation

logger = logging.getLogger(__name__)

# API Gateway REST payload limit (Service Quotas: "Payload size", 10 MB).
MAX_BODY_BYTES = 10 * 1024 * 1024
DEFAULT_AUTHORIZER_TTL_SECONDS = 300
# Oversized bodies up to this size are read and dropped before the 413; larger ones are not read.
_MAX_DRAIN_BYTES = 4 * MAX_BODY_BYTES

# function name, event -> result of the invocation
Invoker = Callable[[str, Any], Invocation]

# Gateway response type -> (status, message, x-amzn-ErrorType)
_GATEWAY_ERRORS: dict[str, tuple[int, str | None, str]] = {
    "MISSING_AUTHENTICATION_TOKEN": (
        403,
        "Missing Authentication Token",
        "MissingAuthenticationTokenException",
    ),
    "UNAUTHORIZED": (401, "Unauthorized", "UnauthorizedException"),
    "ACCESS_DENIED": (
        403,
        "User is not authorized to access this resource",
        "AccessDeniedException",
    ),
    "AUTHORIZER_CONFIGURATION_ERROR": (500, None, "AuthorizerConfigurationException"),
    "BAD_REQUEST_PARAMETERS": (400, "Missing required request parameters", "BadRequestException"),
    "REQUEST_TOO_LARGE": (413, "Request Too Long", "RequestTooLargeException"),
    "BAD_GATEWAY": (502, "Internal server error", "InternalServerErrorException"),
}
_EXPLICIT_DENY = "User is not authorized to access this resource with an explicit deny"
_FUNCTION_IN_URI = re.compile(r"functions/(arn:[^/]+)/invocations")


class ApiConfigurationError(Exception):
    """The template's REST API uses something this emulation does not serve."""


@dataclass(frozen=True)
class Authorizer:
    """A Lambda authorizer, as its `AWS::ApiGateway::Authorizer` resource configures it."""

    authorizer_id: str
    type: str  # REQUEST or TOKEN
    function_name: str
    identity_sources: tuple[str, ...]
    ttl_seconds: int


@dataclass(frozen=True)
class Route:
    """One method of one resource: what answers it and what guards it."""

    resource_id: str
    resource_path: str  # as API Gateway names it, e.g. /orders/{record_id}
    http_method: str  # GET, POST, ..., or ANY
    integration_type: str  # AWS_PROXY or MOCK
    function_name: str | None = None
    authorizer: Authorizer | None = None
    required_parameters: tuple[str, ...] = ()  # method.request.{header,querystring,path}.NAME
    mock_status: int = 200
    mock_headers: tuple[tuple[str, str], ...] = ()

    def matches(self, path: str) -> dict[str, str] | None:
        """The path parameters when `path` is this route's resource, else None."""
        pattern = "^"
        for segment in self.resource_path.strip("/").split("/"):
            if not segment:
                continue
            greedy = re.fullmatch(r"\{(\w+)\+\}", segment)
            single = re.fullmatch(r"\{(\w+)\}", segment)
            if greedy:
                pattern += f"/(?P<{greedy.group(1)}>.+)"
            elif single:
                pattern += f"/(?P<{single.group(1)}>[^/]+)"
            else:
                pattern += "/" + re.escape(segment)
        match = re.match(pattern + "/?$" if pattern != "^" else "^/?$", path)
        if not match:
            return None
        return {name: unquote(value) for name, value in match.groupdict().items()}


@dataclass(frozen=True)
class GatewayResponse:
    status: int | None
    headers: tuple[tuple[str, str], ...]
    template: str | None


@dataclass(frozen=True)
class RestApi:
    """The served API: routes, stage and gateway responses, read from a local deployment."""

    api_id: str
    stage: str
    routes: tuple[Route, ...]
    stage_variables: Mapping[str, str] = field(default_factory=dict)
    gateway_responses: Mapping[str, GatewayResponse] = field(default_factory=dict)
    binary_media_types: tuple[str, ...] = ()

    @classmethod
    def from_parts(
        cls, parts: Mapping[str, tuple[str, dict[str, Any]]], ids: Mapping[str, str]
    ) -> RestApi:
        """Build from the resolved `AWS::ApiGateway::*` resources (logical id -> type, props)."""
        by_type: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for logical_id, (resource_type, properties) in parts.items():
            short = resource_type.rsplit("::", 1)[1]
            by_type.setdefault(short, []).append((logical_id, properties))
        apis = by_type.get("RestApi", [])
        if len(apis) != 1:
            raise ApiConfigurationError(f"expected one RestApi, the template has {len(apis)}")
        api_logical_id, api_properties = apis[0]
        api_id = ids[api_logical_id]
        paths = {ids[api_logical_id + "/"]: "/"}
        resources = {ids[lid]: p for lid, p in by_type.get("Resource", [])}

        def path_of(resource_id: str) -> str:
            if resource_id not in paths:
                resource = resources[resource_id]
                parent = path_of(resource["ParentId"])
                paths[resource_id] = parent.rstrip("/") + "/" + resource["PathPart"]
            return paths[resource_id]

        authorizers = {
            ids[lid]: _authorizer(ids[lid], p) for lid, p in by_type.get("Authorizer", [])
        }
        validators = {ids[lid]: p for lid, p in by_type.get("RequestValidator", [])}
        routes = []
        for logical_id, method in by_type.get("Method", []):
            routes.append(
                _route(logical_id, method, path_of(method["ResourceId"]), authorizers, validators)
            )
        stages = by_type.get("Stage", [])
        stage = stages[0][1] if stages else {}
        responses = {
            p["ResponseType"]: GatewayResponse(
                status=int(p["StatusCode"]) if p.get("StatusCode") else None,
                headers=tuple(
                    (name.removeprefix("gatewayresponse.header."), value.strip("'"))
                    for name, value in (p.get("ResponseParameters") or {}).items()
                ),
                template=(p.get("ResponseTemplates") or {}).get("application/json"),
            )
            for _, p in by_type.get("GatewayResponse", [])
        }
        return cls(
            api_id=api_id,
            stage=stage.get("StageName", "prod"),
            routes=tuple(routes),
            stage_variables=dict(stage.get("Variables") or {}),
            gateway_responses=responses,
            binary_media_types=tuple(api_properties.get("BinaryMediaTypes") or ()),
        )

    def find(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """The route serving `method` on `path` (an exact method wins over ANY)."""
        candidates = []
        for route in self.routes:
            parameters = route.matches(path)
            if parameters is not None and route.http_method in (method, "ANY"):
                candidates.append(
                    (route.http_method == "ANY", route.resource_path.count("{"), route, parameters)
                )
        if not candidates:
            return None
        candidates.sort(key=lambda c: (c[0], c[1]))
        return candidates[0][2], candidates[0][3]


def _authorizer(authorizer_id: str, p: dict[str, Any]) -> Authorizer:
    if p.get("Type") not in ("REQUEST", "TOKEN"):
        raise ApiConfigurationError(f"authorizer type {p.get('Type')} is not emulated")
    return Authorizer(
        authorizer_id=authorizer_id,
        type=p["Type"],
        function_name=_function_name(p["AuthorizerUri"]),
        identity_sources=tuple(
            source.strip() for source in p.get("IdentitySource", "").split(",") if source.strip()
        ),
        ttl_seconds=int(p.get("AuthorizerResultTtlInSeconds", DEFAULT_AUTHORIZER_TTL_SECONDS)),
    )


def _route(
    logical_id: str,
    method: dict[str, Any],
    path: str,
    authorizers: Mapping[str, Authorizer],
    validators: Mapping[str, dict[str, Any]],
) -> Route:
    integration = method.get("Integration") or {}
    integration_type = integration.get("Type", "MOCK")
    authorization = method.get("AuthorizationType", "NONE")
    if authorization not in ("NONE", "CUSTOM"):
        raise ApiConfigurationError(f"{logical_id}: AuthorizationType {authorization} not emulated")
    authorizer = authorizers[method["AuthorizerId"]] if authorization == "CUSTOM" else None
    validator = validators.get(method.get("RequestValidatorId", ""), {})
    required = ()
    if validator.get("ValidateRequestParameters"):
        required = tuple(name for name, on in (method.get("RequestParameters") or {}).items() if on)
    if validator.get("ValidateRequestBody"):
        logger.warning("%s: request body validation is not emulated locally", logical_id)
    common = {
        "resource_id": method["ResourceId"],
        "resource_path": path,
        "http_method": method["HttpMethod"].upper(),
        "authorizer": authorizer,
        "required_parameters": required,
    }
    if integration_type == "AWS_PROXY":
        return Route(
            integration_type="AWS_PROXY", function_name=_function_name(integration["Uri"]), **common
        )
    if integration_type == "MOCK":
        responses = integration.get("IntegrationResponses") or [{}]
        return Route(
            integration_type="MOCK",
            mock_status=int(responses[0].get("StatusCode", 200)),
            mock_headers=tuple(
                (name.removeprefix("method.response.header."), str(value).strip("'"))
                for name, value in (responses[0].get("ResponseParameters") or {}).items()
            ),
            **common,
        )
    raise ApiConfigurationError(f"{logical_id}: integration type {integration_type} not emulated")


def _function_name(uri: str) -> str:
    match = _FUNCTION_IN_URI.search(uri)
    if not match:
        raise ApiConfigurationError(f"not a Lambda integration URI: {uri}")
    return match.group(1).split(":")[6]


@dataclass
class ApiRequest:
    method: str
    raw_path: str  # path and query string as received
    headers: list[tuple[str, str]]
    body: bytes = b""
    source_ip: str = "127.0.0.1"
    protocol: str = "HTTP/1.1"


@dataclass
class ApiResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


class _GatewayError(Exception):
    def __init__(self, response_type: str, message: str | None = None) -> None:
        super().__init__(response_type)
        self.response_type = response_type
        self.message = message


class ApiGateway:
    """Answers requests as the deployed REST API would; independent of any HTTP server."""

    def __init__(
        self,
        api: RestApi,
        invoke: Invoker,
        *,
        region: str = "eu-west-1",
        account_id: str = "123456789012",
        partition: str = "aws",
        domain_name: str = "localhost",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api = api
        self.invoke = invoke
        self.region = region
        self.account_id = account_id
        self.partition = partition
        self.domain_name = domain_name
        self.clock = clock
        self._cache: dict[tuple[str, tuple[str, ...]], tuple[float, dict[str, Any]]] = {}
        self._cache_lock = threading.Lock()

    def handle(self, request: ApiRequest) -> ApiResponse:
        request_id = str(uuid.uuid4())
        try:
            response = self._handle(request, request_id)
        except _GatewayError as error:
            response = self._gateway_response(error.response_type, error.message, request_id)
        response.headers.append(("x-amzn-RequestId", request_id))
        return response

    def body_too_large(self) -> ApiResponse:
        """The answer to a request whose declared length is over the limit (body left unread)."""
        request_id = str(uuid.uuid4())
        response = self._gateway_response("REQUEST_TOO_LARGE", None, request_id)
        response.headers.append(("x-amzn-RequestId", request_id))
        return response

    def _handle(self, request: ApiRequest, request_id: str) -> ApiResponse:
        if len(request.body) > MAX_BODY_BYTES:
            raise _GatewayError("REQUEST_TOO_LARGE")
        split = urlsplit(request.raw_path)
        path = split.path or "/"
        found = self.api.find(request.method.upper(), path)
        if found is None:
            raise _GatewayError("MISSING_AUTHENTICATION_TOKEN")
        route, path_parameters = found
        event = self._proxy_event(request, route, path, split.query, path_parameters, request_id)
        if route.authorizer is not None:
            event["requestContext"]["authorizer"] = self._authorize(route.authorizer, event)
        self._validate_parameters(route, event)
        if route.integration_type == "MOCK":
            return ApiResponse(route.mock_status, list(route.mock_headers))
        assert route.function_name is not None
        accept = _first(event["multiValueHeaders"] or {}, "accept")
        return self._proxy_response(self.invoke(route.function_name, event), accept)

    def _proxy_event(
        self,
        request: ApiRequest,
        route: Route,
        path: str,
        query: str,
        path_parameters: dict[str, str],
        request_id: str,
    ) -> dict[str, Any]:
        multi_headers: dict[str, list[str]] = {}
        for name, value in request.headers:
            multi_headers.setdefault(name, []).append(value)
        multi_query: dict[str, list[str]] = {}
        for name, value in parse_qsl(query, keep_blank_values=True):
            multi_query.setdefault(name, []).append(value)
        binary = _is_binary(_first(multi_headers, "content-type"), self.api.binary_media_types)
        if not request.body:
            body = None
        elif binary:
            body = base64.b64encode(request.body).decode()
        else:
            body = request.body.decode("utf-8", errors="replace")
        now = datetime.now(UTC)
        return {
            "resource": route.resource_path,
            "path": path,
            "httpMethod": request.method.upper(),
            "headers": {k: v[-1] for k, v in multi_headers.items()} or None,
            "multiValueHeaders": multi_headers or None,
            "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": path_parameters or None,
            "stageVariables": dict(self.api.stage_variables) or None,
            "requestContext": {
                "resourceId": route.resource_id,
                "resourcePath": route.resource_path,
                "httpMethod": request.method.upper(),
                "extendedRequestId": request_id,
                "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "path": f"/{self.api.stage}{path}",
                "accountId": self.account_id,
                "protocol": request.protocol,
                "stage": self.api.stage,
                "domainPrefix": self.domain_name.split(".")[0],
                "requestTimeEpoch": int(now.timestamp() * 1000),
                "requestId": request_id,
                "identity": {
                    "cognitoIdentityPoolId": None,
                    "accountId": None,
                    "cognitoIdentityId": None,
                    "caller": None,
                    "sourceIp": request.source_ip,
                    "principalOrgId": None,
                    "accessKey": None,
                    "cognitoAuthenticationType": None,
                    "cognitoAuthenticationProvider": None,
                    "userArn": None,
                    "userAgent": _first(multi_headers, "user-agent"),
                    "user": None,
                },
                "domainName": self.domain_name,
                "apiId": self.api.api_id,
            },
            "body": body,
            "isBase64Encoded": binary and body is not None,
        }

    def method_arn(self, method: str, path: str) -> str:
        return (
            f"arn:{self.partition}:execute-api:{self.region}:{self.account_id}:"
            f"{self.api.api_id}/{self.api.stage}/{method}{path}"
        )

    def _identity(self, authorizer: Authorizer, event: dict[str, Any]) -> tuple[str, ...]:
        values = []
        for source in authorizer.identity_sources:
            value: str | None = None
            if source.startswith("method.request.header."):
                value = _first(event["multiValueHeaders"] or {}, source.rsplit(".", 1)[1])
            elif source.startswith("method.request.querystring."):
                value = (event["queryStringParameters"] or {}).get(source.rsplit(".", 1)[1])
            elif source.startswith("stageVariables."):
                value = self.api.stage_variables.get(source.split(".", 1)[1])
            elif source.startswith("context."):
                value = event["requestContext"].get(source.split(".", 1)[1])
            if not value:
                raise _GatewayError("UNAUTHORIZED")
            values.append(value)
        return tuple(values)

    def _authorize(self, authorizer: Authorizer, event: dict[str, Any]) -> dict[str, Any]:
        """Run (or reuse the cached answer of) the authorizer; the authorizer context on success."""
        identity = self._identity(authorizer, event)
        method_arn = self.method_arn(event["httpMethod"], event["path"])
        key = (authorizer.authorizer_id, identity)
        started = self.clock()
        with self._cache_lock:
            cached = self._cache.get(key)
        if cached and cached[0] > started:
            output = cached[1]
        else:
            output = self._call_authorizer(authorizer, event, method_arn, identity)
            if authorizer.ttl_seconds > 0:
                with self._cache_lock:
                    self._cache[key] = (started + authorizer.ttl_seconds, output)
        latency = int((self.clock() - started) * 1000)
        self._enforce(output.get("policyDocument"), method_arn)
        context = {"principalId": output.get("principalId")}
        for name, value in (output.get("context") or {}).items():
            context[name] = str(value).lower() if isinstance(value, bool) else str(value)
        context["integrationLatency"] = latency
        return context

    def _call_authorizer(
        self,
        authorizer: Authorizer,
        event: dict[str, Any],
        method_arn: str,
        identity: tuple[str, ...],
    ) -> dict[str, Any]:
        if authorizer.type == "TOKEN":
            authorizer_event: dict[str, Any] = {
                "type": "TOKEN",
                "authorizationToken": identity[0],
                "methodArn": method_arn,
            }
        else:
            authorizer_event = {
                "type": "REQUEST",
                "methodArn": method_arn,
                **{k: v for k, v in event.items() if k not in ("body", "isBase64Encoded")},
            }
        result = self.invoke(authorizer.function_name, authorizer_event)
        output = _json_or_none(result.payload)
        if result.errored:
            message = output.get("errorMessage") if isinstance(output, dict) else None
            if message == "Unauthorized":
                raise _GatewayError("UNAUTHORIZED")
            logger.error("authorizer %s failed: %s", authorizer.function_name, result.payload)
            raise _GatewayError("AUTHORIZER_CONFIGURATION_ERROR")
        if not (
            isinstance(output, dict)
            and isinstance(output.get("policyDocument"), dict)
            and "principalId" in output
            and all(
                isinstance(v, str | int | float | bool)
                for v in (output.get("context") or {}).values()
            )
        ):
            logger.error("authorizer %s answered %s", authorizer.function_name, result.payload)
            raise _GatewayError("AUTHORIZER_CONFIGURATION_ERROR")
        return output

    def _enforce(self, policy: dict[str, Any] | None, method_arn: str) -> None:
        """403 unless the policy allows execute-api:Invoke on the method ARN with no deny."""
        allowed = False
        for statement in _as_list((policy or {}).get("Statement")):
            actions = _as_list(statement.get("Action"))
            resources = _as_list(statement.get("Resource"))
            if not any(_arn_match(a, "execute-api:Invoke") for a in actions):
                continue
            if not any(_arn_match(r, method_arn) for r in resources):
                continue
            if statement.get("Effect") == "Deny":
                raise _GatewayError("ACCESS_DENIED", _EXPLICIT_DENY)
            if statement.get("Effect") == "Allow":
                allowed = True
        if not allowed:
            raise _GatewayError("ACCESS_DENIED")

    def _validate_parameters(self, route: Route, event: dict[str, Any]) -> None:
        missing = []
        for parameter in route.required_parameters:
            where, _, name = parameter.removeprefix("method.request.").partition(".")
            if where == "header":
                present = _first(event["multiValueHeaders"] or {}, name) is not None
            elif where == "querystring":
                present = name in (event["queryStringParameters"] or {})
            else:
                present = name in (event["pathParameters"] or {})
            if not present:
                missing.append(name)
        if missing:
            message = f"Missing required request parameters: [{', '.join(missing)}]"
            raise _GatewayError("BAD_REQUEST_PARAMETERS", message)

    def _proxy_response(self, result: Invocation, accept: str | None) -> ApiResponse:
        output = _json_or_none(result.payload)
        if result.errored or not isinstance(output, dict):
            logger.error("integration failed: %s", result.payload)
            raise _GatewayError("BAD_GATEWAY")
        try:
            status = int(output.get("statusCode", 200))
        except (TypeError, ValueError):
            raise _GatewayError("BAD_GATEWAY") from None
        headers: list[tuple[str, str]] = []
        single = output.get("headers") or {}
        multi = output.get("multiValueHeaders") or {}
        if not isinstance(single, dict) or not isinstance(multi, dict):
            raise _GatewayError("BAD_GATEWAY")
        for name, values in multi.items():
            headers.extend((name, str(v)) for v in _as_list(values))
        names = {name.lower() for name in multi}
        headers.extend((n, str(v)) for n, v in single.items() if n.lower() not in names)
        if not any(name.lower() == "content-type" for name, _ in headers):
            headers.append(("Content-Type", "application/json"))
        body = output.get("body")
        if body is None:
            payload = b""
        elif output.get("isBase64Encoded") and _is_binary(accept, self.api.binary_media_types):
            payload = base64.b64decode(body)
        else:
            payload = str(body).encode()
        return ApiResponse(status, headers, payload)

    def _gateway_response(
        self, response_type: str, message: str | None, request_id: str
    ) -> ApiResponse:
        status, default_message, error_type = _GATEWAY_ERRORS[response_type]
        message = message if message is not None else default_message
        family = "DEFAULT_5XX" if status >= 500 else "DEFAULT_4XX"
        configured = self.api.gateway_responses.get(
            response_type
        ) or self.api.gateway_responses.get(family)
        headers = [("Content-Type", "application/json"), ("x-amzn-ErrorType", error_type)]
        body = json.dumps({"message": message}).encode()
        if configured is not None:
            status = configured.status or status
            headers = [h for h in headers if h[0] not in dict(configured.headers)]
            headers.extend(configured.headers)
            if configured.template is not None:
                values = {
                    "$context.error.messageString": json.dumps(message),
                    "$context.error.message": message or "",
                    "$context.error.responseType": response_type,
                    "$context.requestId": request_id,
                    "$context.stage": self.api.stage,
                    "$context.apiId": self.api.api_id,
                }
                text = configured.template
                for variable in sorted(values, key=len, reverse=True):
                    text = text.replace(variable, values[variable])
                body = re.sub(r"\$context\.[\w.]+", "", text).encode()
        return ApiResponse(status, headers, body)


def _first(multi: Mapping[str, list[str]], name: str) -> str | None:
    for key, values in multi.items():
        if key.lower() == name.lower() and values:
            return values[-1]
    return None


def _is_binary(header: str | None, binary_media_types: Collection[str]) -> bool:
    """Whether API Gateway handles a payload as binary: a request body by its Content-Type, a
    proxy reply by the request's Accept (its first type only).

    As AWS matches: the media type without its parameters (`multipart/form-data` matches
    `multipart/form-data; boundary=x`), equal to an entry or under a `type/*` entry, compared as
    written; `*/*` matches everything, even no header; a wildcard on the left (`*/json`) nothing.
    """
    entries = {entry.replace("~1", "/") for entry in binary_media_types}
    if "*/*" in entries:
        return True
    media_type = (header or "").split(",")[0].split(";")[0].strip()
    kind, slash, subtype = media_type.partition("/")
    if not (kind and slash and subtype):
        return False
    if kind == "*":
        return False
    return media_type in entries or f"{kind}/*" in entries


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _arn_match(pattern: str, value: str) -> bool:
    """IAM-style matching: `*` any run of characters, `?` one character."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, flags=re.DOTALL) is not None


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


class ApiServer:
    """Serves an `ApiGateway` over HTTP/1.1 on a thread per connection."""

    def __init__(self, gateway: ApiGateway, host: str, port: int) -> None:
        handler = type("Handler", (_RequestHandler,), {"gateway": gateway})
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="api", daemon=True)

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join()


class _RequestHandler(BaseHTTPRequestHandler):
    gateway: ApiGateway
    protocol_version = "HTTP/1.1"
    server_version = "entrix-local-apigateway"
    # Headers and body go out in two writes; with Nagle on, the body waits for the client's
    # delayed ACK (40 ms on Linux) on every keep-alive request.
    disable_nagle_algorithm = True

    def handle_expect_100(self) -> bool:
        """Refuse an oversized body before the client sends it (curl asks first for big ones)."""
        if self._declared_length() > MAX_BODY_BYTES:
            self.close_connection = True
            self._send(self.gateway.body_too_large())
            return False
        return super().handle_expect_100()

    def _declared_length(self) -> int:
        try:
            return int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return 0

    def _serve(self) -> None:
        length = self._declared_length()
        if length > MAX_BODY_BYTES:
            # Read and drop the body (up to a bound), so a client that sends it all before
            # reading gets the 413 instead of a broken pipe.
            remaining = length if length <= _MAX_DRAIN_BYTES else 0
            while remaining > 0:
                chunk = self.rfile.read(min(remaining, 1 << 20))
                if not chunk:
                    break
                remaining -= len(chunk)
            self.close_connection = True
            self._send(self.gateway.body_too_large())
            return
        body = self.rfile.read(length) if length else b""
        request = ApiRequest(
            method=self.command,
            raw_path=self.path,
            headers=list(self.headers.items()),
            body=body,
            source_ip=self.client_address[0],
            protocol=self.request_version,
        )
        self._send(self.gateway.handle(request))

    def _send(self, response: ApiResponse) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            if name.lower() not in ("content-length", "connection"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

    def __getattr__(self, name: str) -> Any:
        """Any other method (TRACE, QUERY, made-up ones) is served like these, so it gets API
        Gateway's 403 where http.server would answer 501: a 5xx for the client's mistake."""
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s - %s", self.address_string(), format % args)
