"""Faults in a results run: the synthesized state machine executed by moto with the real handlers.

The harness is the pipeline engineer's (tests/pipeline/conftest.py: batches of 2 orders; retries:
2 after the first attempt, 1 s apart, doubling). Faults are injected into the AWS clients of the
handlers (tests/faults/inject.py), so the adapters see ordinary AWS errors.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import boto3
import pytest

from entrix.aws.alerts import AlertTopic
from entrix.aws.order_results import OrderResults
from entrix.aws.results_store import ResultsStore
from entrix.local import lambda_runner
from infra.constructs.results_pipeline import PENDING_INDEX_NAME
from tests.faults.inject import Fault
from tests.pipeline.conftest import ACCEPT, READY, REJECT, Pipeline

RETRY_ATTEMPTS = 2  # as configured by the pipeline fixture
PROCESS = "entrix.handlers.process.handler"
RESULTS = "entrix.handlers.results.handler"
OUTCOMES = ("accepted", "rejected", "failed", "skipped")


def _invocations(pipeline: Pipeline, execution_arn: str, function: str) -> list[dict[str, Any]]:
    """The input of every invocation of the function the execution scheduled, retries included
    (`function`: part of its name, "ResultsFunction" for Lambda A)."""
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


def _outcomes(summary: dict[str, Any]) -> dict[str, int]:
    return {outcome: summary[outcome] for outcome in OUTCOMES}


def test_s3_failing_releases_the_accepted_orders_and_rejections_still_complete(
    pipeline: Pipeline,
) -> None:
    pipeline.add_orders("a", "b")
    pipeline.script(READY, ACCEPT, REJECT)
    s3 = boto3.client("s3", region_name="eu-west-1")
    outage = Fault(s3, "PutObject", "InternalError", status=500)
    process = pipeline.handler_module(PROCESS)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(process, "results_store", ResultsStore(s3, pipeline.bucket))
        summary = pipeline.summary("run-1")

    assert _outcomes(summary) == _counts(failed=1, rejected=1), "the run still succeeds"
    assert outage.calls >= 1
    assert pipeline.result_objects() == {}
    items = pipeline.items()
    accepted, rejected = sorted(items, key=lambda r: items[r]["result_status"] == "rejected")
    assert items[accepted]["result_status"] == "pending", "a later run takes it again"
    assert "claimed_by" not in items[accepted], "released at once, not at the lease's end"
    assert "result_run_id" not in items[accepted]
    assert items[rejected]["result_status"] == "rejected"
    assert [alert["record_id"] for alert in pipeline.alerts()] == [rejected]

    pipeline.script(READY, ACCEPT)
    assert _outcomes(pipeline.summary("run-2")) == _counts(accepted=1)
    assert list(pipeline.stored_results()) == [accepted]


def test_sns_failing_leaves_rejected_orders_pending_and_the_next_run_alerts_them(
    pipeline: Pipeline,
) -> None:
    pipeline.add_orders("a")
    pipeline.script(READY, REJECT)
    sns = boto3.client("sns", region_name="eu-west-1")
    outage = Fault(sns, "PublishBatch", "InternalError", status=500)
    process = pipeline.handler_module(PROCESS)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(process, "alert_topic", AlertTopic(sns, pipeline.topic_arn))
        summary = pipeline.summary("run-1")

    assert _outcomes(summary) == _counts(failed=1), "a rejection not alerted is not 'rejected'"
    assert outage.calls == 2, "the request is tried again once"
    item = pipeline.items()["a"]
    assert item["result_status"] == "pending"
    assert "claimed_by" not in item
    assert pipeline.alerts() == []

    pipeline.script(READY, REJECT)
    assert _outcomes(pipeline.summary("run-2")) == _counts(rejected=1)
    (alert,) = pipeline.alerts()
    assert (alert["record_id"], alert["run"]) == ("a", "run-2"), "no rejection goes unnoticed"


def test_a_failed_record_releases_the_order_and_the_table_names_the_line_that_counts(
    pipeline: Pipeline,
) -> None:
    pipeline.add_orders("a")
    pipeline.script(READY, ACCEPT)
    dynamodb = boto3.client("dynamodb", region_name="eu-west-1")
    # UpdateItem calls of the batch: 1 claim, 2 record (fails), 3 release.
    Fault(dynamodb, "UpdateItem", "InternalServerError", status=500, when=lambda n: n == 2)
    process = pipeline.handler_module(PROCESS)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            process, "order_results", OrderResults(dynamodb, pipeline.table, PENDING_INDEX_NAME)
        )
        assert _outcomes(pipeline.summary("run-1")) == _counts(failed=1)

    item = pipeline.items()["a"]
    assert item["result_status"] == "pending" and "claimed_by" not in item
    pipeline.script(READY, ACCEPT)
    assert _outcomes(pipeline.summary("run-2")) == _counts(accepted=1)

    # The one documented duplicate: run-1 wrote its line before the record failed.
    lines = {
        key: [document["run_id"] for document in documents]
        for key, documents in pipeline.result_objects().items()
    }
    assert sorted(run for runs in lines.values() for run in runs) == ["run-1", "run-2"]
    assert pipeline.items()["a"]["result_run_id"] == "run-2"


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

    assert _outcomes(pipeline.summary("run-1")) == _counts(accepted=1)
    assert pipeline.items()["a"]["result_status"] == "accepted"


def test_lambda_a_failing_to_write_its_batches_once_is_retried(pipeline: Pipeline) -> None:
    pipeline.add_orders("a")
    pipeline.script(READY, READY, ACCEPT)
    s3 = boto3.client("s3", region_name="eu-west-1")
    outage = Fault(s3, "PutObject", "SlowDown", status=503, when=lambda n: n == 1)
    results = pipeline.handler_module(RESULTS)
    pipeline.monkeypatch.setattr(results, "results_store", ResultsStore(s3, pipeline.bucket))

    described = pipeline.run("run-1")

    assert described["status"] == "SUCCEEDED"
    assert _outcomes(json.loads(described["output"])) == _counts(accepted=1)
    assert len(_invocations(pipeline, described["executionArn"], "ResultsFunction")) == 2
    assert outage.calls == 2


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

    items = pipeline.items()
    accepted = {r for r in record_ids if items[r]["result_status"] == "accepted"}
    rejected = {r for r in record_ids if items[r]["result_status"] == "rejected"}
    assert len(accepted) == len(rejected) == 3, "both runs drew the same verdicts"
    total = {key: sum(s[key] for s in summaries) for key in OUTCOMES}
    assert total == _counts(accepted=3, rejected=3, skipped=len(record_ids)), summaries
    assert set(pipeline.stored_results()) == accepted, "each accepted order stored once"
    assert sorted(alert["record_id"] for alert in pipeline.alerts()) == sorted(rejected)
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
