"""A handler past its function's Timeout is abandoned and reported as Lambda reports it; the next
invocation runs the module again; Step Functions and API Gateway see what they see in AWS; nothing
the abandoned handler would do after its deadline reaches AWS.

Time passes for real (timeouts of 1 s); waits are bounded generously and nothing asserts speed.
"""

import dataclasses
import importlib
import json
import re
import sys
import threading

import boto3
import pytest
from moto import mock_aws

from entrix.local import call_log, lambda_runner
from entrix.local.apigateway import ApiGateway, RestApi
from entrix.local.lambda_runner import FunctionSpec, invoke, moto_lambdas_in_process
from entrix.local.pipeline import wait_for_execution
from tests.local import fake_handler_state
from tests.local.templates import api_template
from tests.local.test_apigateway import deploy, request
from tests.support import abandoned_handlers

MODULE = "tests.local.fake_slow_handlers"
BUCKET = "late-writes"
# Generous bound on waiting for a stopped handler's thread to end once released.
THREAD_END_SECONDS = 30


@pytest.fixture
def slow():
    """What the fake handlers wait for and record, shared by every copy of their module; the
    module imported (warm), so that REPORT lines carry no Init Duration."""
    importlib.import_module(MODULE)
    fake_handler_state.RELEASE.clear()
    fake_handler_state.REACHED.clear()
    yield fake_handler_state
    fake_handler_state.RELEASE.set()  # let any handler still blocked end


# The timeout of the handlers that must finish: generous, as the machine may be loaded.
AMPLE = 30


def spec(handler: str, name: str = "slow", timeout: int = 1) -> FunctionSpec:
    return FunctionSpec(function_name=name, handler=f"{MODULE}.{handler}", timeout=timeout)


def _late_writes_bucket():
    """An S3 client and the bucket the handlers write to once released (inside `mock_aws`)."""
    s3 = boto3.client("s3", region_name="eu-west-1")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    return s3


def request_id(result) -> str:
    return result.logs.split("START RequestId: ", 1)[1].split(" ", 1)[0]


def worker(result) -> threading.Thread:
    """The thread that ran the invocation's handler."""
    rid = request_id(result)
    return next(t for t in threading.enumerate() if t.name.endswith(rid))


def test_timed_out_invocation_reports_lambdas_payload_and_report_line(slow):
    result = invoke(spec("nap"), {})
    rid = request_id(result)
    assert result.errored
    assert result.json() == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": f"RequestId: {rid} Error: Task timed out after 1.00 seconds",
    }
    lines = result.logs.splitlines()
    assert lines[-3] == f"RequestId: {rid} Error: Task timed out after 1.00 seconds"
    assert lines[-2] == f"END RequestId: {rid}"
    assert lines[-1] == (
        f"REPORT RequestId: {rid}\tDuration: 1000.00 ms\tMemory Size: 128 MB\tStatus: timeout"
    )


def test_a_handler_within_its_timeout_is_not_stopped(slow):
    result = invoke(spec("init", timeout=AMPLE), {})
    assert not result.errored
    assert "Status:" not in result.logs


def test_next_invocation_after_a_timeout_runs_the_module_again(slow):
    first = invoke(spec("init", timeout=AMPLE), {}).json()["init"]
    assert invoke(spec("init", timeout=AMPLE), {}).json()["init"] == first  # warm: it stays
    assert invoke(spec("nap"), {}).errored
    assert invoke(spec("init", timeout=AMPLE), {}).json()["init"] != first


@mock_aws
def test_a_stuck_handler_does_not_hold_the_lock_and_its_late_write_never_happens(slow):
    s3 = _late_writes_bucket()
    stuck = invoke(spec("blocked_then_write"), {"bucket": BUCKET})
    assert stuck.json()["errorType"] == "Sandbox.Timedout"
    # The handler is still blocked (nothing has released it), and the next invocation runs.
    assert not invoke(spec("init", name="other", timeout=AMPLE), {}).errored
    abandoned = worker(stuck)
    slow.RELEASE.set()
    abandoned.join(THREAD_END_SECONDS)
    assert not abandoned.is_alive()  # its write raised HandlerTimedOut, which ended it
    assert slow.REACHED == ["released"]  # it ran on past its deadline and tried to write
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0


