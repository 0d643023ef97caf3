"""The REST API as the template defines it: routes, authorizers, stage and gateway responses.

Read from the deployment's `AWS::ApiGateway::*` resources; anything the emulation does not serve
is refused here, naming the resource, so `entrix local` stops at start instead of answering
differently from the deployed API.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

logger = logging.getLogger(__name__)

DEFAULT_AUTHORIZER_TTL_SECONDS = 300
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
