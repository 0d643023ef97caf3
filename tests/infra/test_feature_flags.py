"""CDK's feature flags: cdk.json sets every flag the pinned aws-cdk-lib recommends, so a CDK
upgrade that recommends a new one fails here until cdk.json takes it (with its template changes
reviewed) or the table below says why not. Turning a flag on after Prod exists can replace
resources; deciding at each upgrade keeps that a reviewed step.

One flag is checked for what it does to the API: without
`@aws-cdk/aws-apigateway:authorizerChangeDeploymentLogicalId` a change to the authorizer (its
cache TTL, say) leaves the Deployment's logical id as it was, so CloudFormation makes no new
deployment and the stage keeps serving the old authorizer settings.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

import aws_cdk
import pytest
from aws_cdk import App, Environment
from aws_cdk.assertions import Template

from infra.app import SERVICE_STACK, cdk_json_context
from infra.config import ServiceConfig
from infra.stacks.service import ServiceStack
from tests.infra.conftest import NO_BUNDLING

RECOMMENDED_FLAGS = "package/recommended-feature-flags.json"
TTL_KEY = "entrix:authorizer_cache_ttl_seconds"

# Recommended flags cdk.json leaves out (or sets otherwise), each with the reason why.
EXCEPTIONS: dict[str, str] = {}


def recommended_flags() -> dict[str, Any]:
    """The flags and values the installed aws-cdk-lib recommends (what `cdk init` writes): read
    from the jsii assembly the Python package ships, so they follow the version uv.lock pins."""
    (assembly,) = (Path(aws_cdk.__file__).parent / "_jsii").glob("aws-cdk-lib@*.jsii.tgz")
    with tarfile.open(assembly) as archive:
        member = archive.extractfile(RECOMMENDED_FLAGS)
        assert member is not None, f"{assembly.name} has no {RECOMMENDED_FLAGS}"
        flags: dict[str, Any] = json.load(member)
    return flags


@pytest.fixture(scope="module")
def recommended() -> dict[str, Any]:
    return recommended_flags()


def test_cdk_json_sets_every_recommended_flag(recommended: dict[str, Any]) -> None:
    assert len(recommended) > 50, "the recommended flags were not found where CDK keeps them"
    context = cdk_json_context()
    off = [
        f"{flag}: cdk.json has {context.get(flag, '<unset>')!r}, CDK recommends {value!r}"
        for flag, value in recommended.items()
        if flag not in EXCEPTIONS and context.get(flag, "<unset>") != value
    ]
    assert off == [], "\n".join(off)


def test_each_exception_is_a_recommended_flag_cdk_json_does_not_take(
    recommended: dict[str, Any],
) -> None:
    """An exception outlives its reason when CDK stops recommending the flag or cdk.json takes
    the recommended value after all."""
    context = cdk_json_context()
    for flag, reason in EXCEPTIONS.items():
        assert flag in recommended, f"{flag}: no longer recommended, drop the exception"
        assert context.get(flag) != recommended[flag], f"{flag}: cdk.json takes it now"
        assert len(reason) >= 40, f"{flag}: reason too thin: {reason!r}"


def served_deployment(ttl_seconds: int) -> tuple[str, str]:
    """The service stack as build_app makes it, with cdk.json's context and this
    `entrix:authorizer_cache_ttl_seconds`: the logical id of its one API Gateway Deployment, and
    the deployment its stage serves."""
    app = App(context={**cdk_json_context(), **NO_BUNDLING, TTL_KEY: ttl_seconds})
    config = ServiceConfig.from_context(app.node)
    env = Environment(account=config.account, region=config.region)
    template = Template.from_stack(ServiceStack(app, SERVICE_STACK, config=config, env=env))
    (deployment,) = template.find_resources("AWS::ApiGateway::Deployment")
    (stage,) = template.find_resources("AWS::ApiGateway::Stage").values()
    served: str = stage["Properties"]["DeploymentId"]["Ref"]
    return deployment, served


def test_an_authorizer_change_reaches_the_stage() -> None:
    deployment, served = served_deployment(300)
    other_deployment, other_served = served_deployment(0)
    assert (served, other_served) == (deployment, other_deployment)
    assert deployment != other_deployment, (
        "a new authorizer cache TTL makes no new Deployment: the stage would keep the old one"
    )
