"""The local runtime refuses what AWS refuses (entrix.local.iam.enforcement).

The local system here is the service's template with one grant removed, as a CDK change could
remove it: ingest's role loses `dynamodb:PutItem`. Calls are made as AWS sees them, by a thread
running as a function (`call_log.running`, as the runtime marks a handler's thread), or through
the API and the secrets extension as the functions make them.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import botocore.handlers
import pytest
from botocore.exceptions import ClientError

from entrix import settings
from entrix.aws import secrets
from entrix.local import call_log, harness, lambda_runner
from entrix.local.iam import enforcement
from entrix.local.iam.enforcement import UnenforcedCall, UnmappedCall, refusal
from entrix.local.iam.evaluate import Decision, Request
from entrix.local.iam.model import Role
from entrix.local.runtime import LocalSystem
from entrix.local.synth import STACK_NAME, ensure_template, project_root
from entrix.token_command import AUTHORIZER_HANDLER
from tests.support.enforced import record_checks

INGEST = "entrix.handlers.ingest.handler"
ORDER_STATUS = "entrix.handlers.order_status.handler"
ACCOUNT = "123456789012"
TESTS = Path(__file__).parents[1]


def without_action(template: dict[str, Any], handler: str, action: str) -> dict[str, Any]:
    """`template` with `action` taken out of every policy statement of `handler`'s role."""
    resources = template["Resources"]
    (function,) = [r for r in resources.values() if r["Properties"].get("Handler") == handler]
    role = {"Ref": function["Properties"]["Role"]["Fn::GetAtt"][0]}
    removed = 0
    for resource in resources.values():
        if resource["Type"] != "AWS::IAM::Policy" or role not in resource["Properties"]["Roles"]:
            continue
        kept = []
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            actions = (
                statement["Action"]
                if isinstance(statement["Action"], list)
                else [statement["Action"]]
            )
            rest = [a for a in actions if a != action]
            removed += len(actions) - len(rest)
            if rest:
                kept.append({**statement, "Action": rest})
        resource["Properties"]["PolicyDocument"]["Statement"] = kept
    assert removed, f"{handler}'s role has no {action} to remove"
    return template


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSystem]:
    source, _ = ensure_template(project_root())
    template = without_action(json.loads(source.read_text()), INGEST, "dynamodb:PutItem")
    path = tmp_path_factory.mktemp("refused") / f"{STACK_NAME}.template.json"
    path.write_text(json.dumps(template))
    with harness.in_process(path) as started:
        assert started.enforcer is not None and enforcement.active() is started.enforcer
        yield started
    assert enforcement.active() is None


def _orders_item(system: LocalSystem, prefix: str) -> tuple[str, Any, dict[str, Any]]:
    """The orders table, a DynamoDB client, and an item of only its key (values `prefix-...`)."""
    table = harness.orders_table(system)
    dynamodb = system.endpoint.client("dynamodb")
    key_names = [
        k["AttributeName"] for k in dynamodb.describe_table(TableName=table)["Table"]["KeySchema"]
    ]
    return table, dynamodb, {name: {"S": f"{prefix}-{name}"} for name in key_names}


def _function(system: LocalSystem, handler: str) -> str:
    return harness.function_with_handler(system, handler)


def _order_item(record_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"enforce#{record_id}"}, "sk": {"S": "order"}}


def test_a_call_the_role_does_not_allow_is_refused_as_aws_refuses_it_before_moto_sees_it(
    system: LocalSystem,
) -> None:
    ingest = _function(system, INGEST)
    table, dynamodb, item = _orders_item(system, "enforce")

    with call_log.running(ingest), pytest.raises(ClientError) as refused:
        dynamodb.put_item(TableName=table, Item=item)

    error = refused.value.response
    assert error["Error"]["Code"] == "AccessDeniedException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    role = re.escape(f"{STACK_NAME}-IntakeIngestRole")
    assert re.fullmatch(
        rf"User: arn:aws:sts::{ACCOUNT}:assumed-role/{role}\w+/{re.escape(ingest)} is not "
        rf"authorized to perform: dynamodb:PutItem on resource: "
        rf"arn:aws:dynamodb:eu-west-1:{ACCOUNT}:table/{re.escape(table)} because no "
        rf"identity-based policy allows the dynamodb:PutItem action",
        error["Error"]["Message"],
    ), error["Error"]["Message"]
    # Not by this test's thread, which runs no function: the table never got the item.
    assert "Item" not in dynamodb.get_item(TableName=table, Key=item)


