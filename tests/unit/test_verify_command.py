"""`entrix verify`: each check passes on AWS's success and fails, naming AWS's reason, otherwise.

The alarm and TestState checks read verdicts only a real account gives (an alarm's action history,
a state run alone with the machine's role); here botocore's Stubber answers as AWS documents,
so what is tested is how each answer is read. The quiet mode's configuration checks run on
moto, each with the misconfiguration it exists to catch. Quiet mode reads no secret, and its
random-key token is refused by the real authorizer only after it read its key (and makes it
fail, API Gateway's 500, when it cannot). The API and pipeline checks run against
the local system in tests/local/test_verify_local.py (full) and test_verify_quiet.py (quiet).
"""

from __future__ import annotations

import argparse
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import jwt
import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws

from entrix import verify_command
from entrix.aws import secrets
from entrix.aws.secrets import CURRENT, SecretVersion
from entrix.handlers import authorizer
from entrix.revocations import DenyList
from entrix.rollback_command import ROLLBACK_ALARM_PREFIX
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


def test_a_rollback_alarm_is_exempt_unless_it_would_page(configured) -> None:
    """CodeDeploy reads the rollback alarms; they notify no one, and one that did would page on
    any error of a function, deploy or not."""
    cloudwatch, ops = configured["cloudwatch"], configured["topics"]["Ops"]
    quiet = {
        "AlarmName": "Dev-Entrix-GradualDeployIngestAliasErrors",
        "AlarmDescription": f"{ROLLBACK_ALARM_PREFIX}the new version of ingest fails",
        "Namespace": "N",
        "MetricName": "Errors",
        "Statistic": "Sum",
        "Period": 60,
        "EvaluationPeriods": 3,
        "Threshold": 1,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
    }
    cloudwatch.put_metric_alarm(**quiet)
    check_alarms_configured(configured["target"])

    cloudwatch.put_metric_alarm(**quiet, AlarmActions=[ops])
    with pytest.raises(CheckFailed, match=r"rollback alarm .* would page on any error"):
        check_alarms_configured(configured["target"])


def test_a_stack_that_is_not_there_is_said_in_one_line(capsys) -> None:
    args = argparse.Namespace(
        stack="No-Such-Stack", region="eu-west-1", mode="quiet", check=None, role_arn=None
    )
    with mock_aws():
        assert verify_command.verify(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("entrix verify: ") and "No-Such-Stack" in err
    assert "Traceback" not in err


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


# --- what quiet mode reads, and the random-key token --------------------------------------------

AUTHORIZER = "Prod-Entrix-Authorizer"
SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:Prod-Entrix-JwtSigningKey-AbCdEf"
DENY_LIST_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:Prod-Entrix-Deny-GhIjKl"
AUTHORIZER_VARIABLES = {
    "JWT_SECRET_ARN": SECRET_ARN,
    "JWT_REVOCATIONS_SECRET_ARN": DENY_LIST_ARN,
    "JWT_ISSUER": "https://issuer.example",
    "JWT_AUDIENCE": "entrix-orders",
}


class Deployed:
    """A deployed stack's clients: its outputs and its authorizer's settings; Secrets Manager
    refuses to be asked (Prod's quiet verification has no GetSecretValue)."""

    def __init__(self) -> None:
        self.services: list[str] = []

    def client(self, service: str) -> Any:
        self.services.append(service)
        if service == "secretsmanager":
            raise AssertionError("the verification asked for Secrets Manager")
        return self

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        keys = [*verify_command.OUTPUTS, f"{verify_command.OPS_TOPIC_OUTPUT}A1B2"]
        return {"Stacks": [{"Outputs": [{"OutputKey": k, "OutputValue": k} for k in keys]}]}

    def get_function_configuration(self, FunctionName: str) -> dict[str, Any]:
        assert FunctionName == AUTHORIZER
        return {"Environment": {"Variables": AUTHORIZER_VARIABLES}}


def test_quiet_mode_signs_no_token_and_reads_no_secret(monkeypatch) -> None:
    deployed = Deployed()
    monkeypatch.setattr(verify_command, "session_for", lambda region, role: deployed)
    signed: list[str] = []

    def sign(*args: Any) -> str:
        signed.append(args[2])
        return "signed"

    monkeypatch.setattr(verify_command, "sign_for_function", sign)

    quiet = verify_command.target_of_stack("Prod-Entrix", "eu-west-1", None, "quiet")
    assert quiet.token is None and not signed
    assert "secretsmanager" not in deployed.services
    full = verify_command.target_of_stack("Dev-Entrix", "eu-west-1", None, "full")
    assert full.token == "signed" and signed == ["AuthorizerFunctionName"]


def _quiet_target(clients: Any) -> Target:
    return Target(
        api_url="https://api.invalid/prod/orders",
        token=None,
        state_machine_arn=MACHINE_ARN,
        probe_alarm=ALARM,
        clients=clients,
        authorizer_function=AUTHORIZER,
    )


def test_the_random_key_token_has_the_shape_of_a_real_one_and_needs_no_secret() -> None:
    deployed = Deployed()

    token = verify_command.random_key_token(_quiet_target(deployed.client))

    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert header["alg"] == "HS256"
    assert str(uuid.UUID(header["kid"])) == header["kid"]  # a secret version id's form
    assert claims["iss"] == AUTHORIZER_VARIABLES["JWT_ISSUER"]
    assert claims["aud"] == AUTHORIZER_VARIABLES["JWT_AUDIENCE"]
    assert claims["sub"] == verify_command.SUBJECT and claims["jti"]
    assert 0 < claims["exp"] - claims["iat"] <= 300
    assert deployed.services == ["lambda"]


@pytest.fixture
def authorizer_keys(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, str]]]:
    """The real authorizer, its key and deny list served from memory; each read recorded."""
    read: list[tuple[str, str]] = []
    versions = {
        SECRET_ARN: SecretVersion(str(uuid.uuid4()), "s3cr3t-" * 10, 0.0),
        DENY_LIST_ARN: SecretVersion("deny-1", DenyList().text(), 0.0),
    }

    def fetch(secret_id: str, stage: str) -> SecretVersion | None:
        read.append((secret_id, stage))
        return versions[secret_id] if stage == CURRENT else None

    for name, value in AUTHORIZER_VARIABLES.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(secrets, "fetch_secret_version", fetch)
    authorizer.reset()
    yield read
    authorizer.reset()


