"""Every caller invokes a function's `live` alias, and its grant names that alias: a Lambda
resource policy (and an IAM statement) is matched per qualifier, so a grant on the unqualified
function would not let anyone invoke the alias, nor the other way round."""

from __future__ import annotations

import copy

from entrix.local.iam.model import StackModel
from tests.permissions.edges import TEMPLATE_KINDS, Edge, denied, derive


def _invoke_edges(model: StackModel, app: list[StackModel]) -> list[Edge]:
    return [
        edge
        for kind in TEMPLATE_KINDS
        for edge in derive(kind, model, app)
        if any(r.action == "lambda:InvokeFunction" for r in edge.requests)
    ]


def test_every_invocation_of_a_function_names_one_of_its_aliases(
    app_models: list[StackModel],
) -> None:
    invoked = {
        (model.name, request.resource)
        for model in app_models
        for edge in _invoke_edges(model, app_models)
        for request in edge.requests
        if request.action == "lambda:InvokeFunction"
    }
    # API methods and authorizer, state machine tasks, the SNS subscription, the rotation.
    assert len({resource for _, resource in invoked}) >= 9
    aliases = {model.name: model.alias_arns() for model in app_models}
    not_aliased = sorted(f"{stack}: {arn}" for stack, arn in invoked if arn not in aliases[stack])
    assert not not_aliased, "invoked without an alias:\n" + "\n".join(not_aliased)


def test_a_permission_on_the_unqualified_function_does_not_let_api_gateway_invoke_the_alias(
    app_models: list[StackModel],
) -> None:
    """The fault a CDK upgrade or a hand edit could bring: every Permission moved to the bare
    function. The model must then refuse API Gateway's and Secrets Manager's calls."""
    model = next(m for m in app_models if m.of_type("AWS::SecretsManager::RotationSchedule"))
    body = copy.deepcopy(model.body)
    functions = {
        alias.logical_id: model.body["Resources"][alias.logical_id]["Properties"]["FunctionName"]
        for alias in model.of_type("AWS::Lambda::Alias")
    }
    for resource in body["Resources"].values():
        if resource["Type"] == "AWS::Lambda::Permission":
            target = resource["Properties"]["FunctionName"]
            if isinstance(target, dict) and target.get("Ref") in functions:
                resource["Properties"]["FunctionName"] = functions[target["Ref"]]
    stripped = StackModel(model.name, body, model.region)
    refused = denied(
        [
            *derive(TEMPLATE_KINDS[6], stripped, [stripped]),
            *derive(TEMPLATE_KINDS[10], stripped, [stripped]),
        ]
    )
    assert any("apigateway.amazonaws.com" in r and ":live" in r for r in refused), refused
    assert any("secretsmanager.amazonaws.com" in r and ":live" in r for r in refused), refused
    # The unfaulted template allows them all.
    assert not denied(
        [*derive(TEMPLATE_KINDS[6], model, [model]), *derive(TEMPLATE_KINDS[10], model, [model])]
    )
