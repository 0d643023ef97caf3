"""The in-process Lambda runner, alone and through moto's private invocation hook."""

import json
import os
import threading

import boto3
import pytest
from moto import mock_aws

from entrix.local import lambda_runner
from entrix.local.lambda_runner import (
    FunctionSpec,
    handler_output_captured,
    invoke,
    moto_lambdas_in_process,
)
from entrix.local.pipeline import wait_for_execution
from tests.local import fake_handler_state

ROLE_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)


def spec(handler: str, **environment: str) -> FunctionSpec:
    return FunctionSpec(
        function_name="fn", handler=f"tests.local.fake_handlers.{handler}", environment=environment
    )


def test_handler_sees_its_environment_and_context_and_env_is_restored():
    os.environ.pop("GREETING", None)
    result = invoke(spec("echo", GREETING="hello"), {"a": 1})
    assert not result.errored
    body = result.json()
    assert body["event"] == {"a": 1}
    assert body["greeting"] == "hello"
    assert body["function_name"] == "fn"
    assert body["env_function_name"] == "fn"
    assert body["remaining_ms_positive"] is True
    assert "GREETING" not in os.environ
    assert "AWS_LAMBDA_FUNCTION_NAME" not in os.environ


def test_threads_reading_the_environment_meanwhile_see_only_the_process_variables():
    """moto's state machine threads create boto3 clients, which iterate os.environ, while
    handlers run: they must neither fail (a variable removed mid-iteration raised KeyError
    once) nor see the running function's variables."""
    os.environ.pop("GREETING", None)
    errors: list[Exception] = []
    leaked: list[str] = []
    done = threading.Event()

    def read_environment_until_done() -> None:
        while not done.is_set():
            try:
                variables = dict(os.environ.items())
            except Exception as error:  # any failure is what this test looks for
                errors.append(error)
                continue
            leaked.extend(name for name in ("GREETING", "_HANDLER") if name in variables)

    reader = threading.Thread(target=read_environment_until_done)
    reader.start()
    try:
        greetings = {
            invoke(spec("greet_slowly", GREETING="hello"), {}).json()["greeting"]
            for _ in range(100)
        }
    finally:
        done.set()
        reader.join()
    assert greetings == {"hello"}
    assert errors == []
    assert leaked == []


def test_module_imported_on_first_call_sees_the_function_environment():
    """Modules are imported once per process, on first use, inside the function's environment."""
    spec = FunctionSpec(
        function_name="fn",
        handler="tests.local.fake_import_time_handler.handler",
        environment={"GREETING": "at-import"},
    )
    assert invoke(spec, {}).json() == {"import_time_greeting": "at-import"}


def test_exception_becomes_lambda_error_payload_named_by_class():
    result = invoke(spec("reject"), {"record_id": "r1", "status": "rejected"})
    assert result.errored
    payload = result.json()
    assert payload["errorType"] == "OrderRejected"
    assert payload["errorMessage"] == "order r1 rejected"
    assert payload["stackTrace"]
    assert "OrderRejected" in result.logs


def test_decimal_results_are_encoded_as_numbers():
    result = invoke(spec("reject"), {"record_id": "r1", "status": "accepted"})
    assert result.json() == {"record_id": "r1", "power": 2.5, "count": 3}


def test_unserializable_result_is_a_marshal_error():
    result = invoke(spec("unserializable"), {})
    assert result.errored
    assert result.json()["errorType"] == "Runtime.MarshalError"


def test_unknown_handler_module_is_reported_as_an_error():
    result = invoke(FunctionSpec(function_name="fn", handler="tests.local.nope.handler"), {})
    assert result.errored
    assert result.json()["errorType"] == "ModuleNotFoundError"


def _create_function(handler: str, timeout: int = 3, **environment: str) -> str:
    iam = boto3.client("iam")
    role = iam.create_role(RoleName=f"role-{handler}", AssumeRolePolicyDocument=ROLE_POLICY)
    function = boto3.client("lambda").create_function(
        FunctionName=handler,
        Runtime="python3.13",
        Role=role["Role"]["Arn"],
        Handler=f"tests.local.fake_handlers.{handler}",
        Code={"ZipFile": b"not used: the handler runs from the installed package"},
        Environment={"Variables": environment},
        Timeout=timeout,
    )
    return function["FunctionArn"]


@mock_aws
def test_moto_private_invoke_hook_still_has_the_pinned_signature():
    """moto 5.2.5's `_invoke_lambda(self, event)` is what we replace; fail loudly if it moves."""
    import inspect

    from moto.awslambda.models import LambdaFunction

    assert list(inspect.signature(LambdaFunction._invoke_lambda).parameters) == ["self", "event"]
    with moto_lambdas_in_process():
        assert LambdaFunction._invoke_lambda is lambda_runner._moto_invoke
    assert LambdaFunction._invoke_lambda is not lambda_runner._moto_invoke


@mock_aws
def test_moto_invoke_api_runs_the_handler_with_the_function_environment():
    with moto_lambdas_in_process():
        _create_function("echo", GREETING="from-moto")
        response = boto3.client("lambda").invoke(FunctionName="echo", Payload=b'{"x": 2}')
    body = json.loads(response["Payload"].read())
    assert "FunctionError" not in response
    assert body["event"] == {"x": 2}
    assert body["greeting"] == "from-moto"
    assert body["env_function_name"] == "echo"


