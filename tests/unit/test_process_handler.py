"""Lambda B (entrix.handlers.process) against the orders table, results bucket and topic in moto.

One invocation is one batch of a run: accepted results go into the batch's JSON Lines object,
rejected ones are alerted one message each, then every result is recorded on its order.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from decimal import Decimal
from types import ModuleType
from typing import Any, Final

import boto3
import pytest
from boto3.dynamodb.types import TypeDeserializer
from moto import mock_aws
from pydantic import ValidationError

from entrix import settings
from entrix.auction.batch_item import ResultsBatch
from entrix.aws.orders_table import OrdersTable
from entrix.orders import lifecycle
from entrix.timestamps import iso_milliseconds
from tests.support.inject import Fault, HttpFault, refused_request
from tests.support.lambda_b_aws import lambda_b_aws
from tests.support.moto_orders import TABLE, order_key, put_order

BUCKET = "order-results-test"
KEY = "results/date=2026-11-25/run=run-1/batch-00001.jsonl"
REJECTIONS_KEY = "rejections/date=2026-11-25/run=run-1/batch-00001.jsonl"
REGION: Final = "eu-west-1"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.setenv(settings.ORDERS_TABLE_NAME.name, TABLE)
    monkeypatch.setenv(settings.RESULTS_BUCKET_NAME.name, BUCKET)
    monkeypatch.setenv(settings.RESULT_LEASE_SECONDS.name, "1800")
    with mock_aws():
        made = lambda_b_aws(BUCKET)
        monkeypatch.setenv(settings.ALERT_TOPIC_ARN.name, made.topic_arn)
        yield {
            "dynamodb": made.dynamodb,
            "s3": made.s3,
            "sqs": made.sqs,
            "queue_url": made.queue_url,
        }


@pytest.fixture
def process(aws: dict[str, Any]) -> Iterator[ModuleType]:
    import entrix.handlers.process as module

    module.processor.cache_clear()  # its stores are made on first use: in this test's moto
    yield module
    module.processor.cache_clear()


def stored_version(record_id: str) -> str:
    """The version of desk-a's order as the table holds it now (as Lambda A reads it from the
    pending index), or a version no order has."""
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    found = dynamodb.get_item(TableName=TABLE, Key={"order_key": {"S": order_key(record_id)}})
    return str(found.get("Item", {}).get("version", {}).get("S", "no-such-version"))


def event(
    *orders: tuple[str, str] | tuple[str, str, int],
    run_id: str = "run-1",
    key: str = KEY,
    version: str | None = None,
) -> dict[str, Any]:
    """A Distributed Map item: desk-a's orders given as (record_id, status) or (record_id,
    status, power), each with `version`, else the version the table holds when the item is
    made."""
    return {
        "run_id": run_id,
        "results_key": key,
        "orders": [
            {
                "order_key": order_key(order[0]),
                "version": version or stored_version(order[0]),
                "status": order[1],
                "power": (order[2:] or (42,))[0],
            }
            for order in orders
        ],
    }


def counts(
    accepted: int = 0,
    rejected: int = 0,
    skipped: int = 0,
    failed: int = 0,
    examples: list[tuple[str, int]] | None = None,
) -> dict:
    """A reply: the counts, and the rejected examples given as (record_id, power) of desk-a."""
    reply: dict[str, Any] = {
        "accepted": accepted,
        "rejected": rejected,
        "skipped": skipped,
        "failed": failed,
    }
    if examples:
        reply["rejected_examples"] = [
            {"record_id": record_id, "owner": "desk-a", "power": power}
            for record_id, power in examples
        ]
    return reply


def item(aws: dict[str, Any], record_id: str) -> dict[str, Any]:
    key = {"order_key": {"S": order_key(record_id)}}
    raw = aws["dynamodb"].get_item(TableName=TABLE, Key=key)["Item"]
    return {k: TypeDeserializer().deserialize(v) for k, v in raw.items()}


def lines(aws: dict[str, Any], key: str = KEY) -> list[dict[str, Any]]:
    body = aws["s3"].get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert body.endswith(b"\n"), "every line ends with a newline"
    return [json.loads(line) for line in body.decode("utf-8").splitlines()]


def object_keys(aws: dict[str, Any]) -> list[str]:
    return [o["Key"] for o in aws["s3"].list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def published(aws: dict[str, Any]) -> list[dict[str, Any]]:
    """Every alert published since the last call (consumed from the topic's SQS subscriber)."""
    received: list[dict[str, Any]] = []
    while True:
        messages = (
            aws["sqs"]
            .receive_message(QueueUrl=aws["queue_url"], MaxNumberOfMessages=10)
            .get("Messages", [])
        )
        if not messages:
            return received
        for message in messages:
            received.append(json.loads(message["Body"]))
            aws["sqs"].delete_message(
                QueueUrl=aws["queue_url"], ReceiptHandle=message["ReceiptHandle"]
            )


def alerts(aws: dict[str, Any]) -> list[dict[str, Any]]:
    """The rejection alerts published since the last call; failed-batch alerts are kept aside
    in `aws["batch_failures"]` for the tests about them."""
    received = published(aws)
    aws.setdefault("batch_failures", []).extend(
        a for a in received if a["status"] == "batch_failed"
    )
    return [a for a in received if a["status"] != "batch_failed"]


def batch_failures(aws: dict[str, Any]) -> list[dict[str, Any]]:
    alerts(aws)
    return list(aws.pop("batch_failures", []))


def assert_released(aws: dict[str, Any], record_id: str) -> None:
    released = item(aws, record_id)
    assert released["result_status"] == "pending"
    assert "claimed_by" not in released and "claim_expires_at" not in released


def test_accepted_orders_of_a_batch_land_in_one_json_lines_object(
    process: ModuleType, aws: dict
) -> None:
    put_order(aws["dynamodb"], "a")
    put_order(aws["dynamodb"], "b")

    assert process.handler(event(("a", "accepted", 7), ("b", "accepted")), None) == counts(2)

    assert object_keys(aws) == [KEY]
    stored = lines(aws)
    assert [line["record_id"] for line in stored] == ["a", "b"]
    for line, power in zip(stored, (7, 42), strict=True):
        recorded = item(aws, line["record_id"])
        assert line == {
            "record_id": line["record_id"],
            "owner": "desk-a",
            "version": recorded["version"],
            "parameter_1": "buy",
            "parameter_2": 2.1,
            "received_at": "2026-11-25T10:00:00.000Z",
            "status": "accepted",
            "power": power,
            "run_id": "run-1",
            "result_at": recorded["result_at"],
        }
        assert recorded["result_status"] == "accepted"
        assert recorded["power"] == power
        assert recorded["result_run_id"] == "run-1"
        assert "claimed_by" not in recorded and "claim_expires_at" not in recorded
    assert alerts(aws) == []


def test_rejected_orders_publish_one_alert_each_and_are_recorded(
    process: ModuleType, aws: dict
) -> None:
    put_order(aws["dynamodb"], "a")
    put_order(aws["dynamodb"], "b")

    assert process.handler(event(("a", "rejected", 5), ("b", "rejected", 9)), None) == counts(
        rejected=2, examples=[("a", 5), ("b", 9)]
    )

    assert sorted(alerts(aws), key=lambda a: a["record_id"]) == [
        {
            "text": "Order a of desk-a was rejected in auction run run-1 (power offered: 5).",
            "record_id": "a",
            "owner": "desk-a",
            "status": "rejected",
            "run": "run-1",
            "power": 5,
        },
        {
            "text": "Order b of desk-a was rejected in auction run run-1 (power offered: 9).",
            "record_id": "b",
            "owner": "desk-a",
            "status": "rejected",
            "run": "run-1",
            "power": 9,
        },
    ]
    for record_id, power in (("a", 5), ("b", 9)):
        recorded = item(aws, record_id)
        assert recorded["result_status"] == "rejected"
        assert recorded["power"] == power
        assert recorded["result_run_id"] == "run-1"
    assert object_keys(aws) == [REJECTIONS_KEY], "no accepted order, no results object"
    assert [
        (line["record_id"], line["status"], line["power"]) for line in lines(aws, REJECTIONS_KEY)
    ] == [("a", "rejected", 5), ("b", "rejected", 9)]


def test_a_mixed_batch_stores_only_the_accepted_and_alerts_only_the_rejected(
    process: ModuleType, aws: dict
) -> None:
    for record_id in "abcd":
        put_order(aws["dynamodb"], record_id)

    outcome = process.handler(
        event(("a", "accepted"), ("b", "rejected"), ("c", "accepted"), ("d", "rejected")), None
    )

    assert outcome == counts(accepted=2, rejected=2, examples=[("b", 42), ("d", 42)])
    assert [line["record_id"] for line in lines(aws)] == ["a", "c"]
    assert [line["record_id"] for line in lines(aws, REJECTIONS_KEY)] == ["b", "d"]
    assert sorted(a["record_id"] for a in alerts(aws)) == ["b", "d"]


def test_an_order_recorded_by_another_run_is_skipped_and_untouched(
    process: ModuleType, aws: dict
) -> None:
    put_order(aws["dynamodb"], "a")
    put_order(aws["dynamodb"], "b")
    process.handler(event(("a", "accepted"), ("b", "rejected")), None)
    alerts(aws)
    before = {record_id: item(aws, record_id) for record_id in "ab"}
    other_key = "results/date=2026-11-25/run=run-2/batch-00001.jsonl"

    outcome = process.handler(
        event(("a", "rejected"), ("b", "accepted"), run_id="run-2", key=other_key), None
    )

    assert outcome == counts(skipped=2)
    assert {record_id: item(aws, record_id) for record_id in "ab"} == before
    assert object_keys(aws) == [REJECTIONS_KEY, KEY]
    assert alerts(aws) == []


def test_an_order_claimed_by_a_live_run_is_skipped_by_another(
    process: ModuleType, aws: dict
) -> None:
    put_order(aws["dynamodb"], "a")
    put_order(aws["dynamodb"], "b")
    for record_id in "ab":
        process.processor().orders.claim(
            order_key(record_id),
            stored_version(record_id),
            "run-1",
            now=int(time.time()),
            lease_seconds=600,
            stored_in=KEY,
        )

    outcome = process.handler(event(("a", "accepted"), ("b", "rejected"), run_id="run-2"), None)

    assert outcome == counts(skipped=2)
    assert item(aws, "a")["result_status"] == "pending"
    assert item(aws, "a")["claimed_by"] == "run-1", "the live run keeps its claim"
    assert object_keys(aws) == []
    assert alerts(aws) == []


def test_orders_left_alone_are_logged_in_one_line_per_batch(
    process: ModuleType, aws: dict, caplog: pytest.LogCaptureFixture
) -> None:
    """Overlapping runs skip each other's orders by the thousand: one line, not one each."""
    record_ids = [f"o{number}" for number in range(8)]
    for record_id in record_ids:
        put_order(aws["dynamodb"], record_id)
        process.processor().orders.claim(
            order_key(record_id), stored_version(record_id), "run-1", int(time.time()), 600, KEY
        )

    with caplog.at_level("WARNING", logger="entrix.auction.processing"):
        outcome = process.handler(
            event(*((r, "accepted") for r in record_ids), run_id="run-2"), None
        )

    assert outcome == counts(skipped=8)
    (line,) = [r.getMessage() for r in caplog.records if r.name == "entrix.auction.processing"]
    assert "leaves alone 8 order(s)" in line
    assert "first: " + ", ".join(order_key(r) for r in record_ids[:5]) + ")" in line


def test_an_expired_claim_is_taken_over(process: ModuleType, aws: dict) -> None:
    put_order(aws["dynamodb"], "a")
    process.processor().orders.claim(
        order_key("a"),
        stored_version("a"),
        "run-1",
        now=int(time.time()) - 700,
        lease_seconds=600,
        stored_in=KEY,
    )

    assert process.handler(event(("a", "accepted"), run_id="run-2"), None) == counts(1)
    assert item(aws, "a")["result_run_id"] == "run-2"


def test_an_unknown_order_is_skipped_and_nothing_is_created(process: ModuleType, aws: dict) -> None:
    assert process.handler(event(("ghost", "accepted"), ("spook", "rejected")), None) == counts(
        skipped=2
    )
    assert "Item" not in aws["dynamodb"].get_item(
        TableName=TABLE, Key={"order_key": {"S": order_key("ghost")}}
    )
    assert object_keys(aws) == []
    assert alerts(aws) == []


def _refusing_puts_under(process: ModuleType, prefix: str) -> None:
    """S3 answers every put of an object under `prefix` with an error (below the retries)."""

    def refuse(request: Any, **_: Any) -> Any:
        if f"/{prefix}" in request.url:
            return refused_request(request, "InternalError", 500, "rest-xml")
        return None

    process.processor().results._client.meta.events.register("before-send.s3.PutObject", refuse)


def test_an_s3_failure_releases_the_accepted_while_the_rejected_complete(
    process: ModuleType, aws: dict
) -> None:
    for record_id in "abc":
        put_order(aws["dynamodb"], record_id)
    _refusing_puts_under(process, "results/")

    outcome = process.handler(event(("a", "accepted"), ("b", "rejected"), ("c", "accepted")), None)

    assert outcome == counts(rejected=1, failed=2, examples=[("b", 42)])
    assert_released(aws, "a")
    assert_released(aws, "c")
    assert "stored_in" not in item(aws, "a"), "S3 answered: nothing written, nothing to look at"
    assert item(aws, "b")["result_status"] == "rejected"
    assert [a["record_id"] for a in alerts(aws)] == ["b"]
    (failure,) = batch_failures(aws)
    assert failure == {
        "text": f"Run run-1 could not finish batch {KEY} (a store, the alert topic or the orders "
        "table was unavailable, or time ran out): 2 order(s) released and 0 left pending "
        "untouched; the next run retries them.",
        "status": "batch_failed",
        "run": "run-1",
        "batch": KEY,
        "reason": "a store, the alert topic or the orders table was unavailable, or time ran out",
        "orders_to_retry": 2,
        "orders_released": 2,
        "orders_left_pending": 0,
    }


def _is_release_of(request: dict[str, Any], record_id: str) -> bool:
    update = json.loads(request["body"])
    return bool(
        update["Key"] == {"order_key": {"S": order_key(record_id)}}
        and update["UpdateExpression"].startswith("REMOVE claimed_by")
    )


def test_an_order_whose_release_fails_is_said_to_stay_claimed_not_released(
    process: ModuleType, aws: dict
) -> None:
    for record_id in "ac":
        put_order(aws["dynamodb"], record_id)
    _refusing_puts_under(process, "results/")
    release_of_a = HttpFault(
        process.processor().orders._client,
        "UpdateItem",
        "InternalServerError",
        where=lambda request: _is_release_of(request, "a"),
    )

    outcome = process.handler(event(("a", "accepted"), ("c", "accepted")), None)

    assert outcome == counts(failed=2)
    assert release_of_a.calls == 1
    assert item(aws, "a")["claimed_by"] == "run-1", "claimed until the lease ends"
    assert_released(aws, "c")
    (failure,) = batch_failures(aws)
    assert failure["text"] == (
        f"Run run-1 could not finish batch {KEY} (a store, the alert topic or the orders "
        "table was unavailable, or time ran out): 1 order(s) released, 0 left pending "
        "untouched and 1 still claimed (their release failed: they stay claimed until the "
        "run's lease ends); the next run retries them."
    )
    assert (
        failure["orders_to_retry"],
        failure["orders_released"],
        failure["orders_left_pending"],
        failure["orders_still_claimed"],
    ) == (2, 1, 0, 1)


def test_a_released_order_is_taken_by_the_next_run_at_once(process: ModuleType, aws: dict) -> None:
    put_order(aws["dynamodb"], "a")
    aws["s3"].delete_bucket(Bucket=BUCKET)
    assert process.handler(event(("a", "accepted")), None) == counts(failed=1)
    aws["s3"].create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    next_key = "results/date=2026-11-25/run=run-2/batch-00001.jsonl"

    assert process.handler(event(("a", "accepted"), run_id="run-2", key=next_key), None) == counts(
        1
    )
    assert item(aws, "a")["result_run_id"] == "run-2"
    assert [line["record_id"] for line in lines(aws, next_key)] == ["a"]


def test_an_alert_failure_releases_that_order_unrecorded(
    process: ModuleType, aws: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    for record_id in "abc":
        put_order(aws["dynamodb"], record_id)
    publish = process.processor().alerts.publish

    def publish_all_but_b(batch: list[dict[str, Any]]) -> list[int]:
        refused = [i for i, alert in enumerate(batch) if alert.get("record_id") == "b"]
        publish([alert for i, alert in enumerate(batch) if i not in refused])
        return refused

    monkeypatch.setattr(process.processor().alerts, "publish", publish_all_but_b)

    outcome = process.handler(event(("a", "rejected"), ("b", "rejected"), ("c", "accepted")), None)

    assert outcome == counts(accepted=1, rejected=1, failed=1, examples=[("a", 42)])
    assert_released(aws, "b")
    assert "power" not in item(aws, "b") and "result_run_id" not in item(aws, "b")
    assert item(aws, "a")["result_status"] == "rejected"
    assert item(aws, "c")["result_status"] == "accepted"
    assert [a["record_id"] for a in alerts(aws)] == ["a"]
    (failure,) = batch_failures(aws)
    assert failure["orders_to_retry"] == 1


def test_a_topic_refusing_every_request_fails_every_rejected_order(
    process: ModuleType, aws: dict
) -> None:
    put_order(aws["dynamodb"], "a")
    put_order(aws["dynamodb"], "b")
    fault = Fault(
        process.processor().alerts._client, "PublishBatch", "AuthorizationError", status=403
    )

    outcome = process.handler(event(("a", "rejected"), ("b", "accepted")), None)

    assert outcome == counts(accepted=1, failed=1)
    # The rejection (sent, then retried once), then the failed-batch alert (the same).
    assert fault.calls == 4, "each request is retried once"
    assert_released(aws, "a")
    assert item(aws, "b")["result_status"] == "accepted"


def test_a_record_failure_releases_the_order_and_counts_it_failed(
    process: ModuleType, aws: dict
) -> None:
    put_order(aws["dynamodb"], "a")
    put_order(aws["dynamodb"], "b")
    # UpdateItem calls: claim a, claim b, record a (refused), record b, release a.
    Fault(
        process.processor().orders._client,
        "UpdateItem",
        "ProvisionedThroughputExceededException",
        when=lambda n: n == 3,
    )

    assert process.handler(event(("a", "accepted"), ("b", "accepted")), None) == counts(
        accepted=1, failed=1
    )
    assert_released(aws, "a")
    assert item(aws, "b")["result_status"] == "accepted"


def test_a_claim_failure_counts_that_order_failed_and_goes_on(
    process: ModuleType, aws: dict
) -> None:
    put_order(aws["dynamodb"], "a")
    put_order(aws["dynamodb"], "b")
    Fault(
        process.processor().orders._client,
        "UpdateItem",
        "InternalServerError",
        500,
        lambda n: n == 1,
    )

    assert process.handler(event(("a", "rejected"), ("b", "accepted")), None) == counts(
        accepted=1, failed=1
    )
    assert item(aws, "a")["result_status"] == "pending"
    assert alerts(aws) == []
    assert [line["record_id"] for line in lines(aws)] == ["b"]


def test_a_missing_table_fails_every_order_without_raising(process: ModuleType, aws: dict) -> None:
    batch = event(("a", "accepted"), ("b", "rejected"))
    aws["dynamodb"].delete_table(TableName=TABLE)

    assert process.handler(batch, None) == counts(failed=2)
    assert object_keys(aws) == []
    assert alerts(aws) == []


def test_a_retried_batch_of_the_same_run_rewrites_the_same_object(
    process: ModuleType, aws: dict
) -> None:
    for record_id in "abc":
        put_order(aws["dynamodb"], record_id)
    batch = event(("a", "accepted", 3), ("b", "rejected", 4), ("c", "accepted", 5))

    first = process.handler(batch, None)
    first_items = {record_id: item(aws, record_id) for record_id in "abc"}
    second = process.handler(batch, None)

    assert first == second == counts(accepted=2, rejected=1, examples=[("b", 4)])
    assert object_keys(aws) == [REJECTIONS_KEY, KEY]
    stored = lines(aws)
    assert [(line["record_id"], line["power"]) for line in stored] == [("a", 3), ("c", 5)]
    for record_id in "abc":
        retried = item(aws, record_id)
        for field in ("result_status", "power", "result_run_id"):
            assert retried[field] == first_items[record_id][field]
    for line in stored:
        assert line["result_at"] == item(aws, line["record_id"])["result_at"]
    assert {a["record_id"] for a in alerts(aws)} == {"b"}, "at worst the alert is repeated"


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {
            key: value
            for key, value in event(("a", "accepted"), version="v").items()
            if key != "run_id"
        },
        {**event(("a", "accepted"), version="v"), "run_id": ""},
        {**event(("a", "accepted"), version="v"), "run_id": None},
        {**event(("a", "accepted"), version="v"), "orders": []},
        {
            **event(("a", "accepted"), version="v"),
            "results_key": "batches/date=2026-11-25/run-1.json",
        },
        {
            **event(("a", "accepted"), version="v"),
            "results_key": "results/date=2026-11-25/batch-00001.json",
        },
        {
            **event(("a", "accepted"), version="v"),
            "results_key": "elsewhere/results/batch-00001.jsonl",
        },
        event(("a", "accepted", -1), version="v"),
        event(("a", "maybe"), version="v"),
        {
            **event(),
            "orders": [{"order_key": "", "version": "v", "status": "accepted", "power": 1}],
        },
        {**event(), "orders": [{"order_key": "desk-a#a", "status": "accepted", "power": 1}]},
        {
            **event(),
            "orders": [
                {"order_key": "desk-a#a", "version": "v", "status": "accepted", "power": "lots"}
            ],
        },
        {**event(), "orders": [{"order_key": "desk-a#a", "version": "v", "status": "accepted"}]},
    ],
)
def test_a_malformed_event_is_refused(process: ModuleType, aws: dict, bad: dict) -> None:
    put_order(aws["dynamodb"], "a")

    with pytest.raises(ValidationError):
        process.handler(bad, None)

    assert item(aws, "a")["result_status"] == "pending"
    assert "claimed_by" not in item(aws, "a")


