"""Every AWS call the Lambda functions really make, checked against each function's role in the
template the local system deployed (and the target's resource and key policies).

The module drives its own local system (`entrix local` in process, tests/support/local_system.py)
through a representative scenario, recording calls with entrix.local.call_log. Two subjects
(desk-a, desk-b) hold tokens: each POSTs orders, desk-b with one of desk-a's record ids
(authorizer, ingest's conditional puts); desk-a resends one order unchanged and amends another;
each reads one back and lists its own (order status; the listing's Query on the owner index and
BatchGetItem); desk-b cancels its order (cancel's conditional update); a results run with
accepted and rejected orders (Lambda A, Lambda B storing results and publishing alerts, the
summary); then desk-a's change to a processed order is refused, as is a cancel of one; and a run
in which Lambda B's results store fails, so a batch's orders are released. It depends on no
other test. A not-ready run is left out: it polls for ten waits and makes no call a ready run
does not make (the state machine's own SNS alert is checked from its definition).
"""

from __future__ import annotations

import copy
import importlib
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from types import ModuleType
from typing import Any

import boto3
import pytest

from entrix import settings
from entrix.aws.results_store import ResultsStore
from entrix.local import call_log, harness
from entrix.local.call_log import Call
from entrix.local.iam.model import StackModel
from entrix.local.lambda_runner import applied_environment, runtime_environment
from entrix.local.pipeline import wait_for_execution
from entrix.orders import lifecycle
from entrix.orders.intake import Receipt
from tests.permissions.conftest import count
from tests.permissions.edges import call_edges, denied
from tests.pipeline.conftest import ACCEPT, READY, REJECT, ScriptedRandom
from tests.support.inject import Fault
from tests.support.local_system import Running, local_system
from tests.support.replaced_stores import replace_stores

AUTHORIZER = "entrix.handlers.authorizer.handler"
INGEST = "entrix.handlers.ingest.handler"
ORDER_STATUS = "entrix.handlers.order_status.handler"
ORDER_LIST = "entrix.handlers.order_list.handler"
CANCEL = "entrix.handlers.cancel.handler"
PROCESS = "entrix.handlers.process.handler"
RESULTS = "entrix.handlers.results.handler"
ARCHIVE = "entrix.handlers.archive.handler"
# An order stored 23 hours ago, as the intake stores it: the first run takes it within the
# expiry warning, so Lambda A publishes its `expiring` alert.
OLD_ORDER = "perm-old"
# Handlers that the scenario must see make at least one AWS call (the summary makes none).
CALLING_HANDLERS = (
    AUTHORIZER,
    INGEST,
    ORDER_STATUS,
    ORDER_LIST,
    CANCEL,
    RESULTS,
    PROCESS,
    ARCHIVE,
)
# The intake's DynamoDB calls the scenario must record: handler, action and where (the table,
# the owner index, or the client usage table), and whether every such call was conditional.
# Each API function charges its caller's share with a conditional UpdateItem; ingest also
# refunds orders stored before (an unconditional UpdateItem), so its usage calls are both.
INTAKE_EDGES = {
    (INGEST, "dynamodb:PutItem", "table", True),
    (ORDER_STATUS, "dynamodb:GetItem", "table", False),
    (ORDER_LIST, "dynamodb:Query", "index/owner-orders", False),
    (ORDER_LIST, "dynamodb:BatchGetItem", "table", False),
    (CANCEL, "dynamodb:UpdateItem", "table", True),
    (INGEST, "dynamodb:UpdateItem", "usage table", True),
    (INGEST, "dynamodb:UpdateItem", "usage table", False),
    (ORDER_STATUS, "dynamodb:UpdateItem", "usage table", True),
    (ORDER_LIST, "dynamodb:UpdateItem", "usage table", True),
}


@dataclass
class Recorded:
    running: Running
    model: StackModel
    calls: list[Call]
    outputs: list[dict[str, Any]]
    # What the API answered at each step of the scenario: step -> (status, body).
    replies: dict[str, tuple[int, Any]]


