"""One request through the REST API, as the deployed stage handles it, with no HTTP server.

Route (an unknown path or method is API Gateway's 403 "Missing Authentication Token"), authorize,
check the method's required request parameters, invoke the integration; bodies over the 10 MB
limit are refused first. Kept apart from the server so tests and the bench drive it directly.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from entrix.local.apigateway.authorizer import Authorizers
from entrix.local.apigateway.model import RestApi, Route
from entrix.local.apigateway.proxy import (
    ApiRequest,
    ApiResponse,
    GatewayError,
    Invoker,
    first_header,
    gateway_response,
    proxy_event,
    proxy_response,
)

# API Gateway REST payload limit (Service Quotas: "Payload size", 10 MB).
MAX_BODY_BYTES = 10 * 1024 * 1024


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
        self.authorizers = Authorizers(invoke, clock)

    def handle(self, request: ApiRequest) -> ApiResponse:
        request_id = str(uuid.uuid4())
        try:
            response = self._handle(request, request_id)
        except GatewayError as error:
            response = gateway_response(self.api, error.response_type, error.message, request_id)
        response.headers.append(("x-amzn-RequestId", request_id))
        return response

    def body_too_large(self) -> ApiResponse:
        """The answer to a request whose declared length is over the limit (body left unread)."""
        request_id = str(uuid.uuid4())
        response = gateway_response(self.api, "REQUEST_TOO_LARGE", None, request_id)
        response.headers.append(("x-amzn-RequestId", request_id))
        return response

    def method_arn(self, method: str, path: str) -> str:
        return (
            f"arn:{self.partition}:execute-api:{self.region}:{self.account_id}:"
            f"{self.api.api_id}/{self.api.stage}/{method}{path}"
        )

    def _handle(self, request: ApiRequest, request_id: str) -> ApiResponse:
        if len(request.body) > MAX_BODY_BYTES:
            raise GatewayError("REQUEST_TOO_LARGE")
        split = urlsplit(request.raw_path)
        path = split.path or "/"
        found = self.api.find(request.method.upper(), path)
        if found is None:
            raise GatewayError("MISSING_AUTHENTICATION_TOKEN")
        route, path_parameters = found
        event = proxy_event(
            request,
            route,
            path,
            split.query,
            path_parameters,
            request_id,
            api=self.api,
            account_id=self.account_id,
            domain_name=self.domain_name,
        )
        if route.authorizer is not None:
            method_arn = self.method_arn(event["httpMethod"], event["path"])
            event["requestContext"]["authorizer"] = self.authorizers.authorize(
                route.authorizer, event, method_arn
            )
        _validate_parameters(route, event)
        accept = first_header(event["multiValueHeaders"] or {}, "accept")
        return proxy_response(
            self.invoke(route.function_name, event), accept, self.api.binary_media_types
        )


def _validate_parameters(route: Route, event: dict[str, Any]) -> None:
    """400 when a parameter the method's request validator requires is missing."""
    missing = []
    for parameter in route.required_parameters:
        where, _, name = parameter.removeprefix("method.request.").partition(".")
        if where == "header":
            present = first_header(event["multiValueHeaders"] or {}, name) is not None
        elif where == "querystring":
            present = name in (event["queryStringParameters"] or {})
        else:
            present = name in (event["pathParameters"] or {})
        if not present:
            missing.append(name)
    if missing:
        message = f"Missing required request parameters: [{', '.join(missing)}]"
        raise GatewayError("BAD_REQUEST_PARAMETERS", message)