def test_an_order_amended_after_the_run_read_it_is_left_for_the_next_run(
    process: ModuleType, aws: dict
) -> None:
    """The platform's result is for the version the run read: an amend since then wins, the
    run's result is not recorded on the new content, and the order stays in the pending index."""
    put_order(aws["dynamodb"], "a")
    batch = event(("a", "accepted"))
    now = time.time()
    received_at = iso_milliseconds(now)
    amended = lifecycle.stored_item(
        {"record_id": "a", "parameter_1": "sell", "parameter_2": Decimal(3)},
        "desk-a",
        received_at,
        int(now) + 86_400,
        lifecycle.version(received_at, "fedcba987654", 0),
    )
    table = OrdersTable(aws["dynamodb"], TABLE)
    assert [put.outcome for put in table.put_orders([amended], now)] == ["amended"]

    assert process.handler(batch, None) == counts(skipped=1)

    after = item(aws, "a")
    assert (after["result_status"], after["parameter_1"]) == ("pending", "sell")
    assert after["version"] == amended["version"] and "pending_shard" in after
    assert "claimed_by" not in after
    assert object_keys(aws) == []
    assert process.handler(event(("a", "accepted")), None) == counts(1), "the next run takes it"
    assert lines(aws)[0]["parameter_1"] == "sell"