@mock_aws
def test_a_call_refused_past_the_deadline_is_not_recorded_as_made(slow):
    """The call log holds the calls functions made (enforcement's record is checked against
    it): one refused before it was sent is withdrawn."""
    s3 = _late_writes_bucket()
    with call_log.recording() as calls:
        stuck = invoke(spec("blocked_then_write"), {"bucket": BUCKET})
        abandoned = worker(stuck)
        slow.RELEASE.set()
        abandoned.join(THREAD_END_SECONDS)
    assert not abandoned.is_alive()
    assert slow.REACHED == ["released"]
    assert calls == []
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0


@mock_aws
def test_an_abandoned_handlers_thread_pool_work_never_reaches_aws(slow):
    s3 = _late_writes_bucket()
    stuck = invoke(spec("blocked_then_write_from_a_pool"), {"bucket": BUCKET})
    assert stuck.json()["errorType"] == "Sandbox.Timedout"
    abandoned = worker(stuck)
    slow.RELEASE.set()
    abandoned.join(THREAD_END_SECONDS)
    assert not abandoned.is_alive()
    assert slow.REACHED == ["released"]
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0


SLOW_INIT = "tests.local.fake_slow_init"


@pytest.fixture
def cold_init():
    """The slow-importing module not imported yet, so that the next invocation's Init runs it."""
    sys.modules.pop(SLOW_INIT, None)
    yield
    sys.modules.pop(SLOW_INIT, None)


def slow_init(import_seconds: float, timeout: int) -> FunctionSpec:
    return FunctionSpec(
        function_name="slow-init",
        handler=f"{SLOW_INIT}.handler",
        environment={"FAKE_INIT_SECONDS": str(import_seconds)},
        timeout=timeout,
    )


def test_the_init_phase_does_not_count_against_the_timeout(cold_init):
    """An import of 3 s, within Lambda's 10 s Init, then a handler with a 2 s Timeout: the
    handler runs (its clock starts after the Init), and REPORT shows the Init Duration."""
    result = invoke(slow_init(3, timeout=2), {})
    assert not result.errored, result.payload
    assert result.json()["remaining_ms"] > 0
    report = result.logs.splitlines()[-1]
    init = re.search(r"\tInit Duration: ([0-9.]+) ms$", report)
    assert init is not None, report
    assert float(init.group(1)) >= 3000
    warm = invoke(slow_init(3, timeout=AMPLE), {})
    assert not warm.errored, warm.payload
    assert "Init Duration" not in warm.logs


def test_an_init_past_its_limit_goes_on_under_the_functions_timeout(cold_init, monkeypatch):
    """Lambda initializes again inside the invocation when the Init outlasts its limit (10 s;
    0.2 s here), so the Init then counts against the Timeout: 3 s of import, 1 s Timeout."""
    monkeypatch.setattr(lambda_runner, "INIT_SECONDS", 0.2)
    result = invoke(slow_init(3, timeout=1), {})
    assert result.json()["errorType"] == "Sandbox.Timedout", result.payload
    assert "Init Duration" not in result.logs


def test_a_handler_left_running_fails_its_test_and_only_its_test(slow):
    """The suite's teardown check (tests/support/abandoned_handlers.py): a handler abandoned and
    still running fails the check, which then forgets it; one that ends within the grace
    passes it."""
    before = abandoned_handlers.running()
    assert invoke(spec("nap"), {}).errored
    with pytest.raises(pytest.fail.Exception, match="still run after the test"):
        abandoned_handlers.fail_if_left(before, grace=0.5)
    abandoned_handlers.fail_if_left(before, grace=0.5)  # reported once, then forgotten
    assert invoke(spec("nap"), {}).errored
    threading.Timer(0.3, slow.RELEASE.set).start()
    abandoned_handlers.fail_if_left(before, grace=THREAD_END_SECONDS)


ROLE = "arn:aws:iam::123456789012:role/sfn"


def _create_function(handler: str) -> str:
    iam = boto3.client("iam")
    role = iam.create_role(
        RoleName="slow-role",
        AssumeRolePolicyDocument=json.dumps(
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
        ),
    )
    return boto3.client("lambda").create_function(
        FunctionName="slow",
        Runtime="python3.13",
        Role=role["Role"]["Arn"],
        Handler=f"{MODULE}.{handler}",
        Code={"ZipFile": b"not used: the handler runs from the installed package"},
        Timeout=1,
    )["FunctionArn"]


