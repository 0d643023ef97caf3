"""`entrix verify --stack NAME [--mode full|quiet]`: after a deploy, prove in AWS what no offline
test can.

The permission model in `make test` proves, from the synthesized templates, that every edge's
identity, resource and key policies allow it; only the deployed account shows that AWS agrees.
Each check drives one such edge for real and reads AWS's own verdict. Two modes, chosen per stage
by the pipeline:

`quiet` (Prod; the default) changes nothing a trader or the on-call engineer sees:

- `anonymous-refused`: POST /orders without a token answers 401 (API and authorizer are up).
- `random-key-refused`: GET /orders/<id> with a token of the right shape (a kid of a secret
  version's form, the authorizer's iss and aud, exp, iat, sub, jti) signed with a random key
  answers 401. The authorizer looks the kid up in its signing secret before anything else, so
  the 401 shows it read its key; one that cannot read it raises, and API Gateway answers 500.
  No secret is read for it: Prod's verification can sign no token a trader's request would
  pass with. The GET handler is never reached: Dev's `order-stored` proves its table reads.
- `alarms-configured`: every alarm of the stack has its ALARM and OK actions on the encrypted
  operations topic; the probe alarm has its actions on the probe topic only.
- `alerts-configured`: the state machine is active and its SnsPublish states publish to the
  stack's encrypted alert topic.
- `alarm-notifies`: the probe alarm set to ALARM (then back to OK) publishes to the probe topic,
  which has the operations topic's key and topic policy and no subscriber: the alarm's history
  says "Successfully executed action" (or why not: topic or key policy).

`full` (Dev) adds what signs a token with the stack's key, stores an order, starts runs and
publishes alerts:

- `order-read`: GET of an order no one stored, with a token of the verify's own subject signed
  by the stack's key, answers 404: the authorizer let it through, the function read the table.
- `order-stored`: one order POSTed with a token signed by the stack's key is stored (201, then
  GET 200).
- `not-ready-alert`, `failed-batch-alert`: the state machine's SnsPublish states, run alone with
  the state machine's own role through Step Functions' TestState API, publish to the encrypted
  alert topic (the role's sns:Publish and its use of the topic's key).
- `order-through-pipeline`: a run started now gives the order a result (accepted or rejected).

The messages and names these checks make start with `verify-`.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from entrix import settings
from entrix.command_errors import describe
from entrix.rollback_command import ROLLBACK_ALARM_PREFIX
from entrix.token_command import (
    TokenCommandError,
    authorizer_setting,
    authorizer_variables,
    sign_for_function,
)
from entrix.tokens import issue_token

# Stack outputs the checks read (infra/stacks/service.py writes them).
OUTPUTS = (
    "ApiUrl",
    "AuthorizerFunctionName",
    "ResultsStateMachineArn",
    "AlertTopicArn",
    "ProbeAlarmName",
)
# The operations topic's output, named by its construct: CDK appends a hash to it.
OPS_TOPIC_OUTPUT = "ObservabilityOpsTopicArn"
ALARM_REASON = "entrix verify: proving that an alarm reaches its topic"
# The token's subject: its own fair-share counter and orders, no client's. A token lives as long
# as the slowest check may take, no longer.
SUBJECT = "entrix-verify"
TOKEN_SECONDS = 1800
ALERT_STATES = ("AlertNotReady", "AlertFailedBatch")
QUIET_CHECKS = (
    "anonymous-refused",
    "random-key-refused",
    "alarms-configured",
    "alerts-configured",
    "alarm-notifies",
)
MODES = {
    "quiet": QUIET_CHECKS,
    "full": (
        *QUIET_CHECKS,
        "order-read",
        "order-stored",
        "not-ready-alert",
        "failed-batch-alert",
        "order-through-pipeline",
    ),
}


class CheckFailed(Exception):
    """One check's failure, with what AWS answered."""


