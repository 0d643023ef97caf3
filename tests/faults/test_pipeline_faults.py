"""Faults in a results run: the synthesized state machine executed by moto with the real handlers.

The harness is the pipeline tests' (tests/pipeline/conftest.py; batches of BATCH_MAX_ORDERS
orders; retries: 2 after the first attempt, 1 s apart, doubling). Faults are injected at the AWS
endpoint: the handler's own kind of client (`entrix.aws.clients.client` with PROCESS_CONFIG for
Lambda B, PIPELINE_CONFIG for Lambda A),
whose HTTP requests are answered with an error below botocore's retries
(tests/support/inject.py, HttpFault), handed to the handler's adapter; so each failing call is
retried as in Lambda, and the faults count both the calls and their attempts. Covered there and
not repeated here: a crashing batch and an expired claim.
moto shows a Distributed Map's child executions in no history, so Lambda B's attempts are
counted by the calls the faults see.

Lambda B never raises for a store, alert or record that failed: it releases those orders and
counts them `failed`, so the run succeeds and the next run takes them again. Lambda A's transient
faults (and the Lambda service's) are retried by the state machine.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from entrix.auction.outcomes import OUTCOMES
from entrix.aws.alerts import AlertTopic
from entrix.aws.clients import PIPELINE_CONFIG, PROCESS_CONFIG, client
from entrix.aws.order_results import OrderResults
from entrix.aws.results_store import ResultsStore
from entrix.local import lambda_runner
from entrix.local.pipeline import wait_for_execution
from tests.pipeline.conftest import ACCEPT, READY, REJECT, Pipeline
from tests.support.inject import HttpFault
from tests.support.moto_orders import OWNER
from tests.support.replaced_stores import replace_stores
from tests.support.results_once import every_result_once
from tests.support.stored_orders import post_orders

RETRY_ATTEMPTS = 2  # as configured by the pipeline fixture
BOTOCORE_ATTEMPTS = 3  # entrix.aws.clients.DEFAULT_CONFIG: each failing call, retried by botocore
PROCESS = "entrix.handlers.process.handler"
RESULTS = "entrix.handlers.results.handler"


def _lambda_b_stores(pipeline: Pipeline, **stores: Any) -> None:
    """Lambda B's stores, some replaced by the test's own (their clients inject the faults)."""
    replace_stores(pipeline.monkeypatch, pipeline.handler_module(PROCESS), "processor", **stores)


def _lambda_a_stores(pipeline: Pipeline, **stores: Any) -> None:
    """Lambda A's stores, some replaced by the test's own (their clients inject the faults)."""
    replace_stores(pipeline.monkeypatch, pipeline.handler_module(RESULTS), "stores", **stores)


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


def _split(alerts: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(rejection alerts, failed-batch alerts), each in publishing order."""
    failures = [alert for alert in alerts if alert["status"] == "batch_failed"]
    return [alert for alert in alerts if alert not in failures], failures


def _assert_pending_and_released(item: dict[str, Any]) -> None:
    """The order waits for the next run: not recorded, and no claim left to wait out."""
    assert item["result_status"] == "pending"
    assert "result_run_id" not in item
    assert "claimed_by" not in item, "released, not left claimed until the lease ends"


def _verdicts(pipeline: Pipeline, run_id: str) -> dict[str, str]:
    """The platform's verdict on each order of a run, as Lambda A wrote it into the run's batches
    (orders of the same age come from the index in no fixed order, so tests look them up)."""
    s3 = pipeline.client("s3")
    listed = s3.list_objects_v2(Bucket=pipeline.bucket, Prefix="batches/")["Contents"]
    (key,) = [entry["Key"] for entry in listed if entry["Key"].endswith(f"/{run_id}.json")]
    batches = json.loads(s3.get_object(Bucket=pipeline.bucket, Key=key)["Body"].read())
    verdicts = {}
    for batch in batches:
        for order in batch["orders"]:
            owner, _, record_id = order["order_key"].partition("#")
            assert owner == OWNER, order
            verdicts[record_id] = order["status"]
    return verdicts


