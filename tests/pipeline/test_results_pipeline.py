"""The synthesized results state machine, executed by moto with the real Lambda A and B.

The pipeline is synthesized with batches of BATCH_MAX_ORDERS orders, so a few orders already run
the Distributed Map over several child executions.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from entrix.auction.outcomes import OUTCOMES
from entrix.auction.processing import BatchProcessor
from entrix.aws.orders_table import OrdersTable
from entrix.handlers import cancel
from tests.pipeline.conftest import (
    ACCEPT,
    MAX_POLLS,
    NOT_READY,
    READY,
    REJECT,
    Pipeline,
)
from tests.support.api_events import api_event
from tests.support.moto_orders import OWNER, order_key
from tests.support.stored_orders import post_orders


def _counts(accepted: int = 0, rejected: int = 0, failed: int = 0, skipped: int = 0) -> dict:
    return {"accepted": accepted, "rejected": rejected, "failed": failed, "skipped": skipped}


def _outcomes(summary: dict[str, Any]) -> dict[str, int]:
    return {outcome: summary[outcome] for outcome in OUTCOMES}


def _entered(pipeline: Pipeline, execution_arn: str, state: str) -> int:
    events = pipeline.client("stepfunctions").get_execution_history(
        executionArn=execution_arn, maxResults=1000
    )["events"]
    return sum(
        1 for event in events if event.get("stateEnteredEventDetails", {}).get("name") == state
    )


def _assert_consistent(pipeline: Pipeline) -> None:
    """Stored lines are exactly the accepted orders, once each, matching their recorded items
    (the very version recorded, and its owner); the pending index holds exactly the waiting
    orders, at their stored version."""
    items = pipeline.items()
    stored = pipeline.stored_results()
    accepted = {r for r, item in items.items() if item["result_status"] == "accepted"}
    assert set(stored) == accepted
    for item in items.values():
        waiting = item["result_status"] == "pending"
        assert ("pending_shard" in item) == waiting, "only waiting orders are in the index"
    assert pipeline.pending_index() == {
        item["order_key"]: item["version"]
        for item in items.values()
        if item["result_status"] == "pending"
    }
    for record_id in accepted:
        document, item = stored[record_id], items[record_id]
        assert document["status"] == "accepted"
        assert (document["owner"], document["version"]) == (item["owner"], item["version"])
        assert document["parameter_1"] == item["parameter_1"]
        assert document["power"] == item["power"]
        assert document["run_id"] == item["result_run_id"]
        assert document["result_at"] == item["result_at"]
        assert document["parameter_2"] == 2.1
        assert document["key"].startswith("results/date=")
        assert f"/run={item['result_run_id']}/batch-" in document["key"]


def test_all_accepted_orders_are_stored_in_one_object_per_batch(pipeline: Pipeline) -> None:
    pipeline.add_orders("a", "b", "c")
    pipeline.script(READY, ACCEPT, ACCEPT, ACCEPT)

    summary = pipeline.summary("run-1")

    assert _outcomes(summary) == _counts(accepted=3)
    assert summary["orders"] == 3
    assert summary["batches"] == 2  # 3 orders, BATCH_MAX_ORDERS each
    objects = pipeline.result_objects()
    assert len(objects) == 2
    assert all(key.endswith(".jsonl") for key in objects)
    assert sorted(pipeline.stored_results()) == ["a", "b", "c"]
    assert {item["result_status"] for item in pipeline.items().values()} == {"accepted"}
    assert pipeline.alerts() == []
    _assert_consistent(pipeline)


def test_the_batches_object_is_read_by_the_distributed_map(pipeline: Pipeline) -> None:
    pipeline.add_orders("a", "b", "c", "d", "e")
    pipeline.script(READY)

    described = pipeline.run("run-1")

    s3 = pipeline.client("s3")
    (batches_object,) = s3.list_objects_v2(Bucket=pipeline.bucket, Prefix="batches/")["Contents"]
    assert batches_object["Key"].endswith("/run-1.json")
    body = s3.get_object(Bucket=pipeline.bucket, Key=batches_object["Key"])["Body"].read()
    batches = json.loads(body)
    assert [len(batch["orders"]) for batch in batches] == [2, 2, 1]
    assert json.loads(described["output"])["batches"] == 3
    assert _entered(pipeline, described["executionArn"], "ProcessBatches") == 1


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

    assert _outcomes(pipeline.summary("run-1")) == _counts(accepted=2, rejected=2)

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


def test_no_pending_orders_is_a_successful_empty_run(pipeline: Pipeline) -> None:
    pipeline.script(READY)

    described = pipeline.run("run-1")

    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == {"orders": 0, **_counts(), "batches": 0}
    assert _entered(pipeline, described["executionArn"], "ProcessBatches") == 0
    assert "Contents" not in pipeline.client("s3").list_objects_v2(Bucket=pipeline.bucket)


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


def test_a_crashing_batch_is_counted_failed_and_the_other_batches_finish(
    pipeline: Pipeline,
) -> None:
    pipeline.add_orders("a", "b", "c")
    pipeline.script(READY, ACCEPT, ACCEPT, ACCEPT)
    real_process = BatchProcessor.process

    def crash_on_first_batch(
        processor: BatchProcessor, batch: Any, clock: float, remaining: float | None
    ) -> dict[str, Any]:
        if batch.results_key.endswith("batch-00001.jsonl"):
            raise RuntimeError("simulated bug")
        return real_process(processor, batch, clock, remaining)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(BatchProcessor, "process", crash_on_first_batch)
        described = pipeline.run("run-1")

    assert described["status"] == "SUCCEEDED"
    assert _outcomes(json.loads(described["output"])) == _counts(accepted=1, failed=2)
    (stored,) = pipeline.stored_results().values()
    assert stored["key"].endswith("batch-00002.jsonl"), "only the second batch finished"
    # The seed's rule: a Lambda B error reaches the alert topic, naming run, batch and count.
    (alert,) = pipeline.alerts()
    assert alert["status"] == "batch_failed"
    assert alert["run"] == "run-1" and alert["batch"].endswith("run=run-1/batch-00001.jsonl")
    assert alert["orders_to_retry"] == 2 and alert["reason"] == "RuntimeError"
    assert alert["text"] == (
        f"Run run-1 could not finish batch {alert['batch']} (RuntimeError): its 2 order(s) stay "
        "claimed until the lease of the run ends, then the next run retries them."
    )


def test_a_failed_order_is_taken_again_once_the_failed_runs_claim_ends(
    pipeline: Pipeline,
) -> None:
    pipeline.add_orders("a")
    _claim(pipeline, "a", "crashed-run", expires_at=4_102_444_800)
    pipeline.script(READY, ACCEPT)
    assert _outcomes(pipeline.summary("run-2")) == _counts(skipped=1), "the claim still holds"

    _claim(pipeline, "a", "crashed-run", expires_at=0)
    pipeline.script(READY, ACCEPT)
    assert _outcomes(pipeline.summary("run-3")) == _counts(accepted=1)
    assert pipeline.items()["a"]["result_run_id"] == "run-3"
    _assert_consistent(pipeline)


def _claim(pipeline: Pipeline, record_id: str, run_id: str, expires_at: int) -> None:
    pipeline.client("dynamodb").update_item(
        TableName=pipeline.table,
        Key={"order_key": {"S": order_key(record_id)}},
        UpdateExpression="SET claimed_by = :run, claim_expires_at = :until",
        ExpressionAttributeValues={":run": {"S": run_id}, ":until": {"N": str(expires_at)}},
    )


def test_two_runs_in_a_row_process_each_order_exactly_once(pipeline: Pipeline) -> None:
    pipeline.add_orders("a", "b", "c")
    pipeline.script(READY, ACCEPT, REJECT, ACCEPT)
    assert _outcomes(pipeline.summary("run-1")) == _counts(accepted=2, rejected=1)
    first_items = pipeline.items()
    first_objects = pipeline.result_objects()
    assert len(pipeline.alerts()) == 1

    pipeline.add_orders("d")
    pipeline.script(READY, REJECT)
    assert _outcomes(pipeline.summary("run-2")) == _counts(rejected=1)

    items = pipeline.items()
    for record_id in ("a", "b", "c"):
        assert items[record_id] == first_items[record_id]
    assert items["d"]["result_run_id"] == "run-2"
    assert pipeline.result_objects() == first_objects
    assert [alert["record_id"] for alert in pipeline.alerts()] == ["d"]
    assert len(pipeline.result_versions()) == len(first_objects), "one version per batch object"


@pytest.mark.parametrize("record_id", ['ünïcode/ids?&=#%\n"{}', "x" * 1024])
def test_unusual_record_ids_are_stored_as_they_are(pipeline: Pipeline, record_id: str) -> None:
    pipeline.add_orders(record_id)
    pipeline.script(READY, ACCEPT)

    assert _outcomes(pipeline.summary("run-1")) == _counts(accepted=1)
    assert list(pipeline.stored_results()) == [record_id]


# --- The order lifecycle through a run (issue 17) --------------------------------------------


def _lines(pipeline: Pipeline) -> list[dict[str, Any]]:
    """Every stored result line, of every owner."""
    return [line for lines in pipeline.result_objects().values() for line in lines]


def test_two_owners_orders_with_the_same_record_id_are_two_orders(pipeline: Pipeline) -> None:
    pipeline.add_orders("same", owner="desk-a", parameter_1="a")
    pipeline.add_orders("same", owner="desk-b", parameter_1="b")
    pipeline.script(READY, ACCEPT, REJECT)

    assert _outcomes(pipeline.summary("run-1")) == _counts(accepted=1, rejected=1)

    items = pipeline.items_by_key()
    assert set(items) == {order_key("same", "desk-a"), order_key("same", "desk-b")}
    by_status = {item["result_status"]: item for item in items.values()}
    accepted, rejected = by_status["accepted"], by_status["rejected"]
    assert accepted["owner"] != rejected["owner"]
    (line,) = _lines(pipeline)
    assert (line["record_id"], line["owner"], line["parameter_1"]) == (
        "same",
        accepted["owner"],
        accepted["parameter_1"],
    )
    (alert,) = pipeline.alerts()
    assert (alert["record_id"], alert["owner"]) == ("same", rejected["owner"])
    assert rejected["owner"] in alert["text"]
    assert pipeline.pending_index() == {}


def test_a_cancelled_order_is_never_processed(pipeline: Pipeline) -> None:
    pipeline.add_orders("kept", "cancelled")
    status, _ = cancel_order(pipeline, "cancelled")
    assert status == 204
    assert pipeline.pending_index().keys() == {order_key("kept")}
    pipeline.script(READY, ACCEPT, ACCEPT)

    summary = pipeline.summary("run-1")

    assert (summary["orders"], _outcomes(summary)) == (1, _counts(accepted=1))
    items = pipeline.items()
    assert items["cancelled"]["result_status"] == "cancelled"
    assert "result_run_id" not in items["cancelled"] and "power" not in items["cancelled"]
    assert list(pipeline.stored_results()) == ["kept"]
    _assert_consistent(pipeline)


def test_an_amended_order_is_processed_with_its_amended_content(pipeline: Pipeline) -> None:
    pipeline.add_orders("a", parameter_1="first")
    first = pipeline.items()["a"]
    pipeline.add_orders("a", parameter_1="amended")
    amended = pipeline.items()["a"]
    assert amended["parameter_1"] == "amended-0"
    assert amended["version"] > first["version"]
    assert pipeline.pending_index() == {order_key("a"): amended["version"]}
    pipeline.script(READY, ACCEPT)

    assert _outcomes(pipeline.summary("run-1")) == _counts(accepted=1)

    (line,) = _lines(pipeline)
    assert (line["parameter_1"], line["version"]) == ("amended-0", amended["version"])
    _assert_consistent(pipeline)


def test_a_resend_after_the_result_neither_resets_nor_reprocesses_the_order(
    pipeline: Pipeline,
) -> None:
    """Issue 17's defect 3: a retried POST once used to reset a processed order to pending,
    and the next run processed it again. Now an identical resend is `unchanged` (201) and
    different content is refused (409, with the state); the result and its line stay."""
    pipeline.add_orders("a")
    pipeline.script(READY, ACCEPT)
    assert _outcomes(pipeline.summary("run-1")) == _counts(accepted=1)
    recorded = pipeline.items()["a"]

    identical = [{"record_id": "a", "parameter_1": "p-0", "parameter_2": 2.1}]
    status, reply = post(pipeline, identical)
    assert (status, reply["unchanged"], reply["created"], reply["amended"]) == (201, ["a"], [], [])
    status, reply = post(pipeline, [{**identical[0], "parameter_1": "changed"}])
    assert status == 409, reply
    assert reply["refused"] == [{"record_id": "a", "state": "accepted"}]
    assert reply["code"] == "ORDER_CONFLICT"
    assert pipeline.items()["a"] == recorded
    assert pipeline.pending_index() == {}

    pipeline.script(READY, ACCEPT)
    summary = pipeline.summary("run-2")
    assert (summary["orders"], _outcomes(summary)) == (0, _counts())
    assert pipeline.items()["a"] == recorded
    assert [line["run_id"] for line in _lines(pipeline)] == ["run-1"], "one line, never two"
    _assert_consistent(pipeline)


def post(pipeline: Pipeline, orders: list[dict[str, Any]], owner: str = OWNER) -> tuple[int, Any]:
    """POST /orders of `owner` through the ingest handler, now."""
    return post_orders(pipeline.client("dynamodb"), pipeline.table, orders, owner, time.time())


def cancel_order(pipeline: Pipeline, record_id: str, owner: str = OWNER) -> tuple[int, Any]:
    """DELETE /orders/{record_id} of `owner` through the cancel handler, now."""
    now = time.time()
    table = OrdersTable(pipeline.client("dynamodb"), pipeline.table)
    reply = cancel.handle(
        api_event(owner, pathParameters={"record_id": record_id}),
        table,
        now,
    )
    return reply["statusCode"], json.loads(reply["body"] or "null")
