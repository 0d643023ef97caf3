"""Lambda A (entrix.handlers.results) against an orders table and results bucket in moto."""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from entrix import settings
from entrix.auction.batch_item import OrderResult
from entrix.orders.lifecycle import SHARDS as PENDING_SHARDS
from entrix.orders.limits import TTL_SECONDS
from entrix.timestamps import iso_milliseconds
from tests.support.inject import Fault
from tests.support.moto_orders import INDEX, TABLE, create_orders_table, put_order

BUCKET = "results-handler-test"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.setenv(settings.ORDERS_TABLE_NAME.name, TABLE)
    monkeypatch.setenv(settings.ORDERS_PENDING_INDEX_NAME.name, INDEX)
    monkeypatch.setenv(settings.RESULTS_BUCKET_NAME.name, BUCKET)
    monkeypatch.setenv(settings.RESULTS_READY_PROBABILITY.name, "1")
    for name in (
        settings.AUCTION_MODE.name,
        settings.RANDOM_ORDER_COUNT.name,
        settings.MAX_ORDERS_PER_RUN.name,
        settings.BATCH_MAX_ORDERS.name,
    ):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="eu-west-1")
        s3 = boto3.client("s3", region_name="eu-west-1")
        create_orders_table(dynamodb)
        s3.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        sns = boto3.client("sns", region_name="eu-west-1")
        topic = sns.create_topic(Name="alerts")["TopicArn"]
        sqs = boto3.client("sqs", region_name="eu-west-1")
        queue = sqs.create_queue(QueueName="alerts")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
        sns.subscribe(
            TopicArn=topic,
            Protocol="sqs",
            Endpoint=queue_arn["Attributes"]["QueueArn"],
            Attributes={"RawMessageDelivery": "true"},
        )
        monkeypatch.setenv(settings.ALERT_TOPIC_ARN.name, topic)
        monkeypatch.delenv(settings.EXPIRY_WARNING_SECONDS.name, raising=False)
        yield {"dynamodb": dynamodb, "s3": s3, "sqs": sqs, "alerts": queue}


@pytest.fixture
def dynamodb(aws: dict[str, Any]) -> Any:
    return aws["dynamodb"]