def _with(verdicts: dict[str, str], status: str) -> list[str]:
    return sorted(record_id for record_id, verdict in verdicts.items() if verdict == status)


# --- S3 -------------------------------------------------------------------------------------


def _under_results(request: dict[str, Any]) -> bool:
    """A put of a results object (not a rejections one)."""
    return "/results/" in str(request["url_path"]) or str(request["url_path"]).startswith(
        "results/"
    )


def test_s3_failing_on_every_attempt_fails_the_accepted_orders_never_accepted(
    pipeline: Pipeline,
) -> None:
    pipeline.add_orders("a", "b", "c")
    # Batches of two: [accepted, rejected], [accepted].
    pipeline.script(READY, ACCEPT, REJECT, ACCEPT)
    s3 = client("s3", PROCESS_CONFIG)
    outage = HttpFault(s3, "PutObject", "InternalError", status=500, where=_under_results)
    _lambda_b_stores(pipeline, results=ResultsStore(s3, pipeline.bucket))

    described = pipeline.run("run-1")

    assert described["status"] == "SUCCEEDED", described
    assert _outcomes(json.loads(described["output"])) == _counts(failed=2, rejected=1)
    assert outage.calls == 2, "one write per batch with accepted orders, no batch retried"
    assert outage.attempts == 2 * BOTOCORE_ATTEMPTS, "each write retried by botocore"
    assert pipeline.result_objects() == {}
    verdicts = _verdicts(pipeline, "run-1")
    accepted, (rejected,) = _with(verdicts, "accepted"), _with(verdicts, "rejected")
    items = pipeline.items()
    for record_id in accepted:
        _assert_pending_and_released(items[record_id])
    assert items[rejected]["result_status"] == "rejected", "the rest of the batch completes"
    assert items[rejected]["result_run_id"] == "run-1"
    rejections, failures = _split(pipeline.alerts())
    assert [alert["record_id"] for alert in rejections] == [rejected]
    assert [(a["run"], a["orders_to_retry"]) for a in failures] == [("run-1", 1)] * 2, (
        "each batch that released an order says so"
    )

    outage.when = lambda _: False
    pipeline.script(READY, ACCEPT, ACCEPT)
    assert _outcomes(pipeline.summary("run-2")) == _counts(accepted=2)
    assert sorted(pipeline.stored_results()) == accepted
    assert pipeline.alerts() == [], "the rejected order was not taken again"


def test_an_order_released_after_a_failure_is_its_owners_to_amend_again(
    pipeline: Pipeline,
) -> None:
    """A released order is pending and unclaimed: its owner may amend it at once (no claim
    left to wait out), and the next run auctions the amended version, not the one the failed
    run read."""
    pipeline.add_orders("a")
    read = pipeline.items()["a"]
    pipeline.script(READY, ACCEPT)
    s3 = client("s3", PROCESS_CONFIG)
    outage = HttpFault(s3, "PutObject", "InternalError", status=500)
    _lambda_b_stores(pipeline, results=ResultsStore(s3, pipeline.bucket))
    assert _outcomes(pipeline.summary("run-1")) == _counts(failed=1)
    _assert_pending_and_released(pipeline.items()["a"])

    amended = [{"record_id": "a", "parameter_1": "amended", "parameter_2": 2.1}]
    status, reply = post_orders(
        pipeline.client("dynamodb"), pipeline.table, amended, OWNER, time.time()
    )
    assert (status, reply["amended"]) == (201, ["a"]), reply
    item = pipeline.items()["a"]
    assert item["version"] > read["version"]
    assert pipeline.pending_index() == {item["order_key"]: item["version"]}

    outage.when = lambda _: False
    pipeline.script(READY, ACCEPT)
    assert _outcomes(pipeline.summary("run-2")) == _counts(accepted=1)
    (line,) = pipeline.stored_results().values()
    assert (line["parameter_1"], line["version"], line["run_id"]) == (
        "amended",
        item["version"],
        "run-2",
    )
    assert pipeline.items()["a"]["result_status"] == "accepted"
    assert pipeline.pending_index() == {}


