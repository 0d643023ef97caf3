"""Lambda B (entrix.handlers.process) against the orders table and results bucket in moto."""

from __future__ import annotations

import contextlib
import importlib
import json
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws
from pydantic import ValidationError

from entrix import environment
from entrix.auction.results import (
    OrderRejected,
    OrderStoreUnavailable,
    ResultStoreUnavailable,
    result_key,
)
from tests.unit.test_results_handler import TABLE, create_orders_table, put_order

BUCKET = "order-results-test"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.setenv(environment.ORDERS_TABLE_NAME, TABLE)
    monkeypatch.setenv(environment.RESULTS_BUCKET_NAME, BUCKET)
    monkeypatch.setenv(environment.RESULT_LEASE_SECONDS, "1800")
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="eu-west-1")
        s3 = boto3.client("s3", region_name="eu-west-1")
        create_orders_table(dynamodb)
        s3.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        yield {"dynamodb": dynamodb, "s3": s3}


@pytest.fixture
def process(aws: dict[str, Any]) -> ModuleType:
    import entrix.handlers.process as module

    return importlib.reload(module)  # it reads the table and bucket names at import


def event(record_id: str = "a", status: str = "accepted", run_id: str = "run-1") -> dict:
    return {"record_id": record_id, "status": status, "power": 42, "run_id": run_id}


def item(aws: dict[str, Any], record_id: str = "a") -> dict[str, Any]:
    from boto3.dynamodb.types import TypeDeserializer

    raw = aws["dynamodb"].get_item(TableName=TABLE, Key={"record_id": {"S": record_id}})["Item"]
    return {k: TypeDeserializer().deserialize(v) for k, v in raw.items()}


def stored(aws: dict[str, Any], record_id: str = "a") -> dict[str, Any]:
    body = aws["s3"].get_object(Bucket=BUCKET, Key=result_key(record_id))["Body"].read()
    return dict(json.loads(body))


def object_count(aws: dict[str, Any]) -> int:
    return int(aws["s3"].list_objects_v2(Bucket=BUCKET).get("KeyCount", 0))


def test_accepted_stores_the_result_then_records_it(process: ModuleType, aws: dict) -> None:
    put_order(aws["dynamodb"], "a")

    assert process.handler(event(), None) == {"accepted": 1}

    recorded = item(aws)
    assert recorded["result_status"] == "accepted"
    assert recorded["power"] == 42
    assert recorded["result_run_id"] == "run-1"
    assert "claimed_by" not in recorded and "claim_expires_at" not in recorded
    document = stored(aws)
    assert document["record_id"] == "a"
    assert document["parameter_2"] == 2.1
    assert document["status"] == "accepted"
    assert document["run_id"] == "run-1"
    assert document["result_at"] == recorded["result_at"]


def test_rejected_records_the_result_then_raises_the_named_error(
    process: ModuleType, aws: dict
) -> None:
    put_order(aws["dynamodb"], "a")

    with pytest.raises(OrderRejected, match="Order a was rejected in auction run run-1"):
        process.handler(event(status="rejected"), None)

    assert item(aws)["result_status"] == "rejected"
    assert object_count(aws) == 0


def test_a_retry_within_the_same_run_overwrites_the_same_object(
    process: ModuleType, aws: dict
) -> None:
    put_order(aws["dynamodb"], "a")
    assert process.handler(event(), None) == {"accepted": 1}
    assert process.handler(event(), None) == {"accepted": 1}

    assert object_count(aws) == 1
    assert stored(aws)["result_at"] == item(aws)["result_at"]


def test_a_rejection_retried_within_the_same_run_is_raised_again(
    process: ModuleType, aws: dict
) -> None:
    put_order(aws["dynamodb"], "a")
    for _ in range(2):
        with pytest.raises(OrderRejected):
            process.handler(event(status="rejected"), None)


@pytest.mark.parametrize("first", ["accepted", "rejected"])
@pytest.mark.parametrize("second", ["accepted", "rejected"])
def test_another_run_leaves_a_processed_order_alone(
    process: ModuleType, aws: dict, first: str, second: str
) -> None:
    put_order(aws["dynamodb"], "a")
    with contextlib.suppress(OrderRejected):
        process.handler(event(status=first, run_id="run-1"), None)
    before = item(aws)
    objects_before = object_count(aws)

    assert process.handler(event(status=second, run_id="run-2"), None) == {"skipped": 1}

    assert item(aws) == before
    assert object_count(aws) == objects_before


def test_an_order_claimed_by_a_live_run_is_skipped_by_another(
    process: ModuleType, aws: dict
) -> None:
    put_order(aws["dynamodb"], "a")
    process.order_results.claim("a", "run-1", now=int(time.time()), lease_seconds=600)

    assert process.handler(event(run_id="run-2"), None) == {"skipped": 1}
    assert process.handler(event(status="rejected", run_id="run-2"), None) == {"skipped": 1}
    assert item(aws)["result_status"] == "pending"
    assert object_count(aws) == 0


def test_an_expired_claim_is_taken_over(process: ModuleType, aws: dict) -> None:
    put_order(aws["dynamodb"], "a")
    process.order_results.claim("a", "run-1", now=int(time.time()) - 700, lease_seconds=600)

    assert process.handler(event(run_id="run-2"), None) == {"accepted": 1}
    assert item(aws)["result_run_id"] == "run-2"


def test_an_unknown_order_is_skipped_and_nothing_is_created(process: ModuleType, aws: dict) -> None:
    assert process.handler(event(record_id="ghost"), None) == {"skipped": 1}
    assert "Item" not in aws["dynamodb"].get_item(
        TableName=TABLE, Key={"record_id": {"S": "ghost"}}
    )
    assert object_count(aws) == 0


def test_an_s3_failure_raises_the_retryable_error_and_records_nothing(
    process: ModuleType, aws: dict
) -> None:
    put_order(aws["dynamodb"], "a")
    aws["s3"].delete_bucket(Bucket=BUCKET)

    with pytest.raises(ResultStoreUnavailable):
        process.handler(event(), None)

    assert item(aws)["result_status"] == "pending"


def test_a_table_failure_raises_the_retryable_error(process: ModuleType, aws: dict) -> None:
    aws["dynamodb"].delete_table(TableName=TABLE)

    with pytest.raises(OrderStoreUnavailable):
        process.handler(event(), None)


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {**event(), "status": "maybe"},
        {**event(), "record_id": ""},
        {**event(), "power": "lots"},
        {**event(), "run_id": None},
    ],
)
def test_a_malformed_event_is_refused(process: ModuleType, bad: dict) -> None:
    with pytest.raises(ValidationError):
        process.handler(bad, None)
