"""REST API parts, kept resolved for the local API Gateway emulation.

`entrix.local.apigateway` builds its routes from `Deployment.api` and `Deployment.api_ids`. The
API and its stage are also created in the embedded endpoint under the same ids (moto takes a
RestApi's id from its `_custom_id_` tag), so what asks API Gateway which APIs and stages exist
(`entrix revoke`, the aws CLI) finds them, and a FlushStageAuthorizersCache names the stage the
emulation serves. Nothing else about them is created there: moto runs neither authorizers nor
Lambda proxies.
"""

from __future__ import annotations

import hashlib
from typing import Any

from entrix.local.deploy.registry import DeployContext, creates
from entrix.local.template import Resource

TYPES = frozenset(
    {
        "AWS::ApiGateway::RestApi",
        "AWS::ApiGateway::Resource",
        "AWS::ApiGateway::Method",
        "AWS::ApiGateway::Authorizer",
        "AWS::ApiGateway::Deployment",
        "AWS::ApiGateway::Stage",
        "AWS::ApiGateway::GatewayResponse",
        "AWS::ApiGateway::RequestValidator",
        "AWS::ApiGateway::Model",
    }
)


@creates(*TYPES)
def record_part(deployer: DeployContext, resource: Resource, p: dict[str, Any]) -> None:
    """Assign the id API Gateway would, and keep the resolved part for the emulation."""
    stack_name, deployment = deployer.pseudo.stack_name, deployer.deployment
    api_id = api_id_of(stack_name, resource.logical_id)
    deployment.api_ids[resource.logical_id] = api_id
    ref, attributes = api_id, {}
    if resource.type == "AWS::ApiGateway::RestApi":
        root_id = api_id_of(stack_name, resource.logical_id + "/")
        deployment.api_ids[resource.logical_id + "/"] = root_id
        attributes["RootResourceId"] = root_id
    elif resource.type == "AWS::ApiGateway::Stage":
        ref = p.get("StageName", api_id)
    elif resource.type == "AWS::ApiGateway::Authorizer":
        attributes["AuthorizerId"] = api_id
    if resource.type == "AWS::ApiGateway::RestApi":
        deployer.clients("apigateway").create_rest_api(
            name=p.get("Name", resource.logical_id), tags={"_custom_id_": api_id}
        )
    elif resource.type == "AWS::ApiGateway::Stage":
        deployer.clients("apigateway").create_stage(
            restApiId=p["RestApiId"], stageName=ref, deploymentId=p.get("DeploymentId", "")
        )
    deployment.names[resource.logical_id] = ref
    deployer.provide(resource, ref, **attributes)
    deployment.api[resource.logical_id] = (resource.type, p)


def api_id_of(stack_name: str, logical_id: str) -> str:
    """A stable ten-character id like the ones API Gateway assigns."""
    return hashlib.sha256(f"{stack_name}/{logical_id}".encode()).hexdigest()[:10]