@mock_aws
def test_moto_invoke_api_reports_function_error():
    with moto_lambdas_in_process():
        _create_function("reject")
        response = boto3.client("lambda").invoke(
            FunctionName="reject", Payload=b'{"record_id": "r9", "status": "rejected"}'
        )
    assert response["FunctionError"] == "Handled"
    assert json.loads(response["Payload"].read())["errorType"] == "OrderRejected"


@pytest.mark.parametrize(("status", "expected"), [("accepted", "stored"), ("rejected", "alerted")])
def test_state_machine_catch_fires_on_the_error_type(status, expected):
    with (
        mock_aws(config={"stepfunctions": {"execute_state_machine": True}}),
        moto_lambdas_in_process(),
    ):
        arn = _create_function("reject")
        definition = {
            "StartAt": "Process",
            "States": {
                "Process": {
                    "Type": "Task",
                    "Resource": arn,
                    "Catch": [
                        {
                            "ErrorEquals": ["OrderRejected"],
                            "Next": "Alerted",
                            "ResultPath": "$.error",
                        }
                    ],
                    "Next": "Stored",
                },
                "Stored": {"Type": "Pass", "Result": {"outcome": "stored"}, "End": True},
                "Alerted": {"Type": "Pass", "Result": {"outcome": "alerted"}, "End": True},
            },
        }
        sfn = boto3.client("stepfunctions")
        machine = sfn.create_state_machine(
            name="m",
            definition=json.dumps(definition),
            roleArn="arn:aws:iam::123456789012:role/sfn",
        )
        execution = sfn.start_execution(
            stateMachineArn=machine["stateMachineArn"],
            name="run-1",
            input=json.dumps({"record_id": "r1", "status": status}),
        )
        described = wait_for_execution(sfn, execution["executionArn"], timeout_seconds=30)
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == {"outcome": expected}


def test_handler_output_goes_to_its_logs_and_other_output_to_the_console(capsys):
    with handler_output_captured():
        result = invoke(spec("chatty"), {})
        print("the console's own line")
    captured = capsys.readouterr()
    assert "printed by the handler" in result.logs
    assert "[WARNING]\t" in result.logs
    assert "logged by the handler" in result.logs
    assert "written to stderr" in result.logs
    assert result.logs.startswith("START RequestId: ")
    assert "\nEND RequestId: " in result.logs
    assert "\nREPORT RequestId: " in result.logs
    assert "by the handler" not in captured.out + captured.err
    assert "the console's own line" in captured.out


@mock_aws
def test_moto_invocations_write_cloudwatch_logs():
    with handler_output_captured(), moto_lambdas_in_process():
        _create_function("chatty")
        response = boto3.client("lambda").invoke(
            FunctionName="chatty", Payload=b"{}", LogType="Tail"
        )
    import base64

    assert "printed by the handler" in base64.b64decode(response["LogResult"]).decode()
    events = boto3.client("logs").filter_log_events(logGroupName="/aws/lambda/chatty")["events"]
    messages = [event["message"] for event in events]
    assert "printed by the handler" in messages
    assert any(message.startswith("REPORT RequestId: ") for message in messages)


@mock_aws
def test_sns_delivers_to_a_lambda_subscriber_after_the_publishing_handler_goes_on():
    """SNS invokes a subscribed function asynchronously. moto does it inside Publish: a handler
    publishing to a topic with a Lambda subscriber waited for the invocation lock its own
    invocation held, until its timeout."""
    fake_handler_state.RECEIVED.clear()
    with moto_lambdas_in_process():
        _create_function("publish", timeout=10)
        receiver = _create_function("receive")
        sns = boto3.client("sns")
        topic = sns.create_topic(Name="alerts")["TopicArn"]
        sns.subscribe(TopicArn=topic, Protocol="lambda", Endpoint=receiver)
        event = {"topic": topic, "message": "run r-1: 1 order rejected"}
        response = boto3.client("lambda").invoke(
            FunctionName="publish", Payload=json.dumps(event).encode()
        )
        body = json.loads(response["Payload"].read())
        assert "FunctionError" not in response, body
        assert body == {"received_when_published": []}
        assert lambda_runner.wait_for_sns_deliveries(60)
    assert fake_handler_state.RECEIVED == ["run r-1: 1 order rejected"]


@mock_aws
def test_a_stopping_system_starts_no_invocation_and_drops_later_deliveries():
    """Once its deliveries are drained, a stopping system (its enforcement about to stop) runs
    nothing more: an invocation gets a function error, a message for a Lambda subscriber is
    dropped. The next system runs them again."""
    fake_handler_state.RECEIVED.clear()
    with moto_lambdas_in_process():
        _create_function("echo")
        receiver = _create_function("receive")
        sns = boto3.client("sns")
        topic = sns.create_topic(Name="alerts")["TopicArn"]
        sns.subscribe(TopicArn=topic, Protocol="lambda", Endpoint=receiver)
        lambda_runner.SnsDeliveriesDrain().stop()
        response = boto3.client("lambda").invoke(FunctionName="echo", Payload=b"{}")
        assert response["FunctionError"]
        assert json.loads(response["Payload"].read())["errorType"] == "LocalSystemStopping"
        sns.publish(TopicArn=topic, Message="after the stop")
        assert lambda_runner.wait_for_sns_deliveries(60)
        assert fake_handler_state.RECEIVED == []
    with moto_lambdas_in_process():
        response = boto3.client("lambda").invoke(FunctionName="echo", Payload=b"{}")
        assert "FunctionError" not in response
