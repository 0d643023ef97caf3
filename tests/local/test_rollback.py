"""A bad version and its rollback, end to end in `entrix local`: the API's callers run the
function's `live` alias (not $LATEST), so a broken version hurts only once the alias points at
it, and `entrix rollback`'s step for one alias puts the API right again. CodeDeploy is not
emulated: its record of the last deployment answers through botocore's Stubber."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from entrix.local import harness
from entrix.rollback_command import AliasDeployment, roll_back
from infra.constructs.lambda_code import LIVE_ALIAS
from tests.support.codedeploy_stub import appspec, stub_codedeploy
from tests.support.local_system import Running, local_system

pytestmark = pytest.mark.e2e

ORDER_LIST = "entrix.handlers.order_list.handler"
BROKEN_HANDLER = "entrix.handlers.no_such_module.handler"
# When the stack update began, and when it deployed the broken version.
UPDATE_BEGAN = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
DEPLOYED = datetime(2026, 12, 7, 1, 4, tzinfo=UTC)


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
    codedeploy, _ = stub_codedeploy(
        deployment.application,
        deployment.deployment_group,
        running=[],
        last_success="d-LOCAL",
        created=DEPLOYED,
        content=appspec(function, LIVE_ALIAS, good, bad),
    )
    outcome = roll_back(deployment, lambda_, codedeploy, since=UPDATE_BEGAN)
    assert outcome.ok and outcome.text.startswith(f"live {bad} -> {good}")
    assert lambda_.get_alias(FunctionName=function, Name=LIVE_ALIAS)["FunctionVersion"] == good
    assert _list_orders(running) == 200
