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
from entrix.orders import lifecycle
from entrix.orders.openapi import build_document
from tests.support.api_events import api_event
from tests.support.moto_orders import moto_orders_table
from tests.support.moto_usage import unlimited_usage

TABLE = "orders-test"
NOW = 1_764_000_000.0
RECEIVED = "2025-11-24T16:00:00.000Z"


def pending(owner: str = "desk-a", record_id: str = "a/ü", **extra: dict[str, str]) -> Any:
    item = lifecycle.stored_item(
        {"record_id": record_id, "parameter_1": "x", "parameter_2": Decimal("2.1")},
        owner,
        RECEIVED,
        1_764_086_400,
        lifecycle.version(RECEIVED, "0123456789ab", 0),
    )
    typed = {
        name: {"N": str(value)} if isinstance(value, int | Decimal) else {"S": value}
        for name, value in item.items()
    }
    return {**typed, **extra}


@pytest.fixture
def client() -> Iterator[Any]:
    with moto_orders_table(TABLE) as dynamodb:
        yield dynamodb


def get(client: Any, record_id: Any, now: float = NOW, owner: str = "desk-a") -> tuple[int, Any]:
    table = OrdersTable(client, TABLE)
    event = api_event(owner, pathParameters={"record_id": record_id})
    reply = order_status.handle(event, table, now, usage=unlimited_usage())
    assert reply["headers"] == {"Content-Type": "application/json"}
    return reply["statusCode"], reply["body"]


def test_a_pending_order_is_read_consistently_under_the_callers_key(client: Any) -> None:
    client.put_item(TableName=TABLE, Item=pending())
    reads: list[dict[str, Any]] = []
    client.meta.events.register(
        "provide-client-params.dynamodb.GetItem", lambda params, **_: reads.append(params)
    )
    status, body = get(client, "a/ü")
    assert status == 200
    assert reads == [
        {"TableName": TABLE, "Key": {"order_key": {"S": "desk-a#a/ü"}}, "ConsistentRead": True}
    ]
    assert '"parameter_2":2.1' in body
    assert json.loads(body, parse_float=Decimal) == {
        "record_id": "a/ü",
        "parameter_1": "x",
        "parameter_2": Decimal("2.1"),
        "received_at": RECEIVED,
        "expires_at": 1_764_086_400,
        "result_status": "pending",
    }


def test_another_clients_order_is_not_found_exactly_as_an_unknown_one(client: Any) -> None:
    client.put_item(TableName=TABLE, Item=pending(owner="desk-a"))
    theirs = get(client, "a/ü", owner="desk-b")
    unknown = get(client, "never-stored", owner="desk-b")
    assert theirs[0] == unknown[0] == 404
    assert json.loads(theirs[1]) == {**json.loads(unknown[1]), "record_id": "a/ü"}
    assert get(client, "a/ü", owner="desk-a")[0] == 200


def test_a_processed_order_shows_its_result_and_hides_internal_attributes(client: Any) -> None:
    client.put_item(
        TableName=TABLE,
        Item=pending(
            parameter_2={"N": "1E-130"},
            result_status={"S": "accepted"},
            power={"N": "12345678901234567890123456789012345678"},
            result_run_id={"S": "run-1"},
            result_at={"S": "2025-11-24T16:05:00.000Z"},
            claimed_by={"S": "run-1"},
            internal_note={"S": "not for clients"},
        ),
    )
    status, body = get(client, "a/ü")
    assert status == 200
    assert '"power":12345678901234567890123456789012345678' in body
    reply = json.loads(body, parse_float=Decimal)
    assert reply["parameter_2"] == Decimal("1E-130")
    assert (reply["result_status"], reply["result_run_id"]) == ("accepted", "run-1")
    hidden = {"internal_note", "order_key", "owner", "version", "claimed_by", "pending_shard"}
    assert hidden.isdisjoint(reply)


def test_a_cancelled_order_shows_when_it_was_cancelled(client: Any) -> None:
    item = pending(result_status={"S": "cancelled"}, cancelled_at={"S": "2025-11-24T16:01Z"})
    client.put_item(TableName=TABLE, Item=item)
    reply = json.loads(get(client, "a/ü")[1])
    assert (reply["result_status"], reply["cancelled_at"]) == ("cancelled", "2025-11-24T16:01Z")


