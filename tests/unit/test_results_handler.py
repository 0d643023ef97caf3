"""Lambda A (entrix.handlers.results) against an orders table in moto."""

from __future__ import annotations

import importlib
import json
import random
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from entrix import environment

TABLE = "orders-results-test"
INDEX = "pending-results"


def create_orders_table(dynamodb: Any) -> None:
    """The orders table with the pipeline's pending index, as the CDK stack defines them."""
    dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "record_id", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": "record_id", "AttributeType": "S"},
            {"AttributeName": "result_status", "AttributeType": "S"},
            {"AttributeName": "received_at", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": INDEX,
                "KeySchema": [
                    {"AttributeName": "result_status", "KeyType": "HASH"},
                    {"AttributeName": "received_at", "KeyType": "RANGE"},
                ],
                "Projection": {
                    "ProjectionType": "INCLUDE",
                    "NonKeyAttributes": ["parameter_1", "parameter_2"],
                },
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )


def put_order(
    dynamodb: Any, record_id: str, status: str = "pending", received_at: str = "2026-11-25T10:00Z"
) -> None:
    dynamodb.put_item(
        TableName=TABLE,
        Item={
            "record_id": {"S": record_id},
            "parameter_1": {"S": "buy"},
            "parameter_2": {"N": "2.1"},
            "received_at": {"S": received_at},
            "expires_at": {"N": "1900000000"},
            "result_status": {"S": status},
        },
    )


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv(environment.ORDERS_TABLE_NAME, TABLE)
    monkeypatch.setenv(environment.ORDERS_PENDING_INDEX_NAME, INDEX)
    monkeypatch.setenv(environment.RESULTS_READY_PROBABILITY, "1")
    with mock_aws():
        client = boto3.client("dynamodb", region_name="eu-west-1")
        create_orders_table(client)
        yield client


@pytest.fixture
def results(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    import entrix.handlers.results as module

    module = importlib.reload(module)  # it reads the table name at import, as in Lambda
    monkeypatch.setattr(module, "random_source", random.Random(11))
    return module


def test_not_ready_answers_results_false(results: ModuleType, dynamodb: Any, monkeypatch) -> None:
    monkeypatch.setenv(environment.RESULTS_READY_PROBABILITY, "0")
    put_order(dynamodb, "a")
    assert results.handler({}, None) == {"results": False}


def test_ready_answers_one_result_per_pending_order(results: ModuleType, dynamodb: Any) -> None:
    put_order(dynamodb, "b", received_at="2026-11-25T10:01Z")
    put_order(dynamodb, "a", received_at="2026-11-25T10:00Z")
    put_order(dynamodb, "done", status="accepted")
    put_order(dynamodb, "also-done", status="rejected")

    answer = results.handler({"run_id": "run-1"}, None)

    assert answer["results"] is True
    assert [order["record_id"] for order in answer["orders"]] == ["a", "b"], "oldest first"
    for order in answer["orders"]:
        assert set(order) == {"record_id", "status", "power", "parameter_1", "parameter_2"}
        assert order["status"] in {"accepted", "rejected"}
        assert order["parameter_1"] == "buy"
        assert order["parameter_2"] == 2.1


def test_ready_with_nothing_pending_answers_an_empty_list(results: ModuleType) -> None:
    assert results.handler({}, None) == {"results": True, "orders": []}


def test_a_run_takes_at_most_max_orders(
    results: ModuleType, dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(results, "MAX_ORDERS_PER_RUN", 7)
    for index in range(10):
        put_order(dynamodb, f"o-{index:02d}", received_at=f"2026-11-25T10:{index:02d}Z")

    orders = results.handler({}, None)["orders"]

    assert [o["record_id"] for o in orders] == [f"o-{index:02d}" for index in range(7)]


def test_a_run_stays_under_the_payload_budget(
    results: ModuleType, dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(results, "MAX_RESULTS_BYTES", 5_000)
    for index in range(20):
        put_order(dynamodb, f"{index:04d}" + "x" * 1000, received_at=f"2026-11-25T10:{index:02d}Z")

    orders = results.handler({}, None)["orders"]

    assert 0 < len(orders) < 20
    assert len(json.dumps(orders)) <= 5_000


def test_pending_orders_are_read_across_query_pages(
    results: ModuleType, dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = results.order_results._client.get_paginator

    def small_pages(operation: str) -> Any:
        paginator = original(operation)
        paginate = paginator.paginate

        def paginate_in_threes(**kwargs: Any) -> Any:
            return paginate(**kwargs, PaginationConfig={"PageSize": 3})

        paginator.paginate = paginate_in_threes
        return paginator

    monkeypatch.setattr(results.order_results._client, "get_paginator", small_pages)
    for index in range(8):
        put_order(dynamodb, f"o-{index}", received_at=f"2026-11-25T10:0{index}Z")

    assert len(results.handler({}, None)["orders"]) == 8


def test_random_mode_stores_synthetic_orders_as_pending_then_answers_them(
    results: ModuleType, dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(environment.AUCTION_MODE, "random")
    monkeypatch.setenv(environment.RANDOM_ORDER_COUNT, "5")

    answer = results.handler({"run_id": "run-7"}, None)

    ids = [order["record_id"] for order in answer["orders"]]
    assert len(ids) == 5 and all(i.startswith("random-run-7-") for i in ids)
    stored = dynamodb.scan(TableName=TABLE)["Items"]
    assert sorted(item["record_id"]["S"] for item in stored) == sorted(ids)
    assert {item["result_status"]["S"] for item in stored} == {"pending"}
    assert all("expires_at" in item and "received_at" in item for item in stored)


def test_a_seeded_source_makes_answers_repeatable(
    results: ModuleType, dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for index in range(5):
        put_order(dynamodb, f"o-{index}", received_at=f"2026-11-25T10:0{index}Z")
    monkeypatch.setattr(results, "random_source", random.Random(99))
    first = results.handler({}, None)
    monkeypatch.setattr(results, "random_source", random.Random(99))
    assert results.handler({}, None) == first


def test_random_mode_reports_unstored_orders_as_a_retryable_error(
    results: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    from entrix.auction.results import OrderStoreUnavailable
    from entrix.aws.orders_table import WriteOutcome

    monkeypatch.setenv(environment.AUCTION_MODE, "random")
    monkeypatch.setattr(
        results.orders_table, "put_items", lambda items: WriteOutcome(not_stored=["x"])
    )

    with pytest.raises(OrderStoreUnavailable):
        results.handler({"run_id": "run-1"}, None)
