"""Faults in a results run: the synthesized state machine executed by moto with the real handlers.

The harness is the pipeline engineer's (tests/pipeline/conftest.py; retries: 2 after the first
attempt, 1 s apart, doubling). Covered there and not repeated here: one transient S3 fault
retried to success (test_a_transient_store_fault_is_retried), a missing bucket counted failed
(test_an_s3_failure_is_counted_failed_never_accepted) and two runs one after the other
(test_two_runs_in_a_row_process_each_order_exactly_once).
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import boto3

from entrix.aws.order_results import OrderResults
from entrix.aws.results_store import ResultsStore
from entrix.local import lambda_runner
from infra.constructs.results_pipeline import PENDING_INDEX_NAME
from tests.faults.inject import Fault
from tests.pipeline.conftest import ACCEPT, READY, REJECT, Pipeline

RETRY_ATTEMPTS = 2  # as configured by the pipeline fixture
PROCESS = "entrix.handlers.process.handler"
RESULTS = "entrix.handlers.results.handler"


def _invocations(pipeline: Pipeline, execution_arn: str, function: str) -> list[dict[str, Any]]:
    """The input of every invocation of the function the execution scheduled, retries included
    (`function`: part of its name, "ResultsFunction" for Lambda A, "ProcessFunction" for B)."""
    events = pipeline.client("stepfunctions").get_execution_history(
        executionArn=execution_arn, maxResults=1000
    )["events"]
    return [
        json.loads(details["input"])
        for event in events
        if (details := event.get("lambdaFunctionScheduledEventDetails"))
        and function in details["resource"]
    ]


def _counts(accepted: int = 0, rejected: int = 0, failed: int = 0, skipped: int = 0) -> dict:
    return {"accepted": accepted, "rejected": rejected, "failed": failed, "skipped": skipped}


def test_s3_failing_on_every_attempt_is_retried_then_failed_never_accepted(
    pipeline: Pipeline,
) -> None:
    pipeline.add_orders("a", "b")
    pipeline.script(READY, ACCEPT, REJECT)
    s3 = boto3.client("s3", region_name="eu-west-1")
    outage = Fault(s3, "PutObject", "InternalError", status=500)
    process = pipeline.handler_module(PROCESS)
    pipeline.monkeypatch.setattr(process, "results_store", ResultsStore(s3, pipeline.bucket))

    described = pipeline.run("run-1")

    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == _counts(failed=1, rejected=1)
    assert outage.calls == 1 + RETRY_ATTEMPTS, "retried, then given up"
    attempts = _invocations(pipeline, described["executionArn"], "ProcessFunction")
    assert [i["record_id"] for i in attempts].count("a") == 1 + RETRY_ATTEMPTS
    assert pipeline.result_objects() == {}
    items = pipeline.items()
    assert items["a"]["result_status"] == "pending", "a later run takes it again"
    assert "result_run_id" not in items["a"]
    assert items["b"]["result_status"] == "rejected"
    assert [alert["record_id"] for alert in pipeline.alerts()] == ["b"]


def test_sns_publish_failing_fails_the_execution_visibly(pipeline: Pipeline) -> None:
    pipeline.add_orders("a", "b")
    pipeline.script(READY, REJECT, ACCEPT)
    pipeline.client("sns").delete_topic(TopicArn=pipeline.topic_arn)

    described = pipeline.run("run-1")

    assert described["status"] == "FAILED", described.get("output")
    assert described.get("error") == "RejectionAlertNotPublished"


def test_sns_publish_failing_is_retried_and_never_counted_as_alerted(pipeline: Pipeline) -> None:
    pipeline.add_orders("a")
    pipeline.script(READY, REJECT)
    pipeline.client("sns").delete_topic(TopicArn=pipeline.topic_arn)

    described = pipeline.run("run-1")

    summary = json.loads(described.get("output") or "{}")
    assert summary.get("rejected", 0) == 0, "a rejection whose alert failed is not 'rejected'"
    history = pipeline.client("stepfunctions").get_execution_history(
        executionArn=described["executionArn"], maxResults=1000
    )["events"]
    publishes = [e for e in history if e["type"] == "TaskScheduled"]
    assert len(publishes) == 1 + RETRY_ATTEMPTS


def _failing_pending_query(pipeline: Pipeline, when: Any) -> Fault:
    dynamodb = boto3.client("dynamodb", region_name="eu-west-1")
    fault = Fault(dynamodb, "Query", "InternalServerError", status=500, when=when)
    results = pipeline.handler_module(RESULTS)
    pipeline.monkeypatch.setattr(
        results, "order_results", OrderResults(dynamodb, pipeline.table, PENDING_INDEX_NAME)
    )
    return fault


def test_lambda_a_failing_on_every_attempt_is_retried_boundedly_then_the_run_fails(
    pipeline: Pipeline,
) -> None:
    pipeline.add_orders("a")
    pipeline.script(READY, READY, READY, READY)
    outage = _failing_pending_query(pipeline, when=lambda _: True)

    described = pipeline.run("run-1")

    assert described["status"] == "FAILED"
    assert described["error"] == "OrderStoreUnavailable"
    assert len(_invocations(pipeline, described["executionArn"], "ResultsFunction")) == 3
    assert outage.calls == 1 + RETRY_ATTEMPTS
    assert pipeline.items()["a"]["result_status"] == "pending"
    assert pipeline.alerts() == []


def test_lambda_a_failing_once_is_retried_and_the_run_completes(pipeline: Pipeline) -> None:
    pipeline.add_orders("a")
    pipeline.script(READY, READY, ACCEPT)
    _failing_pending_query(pipeline, when=lambda n: n == 1)

    assert pipeline.summary("run-1") == _counts(accepted=1)
    assert pipeline.items()["a"]["result_status"] == "accepted"


def test_a_bug_in_lambda_a_is_not_retried(pipeline: Pipeline) -> None:
    pipeline.add_orders("a")
    results = pipeline.handler_module(RESULTS)

    def broken(event: Any, context: Any) -> Any:
        raise KeyError("a bug, not a transient fault")

    pipeline.monkeypatch.setattr(results, "handler", broken)

    described = pipeline.run("run-1")

    assert described["status"] == "FAILED"
    assert described["error"] == "KeyError"
    assert len(_invocations(pipeline, described["executionArn"], "ResultsFunction")) == 1


def test_two_overlapping_runs_process_each_order_once(pipeline: Pipeline) -> None:
    """Both runs get the same pending orders from Lambda A before either runs Lambda B."""
    record_ids = [f"o{i}" for i in range(6)]
    pipeline.add_orders(*record_ids)
    # Both runs: ready, then accept, reject, accept... for the same orders in the same order.
    verdicts = [ACCEPT if i % 2 == 0 else REJECT for i in range(len(record_ids))]
    pipeline.script(READY, *verdicts, READY, *verdicts)
    both_polled = threading.Event()
    polls = 0
    original_invoke = lambda_runner.invoke

    def invoke(spec: Any, event: Any) -> Any:
        nonlocal polls
        if spec.handler == PROCESS:
            assert both_polled.wait(timeout=60), "the second run never polled"
        invocation = original_invoke(spec, event)
        if spec.handler == RESULTS and json.loads(invocation.payload).get("results"):
            polls += 1
            if polls == 2:
                both_polled.set()
        return invocation

    pipeline.monkeypatch.setattr(lambda_runner, "invoke", invoke)
    sfn = pipeline.client("stepfunctions")
    arns = [
        sfn.start_execution(stateMachineArn=pipeline.state_machine_arn, name=name, input="{}")[
            "executionArn"
        ]
        for name in ("run-1", "run-2")
    ]
    summaries = [_wait(pipeline, arn) for arn in arns]

    accepted = {r for i, r in enumerate(record_ids) if i % 2 == 0}
    rejected = set(record_ids) - accepted
    total = {key: sum(s[key] for s in summaries) for key in summaries[0]}
    assert total == _counts(
        accepted=len(accepted), rejected=len(rejected), skipped=len(record_ids)
    ), summaries
    items = pipeline.items()
    assert {r for r in record_ids if items[r]["result_status"] == "accepted"} == accepted
    assert sorted(alert["record_id"] for alert in pipeline.alerts()) == sorted(rejected)
    versions = pipeline.client("s3").list_object_versions(Bucket=pipeline.bucket)["Versions"]
    assert len(versions) == len(accepted), "one result object version per accepted order"
    for record_id in record_ids:
        assert items[record_id]["result_run_id"] in ("run-1", "run-2")
        assert "claimed_by" not in items[record_id]


def _wait(pipeline: Pipeline, execution_arn: str) -> dict[str, int]:
    sfn = pipeline.client("stepfunctions")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        described = sfn.describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING":
            assert described["status"] == "SUCCEEDED", described
            summary: dict[str, int] = json.loads(described["output"])
            return summary
        time.sleep(0.05)
    raise AssertionError(f"{execution_arn} did not finish")