def test_a_cancelled_order_is_skipped(process: ModuleType, aws: dict) -> None:
    put_order(aws["dynamodb"], "a")
    batch = event(("a", "rejected"))
    table = OrdersTable(aws["dynamodb"], TABLE)
    assert table.cancel("desk-a", "a", time.time(), "2026-11-25T10:01:00.000Z").outcome == (
        "cancelled"
    )

    assert process.handler(batch, None) == counts(skipped=1)
    assert item(aws, "a")["result_status"] == "cancelled"
    assert alerts(aws) == []


def test_a_record_needs_this_runs_claim_on_that_version(process: ModuleType, aws: dict) -> None:
    """The seed's record accepted an order with no claim: a run that lost its claim must not
    record (the order was taken over, or replaced)."""
    put_order(aws["dynamodb"], "a")
    orders = process.processor().orders
    version = stored_version("a")
    assert orders.record(order_key("a"), version, "run-1", "accepted", 1, "t") is None
    assert orders.claim(order_key("a"), version, "run-1", int(time.time()), 600, KEY) is not None
    assert orders.record(order_key("a"), "another-version", "run-1", "accepted", 1, "t") is None
    assert orders.record(order_key("a"), version, "run-2", "accepted", 1, "t") is None
    assert orders.record(order_key("a"), version, "run-1", "accepted", 1, "t") is not None