def test_ingest_without_its_grant_stores_no_order_posted_through_the_api(
    system: LocalSystem,
) -> None:
    token = harness.sign_token(system, "enforce-desk")
    request = urllib.request.Request(
        f"{system.api_url}/orders",
        data=json.dumps([{"record_id": "enf-1", "parameter_1": "p", "parameter_2": 1.5}]).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as reply:
            status, body = reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as error:
        status, body = error.code, json.loads(error.read() or b"null")

    assert status != 201 or body["created"] == [], (status, body)
    table = harness.orders_table(system)
    items = system.endpoint.client("dynamodb").scan(TableName=table)["Items"]
    assert not [i for i in items if "enf-1" in json.dumps(i)], items


def test_an_allowed_call_passes_and_its_verdict_is_decided_once(system: LocalSystem) -> None:
    enforcer = system.enforcer
    assert enforcer is not None
    order_status = _function(system, ORDER_STATUS)
    dynamodb = system.endpoint.client("dynamodb")
    table = harness.orders_table(system)
    key_names = [
        k["AttributeName"] for k in dynamodb.describe_table(TableName=table)["Table"]["KeySchema"]
    ]
    asked = enforcer.simulator.requests

    for attempt in ("first", "second"):
        key = {name: {"S": f"enforce-{attempt}"} for name in key_names}
        with call_log.running(order_status):
            assert "Item" not in dynamodb.get_item(TableName=table, Key=key)

    assert enforcer.simulator.requests == asked + 1


def test_a_verdict_is_not_reused_once_a_policy_changes(system: LocalSystem) -> None:
    """A redeploy with other policies must not meet the verdicts of the old ones."""
    enforcer = system.enforcer
    assert enforcer is not None
    table = f"arn:aws:dynamodb:eu-west-1:{ACCOUNT}:table/enforce-changed"
    granted = Request(
        principal=f"arn:aws:iam::{ACCOUNT}:role/enforce-changed",
        action="dynamodb:GetItem",
        resource=table,
        account=ACCOUNT,
        identity_policies=(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": table}],
            },
        ),
    )
    assert enforcer._decide([granted])[0].allowed
    assert not enforcer._decide([replace(granted, identity_policies=())])[0].allowed


def test_a_call_the_model_does_not_map_is_refused_loudly_naming_it(system: LocalSystem) -> None:
    ingest = _function(system, INGEST)
    sqs = system.endpoint.client("sqs")
    with (
        call_log.running(ingest),
        pytest.raises(UnmappedCall, match=rf"{ingest} called sqs.ListQueues"),
    ):
        sqs.list_queues()
    # Kept for the enforcer's stop, which raises: a handler may have swallowed the exception.
    assert system.enforcer is not None
    (unjudged,) = system.enforcer.take_unjudged()
    assert unjudged.startswith(f"UnmappedCall: {ingest} called sqs.ListQueues")


class _NoSimulator:
    def stop(self) -> None:
        pass


def test_a_call_the_enforcer_could_not_judge_fails_its_stop(system: LocalSystem) -> None:
    assert system.enforcer is not None and system.deployment is not None
    enforcer = enforcement.Enforcer(
        system.enforcer.model,
        system.deployment,
        _NoSimulator(),  # type: ignore[arg-type]
    )
    enforcer.unjudged(UnmappedCall("ingest called sqs.ListQueues"))
    with pytest.raises(RuntimeError, match="could not judge: UnmappedCall: ingest called sqs"):
        enforcer.stop()
    enforcer.stop()  # reported once


def test_the_deadline_hook_runs_before_enforcement() -> None:
    """A stopped handler's call is refused as timed out (and leaves the call log) before the
    enforcer would decide it."""
    hooks = [entry[1] for entry in botocore.handlers.BUILTIN_HANDLERS]
    assert hooks.index(lambda_runner._refuse_after_deadline) < hooks.index(enforcement._before_call)


