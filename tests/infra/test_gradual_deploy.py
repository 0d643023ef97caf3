"""Gradual deploys, read from the synthesized template: no caller runs $LATEST, every alias is
moved by a CodeDeploy deployment group that rolls back on its alarms, and the alarms watch what
the shifted traffic does (infra/constructs/gradual_deploy.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_logs as logs

from infra.app import CDK_JSON
from infra.config import ServiceConfig
from infra.constructs.lambda_code import LIVE_ALIAS, python_function, python_layer
from infra.stacks.service import ServiceStack

AUTHORIZER = "entrix.handlers.authorizer.handler"
API_HANDLERS = {
    "entrix.handlers.ingest.handler",
    "entrix.handlers.order_list.handler",
    "entrix.handlers.order_status.handler",
    "entrix.handlers.cancel.handler",
}
SLACK_WEBHOOK_SECRET_ARN = (
    "arn:aws:secretsmanager:eu-west-1:123456789012:secret:entrix/slack-webhook-AbCdEf"
)


@pytest.fixture(scope="module")
def with_slack(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The service stack with the Slack forwarder too (its SNS subscription and its
    asynchronous invocation config are callers of their own)."""
    outdir = tmp_path_factory.mktemp("cdk.out-gradual")
    context = json.loads(CDK_JSON.read_text())["context"]
    context |= {
        "aws:cdk:bundling-stacks": [],
        "entrix:slack_webhook_secret_arn": SLACK_WEBHOOK_SECRET_ARN,
    }
    app = App(context=context, outdir=str(outdir))
    ServiceStack(app, "EntrixGradual", config=ServiceConfig.from_context(app.node))
    app.synth()
    return dict(json.loads(Path(outdir, "EntrixGradual.template.json").read_text()))


@pytest.fixture(params=["default", "with_slack"])
def template(request: pytest.FixtureRequest, service_json: dict[str, Any]) -> dict[str, Any]:
    return service_json if request.param == "default" else request.getfixturevalue("with_slack")


def _of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == resource_type}


def _aliases(template: dict[str, Any]) -> dict[str, str]:
    """Function logical id -> the logical id of its live alias."""
    return {
        r["Properties"]["FunctionName"]["Ref"]: logical_id
        for logical_id, r in _of_type(template, "AWS::Lambda::Alias").items()
        if r["Properties"]["Name"] == LIVE_ALIAS
    }