@dataclass(frozen=True)
class Target:
    """What the checks talk to: the deployed API, a token signed with the stack's key (`full`
    mode only; None in `quiet`, which reads no secret), the stack's resources and AWS clients."""

    api_url: str
    token: str | None
    state_machine_arn: str
    probe_alarm: str
    clients: Callable[[str], Any]
    # The stack's name (its alarms' names start with it) and its topics.
    stack_name: str = ""
    alert_topic_arn: str = ""
    ops_topic_arn: str = ""
    # The authorizer function, whose issuer and audience the random-key token carries.
    authorizer_function: str = ""
    # Seconds to wait for an alarm action, a pipeline run, an order's result.
    patience: float = 900.0
    poll_seconds: float = 5.0


def verify(args: argparse.Namespace) -> int:
    """Run the mode's checks (or those of them named by --check), print one line each; 1 if any
    failed."""
    unknown = sorted(set(args.check or ()) - set(MODES[args.mode]))
    if unknown:
        print(
            f"entrix verify: no check {', '.join(unknown)} in mode {args.mode} "
            f"(its checks: {', '.join(MODES[args.mode])})",
            file=sys.stderr,
        )
        return 2
    try:
        target = target_of_stack(args.stack, args.region, args.role_arn, args.mode)
    except (TokenCommandError, CheckFailed, ClientError, BotoCoreError) as error:
        # A stack that is not there, no region, no credentials: said in one line, not a trace.
        print(f"entrix verify: {describe(error)}", file=sys.stderr)
        return 1
    failed = 0
    for name, outcome in run_checks(target, args.mode, args.check or None):
        print(f"ok   {name}" if outcome is None else f"FAIL {name}: {outcome}")
        failed += outcome is not None
    return 1 if failed else 0


def target_of_stack(
    stack_name: str, region: str | None, role_arn: str | None = None, mode: str = "quiet"
) -> Target:
    """The target described by a deployed stack's outputs, reached with your credentials or, with
    `role_arn`, as that role (the pipeline's way into a stage in another account). Only `full`
    mode reads the signing key, to sign the verify subject's token."""
    session = session_for(region, role_arn)

    def clients(service: str) -> Any:
        return session.client(service)  # type: ignore[call-overload]

    stacks = clients("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    ops_topic = [value for key, value in outputs.items() if key.startswith(OPS_TOPIC_OUTPUT)]
    missing = [key for key in OUTPUTS if key not in outputs] + [OPS_TOPIC_OUTPUT] * (
        len(ops_topic) != 1
    )
    if missing:
        raise CheckFailed(f"stack {stack_name} lacks the output(s) {', '.join(missing)}")
    token = None
    if mode == "full":
        token = sign_for_function(
            lambda service, where: clients(service),
            region,
            outputs["AuthorizerFunctionName"],
            SUBJECT,
            TOKEN_SECONDS,
        )
    return Target(
        api_url=outputs["ApiUrl"],
        token=token,
        state_machine_arn=outputs["ResultsStateMachineArn"],
        probe_alarm=outputs["ProbeAlarmName"],
        clients=clients,
        stack_name=stack_name,
        alert_topic_arn=outputs["AlertTopicArn"],
        ops_topic_arn=ops_topic[0],
        authorizer_function=outputs["AuthorizerFunctionName"],
    )


def session_for(region: str | None, role_arn: str | None) -> boto3.Session:
    """Your credentials' session, or, with `role_arn`, one as that role."""
    session = boto3.Session(region_name=region)
    if role_arn is None:
        return session
    credentials = session.client("sts").assume_role(RoleArn=role_arn, RoleSessionName=SUBJECT)[
        "Credentials"
    ]
    return boto3.Session(
        region_name=region,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )


def run_checks(
    target: Target, mode: str, only: list[str] | None = None
) -> Iterator[tuple[str, str | None]]:
    """(check name, None or why it failed) for each check of `mode`, in order."""
    record_id = f"verify-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    checks: dict[str, Callable[[], None]] = {
        "anonymous-refused": lambda: check_anonymous_refused(target),
        "random-key-refused": lambda: check_random_key_refused(target, record_id),
        "order-read": lambda: check_order_read(target, record_id),
        "alarms-configured": lambda: check_alarms_configured(target),
        "alerts-configured": lambda: check_alerts_configured(target),
        "alarm-notifies": lambda: check_alarm_notifies(target),
        "order-stored": lambda: check_order_stored(target, record_id),
        "not-ready-alert": lambda: check_alert_state(target, "AlertNotReady", record_id),
        "failed-batch-alert": lambda: check_alert_state(target, "AlertFailedBatch", record_id),
        "order-through-pipeline": lambda: check_order_through_pipeline(target, record_id),
    }
    for name in MODES[mode]:
        if only and name not in only:
            continue
        try:
            checks[name]()
        except CheckFailed as error:
            yield name, str(error)
        else:
            yield name, None


