"""Every AWS call the Lambda functions really make, checked against each function's role in the
template the local system deployed (and the target's resource and key policies).

The module drives its own local system (`entrix local` in process, tests/support/local_system.py)
through a representative scenario, recording calls with entrix.local.call_log: orders POSTed
(authorizer, ingest), one read back (order status), a results run with accepted and rejected
orders (Lambda A, Lambda B storing results and publishing alerts, the summary), and a run in
which Lambda B's results store fails, so a batch's orders are released. It depends on no other
test. A not-ready run is left out: it polls for ten waits and makes no call a ready run does
not make (the state machine's own SNS alert is checked from its definition).
"""

from __future__ import annotations

import copy
import importlib
import json
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import boto3
import pytest

from entrix import settings
from entrix.aws.results_store import ResultsStore
from entrix.local import call_log
from entrix.local.call_log import Call
from entrix.local.lambda_runner import applied_environment, runtime_environment
from entrix.local.pipeline import wait_for_execution
from tests.permissions.calls import call_edges
from tests.permissions.conftest import count
from tests.permissions.edges import denied
from tests.permissions.model import StackModel
from tests.pipeline.conftest import ACCEPT, READY, REJECT, ScriptedRandom
from tests.support.inject import Fault
from tests.support.local_system import Running, local_system
from tests.support.replaced_stores import replace_stores

# Handlers that the scenario must see make at least one AWS call (the summary makes none).
CALLING_HANDLERS = (
    "entrix.handlers.authorizer.handler",
    "entrix.handlers.ingest.handler",
    "entrix.handlers.order_status.handler",
    "entrix.handlers.results.handler",
    "entrix.handlers.process.handler",
)


@dataclass
class Recorded:
    running: Running
    model: StackModel
    calls: list[Call]
    outputs: list[dict[str, Any]]


def _orders(*record_ids: str) -> list[dict[str, Any]]:
    return [{"record_id": r, "parameter_1": "p", "parameter_2": 1.5} for r in record_ids]


def _get(running: Running, record_id: str) -> int:
    request = urllib.request.Request(
        f"{running.orders_url}/{record_id}", headers={"Authorization": f"Bearer {running.token}"}
    )
    with urllib.request.urlopen(request, timeout=60) as reply:
        return int(reply.status)


def _handler_module(running: Running, handler: str) -> ModuleType:
    """The module of a deployed function's handler, imported as Lambda would (its env set)."""
    deployment = running.system.deployment
    assert deployment is not None
    (spec,) = [f for f in deployment.functions.values() if f.handler == handler]
    with applied_environment(runtime_environment(spec)):
        return importlib.import_module(handler.rpartition(".")[0])


def _run(running: Running, name: str) -> dict[str, Any]:
    """One results run, started as the schedule starts it; its output once it has ended."""
    deployment = running.system.deployment
    assert deployment is not None
    (machine,) = deployment.state_machines.values()
    sfn = running.client("stepfunctions")
    event = {"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}
    execution = sfn.start_execution(stateMachineArn=machine, name=name, input=json.dumps(event))
    # A guard against a hung run, not a speed check.
    described = wait_for_execution(sfn, execution["executionArn"], timeout_seconds=300)
    assert described["status"] == "SUCCEEDED", described
    output: dict[str, Any] = json.loads(described["output"])
    return output


@pytest.fixture(scope="module")
def recorded() -> Iterator[Recorded]:
    with (
        pytest.MonkeyPatch.context() as patch,
        call_log.recording() as calls,
        local_system() as running,
    ):
        assert running.post(_orders("perm-1", "perm-2", "perm-3"))[0] == 201
        assert _get(running, "perm-1") == 200
        results = _handler_module(running, "entrix.handlers.results.handler")
        patch.setattr(results, "random_source", ScriptedRandom([READY, ACCEPT, REJECT, ACCEPT]))
        outputs = [_run(running, "permissions-accept-and-reject")]

        # Lambda B's results store fails: the batch's accepted orders are released.
        assert running.post(_orders("perm-4", "perm-5"))[0] == 201
        patch.setattr(results, "random_source", ScriptedRandom([READY, ACCEPT, ACCEPT]))
        s3 = boto3.client("s3")
        Fault(s3, "PutObject", "InternalError", status=500)
        process = _handler_module(running, "entrix.handlers.process.handler")
        deployment = running.system.deployment
        assert deployment is not None
        (bucket,) = {
            spec.environment[settings.RESULTS_BUCKET_NAME.name]
            for spec in deployment.functions.values()
            if spec.handler == "entrix.handlers.process.handler"
        }
        replace_stores(patch, process, "processor", results=ResultsStore(s3, bucket))
        outputs.append(_run(running, "permissions-store-fails"))

        model = StackModel.load(running.system.template_path)
        yield Recorded(running, model, list(calls), outputs)


def test_the_scenario_ran_each_function_and_recorded_its_calls(recorded: Recorded) -> None:
    assert [o["accepted"] + o["rejected"] + o["failed"] for o in recorded.outputs] == [3, 2]
    assert recorded.outputs[0]["rejected"] == 1 and recorded.outputs[1]["failed"] == 2
    deployment = recorded.running.system.deployment
    assert deployment is not None
    handlers = {spec.function_name: spec.handler for spec in deployment.functions.values()}
    calling = {handlers[call.function] for call in recorded.calls}
    assert set(CALLING_HANDLERS) <= calling, (
        f"no call recorded for {set(CALLING_HANDLERS) - calling}"
    )


def test_every_recorded_call_is_allowed_by_the_functions_role(
    recorded: Recorded, record_property: Callable[[str, object], None]
) -> None:
    deployment = recorded.running.system.deployment
    assert deployment is not None
    edges = call_edges(recorded.model, deployment, recorded.calls)
    assert edges, "no call recorded: the model checked nothing"
    for kind in sorted({edge.kind for edge in edges}):
        of_kind = [edge for edge in edges if edge.kind == kind]
        count(kind, len(of_kind), sum(len(edge.requests) for edge in of_kind))
    record_property("edges", len(edges))
    record_property("calls", len(recorded.calls))
    refused = denied(edges)
    assert not refused, f"{len(refused)} requests refused:\n" + "\n".join(refused)


def test_a_call_the_role_does_not_allow_is_refused(recorded: Recorded) -> None:
    """The check can fail: without Lambda B's role policy, its calls are refused by name."""
    deployment = recorded.running.system.deployment
    assert deployment is not None
    body = copy.deepcopy(recorded.model.body)
    (process,) = [
        logical_id
        for logical_id, resource in body["Resources"].items()
        if resource["Type"] == "AWS::Lambda::Function"
        and resource["Properties"]["Handler"] == "entrix.handlers.process.handler"
    ]
    role = body["Resources"][process]["Properties"]["Role"]["Fn::GetAtt"][0]
    for logical_id, resource in list(body["Resources"].items()):
        if (
            resource["Type"] == "AWS::IAM::Policy"
            and {"Ref": role} in resource["Properties"]["Roles"]
        ):
            del body["Resources"][logical_id]
    model = StackModel(recorded.model.name, body, recorded.model.region)
    refused = "\n".join(denied(call_edges(model, deployment, recorded.calls)))
    for action in ("dynamodb:UpdateItem", "s3:PutObject", "sns:Publish", "kms:GenerateDataKey"):
        assert f"{action} on" in refused
    assert process in refused
