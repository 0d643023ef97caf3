"""The Lambda proxy (AWS_PROXY) contract, and the answers the gateway gives itself.

The event a function receives and how its reply becomes the HTTP response follow API Gateway's
REST (v1) payload, including which bodies travel base64 by the API's `BinaryMediaTypes`; errors
the gateway raises are rendered through the template's `GatewayResponse`s.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from entrix.local.apigateway.model import RestApi, Route
from entrix.local.lambda_runner import Invocation

logger = logging.getLogger(__name__)

# function name, event -> result of the invocation
Invoker = Callable[[str, Any], Invocation]

# Replies that carry no body in HTTP (RFC 9110): 204 No Content and 304 Not Modified.
NO_BODY_STATUSES = frozenset({204, 304})

# The answers this emulation gives itself, by gateway response type (the names
# `$context.error.responseType` gives): (status, message, x-amzn-ErrorType).
GATEWAY_ERRORS: dict[str, tuple[int, str | None, str]] = {
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
    # A Lambda proxy integration that failed or answered malformed: 502, a type of no family of
    # its own, so DEFAULT_5XX's gateway response shapes it.
    "DEFAULT_5XX": (502, "Internal server error", "InternalServerErrorException"),
}


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


class GatewayError(Exception):
    """An answer the gateway gives itself, by its gateway response type (`UNAUTHORIZED`, ...)."""

    def __init__(self, response_type: str, message: str | None = None) -> None:
        super().__init__(response_type)
        self.response_type = response_type
        self.message = message


def proxy_event(
    request: ApiRequest,
    route: Route,
    path: str,
    query: str,
    path_parameters: dict[str, str],
    request_id: str,
    *,
    api: RestApi,
    account_id: str,
    domain_name: str,
) -> dict[str, Any]:
    """The event an AWS_PROXY integration (and a REQUEST authorizer) receives."""
    multi_headers: dict[str, list[str]] = {}
    for name, value in request.headers:
        multi_headers.setdefault(name, []).append(value)
    multi_query: dict[str, list[str]] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        multi_query.setdefault(name, []).append(value)
    binary = is_binary(first_header(multi_headers, "content-type"), api.binary_media_types)
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
        "stageVariables": None,  # stage variables are refused when the API is read
        "requestContext": {
            "resourceId": route.resource_id,
            "resourcePath": route.resource_path,
            "httpMethod": request.method.upper(),
            "extendedRequestId": request_id,
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "path": f"/{api.stage}{path}",
            "accountId": account_id,
            "protocol": request.protocol,
            "stage": api.stage,
            "domainPrefix": domain_name.split(".")[0],
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
                "userAgent": first_header(multi_headers, "user-agent"),
                "user": None,
            },
            "domainName": domain_name,
            "apiId": api.api_id,
        },
        "body": body,
        "isBase64Encoded": binary and body is not None,
    }


def proxy_response(
    result: Invocation, accept: str | None, binary_media_types: Collection[str]
) -> ApiResponse:
    """The HTTP response for a proxy integration's reply; a failed or malformed one is a 502.

    Every header of the reply passes (`Retry-After` included); a 204 or 304 has no body.
    """
    output = json_or_none(result.payload)
    if result.errored or not isinstance(output, dict):
        logger.error("integration failed: %s", result.payload)
        raise GatewayError("DEFAULT_5XX")
    try:
        status = int(output.get("statusCode", 200))
    except (TypeError, ValueError):
        raise GatewayError("DEFAULT_5XX") from None
    headers: list[tuple[str, str]] = []
    single = output.get("headers") or {}
    multi = output.get("multiValueHeaders") or {}
    if not isinstance(single, dict) or not isinstance(multi, dict):
        raise GatewayError("DEFAULT_5XX")
    for name, values in multi.items():
        headers.extend((name, str(v)) for v in as_list(values))
    names = {name.lower() for name in multi}
    headers.extend((n, str(v)) for n, v in single.items() if n.lower() not in names)
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", "application/json"))
    body = output.get("body")
    if body is None or status in NO_BODY_STATUSES:
        payload = b""
    elif output.get("isBase64Encoded") and is_binary(accept, binary_media_types):
        payload = base64.b64decode(body)
    else:
        payload = str(body).encode()
    return ApiResponse(status, headers, payload)


def gateway_response(
    api: RestApi, response_type: str, message: str | None, request_id: str
) -> ApiResponse:
    """The gateway's own answer of `response_type`, shaped by the template's gateway response
    of that type (or its DEFAULT_4XX/5XX family) when there is one."""
    status, default_message, error_type = GATEWAY_ERRORS[response_type]
    message = message if message is not None else default_message
    family = "DEFAULT_5XX" if status >= 500 else "DEFAULT_4XX"
    configured = api.gateway_responses.get(response_type) or api.gateway_responses.get(family)
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
                "$context.stage": api.stage,
                "$context.apiId": api.api_id,
            }
            text = configured.template
            for variable in sorted(values, key=len, reverse=True):
                text = text.replace(variable, values[variable])
            body = re.sub(r"\$context\.[\w.]+", "", text).encode()
    return ApiResponse(status, headers, body)


def first_header(multi: Mapping[str, list[str]], name: str) -> str | None:
    """The last value of header `name` (any case), as the proxy event's `headers` has it."""
    for key, values in multi.items():
        if key.lower() == name.lower() and values:
            return values[-1]
    return None


def is_binary(header: str | None, binary_media_types: Collection[str]) -> bool:
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


def as_list(value: Any) -> list[Any]:
    """A policy or reply field that may be one value or a list, as a list."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None
