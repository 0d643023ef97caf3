"""`entrix verify`'s end-to-end API and pipeline checks (mode `full`, Dev's), against the whole
local system over HTTP.

The same functions run after each deploy (`entrix verify --stack`); here the target is `entrix
local`: the anonymous request is refused, an order is stored, and a run gives it a result.
"""

from __future__ import annotations

from typing import Any

import pytest

from entrix.verify_command import Target, run_checks
from tests.support.local_process import running_local

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def local() -> Any:
    with running_local(schedule_seconds=3600) as system:
        yield system


def _target(local: Any, token: str) -> Target:
    (machine,) = local.client("stepfunctions").list_state_machines()["stateMachines"]
    return Target(
        api_url=f"http://127.0.0.1:{local.port}/orders",
        token=token,
        state_machine_arn=machine["stateMachineArn"],
        probe_alarm="(none locally)",
        clients=local.client,
        patience=120,
        poll_seconds=0.5,
    )


def test_an_order_goes_through_the_api_and_a_pipeline_run(local: Any) -> None:
    token = local.cli("token").stdout.strip()
    checks = ["anonymous-refused", "order-stored", "order-through-pipeline"]

    outcomes = dict(run_checks(_target(local, token), "full", checks))

    assert outcomes == dict.fromkeys(checks)


def test_a_forged_token_fails_the_order_check_with_the_apis_answer(local: Any) -> None:
    token = local.cli("token").stdout.strip()
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")

    outcomes = dict(run_checks(_target(local, forged), "full", ["order-stored"]))

    assert outcomes["order-stored"] is not None
    assert outcomes["order-stored"].startswith("POST /orders answered 401")
