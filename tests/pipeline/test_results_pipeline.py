"""The synthesized results state machine, executed by moto with the real Lambda A and B."""

from __future__ import annotations

import json
from typing import Any

import pytest

from entrix.auction.results import ResultStoreUnavailable, result_key
from tests.pipeline.conftest import ACCEPT, MAX_POLLS, NOT_READY, READY, REJECT, Pipeline


def _counts(accepted: int = 0, rejected: int = 0, failed: int = 0, skipped: int = 0) -> dict:
    return {"accepted": accepted, "rejected": rejected, "failed": failed, "skipped": skipped}


def _entered(pipeline: Pipeline, execution_arn: str, state: str) -> int:
    events = pipeline.client("stepfunctions").get_execution_history(
        executionArn=execution_arn, maxResults=1000
    )["events"]
    return sum(
        1 for event in events if event.get("stateEnteredEventDetails", {}).get("name") == state
    )


def _assert_consistent(pipeline: Pipeline) -> None:
    """Stored objects are exactly the accepted orders; each records the same result as its item."""
    items = pipeline.items()
    objects = pipeline.result_objects()
    accepted = {r for r, item in items.items() if item["result_status"] == "accepted"}
    assert set(objects) == {result_key(r) for r in accepted}
    for record_id in accepted:
        document, item = objects[result_key(record_id)], items[record_id]
        assert document["record_id"] == record_id
        assert document["status"] == "accepted"
        assert document["power"] == item["power"]
        assert document["run_id"] == item["result_run_id"]
        assert document["result_at"] == item["result_at"]
        assert document["parameter_2"] == 2.1


def test_all_accepted_orders_are_stored(pipeline: Pipeline) -> None:
    pipeline.add_orders("a", "b", "c")
    pipeline.script(READY, ACCEPT, ACCEPT, ACCEPT)

    assert pipeline.summary("run-1") == _counts(accepted=3)

    objects = pipeline.result_objects()
    assert sorted(document["record_id"] for document in objects.values()) == ["a", "b", "c"]
    assert {document["run_id"] for document in objects.values()} == {"run-1"}
    assert {item["result_status"] for item in pipeline.items().values()} == {"accepted"}
    assert pipeline.alerts() == []
    _assert_consistent(pipeline)


def test_polls_again_after_a_wait_until_results_are_ready(pipeline: Pipeline) -> None:
    pipeline.add_orders("a")
    pipeline.script(NOT_READY, NOT_READY, READY, ACCEPT)

    described = pipeline.run("run-1")

    assert described["status"] == "SUCCEEDED"
    assert _entered(pipeline, described["executionArn"], "PollAuction") == 3
    assert _entered(pipeline, described["executionArn"], "WaitForResults") == 2
    assert pipeline.items()["a"]["result_status"] == "accepted"


def test_mixed_results_store_accepted_and_alert_rejected(pipeline: Pipeline) -> None:
    pipeline.add_orders("a", "b", "c", "d")
    pipeline.script(READY, ACCEPT, REJECT, ACCEPT, REJECT)

    assert pipeline.summary("run-1") == _counts(accepted=2, rejected=2)

    items = pipeline.items()
    rejected = {r for r, item in items.items() if item["result_status"] == "rejected"}
    assert len(rejected) == 2
    alerts = pipeline.alerts()
    assert sorted(alert["record_id"] for alert in alerts) == sorted(rejected)
    for alert in alerts:
        assert alert["status"] == "rejected"
        assert alert["run"] == "run-1"
        assert alert["power"] == items[alert["record_id"]]["power"]
        assert alert["record_id"] in alert["text"]
        assert "rejected" in alert["text"]
    _assert_consistent(pipeline)


def test_all_rejected_is_a_successful_run_with_one_alert_each(pipeline: Pipeline) -> None:
    pipeline.add_orders("a", "b", "c")
    pipeline.script(READY, REJECT, REJECT, REJECT)

    assert pipeline.summary("run-1") == _counts(rejected=3)

    assert sorted(alert["record_id"] for alert in pipeline.alerts()) == ["a", "b", "c"]
    assert pipeline.result_objects() == {}
    assert {item["result_status"] for item in pipeline.items().values()} == {"rejected"}


def test_no_pending_orders_is_a_successful_empty_run(pipeline: Pipeline) -> None:
    pipeline.script(READY)

    assert pipeline.summary("run-1") == _counts()


def test_never_ready_stops_after_max_polls_and_alerts(pipeline: Pipeline) -> None:
    pipeline.add_orders("a")
    pipeline.script(*[NOT_READY] * (MAX_POLLS + 5))

    described = pipeline.run("run-1")

    assert described["status"] == "FAILED"
    assert described["error"] == "AuctionResultsNotReady"
    assert _entered(pipeline, described["executionArn"], "PollAuction") == MAX_POLLS
    (alert,) = pipeline.alerts()
    assert alert["status"] == "not_ready"
    assert alert["run"] == "run-1"
    assert f"after {MAX_POLLS} polls" in alert["text"]
    assert pipeline.items()["a"]["result_status"] == "pending"