def test_state_machine_task_fails_with_step_functions_error_name_and_retry_and_catch_match(slow):
    """As the Lambda task of the results workflow is defined (`lambda:invoke`): the timed-out
    task's error is `Sandbox.Timedout`, which its Retry retries and its Catch catches; a Catch
    on `Lambda.Unknown` (the name for a runtime that reports no errorType) does not fire."""
    with (
        mock_aws(config={"stepfunctions": {"execute_state_machine": True}}),
        moto_lambdas_in_process(),
    ):
        arn = _create_function("nap")
        definition = {
            "StartAt": "Process",
            "States": {
                "Process": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::lambda:invoke",
                    "Parameters": {"FunctionName": arn, "Payload.$": "$"},
                    "Retry": [
                        {
                            "ErrorEquals": ["Sandbox.Timedout"],
                            "IntervalSeconds": 1,
                            "MaxAttempts": 1,
                            "BackoffRate": 1,
                        }
                    ],
                    "Catch": [
                        {"ErrorEquals": ["Lambda.Unknown"], "Next": "WrongName"},
                        {
                            "ErrorEquals": ["Sandbox.Timedout"],
                            "Next": "TimedOut",
                            "ResultPath": "$.error",
                        },
                    ],
                    "End": True,
                },
                "WrongName": {"Type": "Fail", "Error": "WrongName"},
                "TimedOut": {"Type": "Pass", "End": True},
            },
        }
        sfn = boto3.client("stepfunctions")
        machine = sfn.create_state_machine(
            name="m", definition=json.dumps(definition), roleArn=ROLE
        )["stateMachineArn"]
        started = sfn.start_execution(stateMachineArn=machine, name="run-1", input="{}")
        described = wait_for_execution(sfn, started["executionArn"], timeout_seconds=60)
        history = sfn.get_execution_history(executionArn=started["executionArn"])["events"]
    assert described["status"] == "SUCCEEDED", described
    error = json.loads(described["output"])["error"]
    assert error["Error"] == "Sandbox.Timedout"
    assert json.loads(error["Cause"])["errorMessage"].endswith("Task timed out after 1.00 seconds")
    attempts = [e for e in history if e["type"] == "TaskScheduled"]
    assert len(attempts) == 2  # the first try and one retry


def _gateway_with(**handlers: str) -> ApiGateway:
    """The test API, with the named template functions' handlers replaced by slow ones
    (timeout 1 s)."""
    deployment = deploy(api_template())
    functions = dict(deployment.functions)
    for name, function in functions.items():
        for original, replacement in handlers.items():
            if function.handler.endswith(f".{original}"):
                functions[name] = dataclasses.replace(
                    function, handler=f"{MODULE}.{replacement}", timeout=1
                )
    api = RestApi.from_parts(deployment.api, deployment.api_ids)
    return ApiGateway(api, lambda name, event: invoke(functions[name], event))


def test_a_timed_out_integration_is_api_gateways_502(slow):
    gateway = _gateway_with(proxy_echo="nap")
    response = gateway.handle(request("POST", "/orders"))
    assert response.status == 502
    assert response.json()["message"] == "Internal server error"


def test_a_timed_out_authorizer_is_api_gateways_500(slow):
    gateway = _gateway_with(authorize="nap")
    response = gateway.handle(request("POST", "/orders"))
    assert response.status == 500
    assert response.header("x-amzn-ErrorType") == "AuthorizerConfigurationException"


def test_waiting_for_another_invocation_does_not_count_against_the_timeout(slow):
    """Invocations here take turns (Lambda runs them side by side): four handlers of 0.6 s
    with a 2 s timeout, started together, each finish although the last waits 1.8 s or more."""
    results = []

    def call() -> None:
        results.append(invoke(spec("short_nap", timeout=2), {"seconds": 0.6}))

    callers = [threading.Thread(target=call) for _ in range(4)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(THREAD_END_SECONDS)
    assert len(results) == 4
    assert [r.json() for r in results] == [{"slept": 0.6}] * 4
    assert all("Status: timeout" not in r.logs for r in results)