# --- SNS ------------------------------------------------------------------------------------


def _failing_alerts(pipeline: Pipeline) -> HttpFault:
    sns = client("sns", PROCESS_CONFIG)
    outage = HttpFault(sns, "PublishBatch", "InternalError", status=500)
    _lambda_b_stores(pipeline, alerts=AlertTopic(sns, pipeline.topic_arn))
    return outage


def test_sns_publish_failing_leaves_the_rejected_orders_pending_never_counted_rejected(
    pipeline: Pipeline,
) -> None:
    pipeline.add_orders("a", "b")
    pipeline.script(READY, REJECT, ACCEPT)
    outage = _failing_alerts(pipeline)

    described = pipeline.run("run-1")

    assert described["status"] == "SUCCEEDED", described
    assert _outcomes(json.loads(described["output"])) == _counts(accepted=1, failed=1)
    # The rejection, then the failed-batch alert: each sent, retried once, then given up.
    assert outage.calls == 4, "published once more by Lambda B, then given up; no batch retried"
    assert outage.attempts == 4 * BOTOCORE_ATTEMPTS
    verdicts = _verdicts(pipeline, "run-1")
    (accepted,), (rejected,) = _with(verdicts, "accepted"), _with(verdicts, "rejected")
    items = pipeline.items()
    _assert_pending_and_released(items[rejected])
    assert "power" not in items[rejected]
    assert items[accepted]["result_status"] == "accepted", "the rest of the batch completes"
    assert pipeline.alerts() == []


def test_no_alert_is_lost_to_an_sns_outage_the_next_run_publishes_it(pipeline: Pipeline) -> None:
    pipeline.add_orders("a", "b")
    pipeline.script(READY, REJECT, REJECT)
    outage = _failing_alerts(pipeline)
    assert _outcomes(pipeline.summary("run-1")) == _counts(failed=2)
    assert pipeline.alerts() == []

    outage.when = lambda _: False
    pipeline.script(READY, REJECT, REJECT)
    assert _outcomes(pipeline.summary("run-2")) == _counts(rejected=2)

    alerts = pipeline.alerts()
    assert sorted(alert["record_id"] for alert in alerts) == ["a", "b"], "each alerted once"
    # run-1 stored the rejections before its alerts failed: those lines are the results.
    assert {alert["run"] for alert in alerts} == {"run-1"}
    items = pipeline.items()
    assert {items[r]["result_status"] for r in ("a", "b")} == {"rejected"}
    assert {items[r]["result_run_id"] for r in ("a", "b")} == {"run-1"}
    every_result_once(pipeline.client("s3"), pipeline.bucket, items.values(), settled=True)


# --- DynamoDB -------------------------------------------------------------------------------


class _FailingRecord(HttpFault):
    """Answers every UpdateItem that records a result (not a claim or a release) with a 500,
    below botocore's retries, while `failing` holds; `calls` counts those record calls."""

    def __init__(self, dynamodb: Any) -> None:
        self.failing = True
        super().__init__(dynamodb, "UpdateItem", "InternalServerError", 500, self._records)
        self._recording = threading.local()
        dynamodb.meta.events.register_first("before-call.dynamodb.UpdateItem", self._is_record)

    def _is_record(self, params: dict[str, Any], **_: Any) -> None:
        body = params["body"]
        text = body.decode() if isinstance(body, bytes) else str(body)
        self._recording.now = "SET result_status" in json.loads(text)["UpdateExpression"]

    def _records(self, _: int) -> bool:
        return bool(self.failing and self._recording.now)

    def _before_call(self, **kwargs: Any) -> None:
        super()._before_call(**kwargs)
        if not self._recording.now:
            self.calls -= 1  # a claim or a release: not counted