def _request(
    target: Target, method: str, path: str, body: Any = None, token: str | None = None
) -> tuple[int, Any]:
    url = target.api_url.rstrip("/").removesuffix("/orders") + path
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def check_anonymous_refused(target: Target) -> None:
    status, _ = _request(target, "POST", "/orders", [])
    if status != 401:
        raise CheckFailed(f"POST /orders without a token answered {status}, not 401")


def _signed_token(target: Target) -> str:
    if target.token is None:
        raise CheckFailed("no token signed with the stack's key (only mode full signs one)")
    return target.token


def random_key_token(target: Target) -> str:
    """A token the authorizer refuses only for its key: its issuer and audience, a kid of a
    Secrets Manager version id's form (a UUID) that names no version, a random HS256 key."""
    variables = authorizer_variables(
        lambda service, where: target.clients(service), None, target.authorizer_function
    )
    try:
        return issue_token(
            secrets.token_bytes(32),
            kid=str(uuid.uuid4()),
            subject=SUBJECT,
            # Within the authorizer's maximum lifetime, so that only the key is wrong.
            expires_in=min(300, authorizer_setting(settings.MAX_TOKEN_LIFETIME_SECONDS, variables)),
            issuer=authorizer_setting(settings.JWT_ISSUER, variables),
            audience=authorizer_setting(settings.JWT_AUDIENCE, variables),
        )
    except TokenCommandError as error:
        raise CheckFailed(str(error)) from None


def check_random_key_refused(target: Target, record_id: str) -> None:
    """A well-formed token signed with a random key is refused with 401: the authorizer ran and
    read its signing key to look the kid up (an unreadable key makes it raise: 500)."""
    path = f"/orders/{record_id}-unknown"
    status, reply = _request(target, "GET", path, token=random_key_token(target))
    if status == 500:
        raise CheckFailed(
            f"GET {path} with a random-key token answered 500, not 401: the authorizer "
            "failed, which it does when it cannot read its signing key (GetSecretValue or the "
            f"key's kms:Decrypt refused, the secret gone); its log says why: {reply}"
        )
    if status != 401:
        raise CheckFailed(
            f"GET {path} with a token signed by a random key answered {status}, not 401: {reply}"
        )


def check_order_read(target: Target, record_id: str) -> None:
    """GET an order nobody stored: 404 needs the authorizer's Allow (the token's key is the
    stack's) and the function's read of the orders table; nothing is written but the subject's
    counter."""
    status, reply = _request(
        target, "GET", f"/orders/{record_id}-unknown", token=_signed_token(target)
    )
    if status != 404:
        raise CheckFailed(f"GET /orders/{record_id}-unknown answered {status}, not 404: {reply}")


def _encrypted(target: Target, topic_arn: str) -> None:
    attributes = target.clients("sns").get_topic_attributes(TopicArn=topic_arn)["Attributes"]
    if not attributes.get("KmsMasterKeyId"):
        raise CheckFailed(f"topic {topic_arn} is not encrypted")