def test_an_expired_order_is_not_claimed(process: ModuleType, aws: dict) -> None:
    """To its owner an expired order no longer exists (404) and a resend creates it anew: a run
    must not auction the old one too."""
    put_order(aws["dynamodb"], "a")
    aws["dynamodb"].update_item(
        TableName=TABLE,
        Key={"order_key": {"S": order_key("a")}},
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}},
    )
    assert process.handler(event(("a", "accepted")), None) == counts(skipped=1)
    assert object_keys(aws) == []


def test_a_retried_batch_that_fails_leaves_no_claim_on_the_orders_it_already_recorded(
    process: ModuleType, aws: dict
) -> None:
    put_order(aws["dynamodb"], "a")
    batch = event(("a", "accepted"))
    assert process.handler(batch, None) == counts(1)
    aws["s3"].delete_object(Bucket=BUCKET, Key=KEY)
    aws["s3"].delete_bucket(Bucket=BUCKET)

    assert process.handler(batch, None) == counts(failed=1)

    recorded = item(aws, "a")
    assert (recorded["result_status"], recorded["result_run_id"]) == ("accepted", "run-1")
    assert "claimed_by" not in recorded and "claim_expires_at" not in recorded


class _Clock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _slow(process: ModuleType, monkeypatch: pytest.MonkeyPatch, port: str, method: str) -> Any:
    """Lambda B's processor whose every call may take 10 s, on a clock that `port.method`
    moves 80 s forward."""
    clock = _Clock()
    real = process.processor()
    store = getattr(real, port)
    original = getattr(store, method)

    def slow(*args: Any, **kwargs: Any) -> Any:
        clock.now += 80
        return original(*args, **kwargs)

    monkeypatch.setattr(store, method, slow)
    return dataclasses.replace(real, longest_call_seconds=10, monotonic=clock)