def _failing_record(pipeline: Pipeline) -> _FailingRecord:
    dynamodb = client("dynamodb", PROCESS_CONFIG)
    fault = _FailingRecord(dynamodb)
    _lambda_b_stores(pipeline, orders=OrderResults(dynamodb, pipeline.table))
    return fault


@pytest.mark.parametrize("verdict", [ACCEPT, REJECT], ids=["accepted", "rejected"])
def test_a_dynamodb_failure_while_recording_leaves_the_order_pending_for_the_next_run(
    pipeline: Pipeline, verdict: float
) -> None:
    pipeline.add_orders("a")
    pipeline.script(READY, verdict)
    outage = _failing_record(pipeline)

    described = pipeline.run("run-1")

    assert described["status"] == "SUCCEEDED", described
    assert _outcomes(json.loads(described["output"])) == _counts(failed=1)
    assert outage.calls == 1, "no batch retried"
    _assert_pending_and_released(pipeline.items()["a"])
    rejections, failures = _split(pipeline.alerts())
    assert [(a["run"], a["orders_to_retry"]) for a in failures] == [("run-1", 1)]

    outage.failing = False
    pipeline.script(READY, verdict)
    status = "accepted" if verdict == ACCEPT else "rejected"
    assert _outcomes(pipeline.summary("run-2")) == _counts(**{status: 1})
    item = pipeline.items()["a"]
    # run-1 stored the line before its record failed: run-2 records that line (no second one).
    assert (item["result_status"], item["result_run_id"]) == (status, "run-1")
    assert "claimed_by" not in item
    ((key, line),) = every_result_once(
        pipeline.client("s3"), pipeline.bucket, pipeline.items().values(), settled=True
    ).values()
    assert "run=run-1/" in key and line["run_id"] == "run-1"
    if status == "rejected":
        # Alerted before recording, and again by the run that recorded it: repeated, never lost.
        rejections += pipeline.alerts()
        assert [(alert["record_id"], alert["run"]) for alert in rejections] == [
            ("a", "run-1"),
            ("a", "run-1"),
        ]
    else:
        assert pipeline.alerts() == []


# --- Lambda A -------------------------------------------------------------------------------


def _failing_pending_query(pipeline: Pipeline, when: Callable[[int], bool]) -> HttpFault:
    """Lambda A cannot read the pending orders: OrderStoreUnavailable. (Its measurement of the
    oldest pending order, a Query with `:since`, is not failed: that one is logged and leaves the
    metric missing, and tests/unit/test_results_handler.py covers it.)"""
    dynamodb = client("dynamodb", PIPELINE_CONFIG)
    fault = HttpFault(
        dynamodb,
        "Query",
        "InternalServerError",
        status=500,
        when=when,
        where=lambda request: b":since" not in request["body"],
    )
    _lambda_a_stores(pipeline, order_results=OrderResults(dynamodb, pipeline.table))
    return fault


def _failing_batches_write(pipeline: Pipeline, when: Callable[[int], bool]) -> HttpFault:
    """Lambda A cannot write the run's batches object: ResultStoreUnavailable."""
    s3 = client("s3", PIPELINE_CONFIG)
    fault = HttpFault(s3, "PutObject", "InternalError", status=500, when=when)
    _lambda_a_stores(pipeline, results_store=ResultsStore(s3, pipeline.bucket))
    return fault


# moto 5.2.5 names every error of the Invoke call itself "Exception" for a task whose resource is
# a function ARN (state_task_lambda.py), where AWS names it "Lambda.ServiceException" and so on;
# so the Lambda service's fault is simulated by the error name the state machine receives.
LambdaServiceException = type("Lambda.ServiceException", (Exception,), {})


def _failing_lambda_service(pipeline: Pipeline, when: Callable[[int], bool]) -> None:
    """The Lambda service fails Lambda A's invocation (Lambda.ServiceException)."""
    results = pipeline.handler_module(RESULTS)
    real_handler = results.handler
    calls = 0

    def handler(event: Any, context: Any) -> Any:
        nonlocal calls
        calls += 1
        if when(calls):
            raise LambdaServiceException("injected: service unavailable")
        return real_handler(event, context)

    pipeline.monkeypatch.setattr(results, "handler", handler)


