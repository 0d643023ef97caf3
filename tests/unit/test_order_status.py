"""GET /orders/{record_id} through the order_status handler, with the orders table in moto."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from entrix import settings
from entrix.aws.orders_table import OrdersTable
from entrix.handlers import order_status
from entrix.orders.openapi import build_document
from tests.support.moto_orders import moto_orders_table

TABLE = "orders-test"
NOW = 1_764_000_000.0

PENDING = {
    "record_id": {"S": "a/ü"},
    "parameter_1": {"S": "x"},
    "parameter_2": {"N": "2.1"},
    "received_at": {"S": "2025-11-24T16:00:00.000Z"},
    "expires_at": {"N": "1764086400"},
    "result_status": {"S": "pending"},
}


@pytest.fixture
def client() -> Iterator[Any]:
    with moto_orders_table(TABLE) as dynamodb:
        yield dynamodb


def get(client: Any, record_id: Any, now: float = NOW) -> tuple[int, Any]:
    table = OrdersTable(client, TABLE)
    reply = order_status.handle({"pathParameters": {"record_id": record_id}}, table, now)
    assert reply["headers"] == {"Content-Type": "application/json"}
    return reply["statusCode"], reply["body"]


def test_a_pending_order_is_read_consistently_with_exact_numbers(client: Any) -> None:
    client.put_item(TableName=TABLE, Item=PENDING)
    reads: list[dict[str, Any]] = []
    client.meta.events.register(
        "provide-client-params.dynamodb.GetItem", lambda params, **_: reads.append(params)
    )
    status, body = get(client, "a/ü")
    assert status == 200
    assert reads == [
        {"TableName": TABLE, "Key": {"record_id": {"S": "a/ü"}}, "ConsistentRead": True}
    ]
    assert '"parameter_2":2.1' in body
    assert json.loads(body, parse_float=Decimal) == {
        "record_id": "a/ü",
        "parameter_1": "x",
        "parameter_2": Decimal("2.1"),
        "received_at": "2025-11-24T16:00:00.000Z",
        "expires_at": 1_764_086_400,
        "result_status": "pending",
    }


def test_a_processed_order_shows_its_result_and_hides_internal_attributes(client: Any) -> None:
    client.put_item(
        TableName=TABLE,
        Item={
            **PENDING,
            "parameter_2": {"N": "1E-130"},
            "result_status": {"S": "accepted"},
            "power": {"N": "12345678901234567890123456789012345678"},
            "result_run_id": {"S": "run-1"},
            "result_at": {"S": "2025-11-24T16:05:00.000Z"},
            "internal_note": {"S": "not for clients"},
        },
    )
    status, body = get(client, "a/ü")
    assert status == 200
    assert '"power":12345678901234567890123456789012345678' in body
    reply = json.loads(body, parse_float=Decimal)
    assert reply["parameter_2"] == Decimal("1E-130")
    assert (reply["result_status"], reply["result_run_id"]) == ("accepted", "run-1")
    assert "internal_note" not in reply


def test_the_module_level_handler_reads_the_table_in_the_environment(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.put_item(TableName=TABLE, Item={**PENDING, "expires_at": {"N": "9999999999"}})
    monkeypatch.setenv(settings.ORDERS_TABLE_NAME.name, TABLE)
    order_status.orders_table.cache_clear()  # as a cold start: made on first use, mocked
    reply = order_status.handler({"pathParameters": {"record_id": "a/ü"}}, None)
    order_status.orders_table.cache_clear()
    assert reply["statusCode"] == 200


def test_the_published_schema_lists_exactly_the_fields_returned() -> None:
    stored = build_document()["components"]["schemas"]["StoredOrder"]
    assert set(stored["properties"]) == set(order_status.PUBLIC_FIELDS)


def test_an_unknown_order_is_not_found(client: Any) -> None:
    status, body = get(client, "missing")
    assert status == 404
    assert json.loads(body) == {"message": "no such order", "record_id": "missing"}


@pytest.mark.parametrize("now", [1_764_086_400.0, 1_764_086_400.001, 1_900_000_000.0])
def test_an_expired_order_is_not_found_although_ttl_has_not_deleted_it(
    client: Any, now: float
) -> None:
    client.put_item(TableName=TABLE, Item=PENDING)
    assert get(client, "a/ü", now)[0] == 404
    assert get(client, "a/ü", 1_764_086_399.999)[0] == 200


@pytest.mark.parametrize("record_id", [None, "", "x" * 1025, "é" * 513, "\udc80"])
def test_ids_no_order_can_have_are_not_found_without_a_lookup(client: Any, record_id: Any) -> None:
    calls: list[str] = []
    client.meta.events.register(
        "provide-client-params.dynamodb.GetItem", lambda **_: calls.append("x")
    )
    assert get(client, record_id)[0] == 404
    assert calls == []


def test_missing_path_parameters_are_not_found(client: Any) -> None:
    reply = order_status.handle({"pathParameters": None}, OrdersTable(client, TABLE), NOW)
    assert reply["statusCode"] == 404
