"""`entrix verify`: each check passes on AWS's success and fails, naming AWS's reason, otherwise.

The alarm and TestState checks read verdicts only a real account gives (an alarm's action history,
a state run alone with the machine's role); here botocore's Stubber answers as AWS documents,
so what is tested is how each answer is read. The quiet mode's configuration checks run on
moto, each with the misconfiguration it exists to catch. The API and pipeline checks run against
the local system in tests/local/test_verify_local.py (full) and test_verify_quiet.py (quiet).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws

from entrix import verify_command
from entrix.verify_command import (
    CheckFailed,
    Target,
    check_alarm_notifies,
    check_alarms_configured,
    check_alert_state,
    check_alerts_configured,
)

MACHINE_ARN = "arn:aws:states:eu-west-1:123456789012:stateMachine:Results"
ROLE_ARN = "arn:aws:iam::123456789012:role/Dev-Entrix-StateMachineRole"
ALARM = "Dev-Entrix-ScheduleDeadLetters-ABC"


@pytest.fixture
def stubbed() -> Iterator[dict[str, Stubber]]:
    clients = {
        name: boto3.client(name, region_name="eu-west-1")
        for name in ("cloudwatch", "stepfunctions")
    }
    stubs = {name: Stubber(client) for name, client in clients.items()}
    for stub in stubs.values():
        stub.activate()
    stubs["clients"] = clients  # type: ignore[assignment]
    yield stubs
    for name, stub in stubs.items():
        if name != "clients":
            stub.assert_no_pending_responses()


def _target(stubbed: dict[str, Any]) -> Target:
    return Target(
        api_url="https://api.invalid/prod/orders",
        token="t",
        state_machine_arn=MACHINE_ARN,
        probe_alarm=ALARM,
        clients=stubbed["clients"].__getitem__,
        patience=5,
        poll_seconds=0.01,
    )


def _set_state(stub: Stubber, state: str) -> None:
    stub.add_response(
        "set_alarm_state",
        {},
        {"AlarmName": ALARM, "StateValue": state, "StateReason": ANY},
    )


def _history(stub: Stubber, *summaries: str) -> None:
    items = [
        {
            "AlarmName": ALARM,
            "HistoryItemType": "Action",
            "HistorySummary": summary,
            "Timestamp": datetime.now(UTC),
        }
        for summary in summaries
    ]
    stub.add_response(
        "describe_alarm_history",
        {"AlarmHistoryItems": items},
        {"AlarmName": ALARM, "HistoryItemType": "Action", "StartDate": ANY},
    )


def test_an_alarm_whose_action_reached_the_topic_passes_and_is_set_back_to_ok(stubbed) -> None:
    _set_state(stubbed["cloudwatch"], "ALARM")
    _history(stubbed["cloudwatch"])  # nothing yet: it waits
    _history(stubbed["cloudwatch"], "Successfully executed action arn:aws:sns:eu-west-1:1:Ops")
    _set_state(stubbed["cloudwatch"], "OK")

    check_alarm_notifies(_target(stubbed))


def test_an_alarm_the_topic_policy_refuses_fails_with_cloudwatchs_words(stubbed) -> None:
    refused = (
        'Failed to execute action arn:aws:sns:eu-west-1:1:Ops. Received error: "Resource: '
        'arn:aws:cloudwatch:eu-west-1:1:alarm:x is not authorized to perform: SNS:Publish"'
    )
    _set_state(stubbed["cloudwatch"], "ALARM")
    _history(stubbed["cloudwatch"], refused)
    _set_state(stubbed["cloudwatch"], "OK")

    with pytest.raises(CheckFailed, match="not authorized to perform: SNS:Publish"):
        check_alarm_notifies(_target(stubbed))


DEFINITION = {
    "StartAt": "Poll",
    "States": {
        "Poll": {"Type": "Pass", "Next": "AlertNotReady"},
        "AlertNotReady": {
            "Type": "Task",
            "Resource": "arn:aws:states:::sns:publish",
            "Parameters": {"TopicArn": "arn:t", "Message": {"run.$": "$$.Execution.Name"}},
            "Next": "ResultsNeverReady",
        },
        "ResultsNeverReady": {"Type": "Fail"},
        "ProcessBatches": {
            "Type": "Map",
            "ItemProcessor": {
                "StartAt": "AlertFailedBatch",
                "States": {
                    "AlertFailedBatch": {
                        "Type": "Task",
                        "Resource": "arn:aws:states:::sns:publish",
                        "Parameters": {"TopicArn": "arn:t", "Message": {"run.$": "$.run_id"}},
                        "Next": "BatchFailed",
                    },
                    "BatchFailed": {"Type": "Pass", "End": True},
                },
            },
            "End": True,
        },
    },
}


def _described(stub: Stubber) -> None:
    stub.add_response(
        "describe_state_machine",
        {
            "stateMachineArn": MACHINE_ARN,
            "name": "Results",
            "definition": json.dumps(DEFINITION),
            "roleArn": ROLE_ARN,
            "type": "STANDARD",
            "creationDate": datetime.now(UTC),
        },
        {"stateMachineArn": MACHINE_ARN},
    )


def _tested(stub: Stubber, expected_state: dict[str, Any], reply: dict[str, Any]) -> None:
    def same_state(definition: str) -> bool:
        return json.loads(definition) == expected_state

    class Matches:
        def __eq__(self, other: object) -> bool:
            return isinstance(other, str) and same_state(other)

    stub.add_response(
        "test_state",
        reply,
        {"definition": Matches(), "roleArn": ROLE_ARN, "input": ANY},
    )


def test_the_not_ready_alert_runs_alone_with_the_machines_role(stubbed) -> None:
    sfn = stubbed["stepfunctions"]
    _described(sfn)
    expected = {
        "Type": "Task",
        "Resource": "arn:aws:states:::sns:publish",
        # No context object in TestState: the run's name comes from the input.
        "Parameters": {"TopicArn": "arn:t", "Message": {"run.$": "$.run_id"}},
        "End": True,
    }
    _tested(sfn, expected, {"status": "SUCCEEDED", "output": "{}"})

    check_alert_state(_target(stubbed), "AlertNotReady", "verify-1")


def test_a_failed_batch_alert_refused_by_kms_fails_with_the_error(stubbed) -> None:
    sfn = stubbed["stepfunctions"]
    _described(sfn)
    state = DEFINITION["States"]["ProcessBatches"]["ItemProcessor"]["States"]["AlertFailedBatch"]
    expected = {k: v for k, v in state.items() if k != "Next"} | {"End": True}
    _tested(
        sfn,
        expected,
        {"status": "FAILED", "error": "SNS.KMSAccessDeniedException", "cause": "kms denied"},
    )

    with pytest.raises(CheckFailed, match=r"SNS\.KMSAccessDeniedException: kms denied"):
        check_alert_state(_target(stubbed), "AlertFailedBatch", "verify-1")


# --- the quiet mode's configuration checks, on moto ---------------------------------------------


@pytest.fixture
def configured() -> Iterator[dict[str, Any]]:
    """A stack's topics and alarms as the template makes them: each alarm on the operations
    topic, the probe alarm on the probe topic, every topic encrypted."""
    with mock_aws():
        sns = boto3.client("sns", region_name="eu-west-1")
        cloudwatch = boto3.client("cloudwatch", region_name="eu-west-1")
        topics = {
            name: sns.create_topic(
                Name=f"Dev-Entrix-{name}", Attributes={"KmsMasterKeyId": f"key-{name}"}
            )["TopicArn"]
            for name in ("Ops", "Probe", "Alert")
        }
        for name, topic in (("ScheduleDeadLetters", "Ops"), ("VerificationProbe", "Probe")):
            _alarm(cloudwatch, f"Dev-Entrix-{name}", topics[topic], topics[topic])
        clients = {"sns": sns, "cloudwatch": cloudwatch}
        yield {
            "topics": topics,
            "cloudwatch": cloudwatch,
            "target": Target(
                api_url="https://api.invalid/prod/orders",
                token="t",
                state_machine_arn=MACHINE_ARN,
                probe_alarm="Dev-Entrix-VerificationProbe",
                clients=clients.__getitem__,
                stack_name="Dev-Entrix",
                alert_topic_arn=topics["Alert"],
                ops_topic_arn=topics["Ops"],
            ),
        }


def _alarm(cloudwatch: Any, name: str, on_alarm: str, on_ok: str) -> None:
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        AlarmActions=[on_alarm],
        OKActions=[on_ok],
        Namespace="N",
        MetricName=name,
        Statistic="Sum",
        Period=300,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )


def test_alarms_on_the_operations_topic_and_the_probe_on_its_own_pass(configured) -> None:
    check_alarms_configured(configured["target"])


def test_a_probe_alarm_on_the_operations_topic_fails_it_would_page_on_call(configured) -> None:
    ops = configured["topics"]["Ops"]
    _alarm(configured["cloudwatch"], "Dev-Entrix-VerificationProbe", ops, ops)

    with pytest.raises(CheckFailed, match="not a probe topic of its own"):
        check_alarms_configured(configured["target"])


def test_a_probe_alarm_back_to_ok_on_the_operations_topic_fails_too(configured) -> None:
    topics = configured["topics"]
    _alarm(configured["cloudwatch"], "Dev-Entrix-VerificationProbe", topics["Probe"], topics["Ops"])

    with pytest.raises(CheckFailed, match="not a probe topic of its own"):
        check_alarms_configured(configured["target"])


def test_an_alarm_whose_ok_action_misses_the_operations_topic_fails(configured) -> None:
    topics = configured["topics"]
    _alarm(configured["cloudwatch"], "Dev-Entrix-ApiCost", topics["Ops"], topics["Probe"])

    with pytest.raises(CheckFailed, match="Dev-Entrix-ApiCost: OKActions"):
        check_alarms_configured(configured["target"])


def test_an_alert_state_publishing_elsewhere_fails_the_alerts_check(configured) -> None:
    sfn = boto3.client("stepfunctions", region_name="eu-west-1")
    definition = json.dumps(DEFINITION).replace(
        '"arn:t"', json.dumps(configured["topics"]["Alert"])
    )
    machine = sfn.create_state_machine(name="Results", definition=definition, roleArn=ROLE_ARN)
    target = configured["target"]
    clients = {"stepfunctions": sfn, "sns": target.clients("sns")}
    target = Target(
        **{**target.__dict__, "state_machine_arn": machine["stateMachineArn"]}
        | {"clients": clients.__getitem__}
    )
    check_alerts_configured(target)

    sfn.update_state_machine(
        stateMachineArn=machine["stateMachineArn"],
        definition=definition.replace("Dev-Entrix-Alert", "Dev-Entrix-Ops", 1),
    )
    with pytest.raises(CheckFailed, match=r"AlertNotReady publishes to .*Dev-Entrix-Ops"):
        check_alerts_configured(target)


def test_a_check_outside_the_mode_is_refused_before_any_aws_call(monkeypatch, capsys) -> None:
    def no_aws(*_: Any) -> None:
        raise AssertionError("no AWS call expected")

    monkeypatch.setattr(verify_command, "target_of_stack", no_aws)
    args = argparse.Namespace(
        stack="Prod-Entrix", region=None, mode="quiet", check=["order-stored"]
    )

    assert verify_command.verify(args) == 2
    assert "no check order-stored in mode quiet" in capsys.readouterr().err


def test_with_a_role_arn_every_call_is_made_as_that_role() -> None:
    role = "arn:aws:iam::123456789012:role/EntrixVerify-Prod-Entrix"
    with mock_aws():
        iam = boto3.client("iam", region_name="eu-west-1")
        iam.create_role(RoleName="EntrixVerify-Prod-Entrix", AssumeRolePolicyDocument="{}")

        caller = verify_command.session_for("eu-west-1", role).client("sts").get_caller_identity()
        own = verify_command.session_for("eu-west-1", None).client("sts").get_caller_identity()

    assert caller["Arn"].startswith(
        "arn:aws:sts::123456789012:assumed-role/EntrixVerify-Prod-Entrix/entrix-verify"
    )
    assert "assumed-role" not in own["Arn"]