def _orders(*record_ids: str, parameter_2: float = 1.5) -> list[dict[str, Any]]:
    return [{"record_id": r, "parameter_1": "p", "parameter_2": parameter_2} for r in record_ids]


def _request(running: Running, method: str, path: str, token: str) -> tuple[int, Any]:
    """`method` on the orders URL plus `path` with `token`: the status and the parsed body."""
    request = urllib.request.Request(
        f"{running.orders_url}{path}", method=method, headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as reply:
            return int(reply.status), json.loads(reply.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


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
        desk_a = harness.sign_token(running.system, "desk-a")
        desk_b = harness.sign_token(running.system, "desk-b")
        replies = {
            "a creates": running.post(_orders("perm-1", "perm-2", "perm-3"), desk_a),
            "b creates its own perm-1": running.post(_orders("perm-1"), desk_b),
            "a resends perm-2, amends perm-3": running.post(
                [*_orders("perm-2"), *_orders("perm-3", parameter_2=2.5)], desk_a
            ),
            "a reads perm-1": _request(running, "GET", "/perm-1", desk_a),
            "b reads a's perm-2": _request(running, "GET", "/perm-2", desk_b),
            "a lists": _request(running, "GET", "?limit=10", desk_a),
            "b lists pending": _request(running, "GET", "?result_status=pending", desk_b),
            "b cancels perm-1": _request(running, "DELETE", "/perm-1", desk_b),
        }
        _store_old_order(running, "desk-a", OLD_ORDER, hours=23)
        results = _handler_module(running, RESULTS)
        patch.setattr(
            results, "random_source", ScriptedRandom([READY, ACCEPT, ACCEPT, REJECT, ACCEPT])
        )
        outputs = [_run(running, "permissions-accept-and-reject")]
        replies["a changes processed perm-1"] = running.post(
            _orders("perm-1", parameter_2=9.5), desk_a
        )
        replies["a cancels processed perm-2"] = _request(running, "DELETE", "/perm-2", desk_a)

        # Lambda B's results store fails: the batch's accepted orders are released.
        replies["a creates more"] = running.post(_orders("perm-4", "perm-5"), desk_a)
        patch.setattr(results, "random_source", ScriptedRandom([READY, ACCEPT, ACCEPT]))
        s3 = boto3.client("s3")
        Fault(s3, "PutObject", "InternalError", status=500)
        process = _handler_module(running, PROCESS)
        deployment = running.system.deployment
        assert deployment is not None
        (bucket,) = {
            spec.environment[settings.RESULTS_BUCKET_NAME.name]
            for spec in deployment.functions.values()
            if spec.handler == PROCESS
        }
        replace_stores(patch, process, "processor", results=ResultsStore(s3, bucket))
        outputs.append(_run(running, "permissions-store-fails"))
        _wait_for_history(running, bucket)

        model = StackModel.load(running.system.template_path)
        yield Recorded(running, model, list(calls), outputs, replies)


def test_the_scenario_did_what_it_says(recorded: Recorded) -> None:
    """Two subjects, the same record id kept apart, an unchanged resend, an amend, a cancel,
    and a change and a cancel refused once the order is processed."""
    replies = recorded.replies
    statuses = {step: status for step, (status, _) in replies.items()}
    assert statuses == {
        "a creates": 201,
        "b creates its own perm-1": 201,
        "a resends perm-2, amends perm-3": 201,
        "a reads perm-1": 200,
        "b reads a's perm-2": 404,
        "a lists": 200,
        "b lists pending": 200,
        "b cancels perm-1": 204,
        "a changes processed perm-1": 409,
        "a cancels processed perm-2": 409,
        "a creates more": 201,
    }
    assert replies["b creates its own perm-1"][1]["created"] == ["perm-1"]
    resend = replies["a resends perm-2, amends perm-3"][1]
    assert (resend["unchanged"], resend["amended"]) == (["perm-2"], ["perm-3"])
    listed = sorted(order["record_id"] for order in replies["a lists"][1]["orders"])
    assert listed == ["perm-1", "perm-2", "perm-3"]
    assert [o["record_id"] for o in replies["b lists pending"][1]["orders"]] == ["perm-1"]
    (refused,) = replies["a changes processed perm-1"][1]["refused"]
    assert refused["record_id"] == "perm-1" and refused["state"] in ("accepted", "rejected")
    # desk-b's cancelled perm-1 never reached the run: desk-a's three orders and the old one did.
    assert [o["accepted"] + o["rejected"] + o["failed"] for o in recorded.outputs] == [4, 2]


def test_the_scenario_ran_each_function_and_recorded_its_calls(recorded: Recorded) -> None:
    assert recorded.outputs[0]["rejected"] == 1 and recorded.outputs[1]["failed"] == 2
    handlers = _handlers(recorded)
    calling = {handlers[call.function] for call in recorded.calls}
    assert set(CALLING_HANDLERS) <= calling, (
        f"no call recorded for {set(CALLING_HANDLERS) - calling}"
    )


def test_the_intake_edges_are_recorded_each_on_its_table_or_index(recorded: Recorded) -> None:
    """Ingest's puts and cancel's update are conditional writes; the listing queries the owner
    index (not the pending one) and reads the page from the table; every API function charges
    the client usage table (a conditional update), and ingest refunds there the order desk-a
    resent unchanged."""
    handlers = _handlers(recorded)
    deployment = recorded.running.system.deployment
    assert deployment is not None
    table = harness.orders_table(recorded.running.system)
    usage_table = deployment.table_named_by(settings.CLIENT_USAGE_TABLE_NAME.name)
    found: dict[tuple[str, str, str], set[bool]] = {}
    for call in recorded.calls:
        handler = handlers[call.function]
        if call.service != "dynamodb" or handler not in {edge[0] for edge in INTAKE_EDGES}:
            continue
        tables = call.parameters.get("RequestItems") or [call.parameters["TableName"]]
        assert tables in ([table], [usage_table]), call
        index = call.parameters.get("IndexName")
        where = f"index/{index}" if index else "table" if tables == [table] else "usage table"
        key = (handler, f"dynamodb:{call.operation}", where)
        found.setdefault(key, set()).add(bool(call.parameters.get("conditional")))
    assert {(*key, conditional) for key, kinds in found.items() for conditional in kinds} == (
        INTAKE_EDGES
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


def test_lambda_a_alerts_of_the_old_order_and_the_archiver_writes_history(
    recorded: Recorded,
) -> None:
    """The two edges of the history work: Lambda A's publish of its `expiring` alert to the
    encrypted topic, and the archiver's writes under history/ (and nowhere else)."""
    handlers = _handlers(recorded)
    by_handler: dict[str, list[Call]] = {}
    for call in recorded.calls:
        by_handler.setdefault(handlers[call.function], []).append(call)
    assert {call.operation for call in by_handler[RESULTS]} >= {"PublishBatch", "PutObject"}
    puts = [call for call in by_handler[ARCHIVE] if call.operation == "PutObject"]
    assert puts and all(call.parameters["Key"].startswith("history/") for call in puts)
    assert {call.operation for call in by_handler[ARCHIVE]} == {"PutObject"}


@pytest.mark.parametrize(
    ("handler", "action"),
    [(RESULTS, "sns:Publish"), (RESULTS, "kms:GenerateDataKey"), (ARCHIVE, "s3:PutObject")],
)
def test_each_history_grant_removed_is_refused_by_name(
    recorded: Recorded, handler: str, action: str
) -> None:
    function = _function_id(recorded.model.body, handler)
    body = _without_statements(
        recorded.model.body, handler, lambda statement: action in _actions(statement)
    )
    refused = [line for line in _refused(recorded, body).splitlines() if line]
    assert any(function in line and f"{action} on" in line for line in refused), refused


def test_a_call_the_role_does_not_allow_is_refused(recorded: Recorded) -> None:
    """The check can fail: without Lambda B's role policy, its calls are refused by name."""
    process = _function_id(recorded.model.body, PROCESS)
    body = _without_statements(recorded.model.body, PROCESS, lambda statement: True)
    refused = _refused(recorded, body)
    for action in (
        "dynamodb:UpdateItem",
        "dynamodb:BatchGetItem",
        "s3:GetObject",
        "s3:PutObject",
        "sns:Publish",
        "kms:GenerateDataKey",
    ):
        assert f"{action} on" in refused
    assert process in refused


@pytest.mark.parametrize(
    ("handler", "action", "on"),
    [
        (INGEST, "dynamodb:PutItem", "table/"),
        (ORDER_STATUS, "dynamodb:GetItem", "table/"),
        (ORDER_LIST, "dynamodb:Query", "/index/owner-orders"),
        (ORDER_LIST, "dynamodb:BatchGetItem", "table/"),
        (CANCEL, "dynamodb:UpdateItem", "table/"),
        (AUTHORIZER, "secretsmanager:GetSecretValue", "secret:"),
    ],
)
def test_each_intake_grant_removed_is_refused_by_name(
    recorded: Recorded, handler: str, action: str, on: str
) -> None:
    """Each grant the intake's calls need, removed from its function's role alone, makes that
    function's call refused, naming the function, the action and the resource."""
    function = _function_id(recorded.model.body, handler)
    body = _without_statements(
        recorded.model.body, handler, lambda statement: action in _actions(statement)
    )
    refused = [line for line in _refused(recorded, body).splitlines() if line]
    assert refused, f"removing {action} from {handler} refused nothing"
    assert all(function in line and f"{action} on" in line for line in refused), refused
    assert any(on in line for line in refused), refused


@pytest.mark.parametrize("handler", [INGEST, ORDER_STATUS, ORDER_LIST])
def test_each_usage_grant_removed_is_refused_by_name(recorded: Recorded, handler: str) -> None:
    """Each API function's UpdateItem on the client usage table, removed from its role alone,
    refuses that function's charges (and nothing else)."""
    function = _function_id(recorded.model.body, handler)
    body = _without_statements(
        recorded.model.body, handler, lambda statement: "ClientUsage" in json.dumps(statement)
    )
    refused = [line for line in _refused(recorded, body).splitlines() if line]
    assert refused, f"removing the usage grant from {handler} refused nothing"
    assert all(
        function in line and "dynamodb:UpdateItem on" in line and "ClientUsage" in line
        for line in refused
    ), refused


def test_the_authorizer_needs_both_its_secrets(recorded: Recorded) -> None:
    """Its grant names the signing key and the deny list: with the deny list's ARN dropped, its
    read of the list (through the extension, with its role) is refused by name."""
    function = _function_id(recorded.model.body, AUTHORIZER)
    body = copy.deepcopy(recorded.model.body)
    deny_list_ref = None
    for resource in body["Resources"].values():
        if resource["Type"] == "AWS::IAM::Policy":
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                if statement.get("Action") == "secretsmanager:GetSecretValue" and isinstance(
                    statement["Resource"], list
                ):
                    deny_list_ref = statement["Resource"].pop()
    assert deny_list_ref is not None, "the authorizer's grant no longer lists two secrets"
    deny_list_id = deny_list_ref["Ref"]

    refused = [line for line in _refused(recorded, body).splitlines() if line]

    assert refused, "dropping the deny list from the authorizer's grant refused nothing"
    assert all(function in line and "secretsmanager:GetSecretValue on" in line for line in refused)
    assert all("JwtRevocations" in line or deny_list_id in line for line in refused), refused


def test_the_listing_may_not_query_the_pending_index(recorded: Recorded) -> None:
    """The listing's Query grant names the owner index: pointed at the pending-results index
    instead (or any other), the listing's queries are refused."""
    function = _function_id(recorded.model.body, ORDER_LIST)
    body = copy.deepcopy(recorded.model.body)
    text = json.dumps(body)
    assert text.count("/index/owner-orders") == 1
    body = json.loads(text.replace("/index/owner-orders", "/index/pending-results"))
    refused = _refused(recorded, body)
    assert f"{function} Query" in refused and "dynamodb:Query on" in refused


def test_each_request_carries_the_keys_aws_sends_for_its_call(recorded: Recorded) -> None:
    """The principal's keys (its role, its session named after the function, the function's
    ARN) and the call's own: ingest's put names its order's key and every attribute it writes
    and asks ALL_OLD; the listing's query names an owner shard of the index; cancel's update
    names the attributes it sets and removes; Lambda B's writes name the bucket's account."""
    deployment = recorded.running.system.deployment
    assert deployment is not None
    model = recorded.model
    by_name = {edge.name: edge for edge in call_edges(model, deployment, recorded.calls)}

    def contexts(handler: str, operation: str) -> list[dict[str, Any]]:
        function = _function_id(model.body, handler)
        return [
            dict(r.context)
            for name, edge in by_name.items()
            if name.startswith(f"{function} {operation}")
            for r in edge.requests
        ]

    (put, *_) = contexts(INGEST, "PutItem")
    ingest_role = model.function_role(_function_id(model.body, INGEST))
    assert put["aws:PrincipalArn"] == ingest_role.arn
    assert put["aws:PrincipalType"] == "AssumedRole"
    assert put["aws:userid"].endswith(":" + put["lambda:SourceFunctionArn"].rsplit(":", 1)[1])
    assert put["dynamodb:ReturnValues"] == "ALL_OLD"
    assert {"order_key", "record_id", "result_status"} <= set(put["dynamodb:Attributes"])
    (order_key,) = put["dynamodb:LeadingKeys"]
    assert order_key.startswith("desk-")  # one order's key: its owner, then its record id
    queries = contexts(ORDER_LIST, "Query")
    assert queries and all(len(q["dynamodb:LeadingKeys"]) == 1 for q in queries)
    assert {q["dynamodb:Select"] for q in queries} == {"ALL_PROJECTED_ATTRIBUTES"}
    (cancel, *_) = contexts(CANCEL, "UpdateItem (conditional)")
    assert {"result_status", "cancelled_at", "pending_shard", "claimed_by"} <= set(
        cancel["dynamodb:Attributes"]
    )
    writes = contexts(PROCESS, "PutObject")
    assert writes and all(w["s3:ResourceAccount"] == model.account for w in writes)


def test_a_bucket_policy_deny_naming_lambda_bs_role_refuses_its_writes(recorded: Recorded) -> None:
    """The common way to keep one role out of a bucket: a Deny for every principal whose
    aws:PrincipalArn is that role. AWS sends the role's ARN with each of its session's requests,
    so Lambda B's writes are refused, and only Lambda B's."""
    process = _function_id(recorded.model.body, PROCESS)
    body = _with_results_bucket_statement(
        recorded.model.body, "ArnLike", _role_arn(recorded.model.body, PROCESS)
    )
    refused = [line for line in _refused(recorded, body).splitlines() if line]
    assert refused, "a Deny naming Lambda B's role by aws:PrincipalArn refused nothing"
    assert all(process in line and "s3:PutObject on" in line for line in refused), refused
    assert any("ExplicitlyDenied" in line for line in refused), refused


def test_a_bucket_policy_deny_for_all_but_lambda_b_refuses_the_other_writers(
    recorded: Recorded,
) -> None:
    """The same Deny the other way round (ArnNotLike: every role but Lambda B's): Lambda B
    still writes its results, while Lambda A's batches and the archiver's history are refused."""
    process = _function_id(recorded.model.body, PROCESS)
    writers = {_function_id(recorded.model.body, handler) for handler in (RESULTS, ARCHIVE)}
    body = _with_results_bucket_statement(
        recorded.model.body, "ArnNotLike", _role_arn(recorded.model.body, PROCESS)
    )
    refused = [line for line in _refused(recorded, body).splitlines() if line]
    assert not any(process in line for line in refused), refused
    assert {w for w in writers if any(w in line for line in refused)} == writers, refused
    assert all("s3:PutObject on" in line for line in refused), refused


def test_a_grant_on_some_attributes_refuses_a_write_of_others(recorded: Recorded) -> None:
    """An attribute-level grant (dynamodb:Attributes, ForAllValues:StringEquals): cancel may
    set the status and the cancel time, but its update also removes the claim and the pending
    shard, so it is refused; granted those as well, it is allowed."""
    cancel = _function_id(recorded.model.body, CANCEL)
    written = ["order_key", "result_status", "cancelled_at"]
    removed = ["pending_shard", "claimed_by", "claim_expires_at"]

    def only(attributes: list[str]) -> dict[str, Any]:
        return _with_condition(
            recorded.model.body,
            CANCEL,
            "dynamodb:UpdateItem",
            {"ForAllValues:StringEquals": {"dynamodb:Attributes": attributes}},
        )

    refused = [line for line in _refused(recorded, only(written)).splitlines() if line]
    assert refused, "a grant on three attributes let cancel write six"
    assert all(cancel in line and "dynamodb:UpdateItem on" in line for line in refused), refused
    assert not _refused(recorded, only([*written, *removed]))


def test_a_grant_that_returns_no_old_items_refuses_ingests_put(recorded: Recorded) -> None:
    """AWS's example condition against reading whole items back through writes
    (dynamodb:ReturnValues NONE or the updated attributes only): ingest's PutItem asks for
    ALL_OLD (to tell an amend from a create), so it is refused."""
    ingest = _function_id(recorded.model.body, INGEST)
    body = _with_condition(
        recorded.model.body,
        INGEST,
        "dynamodb:PutItem",
        {"StringEqualsIfExists": {"dynamodb:ReturnValues": ["NONE", "UPDATED_OLD", "UPDATED_NEW"]}},
    )
    refused = [line for line in _refused(recorded, body).splitlines() if line]
    assert refused, "a grant without ALL_OLD let ingest's PutItem ask for it"
    assert all(ingest in line and "dynamodb:PutItem on" in line for line in refused), refused


def test_each_prefix_lambda_b_writes_is_checked(recorded: Recorded) -> None:
    """Lambda B writes results/ and then rejections/: with its grant on results/* only, its
    writes and reads under rejections/ are refused, though a granted prefix came first."""
    process = _function_id(recorded.model.body, PROCESS)
    body = copy.deepcopy(recorded.model.body)
    dropped = 0
    for statement in _statements(body, PROCESS):
        if "s3:PutObject" in _actions(statement) and isinstance(statement["Resource"], list):
            kept = [r for r in statement["Resource"] if "rejections/" not in json.dumps(r)]
            dropped += len(statement["Resource"]) - len(kept)
            statement["Resource"] = kept
    assert dropped == 1, "Lambda B's grant no longer names rejections/* apart"
    refused = [line for line in _refused(recorded, body).splitlines() if line]
    assert refused, "Lambda B's writes under rejections/ were not checked"
    assert all(process in line and "/rejections/" in line for line in refused), refused
    assert any("s3:PutObject on" in line for line in refused), refused


# --- helpers ---------------------------------------------------------------------------------


def _store_old_order(running: Running, owner: str, record_id: str, hours: float) -> None:
    """`owner`'s order received `hours` ago, stored as the intake stores it."""
    received = Receipt.at(time.time() - hours * 3600)
    item = lifecycle.stored_item(
        {"record_id": record_id, "parameter_1": "p", "parameter_2": Decimal("1.5")},
        owner,
        received.received_at,
        received.expires_at,
        lifecycle.version(received.received_at, lifecycle.request_nonce(), 0),
    )
    typed = {
        name: {"N": str(value)} if isinstance(value, int | Decimal) else {"S": value}
        for name, value in item.items()
    }
    running.client("dynamodb").put_item(TableName=running.table, Item=typed)


def _wait_for_history(running: Running, bucket: str) -> None:
    """Until the archiver (on the stream poller's thread) has written the old order's result;
    a guard against a hung poller, not a speed check."""
    s3 = running.client("s3")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for listed in s3.list_objects_v2(Bucket=bucket, Prefix="history/").get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=listed["Key"])["Body"].read().decode()
            if '"event": "result"' in body and OLD_ORDER in body:
                return
        time.sleep(0.2)
    raise AssertionError("the history archiver wrote no result line of the old order")


def _handlers(recorded: Recorded) -> dict[str, str]:
    deployment = recorded.running.system.deployment
    assert deployment is not None
    return {spec.function_name: spec.handler for spec in deployment.functions.values()}


def _function_id(body: dict[str, Any], handler: str) -> str:
    (function,) = [
        logical_id
        for logical_id, resource in body["Resources"].items()
        if resource["Type"] == "AWS::Lambda::Function"
        and resource["Properties"]["Handler"] == handler
    ]
    return function


def _actions(statement: dict[str, Any]) -> set[str]:
    action = statement["Action"]
    return {action} if isinstance(action, str) else set(action)


def _role_arn(body: dict[str, Any], handler: str) -> dict[str, Any]:
    """The template's expression for the ARN of `handler`'s role."""
    role = body["Resources"][_function_id(body, handler)]["Properties"]["Role"]["Fn::GetAtt"][0]
    return {"Fn::GetAtt": [role, "Arn"]}


def _statements(body: dict[str, Any], handler: str) -> list[dict[str, Any]]:
    """The statements of the policies attached to `handler`'s role (in `body`, to change)."""
    role = _role_arn(body, handler)["Fn::GetAtt"][0]
    return [
        statement
        for resource in body["Resources"].values()
        if resource["Type"] == "AWS::IAM::Policy"
        and {"Ref": role} in resource["Properties"]["Roles"]
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
    ]


def _with_condition(
    body: dict[str, Any], handler: str, action: str, condition: dict[str, Any]
) -> dict[str, Any]:
    """A copy of the template whose statements granting `handler`'s role `action` on the
    orders table hold `condition`."""
    body = copy.deepcopy(body)
    (orders,) = [
        logical_id
        for logical_id, r in body["Resources"].items()
        if r["Type"] == "AWS::DynamoDB::Table"
        and "owner-orders" in json.dumps(r["Properties"].get("GlobalSecondaryIndexes", []))
    ]
    changed = 0
    for statement in _statements(body, handler):
        on_orders = f'"{orders}"' in json.dumps(statement["Resource"])
        if action in _actions(statement) and on_orders:
            statement["Condition"] = condition
            changed += 1
    assert changed, f"no statement grants {handler} {action} on the orders table"
    return body


def _with_results_bucket_statement(
    body: dict[str, Any], operator: str, role_arn: dict[str, Any]
) -> dict[str, Any]:
    """A copy of the template whose results bucket policy denies s3:PutObject to every
    principal whose aws:PrincipalArn matches `role_arn` under `operator` (ArnLike: that role;
    ArnNotLike: every other)."""
    body = copy.deepcopy(body)
    process = body["Resources"][_function_id(body, PROCESS)]["Properties"]
    bucket_setting = process["Environment"]["Variables"][settings.RESULTS_BUCKET_NAME.name]
    (policy,) = [
        r["Properties"]
        for r in body["Resources"].values()
        if r["Type"] == "AWS::S3::BucketPolicy" and r["Properties"]["Bucket"] == bucket_setting
    ]
    bucket = bucket_setting["Ref"]
    policy["PolicyDocument"]["Statement"].append(
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:PutObject",
            "Resource": {"Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, "/*"]]},
            "Condition": {operator: {"aws:PrincipalArn": role_arn}},
        }
    )
    return body


def _without_statements(
    body: dict[str, Any], handler: str, drop: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """A copy of the template whose policies on `handler`'s role lack the statements `drop`
    picks (a policy left with none is removed)."""
    body = copy.deepcopy(body)
    role = body["Resources"][_function_id(body, handler)]["Properties"]["Role"]["Fn::GetAtt"][0]
    for logical_id, resource in list(body["Resources"].items()):
        if (
            resource["Type"] == "AWS::IAM::Policy"
            and {"Ref": role} in resource["Properties"]["Roles"]
        ):
            document = resource["Properties"]["PolicyDocument"]
            document["Statement"] = [s for s in document["Statement"] if not drop(s)]
            if not document["Statement"]:
                del body["Resources"][logical_id]
    return body


def _refused(recorded: Recorded, body: dict[str, Any]) -> str:
    """The refused requests of the recorded calls under the template `body`, one per line."""
    deployment = recorded.running.system.deployment
    assert deployment is not None
    model = StackModel(recorded.model.name, body, recorded.model.region)
    return "\n".join(denied(call_edges(model, deployment, recorded.calls)))
