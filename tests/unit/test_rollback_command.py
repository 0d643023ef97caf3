"""`entrix rollback`: Lambda's aliases and versions are moto's; moto's CodeDeploy lacks
StopDeployment, a group's lastSuccessfulDeployment and Lambda AppSpec revisions, so CodeDeploy
(and CloudFormation's template and resource list) answer through botocore's Stubber, at the
client, with the shapes of the AWS API (tests/support/codedeploy_stub.py)."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from entrix import cli, rollback_command
from entrix.rollback_command import AliasDeployment, aliased_functions, roll_back
from tests.support.codedeploy_stub import add_group, appspec, stub_codedeploy

REGION = "eu-west-1"
FUNCTION = "Prod-Entrix-Ingest"
APPLICATION = "Prod-Entrix-GradualDeployApplication"
GROUP = "Prod-Entrix-GradualDeployIngest"
DEPLOYMENT = "d-SUCCEEDED1"
AUTHORIZER = "Prod-Entrix-Authorizer"
AUTHORIZER_GROUP = "Prod-Entrix-GradualDeployAuthorizer"
# When the stack's last update began; the deployments it made are a few minutes younger.
LAST_UPDATE = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
BY_LAST_UPDATE = datetime(2026, 12, 7, 1, 4, tzinfo=UTC)
BY_AN_EARLIER_UPDATE = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


@pytest.fixture
def lambda_() -> Iterator[Any]:
    """The ingest function and the authorizer, each with versions 1, 2 and 3 and its `live`
    alias on version 2."""
    with mock_aws():
        iam = boto3.client("iam", region_name=REGION)
        role = iam.create_role(
            RoleName="ingest",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )["Role"]["Arn"]
        client = boto3.client("lambda", region_name=REGION)
        for function in (FUNCTION, AUTHORIZER):
            client.create_function(
                FunctionName=function,
                Runtime="python3.13",
                Role=role,
                Handler="handler.handler",
                Code={"ZipFile": _zip()},
            )
            for version in ("1", "2", "3"):
                client.update_function_configuration(FunctionName=function, Description=version)
                assert client.publish_version(FunctionName=function)["Version"] == version
            client.create_alias(FunctionName=function, Name="live", FunctionVersion="2")
        yield client


@pytest.fixture
def alias(lambda_: Any) -> AliasDeployment:
    arn = lambda_.get_alias(FunctionName=FUNCTION, Name="live")["AliasArn"]
    return AliasDeployment(alias_arn=arn, application=APPLICATION, deployment_group=GROUP)


def _codedeploy(
    *,
    running: list[str],
    last_success: str | None = DEPLOYMENT,
    created: datetime = BY_LAST_UPDATE,
    content: str | None = None,
) -> tuple[Any, Stubber]:
    return stub_codedeploy(
        APPLICATION,
        GROUP,
        running=running,
        last_success=last_success,
        created=created,
        content=appspec(FUNCTION, "live", "1", "2") if content is None else content,
    )


def _live(lambda_: Any, function: str = FUNCTION) -> tuple[str, dict[str, float]]:
    alias = lambda_.get_alias(FunctionName=function, Name="live")
    return alias["FunctionVersion"], alias.get("RoutingConfig", {}).get(
        "AdditionalVersionWeights", {}
    )


def test_a_running_deployment_is_stopped_with_rollback_and_the_alias_left_to_codedeploy(
    lambda_: Any, alias: AliasDeployment
) -> None:
    codedeploy, stubber = _codedeploy(running=["d-RUNNING01"])
    outcome = roll_back(alias, lambda_, codedeploy, since=LAST_UPDATE)
    stubber.assert_no_pending_responses()
    assert outcome.ok and "stopped deployment d-RUNNING01 with rollback" in outcome.text
    assert _live(lambda_) == ("2", {})


def test_the_alias_goes_back_to_the_version_before_the_last_deployment_once(
    lambda_: Any, alias: AliasDeployment
) -> None:
    codedeploy, stubber = _codedeploy(running=[])
    outcome = roll_back(alias, lambda_, codedeploy, since=LAST_UPDATE)
    stubber.assert_no_pending_responses()
    assert outcome.ok and outcome.text == f"live 2 -> 1, the version before deployment {DEPLOYMENT}"
    assert _live(lambda_) == ("1", {})
    # Run again: already there, nothing changed (not on to version 0 or back to 2).
    codedeploy, stubber = _codedeploy(running=[])
    again = roll_back(alias, lambda_, codedeploy, since=LAST_UPDATE)
    stubber.assert_no_pending_responses()
    assert again.ok and again.text.startswith("live already on version 1")
    assert _live(lambda_) == ("1", {})


def test_a_weighted_alias_left_by_a_stopped_deployment_is_put_wholly_on_the_old_version(
    lambda_: Any, alias: AliasDeployment
) -> None:
    lambda_.update_alias(
        FunctionName=FUNCTION,
        Name="live",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.1}},
    )
    codedeploy, _ = _codedeploy(running=[])
    outcome = roll_back(alias, lambda_, codedeploy, since=LAST_UPDATE)
    assert outcome.ok and outcome.text.startswith("live 1 (+2) -> 1")
    assert _live(lambda_) == ("1", {})


def test_an_alias_on_a_version_the_deployment_did_not_name_is_left_alone(
    lambda_: Any, alias: AliasDeployment
) -> None:
    lambda_.update_alias(FunctionName=FUNCTION, Name="live", FunctionVersion="3")
    codedeploy, _ = _codedeploy(running=[])
    outcome = roll_back(alias, lambda_, codedeploy, since=LAST_UPDATE)
    assert not outcome.ok and "left alone" in outcome.text
    assert _live(lambda_) == ("3", {})


def test_an_alias_never_deployed_by_codedeploy_stays_where_it_is(
    lambda_: Any, alias: AliasDeployment
) -> None:
    codedeploy, _ = _codedeploy(running=[], last_success=None)
    outcome = roll_back(alias, lambda_, codedeploy, since=LAST_UPDATE)
    assert outcome.ok and not outcome.changed
    assert outcome.text == "live stays on version 2: not deployed by the last update"
    assert _live(lambda_) == ("2", {})


def test_a_function_the_last_update_did_not_touch_stays_where_it_is(
    lambda_: Any, alias: AliasDeployment
) -> None:
    """Its group's last deployment (1 -> 2) came from an earlier update: undoing it would take
    the function a release further back than the last update."""
    codedeploy, stubber = _codedeploy(running=[], created=BY_AN_EARLIER_UPDATE, content="")
    outcome = roll_back(alias, lambda_, codedeploy, since=LAST_UPDATE)
    # Not even its AppSpec is read (the stub has none to give).
    stubber.assert_no_pending_responses()
    assert outcome.ok and not outcome.changed
    assert outcome.text == "live stays on version 2: not deployed by the last update"
    assert _live(lambda_) == ("2", {})


def test_an_appspec_that_does_not_name_the_alias_is_an_error(
    lambda_: Any, alias: AliasDeployment
) -> None:
    other = appspec("Prod-Entrix-Cancel", "live", "1", "2")
    codedeploy, _ = _codedeploy(running=[], content=other)
    with pytest.raises(rollback_command.RollbackError, match="does not name"):
        roll_back(alias, lambda_, codedeploy, since=LAST_UPDATE)
    assert _live(lambda_) == ("2", {})


TEMPLATE = {
    "Resources": {
        "IngestAliaslive": {
            "Type": "AWS::Lambda::Alias",
            "UpdatePolicy": {
                "CodeDeployLambdaAliasUpdate": {
                    "ApplicationName": {"Ref": "Application"},
                    "DeploymentGroupName": {"Ref": "IngestGroup"},
                }
            },
        },
        "AuthorizerAliaslive": {
            "Type": "AWS::Lambda::Alias",
            "UpdatePolicy": {
                "CodeDeployLambdaAliasUpdate": {
                    "ApplicationName": {"Ref": "Application"},
                    "DeploymentGroupName": {"Ref": "AuthorizerGroup"},
                }
            },
        },
        # As CDK writes it: API Gateway caches what this alias decides.
        "JwtAuthorizer": {
            "Type": "AWS::ApiGateway::Authorizer",
            "Properties": {
                "AuthorizerUri": {
                    "Fn::Join": [
                        "",
                        [
                            "arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/functions/",
                            {"Ref": "AuthorizerAliaslive"},
                            "/invocations",
                        ],
                    ]
                }
            },
        },
        # An alias CodeDeploy does not move is not the command's.
        "OtherAlias": {"Type": "AWS::Lambda::Alias"},
        "Application": {"Type": "AWS::CodeDeploy::Application"},
        "IngestGroup": {"Type": "AWS::CodeDeploy::DeploymentGroup"},
        "AuthorizerGroup": {"Type": "AWS::CodeDeploy::DeploymentGroup"},
    }
}
OUTPUTS = {"RestApiId": "a1b2c3d4e5", "ApiStageName": "prod"}


def _cloudformation(lambda_: Any, status: str = "UPDATE_COMPLETE") -> Any:
    """The stack as DescribeStacks, GetTemplate and ListStackResources give it; a stack in a
    state the command refuses answers DescribeStacks only."""
    client = boto3.client("cloudformation", region_name=REGION)
    stubber = Stubber(client)
    stubber.add_response(
        "describe_stacks",
        {
            "Stacks": [
                {
                    "StackName": "Prod-Entrix",
                    "CreationTime": datetime(2026, 11, 2, tzinfo=UTC),
                    "LastUpdatedTime": LAST_UPDATE,
                    "StackStatus": status,
                    "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in OUTPUTS.items()],
                }
            ]
        },
        {"StackName": "Prod-Entrix"},
    )
    if not status.startswith("UPDATE_COMPLETE"):
        stubber.activate()
        return client
    stubber.add_response(
        "get_template", {"TemplateBody": json.dumps(TEMPLATE)}, {"StackName": "Prod-Entrix"}
    )
    ingest = lambda_.get_alias(FunctionName=FUNCTION, Name="live")["AliasArn"]
    physical = {
        "IngestAliaslive": ingest,
        "AuthorizerAliaslive": lambda_.get_alias(FunctionName=AUTHORIZER, Name="live")["AliasArn"],
        "JwtAuthorizer": "abc123",
        "OtherAlias": f"{ingest[: -len(':live')]}:other",
        "Application": APPLICATION,
        "IngestGroup": GROUP,
        "AuthorizerGroup": AUTHORIZER_GROUP,
    }
    stubber.add_response(
        "list_stack_resources",
        {
            "StackResourceSummaries": [
                {
                    "LogicalResourceId": logical_id,
                    "PhysicalResourceId": physical_id,
                    "ResourceType": TEMPLATE["Resources"][logical_id]["Type"],
                    "LastUpdatedTimestamp": LAST_UPDATE,
                    "ResourceStatus": "UPDATE_COMPLETE",
                }
                for logical_id, physical_id in physical.items()
            ]
        },
        {"StackName": "Prod-Entrix"},
    )
    stubber.activate()
    return client


def test_the_stacks_aliases_are_those_whose_update_policy_names_a_deployment_group(
    lambda_: Any, alias: AliasDeployment
) -> None:
    cloudformation = _cloudformation(lambda_)
    cloudformation.describe_stacks(StackName="Prod-Entrix")
    authorizer = lambda_.get_alias(FunctionName=AUTHORIZER, Name="live")["AliasArn"]
    assert aliased_functions(cloudformation, "Prod-Entrix") == [
        alias,
        AliasDeployment(authorizer, APPLICATION, AUTHORIZER_GROUP, authorizer=True),
    ]


def _codedeploy_for_both(*, ingest_fails: bool = False, authorizer_created: datetime) -> Any:
    """CodeDeploy for the ingest group then the authorizer's, each last deployed 1 -> 2."""
    client = boto3.client("codedeploy", region_name=REGION)
    stubber = Stubber(client)
    if ingest_fails:
        stubber.add_client_error(
            "list_deployments", "ThrottlingException", "Rate exceeded", http_status_code=400
        )
    else:
        add_group(
            stubber,
            APPLICATION,
            GROUP,
            running=[],
            last_success=DEPLOYMENT,
            created=BY_LAST_UPDATE,
            content=appspec(FUNCTION, "live", "1", "2"),
        )
    moved = authorizer_created >= LAST_UPDATE
    add_group(
        stubber,
        APPLICATION,
        AUTHORIZER_GROUP,
        running=[],
        last_success="d-AUTHORIZER",
        created=authorizer_created,
        content=appspec(AUTHORIZER, "live", "1", "2") if moved else "",
    )
    stubber.activate()
    return client