@pytest.fixture
def results(aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    import entrix.handlers.results as module

    module.stores.cache_clear()  # made on first use: in this test's moto
    monkeypatch.setattr(module, "random_source", random.Random(11))
    yield module
    module.stores.cache_clear()


def batches(aws: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """The run's batches as Lambda A wrote them for the Distributed Map."""
    body = aws["s3"].get_object(Bucket=BUCKET, Key=key)["Body"].read()
    loaded: list[dict[str, Any]] = json.loads(body)
    return loaded


def object_keys(aws: dict[str, Any]) -> list[str]:
    return [o["Key"] for o in aws["s3"].list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def ordered_ids(aws: dict[str, Any], key: str) -> list[str]:
    return [
        order["order_key"].removeprefix("desk-a#")
        for batch in batches(aws, key)
        for order in batch["orders"]
    ]


def test_not_ready_answers_results_false(
    results: ModuleType, aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(settings.RESULTS_READY_PROBABILITY.name, "0")
    put_order(aws["dynamodb"], "a")

    assert results.handler({}, None) == {"results": False}
    assert object_keys(aws) == []


def test_ready_writes_one_result_per_pending_order_in_batches(
    results: ModuleType, aws: dict[str, Any]
) -> None:
    put_order(aws["dynamodb"], "b", received_at="2026-11-25T10:01Z")
    put_order(aws["dynamodb"], "a", received_at="2026-11-25T10:00Z")
    put_order(aws["dynamodb"], "done", status="accepted")
    put_order(aws["dynamodb"], "also-done", status="rejected")

    answer = results.handler({"run_id": "run-1"}, None)

    key = answer["batches_key"]
    assert answer == {
        "results": True,
        "order_count": 2,
        "batch_count": 1,
        "batches_key": key,
        "rejections_prefix": f"rejections/{key.split('/')[1]}/run=run-1/",
    }
    assert re.fullmatch(r"batches/date=\d{4}-\d{2}-\d{2}/run-1\.json", key)
    assert object_keys(aws) == [key], "only the batches object; results are Lambda B's"
    (batch,) = batches(aws, key)
    run_date = key.split("/")[1]
    assert batch["results_key"] == f"results/{run_date}/run=run-1/batch-00001.jsonl"
    assert [order["order_key"] for order in batch["orders"]] == ["desk-a#a", "desk-a#b"], (
        "oldest first"
    )
    for order in batch["orders"]:
        assert set(order) == set(OrderResult.model_fields), "the contract with Lambda B"
        assert OrderResult.model_validate(order).version == order["version"]
        assert order["status"] in {"accepted", "rejected"}
        assert 1 <= order["power"] <= 100


def test_batches_hold_at_most_batch_max_orders_each(
    results: ModuleType, aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(settings.BATCH_MAX_ORDERS.name, "3")
    for index in range(8):
        put_order(aws["dynamodb"], f"o-{index}", received_at=f"2026-11-25T10:0{index}Z")

    answer = results.handler({"run_id": "run-1"}, None)

    assert answer["order_count"] == 8
    assert answer["batch_count"] == 3
    written = batches(aws, answer["batches_key"])
    assert [len(batch["orders"]) for batch in written] == [3, 3, 2]
    assert [batch["results_key"].rsplit("/", 1)[1] for batch in written] == [
        "batch-00001.jsonl",
        "batch-00002.jsonl",
        "batch-00003.jsonl",
    ]
    assert len({batch["results_key"] for batch in written}) == 3
    assert ordered_ids(aws, answer["batches_key"]) == [f"o-{index}" for index in range(8)]


def test_a_run_takes_at_most_max_orders_per_run_the_oldest_first(
    results: ModuleType, aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(settings.MAX_ORDERS_PER_RUN.name, "7")
    for index in range(10):
        put_order(aws["dynamodb"], f"o-{index:02d}", received_at=f"2026-11-25T10:{index:02d}Z")

    answer = results.handler({"run_id": "run-1"}, None)

    assert answer["order_count"] == 7
    assert ordered_ids(aws, answer["batches_key"]) == [f"o-{index:02d}" for index in range(7)]


def test_ready_with_nothing_pending_writes_nothing(
    results: ModuleType, aws: dict[str, Any]
) -> None:
    put_order(aws["dynamodb"], "done", status="accepted")

    assert results.handler({"run_id": "run-1"}, None) == {
        "results": True,
        "order_count": 0,
        "batch_count": 0,
    }
    assert object_keys(aws) == []


def test_pending_orders_are_read_across_query_pages(
    results: ModuleType, aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    original = results.stores().order_results._client.get_paginator
    page_sizes: list[int] = []

    def small_pages(operation: str) -> Any:
        paginator = original(operation)
        paginate = paginator.paginate

        def paginate_in_threes(**kwargs: Any) -> Any:
            for page in paginate(**kwargs, PaginationConfig={"PageSize": 3}):
                page_sizes.append(len(page.get("Items", [])))
                yield page

        paginator.paginate = paginate_in_threes
        return paginator

    monkeypatch.setattr(results.stores().order_results._client, "get_paginator", small_pages)
    count = 80  # 5 a shard on average: several shards need more than one page of 3
    for index in range(count):
        put_order(aws["dynamodb"], f"o-{index:02d}", received_at=f"2026-11-25T10:{index:02d}Z")

    answer = results.handler({"run_id": "run-1"}, None)

    assert sum(page_sizes) == count
    assert len(page_sizes) > PENDING_SHARDS, "some shards came in several pages"
    assert answer["order_count"] == count
    assert ordered_ids(aws, answer["batches_key"]) == [
        f"o-{index:02d}" for index in range(count)
    ], "the shards are merged oldest first"


def test_recorded_orders_leave_the_pending_index(results: ModuleType, aws: dict[str, Any]) -> None:
    put_order(aws["dynamodb"], "waiting")
    put_order(aws["dynamodb"], "done", status="accepted")

    answer = results.handler({"run_id": "run-1"}, None)

    assert ordered_ids(aws, answer["batches_key"]) == ["waiting"]


def test_random_mode_stores_synthetic_orders_as_pending_then_batches_them(
    results: ModuleType, aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(settings.AUCTION_MODE.name, "random")
    monkeypatch.setenv(settings.RANDOM_ORDER_COUNT.name, "5")

    answer = results.handler({"run_id": "run-7"}, None)

    assert answer["order_count"] == 5
    keys = [
        order["order_key"]
        for batch in batches(aws, answer["batches_key"])
        for order in batch["orders"]
    ]
    assert len(keys) == 5 and all(k.startswith("#auction-simulator#random-run-7-") for k in keys)
    stored = aws["dynamodb"].scan(TableName=TABLE)["Items"]
    assert sorted(item["order_key"]["S"] for item in stored) == sorted(keys)
    assert {item["owner"]["S"] for item in stored} == {results.SIMULATOR_OWNER}
    assert {item["result_status"]["S"] for item in stored} == {"pending"}
    assert all("expires_at" in item and "received_at" in item for item in stored)


def test_random_mode_is_capped_by_max_orders_per_run(
    results: ModuleType, aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(settings.AUCTION_MODE.name, "random")
    monkeypatch.setenv(settings.RANDOM_ORDER_COUNT.name, "9")
    monkeypatch.setenv(settings.MAX_ORDERS_PER_RUN.name, "4")

    answer = results.handler({"run_id": "run-7"}, None)

    assert answer["order_count"] == 4
    assert aws["dynamodb"].scan(TableName=TABLE)["Count"] == 4


def test_a_seeded_source_makes_runs_repeatable(
    results: ModuleType, aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for index in range(5):
        put_order(aws["dynamodb"], f"o-{index}", received_at=f"2026-11-25T10:0{index}Z")
    monkeypatch.setattr(results, "random_source", random.Random(99))
    first = results.handler({"run_id": "run-1"}, None)
    first_batches = batches(aws, first["batches_key"])
    monkeypatch.setattr(results, "random_source", random.Random(99))

    assert results.handler({"run_id": "run-1"}, None) == first
    assert batches(aws, first["batches_key"]) == first_batches


def test_random_mode_reports_unstored_orders_as_a_retryable_error(
    results: ModuleType, aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from entrix.auction.results import OrderStoreUnavailable
    from entrix.aws.orders_table import WriteOutcome

    monkeypatch.setenv(settings.AUCTION_MODE.name, "random")
    monkeypatch.setattr(
        results.stores().orders_table, "put_items", lambda items: WriteOutcome(not_stored=["x"])
    )

    with pytest.raises(OrderStoreUnavailable):
        results.handler({"run_id": "run-1"}, None)
    assert object_keys(aws) == []


def test_a_failed_batches_write_raises_the_retryable_error(
    results: ModuleType, aws: dict[str, Any]
) -> None:
    from entrix.auction.results import ResultStoreUnavailable

    put_order(aws["dynamodb"], "a")
    aws["s3"].delete_bucket(Bucket=BUCKET)

    with pytest.raises(ResultStoreUnavailable):
        results.handler({"run_id": "run-1"}, None)
    assert aws["dynamodb"].get_item(TableName=TABLE, Key={"order_key": {"S": "desk-a#a"}})["Item"][
        "result_status"
    ] == {"S": "pending"}, "the order waits for the next attempt"


def alerts_published(aws: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, str]]]:
    """Every alert on the topic with its message attributes' values."""
    received = aws["sqs"].receive_message(
        QueueUrl=aws["alerts"], MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )
    return [
        (
            json.loads(message["Body"]),
            {k: v["StringValue"] for k, v in message.get("MessageAttributes", {}).items()},
        )
        for message in received.get("Messages", [])
    ]


def test_a_run_taking_orders_close_to_expiry_alerts_once_naming_the_oldest(
    results: ModuleType, aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    now = time.time()
    for hours, record_id in [(23.5, "oldest"), (22.5, "old"), (1, "fresh")]:
        put_order(aws["dynamodb"], record_id, received_at=iso_milliseconds(now - hours * 3600))

    results.handler({"run_id": "run-1"}, None)

    ((alert, attributes),) = alerts_published(aws)
    assert attributes == {"status": "expiring", "run": "run-1"}
    assert (alert["status"], alert["run"], alert["count"]) == ("expiring", "run-1", 2)
    assert [(o["owner"], o["record_id"]) for o in alert["oldest"]] == [
        ("desk-a", "oldest"),
        ("desk-a", "old"),
    ]
    assert alert["oldest"][0]["expires_at"] == int(now - 23.5 * 3600) + TTL_SECONDS
    (metric,) = [
        json.loads(line)
        for line in capsys.readouterr().out.splitlines()
        if "OldestPendingOrderAgeSeconds" in line
    ]
    assert 23.5 * 3600 - 60 <= metric["OldestPendingOrderAgeSeconds"][0] <= 23.5 * 3600 + 60


def test_a_run_of_fresh_orders_does_not_alert(
    results: ModuleType, aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(settings.EXPIRY_WARNING_SECONDS.name, "3600")
    put_order(aws["dynamodb"], "a", received_at=iso_milliseconds(time.time() - 22 * 3600))

    results.handler({"run_id": "run-1"}, None)

    assert alerts_published(aws) == []


def test_an_alert_sns_refused_is_logged_and_the_run_goes_on(
    results: ModuleType, aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(settings.ALERT_TOPIC_ARN.name, "arn:aws:sns:eu-west-1:123456789012:gone")
    put_order(aws["dynamodb"], "a", received_at=iso_milliseconds(time.time() - 23.5 * 3600))

    assert results.handler({"run_id": "run-1"}, None)["order_count"] == 1


def _ages(output: str) -> list[float]:
    return [
        json.loads(line)["OldestPendingOrderAgeSeconds"][0]
        for line in output.splitlines()
        if "OldestPendingOrderAgeSeconds" in line
    ]


def test_every_poll_ready_or_not_writes_the_oldest_pending_orders_age(
    results: ModuleType,
    aws: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Measured from the index itself (the oldest of every shard), not from a run's orders: a
    platform that is never ready, or a run that takes nothing, still shows the age growing."""
    now = time.time()
    for hours, record_id in [(1, "a"), (5, "b"), (3, "c"), (2, "d")]:
        put_order(aws["dynamodb"], record_id, received_at=iso_milliseconds(now - hours * 3600))
    monkeypatch.setenv(settings.RESULTS_READY_PROBABILITY.name, "0")

    assert results.handler({"run_id": "run-1"}, None) == {"results": False}

    (age,) = _ages(capsys.readouterr().out)
    assert 5 * 3600 - 60 <= age <= 5 * 3600 + 60


def test_an_order_that_expired_unprocessed_does_not_count_as_the_oldest(
    results: ModuleType,
    aws: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An expired order keeps its pending_shard until the TTL deletes it (days later) and no run
    claims it: counted, it would hold the alarm in ALARM all that time. Several expired orders
    share the fresh order's shard (one item a query would find only an expired one)."""
    now = time.time()
    for position in range(40):
        put_order(
            aws["dynamodb"],
            f"expired-{position}",
            received_at=iso_milliseconds(now - TTL_SECONDS - 6 * 3600 - position),
        )
    put_order(aws["dynamodb"], "fresh", received_at=iso_milliseconds(now - 3600))
    monkeypatch.setenv(settings.RESULTS_READY_PROBABILITY.name, "0")

    results.handler({"run_id": "run-1"}, None)

    (age,) = _ages(capsys.readouterr().out)
    assert 3600 - 60 <= age <= 3600 + 60


def test_only_expired_orders_pending_is_an_age_of_zero(
    results: ModuleType,
    aws: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    put_order(aws["dynamodb"], "a", received_at=iso_milliseconds(time.time() - 30 * 3600))
    monkeypatch.setenv(settings.RESULTS_READY_PROBABILITY.name, "0")

    results.handler({"run_id": "run-1"}, None)

    assert _ages(capsys.readouterr().out) == [0]


def test_no_pending_order_is_an_age_of_zero(
    results: ModuleType,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    results.handler({"run_id": "run-1"}, None)
    assert _ages(capsys.readouterr().out) == [0]


def test_an_unreadable_index_writes_no_age_and_the_poll_goes_on(
    results: ModuleType,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No figure: the alarm treats the missing data as breaching. The error names the run."""
    monkeypatch.setenv(settings.RESULTS_READY_PROBABILITY.name, "0")
    Fault(results.stores().order_results._client, "Query", "InternalServerError", 500)

    assert results.handler({"run_id": "run-1"}, None) == {"results": False}

    assert _ages(capsys.readouterr().out) == []
    (error,) = [r for r in caplog.records if r.levelname == "ERROR"]
    assert "oldest pending" in error.getMessage()
    assert {getattr(r, "correlation_id", None) for r in caplog.records} == {"run-1"}