def _callers(template: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """(where, the value naming the Lambda it invokes) for every caller in the template."""
    for logical_id, r in template["Resources"].items():
        p = r.get("Properties", {})
        kind = r["Type"]
        if kind == "AWS::ApiGateway::Method" and p["Integration"].get("Type") == "AWS_PROXY":
            yield f"{logical_id} integration", p["Integration"]["Uri"]
        elif kind == "AWS::ApiGateway::Authorizer":
            yield f"{logical_id} authorizer", p["AuthorizerUri"]
        elif kind == "AWS::StepFunctions::StateMachine":
            yield f"{logical_id} definition", p["DefinitionString"]
        elif kind == "AWS::Lambda::EventSourceMapping":
            yield f"{logical_id} mapping", p["FunctionName"]
        elif kind == "AWS::SNS::Subscription" and p["Protocol"] == "lambda":
            yield f"{logical_id} subscription", p["Endpoint"]
        elif kind == "AWS::SecretsManager::RotationSchedule":
            yield f"{logical_id} rotation", p["RotationLambdaARN"]
        elif kind == "AWS::Lambda::Permission":
            yield f"{logical_id} permission", p["FunctionName"]
        elif kind == "AWS::Lambda::EventInvokeConfig":
            # Retries and destinations apply to the qualifier invoked: the alias's own.
            yield f"{logical_id} async config", [p["FunctionName"], p["Qualifier"]]


def _references(value: Any) -> set[str]:
    """The logical ids `value` names with Ref or Fn::GetAtt."""
    text = json.dumps(value)
    found = set()
    for part in text.split('{"Ref": "')[1:]:
        found.add(part.split('"', 1)[0])
    for part in text.split('{"Fn::GetAtt": ["')[1:]:
        found.add(part.split('"', 1)[0])
    return found


def test_no_caller_names_an_unqualified_function(template: dict[str, Any]) -> None:
    functions = set(_of_type(template, "AWS::Lambda::Function"))
    aliases = _aliases(template)
    assert set(aliases) == functions, "every function has a live alias"
    callers = list(_callers(template))
    invoked = set()
    for where, value in callers:
        named = _references(value)
        if where.endswith("async config"):
            # It names the function, and apart the qualifier it applies to: the live alias.
            function, qualifier = value
            assert qualifier == LIVE_ALIAS or _references(qualifier) == {
                aliases[function["Ref"]]
            }, where
            continue
        assert not named & functions, f"{where} names a function, not its alias"
        invoked |= {f for f, alias in aliases.items() if alias in named}
    # Every function has a caller: the 5 API functions, 3 pipeline tasks, the archiver's
    # mapping, the rotation schedule (and the Slack forwarder's subscription).
    assert invoked == functions


def test_the_state_machine_invokes_each_task_through_its_alias(
    service_json: dict[str, Any],
) -> None:
    (machine,) = _of_type(service_json, "AWS::StepFunctions::StateMachine").values()
    parts = machine["Properties"]["DefinitionString"]["Fn::Join"][1]
    aliases = set(_aliases(service_json).values())
    named = [part["Ref"] for part in parts if isinstance(part, dict) and "Ref" in part]
    assert len({ref for ref in named if ref in aliases}) == 3


def test_each_alias_points_at_its_functions_current_version(template: dict[str, Any]) -> None:
    versions = _of_type(template, "AWS::Lambda::Version")
    for function, alias in _aliases(template).items():
        target = template["Resources"][alias]["Properties"]["FunctionVersion"]
        version, attribute = target["Fn::GetAtt"]
        assert attribute == "Version"
        assert versions[version]["Properties"]["FunctionName"] == {"Ref": function}


def test_every_version_outlives_the_deploy_that_replaces_it(template: dict[str, Any]) -> None:
    """A code change gives the version a new logical id: without Retain, CloudFormation deletes
    the old version at the end of the update, the one `entrix rollback` moves the alias back to."""
    versions = _of_type(template, "AWS::Lambda::Version")
    assert versions
    for logical_id, version in versions.items():
        assert version.get("DeletionPolicy") == "Retain", logical_id
        assert version.get("UpdateReplacePolicy") == "Retain", logical_id


def test_every_alias_is_moved_by_a_deployment_group_that_rolls_back_on_its_alarms(
    template: dict[str, Any],
) -> None:
    groups = _of_type(template, "AWS::CodeDeploy::DeploymentGroup")
    alarms = _of_type(template, "AWS::CloudWatch::Alarm")
    used = set()
    for alias in _aliases(template).values():
        update = template["Resources"][alias]["UpdatePolicy"]["CodeDeployLambdaAliasUpdate"]
        group = groups[update["DeploymentGroupName"]["Ref"]]["Properties"]
        assert group["AutoRollbackConfiguration"]["Enabled"] is True
        assert set(group["AutoRollbackConfiguration"]["Events"]) == {
            "DEPLOYMENT_FAILURE",
            "DEPLOYMENT_STOP_ON_REQUEST",
            "DEPLOYMENT_STOP_ON_ALARM",
        }
        assert group["AlarmConfiguration"]["Enabled"] is True
        names = [a["Name"]["Ref"] for a in group["AlarmConfiguration"]["Alarms"]]
        assert names and all(name in alarms for name in names)
        used.add(update["DeploymentGroupName"]["Ref"])
    assert used == set(groups), "a group per alias, and no other"


def _group_of(template: dict[str, Any], handler: str) -> dict[str, Any]:
    (function,) = [
        k
        for k, r in _of_type(template, "AWS::Lambda::Function").items()
        if r["Properties"]["Handler"] == handler
    ]
    alias = _aliases(template)[function]
    update = template["Resources"][alias]["UpdatePolicy"]["CodeDeployLambdaAliasUpdate"]
    return dict(template["Resources"][update["DeploymentGroupName"]["Ref"]]["Properties"])


def _alarm_metrics(template: dict[str, Any], group: dict[str, Any]) -> list[tuple[str, Any]]:
    alarms = template["Resources"]
    return [
        (
            alarms[a["Name"]["Ref"]]["Properties"]["MetricName"],
            alarms[a["Name"]["Ref"]]["Properties"]["Dimensions"],
        )
        for a in group["AlarmConfiguration"]["Alarms"]
    ]


def test_a_function_is_rolled_back_on_errors_through_its_alias_and_the_api_on_its_5xx(
    service_json: dict[str, Any],
) -> None:
    handlers = {
        r["Properties"]["Handler"]: k
        for k, r in _of_type(service_json, "AWS::Lambda::Function").items()
    }
    for handler, function in handlers.items():
        metrics = _alarm_metrics(service_json, _group_of(service_json, handler))
        errors = [dims for name, dims in metrics if name == "Errors"]
        server_errors = [dims for name, dims in metrics if name == "5XXError"]
        if handler == AUTHORIZER:
            # It raises "Unauthorized" for every refused token, which Lambda counts as an
            # error: only the 5xx API Gateway answers when it crashes may roll it back.
            assert errors == [] and len(server_errors) == 1, handler
            continue
        # The new version's errors through the alias, as Lambda publishes them: Resource is
        # "<function>:live", ExecutedVersion the version the alias is being moved to.
        (dimensions,) = errors
        alias = service_json["Resources"][_aliases(service_json)[function]]
        assert {d["Name"]: d["Value"] for d in dimensions} == {
            "FunctionName": {"Ref": function},
            "Resource": {"Fn::Join": ["", [{"Ref": function}, ":live"]]},
            "ExecutedVersion": alias["Properties"]["FunctionVersion"],
        }, handler
        assert len(server_errors) == (1 if handler in API_HANDLERS else 0), handler


def test_rollback_alarms_fire_on_errors_in_2_of_3_minutes_and_not_on_silence(
    service_json: dict[str, Any],
) -> None:
    rollback_alarms = {
        k: r["Properties"]
        for k, r in _of_type(service_json, "AWS::CloudWatch::Alarm").items()
        if r["Properties"].get("AlarmDescription", "").startswith("Rolls back")
    }
    assert len(rollback_alarms) == 10  # the API's 5xx and nine functions' alias errors
    for props in rollback_alarms.values():
        assert (props["Statistic"], props["Period"], props["Threshold"]) == ("Sum", 60, 1)
        # One stray error (or 5xx) in one minute does not roll a healthy version back.
        assert (props["EvaluationPeriods"], props["DatapointsToAlarm"]) == (3, 2)
        assert props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        # A canary may get no traffic at all: no data is not a failure.
        assert props["TreatMissingData"] == "notBreaching"
        # CodeDeploy reads them; they notify no one.
        assert "AlarmActions" not in props


def test_the_api_takes_a_canary_and_the_pipeline_a_linear_shift(
    service_json: dict[str, Any],
) -> None:
    for handler in {AUTHORIZER, *API_HANDLERS}:
        assert (
            _group_of(service_json, handler)["DeploymentConfigName"]
            == "CodeDeployDefault.LambdaCanary10Percent5Minutes"
        )
    for handler in ("results", "process", "run_summary", "archive", "rotate_key"):
        assert (
            _group_of(service_json, f"entrix.handlers.{handler}.handler")["DeploymentConfigName"]
            == "CodeDeployDefault.LambdaLinear10PercentEvery3Minutes"
        )


def test_one_service_role_that_only_codedeploy_assumes(service_json: dict[str, Any]) -> None:
    groups = _of_type(service_json, "AWS::CodeDeploy::DeploymentGroup").values()
    (role,) = {g["Properties"]["ServiceRoleArn"]["Fn::GetAtt"][0] for g in groups}
    props = service_json["Resources"][role]["Properties"]
    (statement,) = props["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "codedeploy.amazonaws.com"}
    assert "AWSCodeDeployRoleForLambdaLimited" in json.dumps(props["ManagedPolicyArns"])


def test_a_deployment_config_that_codedeploy_does_not_predefine_is_refused() -> None:
    with pytest.raises(ValueError, match="api_deployment_config must be one of"):
        ServiceConfig(api_deployment_config="CANARY_50_PERCENT_1_MINUTE")
    assert ServiceConfig(pipeline_deployment_config="ALL_AT_ONCE")


def _version_with_layer(requirement: str) -> str:
    """The logical id of the version a function with a layer of `requirement` publishes, under
    cdk.json's settings."""
    context = json.loads(CDK_JSON.read_text())["context"] | {"aws:cdk:bundling-stacks": []}
    app = App(context=context)
    stack = Stack(app, "LayerChange")
    layer = python_layer(stack, "Layer", requirements=[requirement], description="a layer")
    python_function(
        stack,
        "Function",
        handler="entrix.handlers.cancel.handler",
        description="a function",
        log_retention=logs.RetentionDays.ONE_WEEK,
        layers=[layer],
    )
    template = app.synth().get_stack_by_name("LayerChange").template
    (version,) = [
        k for k, r in template["Resources"].items() if r["Type"] == "AWS::Lambda::Version"
    ]
    return str(version)


def test_a_new_layer_publishes_a_new_version_for_the_alias_to_move_to() -> None:
    """Without cdk.json's @aws-cdk/aws-lambda:recognizeLayerVersion the version stays, and the
    alias keeps running the old layer while $LATEST has the new one."""
    assert _version_with_layer("pyjwt") != _version_with_layer("pydantic")