def check_alarms_configured(target: Target) -> None:
    """Every alarm of the stack notifies the operations topic on ALARM and on OK, but the
    rollback alarms, which CodeDeploy reads and which notify no one; the probe alarm notifies
    only topics that are not the operations topic (so setting it pages nobody)."""
    pages = (
        target.clients("cloudwatch")
        .get_paginator("describe_alarms")
        .paginate(AlarmNamePrefix=f"{target.stack_name}-")
    )
    alarms = [alarm for page in pages for alarm in page["MetricAlarms"]]
    probe = [alarm for alarm in alarms if alarm["AlarmName"] == target.probe_alarm]
    if not probe:
        raise CheckFailed(f"no alarm {target.probe_alarm} among the stack's alarms")
    probe_topics = {*probe[0]["AlarmActions"], *probe[0]["OKActions"]}
    if not probe_topics or target.ops_topic_arn in probe_topics:
        raise CheckFailed(
            f"the probe alarm notifies {sorted(probe_topics)}: not a probe topic of its own"
        )
    rollback_alarms = [
        alarm
        for alarm in alarms
        if alarm.get("AlarmDescription", "").startswith(ROLLBACK_ALARM_PREFIX)
    ]
    for alarm in rollback_alarms:
        if alarm["AlarmActions"] or alarm["OKActions"]:
            raise CheckFailed(
                f"rollback alarm {alarm['AlarmName']} notifies "
                f"{[*alarm['AlarmActions'], *alarm['OKActions']]}: it would page on any error"
            )
    service_alarms = [
        alarm for alarm in alarms if alarm is not probe[0] and alarm not in rollback_alarms
    ]
    if not service_alarms:
        raise CheckFailed(f"no alarm named {target.stack_name}-* but the probe")
    for alarm in service_alarms:
        for actions in ("AlarmActions", "OKActions"):
            if not alarm["ActionsEnabled"] or target.ops_topic_arn not in alarm[actions]:
                raise CheckFailed(
                    f"alarm {alarm['AlarmName']}: {actions} {alarm[actions]} lack the "
                    f"operations topic (actions enabled: {alarm['ActionsEnabled']})"
                )
    for topic_arn in sorted({target.ops_topic_arn, *probe_topics}):
        _encrypted(target, topic_arn)


def check_alerts_configured(target: Target) -> None:
    """The state machine is active, and its alert states publish to the stack's encrypted
    alert topic."""
    machine = target.clients("stepfunctions").describe_state_machine(
        stateMachineArn=target.state_machine_arn
    )
    if machine.get("status", "ACTIVE") != "ACTIVE":
        raise CheckFailed(f"the state machine is {machine['status']}")
    states = dict(_states(json.loads(machine["definition"])))
    for name in ALERT_STATES:
        state = states.get(name)
        if state is None:
            raise CheckFailed(f"the state machine has no state {name}")
        topic = {**state.get("Parameters", {}), **state.get("Arguments", {})}.get("TopicArn")
        if topic != target.alert_topic_arn:
            raise CheckFailed(f"{name} publishes to {topic}, not {target.alert_topic_arn}")
    _encrypted(target, target.alert_topic_arn)


def check_order_stored(target: Target, record_id: str) -> None:
    order = {"record_id": record_id, "parameter_1": "entrix verify", "parameter_2": 1}
    status, reply = _request(target, "POST", "/orders", [order], token=_signed_token(target))
    if status != 201:
        raise CheckFailed(f"POST /orders answered {status}: {reply}")
    status, reply = _request(target, "GET", f"/orders/{record_id}", token=_signed_token(target))
    if status != 200:
        raise CheckFailed(f"GET /orders/{record_id} answered {status}: {reply}")


def _wait(target: Target, what: str, probe: Callable[[], Any]) -> Any:
    """Poll `probe` until it returns something truthy, or fail after the target's patience."""
    deadline = time.monotonic() + target.patience
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise CheckFailed(f"gave up waiting for {what} after {target.patience:.0f} s")
        time.sleep(target.poll_seconds)