LAMBDA_A_FAULTS: dict[str, Callable[[Pipeline, Callable[[int], bool]], object]] = {
    "OrderStoreUnavailable": _failing_pending_query,
    "ResultStoreUnavailable": _failing_batches_write,
    "Lambda.ServiceException": _failing_lambda_service,
}


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


@pytest.mark.parametrize("error", list(LAMBDA_A_FAULTS))
def test_lambda_a_failing_once_is_retried_and_the_run_completes(
    pipeline: Pipeline, error: str
) -> None:
    pipeline.add_orders("a")
    pipeline.script(READY, READY, ACCEPT)
    LAMBDA_A_FAULTS[error](pipeline, lambda n: n == 1)

    described = pipeline.run("run-1")

    assert described["status"] == "SUCCEEDED", described
    assert _outcomes(json.loads(described["output"])) == _counts(accepted=1)
    assert len(_invocations(pipeline, described["executionArn"], "ResultsFunction")) == 2
    assert pipeline.items()["a"]["result_status"] == "accepted"
    assert list(pipeline.stored_results()) == ["a"]


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


# --- Overlapping runs -----------------------------------------------------------------------


def test_two_overlapping_runs_process_each_order_once(pipeline: Pipeline) -> None:
    """Both runs get the same pending orders from Lambda A before either runs Lambda B."""
    record_ids = [f"o{i}" for i in range(6)]
    pipeline.add_orders(*record_ids)
    # Both runs: ready, then accept, reject, accept... for the same orders in the same order
    # (invocations take turns, so each Lambda A draws its own seven in one go; checked below).
    draws = [ACCEPT if i % 2 == 0 else REJECT for i in range(len(record_ids))]
    pipeline.script(READY, *draws, READY, *draws)
    both_polled = threading.Event()
    polls = 0
    original_invoke = lambda_runner.invoke

    def invoke(spec: Any, event: Any) -> Any:
        nonlocal polls
        if spec.handler == PROCESS:
            assert both_polled.wait(timeout=60), "the second run never polled"
        invocation = original_invoke(spec, event)
        if spec.handler == RESULTS and json.loads(invocation.payload).get("order_count"):
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

    assert [summary["orders"] for summary in summaries] == [6, 6], "both took every order"
    verdicts = _verdicts(pipeline, "run-1")
    assert _verdicts(pipeline, "run-2") == verdicts, "both runs got the same verdicts"
    accepted, rejected = set(_with(verdicts, "accepted")), set(_with(verdicts, "rejected"))
    assert len(accepted) == len(rejected) == 3
    total = {key: sum(s[key] for s in summaries) for key in OUTCOMES}
    assert total == _counts(
        accepted=len(accepted), rejected=len(rejected), skipped=len(record_ids)
    ), summaries
    items = pipeline.items()
    assert {r for r in record_ids if items[r]["result_status"] == "accepted"} == accepted
    assert {r for r in record_ids if items[r]["result_status"] == "rejected"} == rejected
    assert sorted(alert["record_id"] for alert in pipeline.alerts()) == sorted(rejected)
    stored = pipeline.stored_results()  # fails if an order is in two objects
    assert set(stored) == accepted
    assert len(pipeline.result_versions()) == len(pipeline.result_objects()), "none rewritten"
    for record_id in record_ids:
        assert items[record_id]["result_run_id"] in ("run-1", "run-2")
        assert "claimed_by" not in items[record_id]
        if record_id in accepted:
            assert stored[record_id]["run_id"] == items[record_id]["result_run_id"]


def _wait(pipeline: Pipeline, execution_arn: str) -> dict[str, int]:
    sfn = pipeline.client("stepfunctions")
    described = wait_for_execution(sfn, execution_arn, timeout_seconds=120, poll_seconds=0.05)
    assert described["status"] == "SUCCEEDED", described
    summary: dict[str, int] = json.loads(described["output"])
    return summary