def test_a_deployed_function_run_without_its_role_is_refused_loudly(system: LocalSystem) -> None:
    """`with_its_role=False` is for callers the template does not define (`entrix verify`):
    under a deployed function's name it would let ingest put the item its role may not."""
    ingest = _function(system, INGEST)
    table, dynamodb, item = _orders_item(system, "roleless")

    arn = system.endpoint.client("lambda").get_function(FunctionName=ingest)["Configuration"][
        "FunctionArn"
    ]
    for name in (ingest, f"{ingest}:live", arn):
        with (
            call_log.running(name, with_its_role=False),
            pytest.raises(UnenforcedCall, match=r"called dynamodb.PutItem marked"),
        ):
            dynamodb.put_item(TableName=table, Item=item)
    assert system.enforcer is not None
    assert len(system.enforcer.take_unjudged()) == 3

    assert "Item" not in dynamodb.get_item(TableName=table, Key=item)
    # A name the template does not define keeps the exemption: recorded, not decided.
    with call_log.running("entrix-verify", with_its_role=False), call_log.recording() as calls:
        dynamodb.put_item(TableName=table, Item=item)
    assert [(c.function, c.operation) for c in calls] == [("entrix-verify", "PutItem")]


def test_a_call_that_went_past_enforcement_fails_the_record_of_checks(
    system: LocalSystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`record_checks` holds every call a function made to a decision of the enforcer."""
    order_status = _function(system, ORDER_STATUS)
    dynamodb = system.endpoint.client("dynamodb")
    table = harness.orders_table(system)
    key_names = [
        k["AttributeName"] for k in dynamodb.describe_table(TableName=table)["Table"]["KeySchema"]
    ]
    key = {name: {"S": "enforce-recorded"} for name in key_names}
    with record_checks() as checks, call_log.running(order_status):
        dynamodb.get_item(TableName=table, Key=key)
    assert [(call.operation, refusal) for call, refusal in checks.decided] == [("GetItem", None)]

    with (
        pytest.raises(
            AssertionError, match=r"decided another number of times: \[\(Call\(.*, 0\)\]"
        ),
        record_checks(),
        call_log.running(order_status),
    ):
        with monkeypatch.context() as off:  # enforcement misses this one call
            off.setattr(enforcement, "_active", None)
            dynamodb.get_item(TableName=table, Key=key)
        dynamodb.get_item(TableName=table, Key=key)


def test_the_secrets_extension_reads_with_the_roles_of_the_function_it_serves(
    system: LocalSystem,
) -> None:
    extension = system.secrets_extension
    assert extension is not None
    deployment = harness.deployment_of(system)
    authorizer = deployment.functions[_function(system, AUTHORIZER_HANDLER)]
    secret = authorizer.environment[settings.JWT_SECRET_ARN.name]
    # Ingest's role may not read the signing key: served to ingest, the extension is refused.
    ingest_token = extension.register(_function(system, INGEST))["AWS_SESSION_TOKEN"]

    def get(token: str) -> tuple[int, str]:
        request = urllib.request.Request(
            f"http://localhost:{extension.port}/secretsmanager/get?secretId={secret}",
            headers={secrets.EXTENSION_TOKEN_HEADER: token},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as reply:
                return reply.status, reply.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    assert get(authorizer.environment["AWS_SESSION_TOKEN"])[0] == 200
    status, body = get(ingest_token)
    assert status == 400, body
    assert body.startswith("AccessDeniedException: "), body
    assert "not authorized to perform: secretsmanager:GetSecretValue" in body, body


def _decision(action: str, result: str, identity: str, resource: str) -> Decision:
    request = Request(
        principal=f"arn:aws:iam::{ACCOUNT}:role/Entrix-Role",
        action=action,
        resource="arn:aws:sns:eu-west-1:123456789012:topic"
        if action.startswith("sns:")
        else "arn:aws:kms:eu-west-1:123456789012:key/k"
        if action.startswith("kms:")
        else "arn:aws:s3:::bucket/history/x",
        account=ACCOUNT,
    )
    return Decision(request, result, None, identity, resource)


@pytest.mark.parametrize(
    ("service", "decision", "code", "status", "ends"),
    [
        (
            "s3",
            _decision("s3:PutObject", "ExplicitlyDenied", "Allowed", "ExplicitlyDenied"),
            "AccessDenied",
            403,
            'on resource: "arn:aws:s3:::bucket/history/x" with an explicit deny in a '
            "resource-based policy",
        ),
        (
            "sns",
            _decision("sns:Publish", "ImplicitlyDenied", "ImplicitlyDenied", "NotApplicable"),
            "AuthorizationError",
            403,
            "because no identity-based policy allows the sns:Publish action",
        ),
        (
            "sns",
            _decision("kms:GenerateDataKey", "ImplicitlyDenied", "Allowed", "ImplicitlyDenied"),
            "KMSAccessDenied",
            400,
            "because no resource-based policy allows the kms:GenerateDataKey action "
            "(Service: AWSKMS; Status Code: 400; Error Code: AccessDeniedException; ",
        ),
    ],
)
def test_each_service_refuses_with_its_own_code_status_and_reason(
    service: str, decision: Decision, code: str, status: int, ends: str
) -> None:
    role = Role("R", f"arn:aws:iam::{ACCOUNT}:role/Entrix-Role", {}, ())
    call = call_log.Call("Entrix-Fn", service, "Publish", {})
    refused = refusal(call, role, decision)
    assert (refused.code, refused.status) == (code, status)
    assert refused.message.startswith(
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/Entrix-Role/Entrix-Fn is not authorized to "
        f"perform: {decision.request.action} on resource: "
    )
    assert ends in refused.message, refused.message


def test_no_test_turns_enforcement_off() -> None:
    """Every local system of the tests enforces: the switch is for a debugging session only."""
    switches = ("enforce_permissions=False", "--no-enforce-permissions")
    found = [
        f"{path.relative_to(TESTS)}: {switch}"
        for path in TESTS.rglob("*.py")
        if path != Path(__file__)
        for switch in switches
        if switch in path.read_text()
    ]
    assert not found, found


def test_a_verdict_is_shared_by_context_values_no_policy_reads() -> None:
    """Every request carries the time and its item's keys; only values a policy reads (in a
    condition, or as a policy variable) may make a request a new one for the verdict cache."""
    from entrix.local.iam.enforcement import _key
    from entrix.local.iam.evaluate import Request

    def request(policy: dict[str, object], **context: str) -> Request:
        return Request(
            "arn:aws:iam::123456789012:role/r", "dynamodb:PutItem",
            "arn:aws:dynamodb:eu-west-1:123456789012:table/t", "123456789012",
            context, ({"Version": "2012-10-17", "Statement": [policy]},),
        )  # fmt: skip

    plain = {"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": "*"}
    timed = {**plain, "Condition": {"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}}
    by_variable = {**plain, "Resource": "arn:aws:dynamodb:*:*:table/${aws:PrincipalTag/team}"}
    by_default = {**plain, "Resource": "arn:aws:dynamodb:*:*:table/${aws:PrincipalTag/team, 'x'}"}
    early = {"aws:CurrentTime": "2026-12-07T06:00:00Z", "aws:PrincipalTag/team": "a"}
    late = {"aws:CurrentTime": "2026-12-07T07:00:00Z", "aws:PrincipalTag/team": "b"}

    assert _key(request(plain, **early)) == _key(request(plain, **late))
    assert _key(request(timed, **early)) != _key(request(timed, **late))
    assert _key(request(by_variable, **early)) != _key(request(by_variable, **late))
    assert _key(request(by_default, **early)) != _key(request(by_default, **late))
    # A key's presence always counts: the simulator refuses one it does not know.
    assert _key(request(plain, **early)) != _key(request(plain, **early, extra="x"))


def test_an_exchange_interrupted_mid_way_leaves_no_answer_for_the_next_request() -> None:
    """An interruption (Ctrl-C) can come between sending a request to the simulator and reading
    its answer; the next request must get its own answer, not that one."""
    from entrix.local.iam.evaluate import Request, Simulator, decide

    table = "arn:aws:dynamodb:eu-west-1:123456789012:table/t"
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": table},
    ]}  # fmt: skip

    def request(action: str) -> Request:
        role = "arn:aws:iam::123456789012:role/r"
        return Request(role, action, table, "123456789012", {}, (policy,))

    simulator = Simulator()
    try:
        assert decide([request("dynamodb:GetItem")], simulator)[0].allowed
        process = simulator._process
        assert process is not None and process.stdout is not None
        original = process.stdout.readline

        def interrupted() -> str:
            process.stdout.readline = original  # type: ignore[method-assign]
            raise KeyboardInterrupt  # as Ctrl-C arrives

        process.stdout.readline = interrupted  # type: ignore[method-assign]
        with pytest.raises(KeyboardInterrupt):
            decide([request("dynamodb:GetItem")], simulator)

        assert not decide([request("dynamodb:PutItem")], simulator)[0].allowed
        assert decide([request("dynamodb:GetItem")], simulator)[0].allowed
    finally:
        simulator.stop()