def _apigateway(*, flushed: bool) -> tuple[Any, Stubber]:
    client = boto3.client("apigateway", region_name=REGION)
    stubber = Stubber(client)
    if flushed:
        stubber.add_response(
            "flush_stage_authorizers_cache",
            {},
            {"restApiId": OUTPUTS["RestApiId"], "stageName": OUTPUTS["ApiStageName"]},
        )
    stubber.activate()
    return client, stubber


@pytest.fixture
def clients(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The clients the command's boto3 gives, by service; the tests' own clients are real."""
    given: dict[str, Any] = {}
    monkeypatch.setattr(
        rollback_command,
        "boto3",
        SimpleNamespace(client=lambda service, region_name: given[service]),
    )
    return given


def _run() -> int:
    return cli.main(["rollback", "--stack", "Prod-Entrix", "--region", REGION])


def test_the_command_undoes_the_last_update_flushes_the_authorizer_cache_and_is_idempotent(
    lambda_: Any, clients: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    apigateway, flush = _apigateway(flushed=True)
    clients |= {
        "cloudformation": _cloudformation(lambda_),
        "lambda": lambda_,
        "codedeploy": _codedeploy_for_both(authorizer_created=BY_LAST_UPDATE),
        "apigateway": apigateway,
    }
    assert _run() == 0
    flush.assert_no_pending_responses()
    assert capsys.readouterr().out == (
        f"ok   {FUNCTION}: live 2 -> 1, the version before deployment {DEPLOYMENT}\n"
        f"ok   {AUTHORIZER}: live 2 -> 1, the version before deployment d-AUTHORIZER\n"
        f"ok   authorizer cache of a1b2c3d4e5/prod flushed\n"
    )
    assert _live(lambda_) == _live(lambda_, AUTHORIZER) == ("1", {})

    # Run again "to be sure": nothing moves, nothing is flushed.
    clients |= {
        "cloudformation": _cloudformation(lambda_),
        "codedeploy": _codedeploy_for_both(authorizer_created=BY_LAST_UPDATE),
        "apigateway": _apigateway(flushed=False)[0],
    }
    assert _run() == 0
    assert [line.split(": ")[1] for line in capsys.readouterr().out.splitlines()] == [
        f"live already on version 1, the one before deployment {DEPLOYMENT}",
        "live already on version 1, the one before deployment d-AUTHORIZER",
    ]
    assert _live(lambda_) == _live(lambda_, AUTHORIZER) == ("1", {})


def test_an_authorizer_the_last_update_did_not_deploy_is_neither_moved_nor_flushed(
    lambda_: Any, clients: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    clients |= {
        "cloudformation": _cloudformation(lambda_),
        "lambda": lambda_,
        "codedeploy": _codedeploy_for_both(authorizer_created=BY_AN_EARLIER_UPDATE),
        # A flush would be a call the stub does not expect: the command would fail.
        "apigateway": _apigateway(flushed=False)[0],
    }
    assert _run() == 0
    assert capsys.readouterr().out.splitlines()[1] == (
        f"ok   {AUTHORIZER}: live stays on version 2: not deployed by the last update"
    )
    assert _live(lambda_) == ("1", {})
    assert _live(lambda_, AUTHORIZER) == ("2", {})


def test_a_failed_call_for_one_function_leaves_it_and_rolls_back_the_others(
    lambda_: Any, clients: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    apigateway, flush = _apigateway(flushed=True)
    clients |= {
        "cloudformation": _cloudformation(lambda_),
        "lambda": lambda_,
        "codedeploy": _codedeploy_for_both(ingest_fails=True, authorizer_created=BY_LAST_UPDATE),
        "apigateway": apigateway,
    }
    assert _run() == 1
    flush.assert_no_pending_responses()
    ingest, authorizer, cache = capsys.readouterr().out.splitlines()
    assert ingest.startswith(f"LEFT {FUNCTION}: live not rolled back: ")
    assert "ThrottlingException" in ingest
    assert authorizer.startswith(f"ok   {AUTHORIZER}: live 2 -> 1")
    assert cache == "ok   authorizer cache of a1b2c3d4e5/prod flushed"
    assert _live(lambda_) == ("2", {})
    assert _live(lambda_, AUTHORIZER) == ("1", {})


@pytest.mark.parametrize(
    "status",
    ["UPDATE_ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_IN_PROGRESS", "UPDATE_ROLLBACK_FAILED"],
)
def test_a_stack_whose_last_update_was_rolled_back_is_refused(
    lambda_: Any, clients: dict[str, Any], capsys: pytest.CaptureFixture[str], status: str
) -> None:
    """CodeDeploy and CloudFormation already put the aliases back: undoing the groups' last
    successful deployments now would take Prod one release further back."""
    clients |= {"cloudformation": _cloudformation(lambda_, status), "lambda": lambda_}
    assert _run() == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"entrix rollback: stack Prod-Entrix is {status}: its last update failed")
    assert _live(lambda_) == _live(lambda_, AUTHORIZER) == ("2", {})


@pytest.mark.parametrize("status", ["CREATE_COMPLETE", "DELETE_IN_PROGRESS", "ROLLBACK_COMPLETE"])
def test_a_stack_in_a_state_the_command_cannot_handle_is_refused(
    lambda_: Any, clients: dict[str, Any], capsys: pytest.CaptureFixture[str], status: str
) -> None:
    clients |= {"cloudformation": _cloudformation(lambda_, status), "lambda": lambda_}
    assert _run() == 1
    assert capsys.readouterr().err.startswith(
        f"entrix rollback: stack Prod-Entrix is {status}: the command undoes only"
    )
    assert _live(lambda_) == _live(lambda_, AUTHORIZER) == ("2", {})


def test_an_alias_someone_moved_by_hand_is_left_and_the_command_fails(
    lambda_: Any, clients: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    lambda_.update_alias(FunctionName=FUNCTION, Name="live", FunctionVersion="3")
    clients |= {
        "cloudformation": _cloudformation(lambda_),
        "lambda": lambda_,
        "codedeploy": _codedeploy_for_both(authorizer_created=BY_AN_EARLIER_UPDATE),
        "apigateway": _apigateway(flushed=False)[0],
    }
    assert _run() == 1
    assert capsys.readouterr().out.startswith(f"LEFT {FUNCTION}: live is on version 3")
    assert _live(lambda_) == ("3", {})