def test_orders_not_claimed_in_time_stay_pending_untouched(
    process: ModuleType, aws: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """100 s left, calls of up to 10 s: after a read that took 80 s no claim fits (a call must
    end 10 s + 2 s before the end, kept for releases)."""
    put_order(aws["dynamodb"], "a")
    put_order(aws["dynamodb"], "b")
    slow = _slow(process, monkeypatch, "orders", "current")
    batch = ResultsBatch.model_validate(event(("a", "accepted"), ("b", "rejected")))

    outcome = slow.process(batch, time.time(), remaining_seconds=100)

    assert outcome == counts(failed=2)
    for record_id in "ab":
        untouched = item(aws, record_id)
        assert "claimed_by" not in untouched and "stored_in" not in untouched
    assert object_keys(aws) == []
    (failure,) = batch_failures(aws)
    assert (failure["orders_released"], failure["orders_left_pending"]) == (0, 2)
    assert "0 order(s) released and 2 left pending untouched" in failure["text"]


def test_orders_claimed_but_out_of_time_before_the_store_are_released_free(
    process: ModuleType, aws: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No put was attempted: no line can be stored, so `stored_in` goes with the claim and the
    owner may amend or cancel the order at once."""
    put_order(aws["dynamodb"], "a")
    slow = _slow(process, monkeypatch, "orders", "claim")
    batch = ResultsBatch.model_validate(event(("a", "accepted")))

    outcome = slow.process(batch, time.time(), remaining_seconds=100)

    assert outcome == counts(failed=1)
    assert_released(aws, "a")
    assert "stored_in" not in item(aws, "a")
    assert object_keys(aws) == []


def test_orders_claimed_but_not_recorded_in_time_are_released(
    process: ModuleType, aws: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_order(aws["dynamodb"], "a")
    slow = _slow(process, monkeypatch, "results", "put_lines_over")
    batch = ResultsBatch.model_validate(event(("a", "accepted")))

    outcome = slow.process(batch, time.time(), remaining_seconds=100)

    assert outcome == counts(failed=1)
    assert_released(aws, "a")
    assert item(aws, "a")["stored_in"] == KEY, "its line is stored: the next run records it"
    (failure,) = batch_failures(aws)
    assert (failure["orders_released"], failure["orders_left_pending"]) == (1, 0)
