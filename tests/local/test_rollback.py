"""A bad version and its rollback, end to end in `entrix local`: the API's callers run the
function's `live` alias (not $LATEST), so a broken version hurts only once the alias points at
it, and `entrix rollback`'s step for one alias puts the API right again. CodeDeploy is not
emulated: its record of the last deployment answers through botocore's Stubber."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator

import boto3
import pytest
from botocore.stub import Stubber

from entrix.local import harness
from entrix.rollback_command import ACTIVE_STATUSES, AliasDeployment, roll_back
from infra.constructs.lambda_code import LIVE_ALIAS
from tests.support.local_system import Running, local_system

pytestmark = pytest.mark.e2e

ORDER_LIST = "entrix.handlers.order_list.handler"
BROKEN_HANDLER = "entrix.handlers.no_such_module.handler"


@pytest.fixture(scope="module")
def running() -> Iterator[Running]:
    with local_system() as running:
        yield running


def _list_orders(running: Running) -> int:
    request = urllib.request.Request(
        running.orders_url, headers={"Authorization": f"Bearer {running.token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as error:
        return error.code


def _codedeploy(deployment: AliasDeployment, before: str, after: str) -> boto3.client:
    """CodeDeploy as it answers after a deployment that moved the alias from `before` to
    `after` and succeeded (the canary's alarms saw nothing)."""
    client = boto3.client("codedeploy", region_name="eu-west-1")
    stubber = Stubber(client)
    group = {
        "applicationName": deployment.application,
        "deploymentGroupName": deployment.deployment_group,
    }
    appspec = {
        "version": 0.0,
        "Resources": [
            {
                "OrderListAlias": {
                    "Type": "AWS::Lambda::Function",
                    "Properties": {
                        "Name": deployment.function_name,
                        "Alias": LIVE_ALIAS,
                        "CurrentVersion": before,
                        "TargetVersion": after,
                    },
                }
            }
        ],
    }
    stubber.add_response(
        "list_deployments",
        {"deployments": []},
        {**group, "includeOnlyStatuses": list(ACTIVE_STATUSES)},
    )
    stubber.add_response(
        "get_deployment_group",
        {"deploymentGroupInfo": {"lastSuccessfulDeployment": {"deploymentId": "d-LOCAL"}}},
        group,
    )
    stubber.add_response(
        "get_deployment",
        {
            "deploymentInfo": {
                "revision": {
                    "revisionType": "AppSpecContent",
                    "appSpecContent": {"content": json.dumps(appspec)},
                }
            }
        },
        {"deploymentId": "d-LOCAL"},
    )
    stubber.activate()
    return client


def test_a_broken_version_behind_the_alias_is_rolled_back_and_the_api_answers_again(
    running: Running,
) -> None:
    lambda_ = running.client("lambda")
    function = harness.function_with_handler(running.system, ORDER_LIST)
    alias = lambda_.get_alias(FunctionName=function, Name=LIVE_ALIAS)
    good = alias["FunctionVersion"]
    assert _list_orders(running) == 200

    # A broken handler on $LATEST: no caller runs it, so the API is unaffected.
    lambda_.update_function_configuration(FunctionName=function, Handler=BROKEN_HANDLER)
    assert _list_orders(running) == 200

    # Published and made live (what a finished deployment does): now every request fails.
    bad = lambda_.publish_version(FunctionName=function)["Version"]
    lambda_.update_alias(FunctionName=function, Name=LIVE_ALIAS, FunctionVersion=bad)
    assert _list_orders(running) == 502

    deployment = AliasDeployment(
        alias_arn=alias["AliasArn"],
        application="Entrix-GradualDeployApplication",
        deployment_group="Entrix-GradualDeployOrderList",
    )
    outcome = roll_back(deployment, lambda_, _codedeploy(deployment, good, bad))
    assert outcome.ok and outcome.text.startswith(f"live {bad} -> {good}")
    assert lambda_.get_alias(FunctionName=function, Name=LIVE_ALIAS)["FunctionVersion"] == good
    assert _list_orders(running) == 200