def _authorize(token: str) -> dict[str, Any]:
    return authorizer.handler(
        {
            "type": "REQUEST",
            "methodArn": "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3/prod/GET/orders/x",
            "headers": {"Authorization": f"Bearer {token}"},
            "requestContext": {"stage": "prod"},
        },
        None,
    )


def test_the_authorizer_refuses_the_random_key_token_only_after_reading_its_key(
    authorizer_keys: list[tuple[str, str]],
) -> None:
    token = verify_command.random_key_token(_quiet_target(Deployed().client))

    # "Unauthorized" is what API Gateway answers with 401.
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        _authorize(token)
    assert (SECRET_ARN, CURRENT) in authorizer_keys


def test_an_authorizer_that_cannot_read_its_key_fails_which_api_gateway_answers_500(
    authorizer_keys: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(secret_id: str, stage: str) -> SecretVersion:
        raise OSError("the secrets extension answered 400 Bad Request: AccessDeniedException")

    monkeypatch.setattr(secrets, "fetch_secret_version", refused)
    token = verify_command.random_key_token(_quiet_target(Deployed().client))

    with pytest.raises(OSError, match="AccessDenied"):
        _authorize(token)


@pytest.mark.parametrize(
    ("status", "failure"),
    [
        (401, None),
        (500, "answered 500, not 401: the authorizer failed, which it does when it cannot read"),
        (404, "answered 404, not 401"),
        (403, "answered 403, not 401"),
    ],
)
def test_the_random_key_check_passes_on_401_only_and_explains_a_500(
    monkeypatch: pytest.MonkeyPatch, status: int, failure: str | None
) -> None:
    sent: list[str | None] = []

    def answer(target: Target, method: str, path: str, body: Any = None, token: Any = None):
        sent.append(token)
        return status, {"message": None}

    monkeypatch.setattr(verify_command, "_request", answer)
    target = _quiet_target(Deployed().client)

    if failure is None:
        verify_command.check_random_key_refused(target, "verify-1")
    else:
        with pytest.raises(CheckFailed, match=failure):
            verify_command.check_random_key_refused(target, "verify-1")
    (token,) = sent
    assert token is not None and jwt.get_unverified_header(token)["kid"]


def test_the_checks_that_need_a_signed_token_are_not_quiet_ones() -> None:
    assert "order-read" not in verify_command.QUIET_CHECKS
    assert {"order-read", "order-stored"} <= set(verify_command.MODES["full"])
    with pytest.raises(CheckFailed, match="only mode full signs one"):
        verify_command.check_order_read(_quiet_target(Deployed().client), "verify-1")