def test_a_transient_store_fault_is_retried(pipeline: Pipeline) -> None:
    pipeline.add_orders("a")
    pipeline.script(READY, ACCEPT)
    process = pipeline.handler_module("entrix.handlers.process.handler")
    store = process.results_store
    calls: list[str] = []

    def flaky_put(key: str, body: bytes) -> None:
        calls.append(key)
        if len(calls) == 1:
            raise ResultStoreUnavailable("simulated S3 outage")
        type(store).put(store, key, body)

    pipeline.monkeypatch.setattr(store, "put", flaky_put)

    assert pipeline.summary("run-1") == _counts(accepted=1)
    assert calls == [result_key("a"), result_key("a")]
    _assert_consistent(pipeline)


def test_an_s3_failure_is_counted_failed_never_accepted(pipeline: Pipeline) -> None:
    pipeline.add_orders("a", "b")
    pipeline.client("s3").delete_bucket(Bucket=pipeline.bucket)
    pipeline.script(READY, ACCEPT, REJECT)

    assert pipeline.summary("run-1") == _counts(failed=1, rejected=1)

    items = pipeline.items()
    assert items["a"]["result_status"] == "pending"
    assert items["b"]["result_status"] == "rejected"


def test_a_failed_order_is_taken_again_once_the_failed_runs_claim_ends(
    pipeline: Pipeline,
) -> None:
    pipeline.add_orders("a")
    s3 = pipeline.client("s3")
    s3.delete_bucket(Bucket=pipeline.bucket)
    pipeline.script(READY, ACCEPT)
    assert pipeline.summary("run-1") == _counts(failed=1)

    s3.create_bucket(
        Bucket=pipeline.bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    pipeline.script(READY, ACCEPT)
    assert pipeline.summary("run-2") == _counts(skipped=1), "run-1's claim still holds"

    _expire_claim(pipeline, "a")
    pipeline.script(READY, ACCEPT)
    assert pipeline.summary("run-3") == _counts(accepted=1)
    assert pipeline.items()["a"]["result_run_id"] == "run-3"
    _assert_consistent(pipeline)


def _expire_claim(pipeline: Pipeline, record_id: str) -> None:
    pipeline.client("dynamodb").update_item(
        TableName=pipeline.table,
        Key={"record_id": {"S": record_id}},
        UpdateExpression="SET claim_expires_at = :past",
        ExpressionAttributeValues={":past": {"N": "0"}},
    )


def test_two_runs_in_a_row_process_each_order_exactly_once(pipeline: Pipeline) -> None:
    pipeline.add_orders("a", "b", "c")
    pipeline.script(READY, ACCEPT, REJECT, ACCEPT)
    assert pipeline.summary("run-1") == _counts(accepted=2, rejected=1)
    first_items = pipeline.items()
    first_objects = pipeline.result_objects()
    assert len(pipeline.alerts()) == 1

    pipeline.add_orders("d")
    pipeline.script(READY, REJECT)
    assert pipeline.summary("run-2") == _counts(rejected=1)

    items = pipeline.items()
    for record_id in ("a", "b", "c"):
        assert items[record_id] == first_items[record_id]
    assert items["d"]["result_run_id"] == "run-2"
    assert pipeline.result_objects() == first_objects
    assert [alert["record_id"] for alert in pipeline.alerts()] == ["d"]
    versions = pipeline.client("s3").list_object_versions(Bucket=pipeline.bucket)["Versions"]
    assert len(versions) == 2, "one object version per accepted order"


@pytest.mark.parametrize("record_id", ["ünïcode/ids?&=#%", "x" * 1024])
def test_unusual_record_ids_get_deterministic_keys(pipeline: Pipeline, record_id: str) -> None:
    pipeline.add_orders(record_id)
    pipeline.script(READY, ACCEPT)

    assert pipeline.summary("run-1") == _counts(accepted=1)
    objects: dict[str, Any] = pipeline.result_objects()
    assert objects[result_key(record_id)]["record_id"] == record_id


def test_overlapping_runs_process_each_order_exactly_once(pipeline: Pipeline) -> None:
    record_ids = [f"o-{index}" for index in range(12)]
    pipeline.add_orders(*record_ids)
    pipeline.script()  # every draw: ready, accepted

    runs = pipeline.run_together("run-1", "run-2")

    summaries = [json.loads(run["output"]) for run in runs]
    assert all(run["status"] == "SUCCEEDED" for run in runs)
    assert sum(summary["accepted"] for summary in summaries) == len(record_ids)
    assert all(summary["rejected"] == summary["failed"] == 0 for summary in summaries)
    items = pipeline.items()
    assert {item["result_run_id"] for item in items.values()} <= {"run-1", "run-2"}
    versions = pipeline.client("s3").list_object_versions(Bucket=pipeline.bucket)["Versions"]
    assert sorted(v["Key"] for v in versions) == sorted(result_key(r) for r in record_ids), (
        "one write per order: the run that lost the claim never touched the object"
    )
    _assert_consistent(pipeline)
