"""`entrix rollback`: Lambda's aliases and versions are moto's; moto's CodeDeploy lacks
StopDeployment, a group's lastSuccessfulDeployment and Lambda AppSpec revisions, so CodeDeploy
(and CloudFormation's template and resource list) answer through botocore's Stubber, at the
client, with the shapes of the AWS API (tests/support/codedeploy_stub.py)."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from entrix import cli, rollback_command
from entrix.rollback_command import AliasDeployment, aliased_functions, roll_back
from tests.support.codedeploy_stub import appspec, stub_codedeploy

REGION = "eu-west-1"
FUNCTION = "Prod-Entrix-Ingest"
APPLICATION = "Prod-Entrix-GradualDeployApplication"
GROUP = "Prod-Entrix-GradualDeployIngest"
DEPLOYMENT = "d-SUCCEEDED1"


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


@pytest.fixture
def lambda_() -> Iterator[Any]:
    """A function with versions 1, 2 and 3, its `live` alias on version 2."""
    with mock_aws():
        iam = boto3.client("iam", region_name=REGION)
        role = iam.create_role(
            RoleName="ingest",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )["Role"]["Arn"]
        client = boto3.client("lambda", region_name=REGION)
        client.create_function(
            FunctionName=FUNCTION,
            Runtime="python3.13",
            Role=role,
            Handler="handler.handler",
            Code={"ZipFile": _zip()},
        )
        for version in ("1", "2", "3"):
            client.update_function_configuration(FunctionName=FUNCTION, Description=version)
            assert client.publish_version(FunctionName=FUNCTION)["Version"] == version
        client.create_alias(FunctionName=FUNCTION, Name="live", FunctionVersion="2")
        yield client


@pytest.fixture
def alias(lambda_: Any) -> AliasDeployment:
    arn = lambda_.get_alias(FunctionName=FUNCTION, Name="live")["AliasArn"]
    return AliasDeployment(alias_arn=arn, application=APPLICATION, deployment_group=GROUP)


def _codedeploy(
    *, running: list[str], last_success: str | None = DEPLOYMENT, content: str | None = None
) -> tuple[Any, Stubber]:
    return stub_codedeploy(
        APPLICATION,
        GROUP,
        running=running,
        last_success=last_success,
        content=content or appspec(FUNCTION, "live", "1", "2"),
    )


def _live(lambda_: Any) -> tuple[str, dict[str, float]]:
    alias = lambda_.get_alias(FunctionName=FUNCTION, Name="live")
    return alias["FunctionVersion"], alias.get("RoutingConfig", {}).get(
        "AdditionalVersionWeights", {}
    )


def test_a_running_deployment_is_stopped_with_rollback_and_the_alias_left_to_codedeploy(
    lambda_: Any, alias: AliasDeployment
) -> None:
    codedeploy, stubber = _codedeploy(running=["d-RUNNING01"])
    outcome = roll_back(alias, lambda_, codedeploy)
    stubber.assert_no_pending_responses()
    assert outcome.ok and "stopped deployment d-RUNNING01 with rollback" in outcome.text
    assert _live(lambda_) == ("2", {})


def test_the_alias_goes_back_to_the_version_before_the_last_deployment_once(
    lambda_: Any, alias: AliasDeployment
) -> None:
    codedeploy, stubber = _codedeploy(running=[])
    outcome = roll_back(alias, lambda_, codedeploy)
    stubber.assert_no_pending_responses()
    assert outcome.ok and outcome.text == f"live 2 -> 1, the version before deployment {DEPLOYMENT}"
    assert _live(lambda_) == ("1", {})
    # Run again: already there, nothing changed (not on to version 0 or back to 2).
    codedeploy, stubber = _codedeploy(running=[])
    again = roll_back(alias, lambda_, codedeploy)
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
    outcome = roll_back(alias, lambda_, codedeploy)
    assert outcome.ok and outcome.text.startswith("live 1 (+2) -> 1")
    assert _live(lambda_) == ("1", {})


def test_an_alias_on_a_version_the_deployment_did_not_name_is_left_alone(
    lambda_: Any, alias: AliasDeployment
) -> None:
    lambda_.update_alias(FunctionName=FUNCTION, Name="live", FunctionVersion="3")
    codedeploy, _ = _codedeploy(running=[])
    outcome = roll_back(alias, lambda_, codedeploy)
    assert not outcome.ok and "left alone" in outcome.text
    assert _live(lambda_) == ("3", {})


def test_an_alias_never_deployed_by_codedeploy_stays_where_it_is(
    lambda_: Any, alias: AliasDeployment
) -> None:
    codedeploy, _ = _codedeploy(running=[], last_success=None)
    outcome = roll_back(alias, lambda_, codedeploy)
    assert outcome.ok and outcome.text == "live stays on version 2: no deployment to undo"
    assert _live(lambda_) == ("2", {})


def test_an_appspec_that_does_not_name_the_alias_is_an_error(
    lambda_: Any, alias: AliasDeployment
) -> None:
    other = appspec("Prod-Entrix-Cancel", "live", "1", "2")
    codedeploy, _ = _codedeploy(running=[], content=other)
    with pytest.raises(rollback_command.RollbackError, match="does not name"):
        roll_back(alias, lambda_, codedeploy)
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
        # An alias CodeDeploy does not move is not the command's.
        "OtherAlias": {"Type": "AWS::Lambda::Alias"},
        "Application": {"Type": "AWS::CodeDeploy::Application"},
        "IngestGroup": {"Type": "AWS::CodeDeploy::DeploymentGroup"},
    }
}


def _cloudformation(alias_arn: str) -> Any:
    client = boto3.client("cloudformation", region_name=REGION)
    stubber = Stubber(client)
    stubber.add_response(
        "get_template", {"TemplateBody": json.dumps(TEMPLATE)}, {"StackName": "Prod-Entrix"}
    )
    physical = {
        "IngestAliaslive": alias_arn,
        "OtherAlias": f"{alias_arn[: -len(':live')]}:other",
        "Application": APPLICATION,
        "IngestGroup": GROUP,
    }
    stubber.add_response(
        "list_stack_resources",
        {
            "StackResourceSummaries": [
                {
                    "LogicalResourceId": logical_id,
                    "PhysicalResourceId": physical_id,
                    "ResourceType": TEMPLATE["Resources"][logical_id]["Type"],
                    "LastUpdatedTimestamp": "2026-12-07T00:00:00Z",
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
    alias: AliasDeployment,
) -> None:
    assert aliased_functions(_cloudformation(alias.alias_arn), "Prod-Entrix") == [alias]


def test_the_command_prints_what_it_did_and_fails_when_it_left_an_alias_alone(
    lambda_: Any,
    alias: AliasDeployment,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    clients = {
        "cloudformation": _cloudformation(alias.alias_arn),
        "lambda": lambda_,
        "codedeploy": _codedeploy(running=[])[0],
    }
    # The command's boto3 only: the test's own clients are real ones.
    monkeypatch.setattr(
        rollback_command,
        "boto3",
        SimpleNamespace(client=lambda service, region_name: clients[service]),
    )
    assert cli.main(["rollback", "--stack", "Prod-Entrix", "--region", REGION]) == 0
    assert capsys.readouterr().out == (
        f"ok   {FUNCTION}: live 2 -> 1, the version before deployment {DEPLOYMENT}\n"
    )

    lambda_.update_alias(FunctionName=FUNCTION, Name="live", FunctionVersion="3")
    clients |= {
        "cloudformation": _cloudformation(alias.alias_arn),
        "codedeploy": _codedeploy(running=[])[0],
    }
    assert cli.main(["rollback", "--stack", "Prod-Entrix", "--region", REGION]) == 1
    assert capsys.readouterr().out.startswith(f"LEFT {FUNCTION}: live is on version 3")