def test_the_module_level_handler_reads_the_table_in_the_environment(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.put_item(TableName=TABLE, Item=pending(expires_at={"N": "9999999999"}))
    monkeypatch.setenv(settings.ORDERS_TABLE_NAME.name, TABLE)
    monkeypatch.setenv(settings.CLIENT_USAGE_TABLE_NAME.name, unlimited_usage().table_name)
    order_status.orders_table.cache_clear()  # as a cold start: made on first use, mocked
    order_status.client_usage.cache_clear()
    reply = order_status.handler(api_event(pathParameters={"record_id": "a/ü"}), None)
    order_status.orders_table.cache_clear()
    order_status.client_usage.cache_clear()
    assert reply["statusCode"] == 200


def test_the_published_schema_lists_exactly_the_fields_returned() -> None:
    stored = build_document()["components"]["schemas"]["StoredOrder"]
    assert set(stored["properties"]) == set(lifecycle.PUBLIC_FIELDS)


def test_an_unknown_order_is_not_found_in_the_error_shape(client: Any) -> None:
    status, body = get(client, "missing")
    assert status == 404
    assert json.loads(body) == {
        "message": "no such order",
        "code": "NOT_FOUND",
        "request_id": "req-1",
        "record_id": "missing",
    }


@pytest.mark.parametrize("now", [1_764_086_400.0, 1_764_086_400.001, 1_900_000_000.0])
def test_an_expired_order_ttl_has_not_deleted_is_gone_not_unknown(client: Any, now: float) -> None:
    client.put_item(TableName=TABLE, Item=pending())
    status, body = get(client, "a/ü", now)
    assert (status, json.loads(body)) == (
        404,
        {
            "message": "the order has expired",
            "code": "ORDER_EXPIRED",
            "request_id": "req-1",
            "record_id": "a/ü",
            "expires_at": 1_764_086_400,
        },
    )
    assert get(client, "a/ü", 1_764_086_399.999)[0] == 200


def test_another_clients_expired_order_is_unknown_not_gone(client: Any) -> None:
    client.put_item(TableName=TABLE, Item=pending(owner="desk-b"))
    assert get(client, "a/ü", 1_900_000_000.0)[0] == 404


@pytest.mark.parametrize("record_id", [None, "", "x" * 1025, "é" * 513, "\udc80"])
def test_ids_no_order_can_have_are_not_found_without_a_lookup(client: Any, record_id: Any) -> None:
    calls: list[str] = []
    client.meta.events.register(
        "provide-client-params.dynamodb.GetItem", lambda **_: calls.append("x")
    )
    assert get(client, record_id)[0] == 404
    assert calls == []


def test_missing_path_parameters_are_not_found(client: Any) -> None:
    reply = order_status.handle(
        api_event(pathParameters=None), OrdersTable(client, TABLE), NOW, usage=unlimited_usage()
    )
    assert reply["statusCode"] == 404


@pytest.mark.parametrize(
    "authorizer",
    [
        {"sub": "desk-a", "exp": str(int(NOW) - 31)},  # past exp and the 30 s leeway
        {"sub": "desk-a"},
        {"exp": str(int(NOW) + 60)},
        {"sub": "desk#a", "exp": str(int(NOW) + 60)},
        None,
    ],
)
def test_a_request_without_a_live_token_in_the_authorizer_context_is_401(
    client: Any, authorizer: Any
) -> None:
    """API Gateway serves a cached Allow until the cache TTL: the handler checks exp itself."""
    client.put_item(TableName=TABLE, Item=pending())
    event = {"requestContext": {"requestId": "r", "authorizer": authorizer}}
    event["pathParameters"] = {"record_id": "a/ü"}
    reply = order_status.handle(event, OrdersTable(client, TABLE), NOW, usage=unlimited_usage())
    assert reply["statusCode"] == 401
    assert json.loads(reply["body"])["code"] == "UNAUTHORIZED"


def test_a_token_within_its_leeway_is_still_served(client: Any) -> None:
    client.put_item(TableName=TABLE, Item=pending())
    event = api_event(exp=int(NOW) - 30, pathParameters={"record_id": "a/ü"})
    assert (
        order_status.handle(event, OrdersTable(client, TABLE), NOW, usage=unlimited_usage())[
            "statusCode"
        ]
        == 200
    )