def check_alarm_notifies(target: Target) -> None:
    """Set the probe alarm to ALARM and read whether its action reached its topic (the probe
    topic: the operations topic's key and topic policy, and no subscriber)."""
    cloudwatch = target.clients("cloudwatch")
    since = datetime.now(UTC)
    cloudwatch.set_alarm_state(
        AlarmName=target.probe_alarm, StateValue="ALARM", StateReason=ALARM_REASON
    )
    try:

        def action_result() -> str | None:
            history = cloudwatch.describe_alarm_history(
                AlarmName=target.probe_alarm, HistoryItemType="Action", StartDate=since
            )["AlarmHistoryItems"]
            return next((item["HistorySummary"] for item in history), None)

        summary = _wait(target, f"an action of alarm {target.probe_alarm}", action_result)
    finally:
        cloudwatch.set_alarm_state(
            AlarmName=target.probe_alarm, StateValue="OK", StateReason=ALARM_REASON
        )
    if not summary.startswith("Successfully executed action"):
        raise CheckFailed(f"alarm {target.probe_alarm}: {summary}")


def _states(definition: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every state of a definition, those of Map item processors included."""
    for name, state in definition.get("States", {}).items():
        yield name, state
        for nested in ("ItemProcessor", "Iterator"):
            if nested in state:
                yield from _states(state[nested])


def check_alert_state(target: Target, state_name: str, record_id: str) -> None:
    """Run one SnsPublish state of the deployed definition, alone, with the machine's role."""
    sfn = target.clients("stepfunctions")
    machine = sfn.describe_state_machine(stateMachineArn=target.state_machine_arn)
    states = dict(_states(json.loads(machine["definition"])))
    if state_name not in states:
        raise CheckFailed(f"the state machine has no state {state_name}")
    state = {**states[state_name], "End": True}
    state.pop("Next", None)
    # TestState fills no context object (`$$`) unless the task is mocked, and this one must run
    # for real: the run's name comes from the input instead. The message's shape is proven
    # offline (the local runs); what this proves is the role's publish to the encrypted topic.
    definition = json.dumps(state).replace('"$$.Execution.Name"', '"$.run_id"')
    run = f"{record_id}-run"
    sample = {
        "poll": {"count": 0},
        "run_id": run,
        "batch": f"results/verify/run={run}/batch-00001.jsonl",
        "reason": "entrix verify (no order was affected)",
        "failed": 0,
    }
    result = sfn.test_state(
        definition=definition, roleArn=machine["roleArn"], input=json.dumps(sample)
    )
    if result["status"] != "SUCCEEDED":
        raise CheckFailed(f"{state_name}: {result.get('error')}: {result.get('cause')}")


def check_order_through_pipeline(target: Target, record_id: str) -> None:
    """Start runs until the order has a result (a run may find the results not ready yet)."""
    sfn = target.clients("stepfunctions")

    def result_status() -> str | None:
        status, reply = _request(target, "GET", f"/orders/{record_id}", token=_signed_token(target))
        if status != 200:
            raise CheckFailed(f"GET /orders/{record_id} answered {status}: {reply}")
        found = reply.get("result_status")
        return None if found == "pending" else str(found)

    execution: str | None = None

    def finished_run_or_result() -> str | None:
        nonlocal execution
        if (status := result_status()) is not None:
            return status
        if execution is not None:
            described = sfn.describe_execution(executionArn=execution)
            if described["status"] == "RUNNING":
                return None
        name = f"{record_id}-{int(time.time())}"
        execution = sfn.start_execution(
            stateMachineArn=target.state_machine_arn, name=name, input="{}"
        )["executionArn"]
        return None

    status = _wait(target, f"a result for order {record_id}", finished_run_or_result)
    if status not in ("accepted", "rejected"):
        raise CheckFailed(f"order {record_id} ended as {status!r}")
