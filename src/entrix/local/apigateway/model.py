"""The REST API as the template defines it: routes, authorizers, stage and gateway responses.

Read from the deployment's `AWS::ApiGateway::*` resources. What the emulation does not serve
(`unemulated_features`: TOKEN authorizers, integrations other than AWS_PROXY, MOCK included,
greedy `{name+}` path parts, stage variables, none of which the service's template uses) is
refused with an error naming the resource: by the deployer before it creates anything, like an
unknown resource type, so `entrix local` stops instead of answering differently from the
deployed API.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

logger = logging.getLogger(__name__)

DEFAULT_AUTHORIZER_TTL_SECONDS = 300
_FUNCTION_IN_URI = re.compile(r"functions/(arn:[^/]+)/invocations")
_GREEDY_PATH_PART = re.compile(r"\{\w+\+\}")
_IDENTITY_SOURCES = ("method.request.header.", "method.request.querystring.", "context.")


class ApiConfigurationError(Exception):
    """The template's REST API uses something this emulation does not serve."""


def unemulated_features(resources: Iterable[tuple[str, str, Mapping[str, Any]]]) -> list[str]:
    """`<logical id>: <feature> is not emulated`, once per feature of the REST API resources
    `(logical id, type, properties)` that this emulation does not serve. A value that is still an
    intrinsic function (not yet a string) is passed over: the resolved parts are checked again."""
    found = []
    for logical_id, resource_type, p in resources:
        if resource_type == "AWS::ApiGateway::Authorizer":
            if p.get("Type") != "REQUEST":
                found.append(f"{logical_id}: authorizer type {p.get('Type')} is not emulated")
            sources = p.get("IdentitySource", "")
            for source in sources.split(",") if isinstance(sources, str) else ():
                if source.strip() and not source.strip().startswith(_IDENTITY_SOURCES):
                    found.append(f"{logical_id}: identity source {source.strip()} is not emulated")
        elif resource_type == "AWS::ApiGateway::Method":
            integration_type = (p.get("Integration") or {}).get("Type")
            if integration_type != "AWS_PROXY":
                found.append(f"{logical_id}: integration type {integration_type} is not emulated")
            if p.get("AuthorizationType", "NONE") not in ("NONE", "CUSTOM"):
                found.append(
                    f"{logical_id}: AuthorizationType {p['AuthorizationType']} not emulated"
                )
        elif resource_type == "AWS::ApiGateway::Resource":
            path_part = p.get("PathPart")
            if isinstance(path_part, str) and _GREEDY_PATH_PART.fullmatch(path_part):
                found.append(f"{logical_id}: greedy path part {path_part} is not emulated")
        elif resource_type == "AWS::ApiGateway::Stage" and p.get("Variables"):
            found.append(f"{logical_id}: stage variables are not emulated")
    return found


@dataclass(frozen=True)
class Authorizer:
    """A Lambda REQUEST authorizer, as its `AWS::ApiGateway::Authorizer` resource configures it."""

    authorizer_id: str
    function_name: str
    identity_sources: tuple[str, ...]
    ttl_seconds: int


@dataclass(frozen=True)
class Route:
    """One method of one resource: what answers it and what guards it."""

    resource_id: str
    resource_path: str  # as API Gateway names it, e.g. /orders/{record_id}
    http_method: str  # GET, POST, ..., or ANY
    function_name: str  # of the AWS_PROXY integration
    authorizer: Authorizer | None = None
    required_parameters: tuple[str, ...] = ()  # method.request.{header,querystring,path}.NAME

    def matches(self, path: str) -> dict[str, str] | None:
        """The path parameters when `path` is this route's resource, else None."""
        pattern = ""
        for segment in self.resource_path.strip("/").split("/"):
            if not segment:
                continue
            parameter = re.fullmatch(r"\{(\w+)\}", segment)
            if parameter:
                pattern += f"/(?P<{parameter.group(1)}>[^/]+)"
            else:
                pattern += "/" + re.escape(segment)
        match = re.fullmatch(pattern + "/?", path)
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
    gateway_responses: Mapping[str, GatewayResponse] = field(default_factory=dict)
    binary_media_types: tuple[str, ...] = ()

    @classmethod
    def from_parts(
        cls, parts: Mapping[str, tuple[str, dict[str, Any]]], ids: Mapping[str, str]
    ) -> RestApi:
        """Build from the resolved `AWS::ApiGateway::*` resources (logical id -> type, props)."""
        refused = unemulated_features((lid, kind, p) for lid, (kind, p) in parts.items())
        if refused:
            raise ApiConfigurationError("; ".join(refused))
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
            ids[lid]: _authorizer(lid, ids[lid], p) for lid, p in by_type.get("Authorizer", [])
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


def _authorizer(logical_id: str, authorizer_id: str, p: dict[str, Any]) -> Authorizer:
    sources = tuple(
        source.strip() for source in p.get("IdentitySource", "").split(",") if source.strip()
    )
    return Authorizer(
        authorizer_id=authorizer_id,
        function_name=_function_name(logical_id, p["AuthorizerUri"]),
        identity_sources=sources,
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
    authorization = method.get("AuthorizationType", "NONE")
    authorizer = authorizers[method["AuthorizerId"]] if authorization == "CUSTOM" else None
    validator = validators.get(method.get("RequestValidatorId", ""), {})
    required = ()
    if validator.get("ValidateRequestParameters"):
        required = tuple(name for name, on in (method.get("RequestParameters") or {}).items() if on)
    if validator.get("ValidateRequestBody"):
        logger.warning("%s: request body validation is not emulated locally", logical_id)
    return Route(
        resource_id=method["ResourceId"],
        resource_path=path,
        http_method=method["HttpMethod"].upper(),
        function_name=_function_name(logical_id, integration["Uri"]),
        authorizer=authorizer,
        required_parameters=required,
    )


def _function_name(logical_id: str, uri: str) -> str:
    match = _FUNCTION_IN_URI.search(uri)
    if not match:
        raise ApiConfigurationError(f"{logical_id}: not a Lambda integration URI: {uri}")
    # arn:aws:lambda:<region>:<account>:function:<name>[:<alias or version>]
    return ":".join(match.group(1).split(":")[6:8])
