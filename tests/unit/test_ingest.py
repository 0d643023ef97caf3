"""POST /orders through the ingest handler, with the orders table in moto."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from entrix import settings
from entrix.aws.orders_table import Backoff, OrdersTable
from entrix.handlers import ingest
from entrix.orders.intake import pending_shard
from tests.support.lambda_context import lambda_context
from tests.support.moto_orders import moto_orders_table

TABLE = "orders-test"
NOW = 1_764_000_000.5


@pytest.fixture
def client() -> Iterator[Any]:
    with moto_orders_table(TABLE) as dynamodb:
        yield dynamodb


@pytest.fixture
def table(client: Any) -> OrdersTable:
    return OrdersTable(client, TABLE, Backoff(sleep=lambda _: None))


def event(
    body: str | bytes | None, content_type: str | None = "application/json"
) -> dict[str, Any]:
    headers = {} if content_type is None else {"content-type": content_type}
    if isinstance(body, bytes):
        encoded: str | None = base64.b64encode(body).decode()
        return {"headers": headers, "body": encoded, "isBase64Encoded": True}
    return {"headers": headers, "body": body, "isBase64Encoded": False}


def post(table: OrdersTable, body: str | bytes | None, **kwargs: Any) -> tuple[int, Any]:
    reply = ingest.handle(event(body, **kwargs), table, NOW)
    assert reply["headers"] == {"Content-Type": "application/json"}
    return reply["statusCode"], json.loads(reply["body"], parse_float=Decimal)


def scan(client: Any) -> dict[str, dict[str, Any]]:
    return {item["record_id"]["S"]: item for item in client.scan(TableName=TABLE)["Items"]}


def orders(count: int) -> list[dict[str, Any]]:
    return [{"record_id": f"r{i}", "parameter_1": "x", "parameter_2": i} for i in range(count)]


def test_orders_are_stored_exactly_with_ttl_and_a_summary(client: Any, table: OrdersTable) -> None:
    body = (
        '[{"record_id": "a", "parameter_1": "first", "parameter_2": 2.1},'
        ' {"record_id": "ü-日本", "parameter_1": "", "parameter_2": -1E-130},'
        ' {"record_id": "big", "parameter_1": "x",'
        '  "parameter_2": 12345678901234567890123456789012345678}]'
    )
    status, summary = post(table, body)
    assert status == 201
    assert summary == {
        "stored": 3,
        "record_ids": ["a", "ü-日本", "big"],
        "received_at": "2025-11-24T16:00:00.500Z",
        "expires_at": 1_764_086_400,
    }
    items = scan(client)
    assert items["a"] == {
        "record_id": {"S": "a"},
        "parameter_1": {"S": "first"},
        "parameter_2": {"N": "2.1"},
        "received_at": {"S": "2025-11-24T16:00:00.500Z"},
        "expires_at": {"N": "1764086400"},
        "result_status": {"S": "pending"},
        "pending_shard": {"S": pending_shard("a")},
    }
    assert items["ü-日本"]["parameter_2"] == {"N": "-1E-130"}
    assert items["big"]["parameter_2"] == {"N": "12345678901234567890123456789012345678"}


def test_the_module_level_handler_uses_the_table_named_in_the_environment(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(settings.ORDERS_TABLE_NAME.name, TABLE)
    ingest.orders_table.cache_clear()  # as a cold start: the table is made on first use, mocked
    reply = ingest.handler(event(json.dumps(orders(2))), lambda_context(28_000))
    ingest.orders_table.cache_clear()
    assert reply["statusCode"] == 201
    assert set(scan(client)) == {"r0", "r1"}


def test_a_base64_encoded_body_is_decoded(client: Any, table: OrdersTable) -> None:
    status, _ = post(table, json.dumps(orders(1)).encode())
    assert status == 201
    assert set(scan(client)) == {"r0"}


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
    ],
)
def test_json_content_types_are_accepted(table: OrdersTable, content_type: str) -> None:
    assert post(table, json.dumps(orders(1)), content_type=content_type)[0] == 201


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
    ],
)
def test_other_content_types_are_refused_with_415(
    client: Any, table: OrdersTable, content_type: str | None
) -> None:
    status, error = post(table, json.dumps(orders(1)), content_type=content_type)
    assert status == 415
    assert error == {
        "message": "Content-Type must be application/json",
        "errors": [{"index": None, "field": "Content-Type", "reason": "must be application/json"}],
    }
    assert scan(client) == {}


def test_a_content_type_in_multi_value_headers_counts(table: OrdersTable) -> None:
    reply = ingest.handle(
        {
            "multiValueHeaders": {"Content-Type": ["application/json"]},
            "body": json.dumps(orders(1)),
        },
        table,
        NOW,
    )
    assert reply["statusCode"] == 201


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (None, 400),
        ("", 400),
        ("[1", 400),
        (b"\xc3\x28", 400),
        ("[\udcff]", 400),
        ('[{"record_id": "a", "parameter_1": "x", "parameter_2": NaN}]', 400),
        ("[" * 100_000, 400),
        (json.dumps(orders(1001)), 413),
        (" " * 5_000_001, 413),
    ],
)
def test_bad_bodies_get_4xx_and_nothing_is_stored(
    client: Any, table: OrdersTable, body: str | bytes | None, status: int
) -> None:
    got, error = post(table, body)
    assert got == status
    assert set(error) == {"message", "errors"}
    assert scan(client) == {}


def test_invalid_base64_is_refused(table: OrdersTable) -> None:
    reply = ingest.handle(
        {
            "headers": {"Content-Type": "application/json"},
            "body": "not base64!",
            "isBase64Encoded": True,
        },
        table,
        NOW,
    )
    assert reply["statusCode"] == 400


def test_one_invalid_order_means_none_is_stored(client: Any, table: OrdersTable) -> None:
    body = orders(3)
    body[1]["parameter_2"] = "12"
    status, error = post(table, json.dumps(body))
    assert status == 400
    assert error == {
        "message": "1 invalid order field(s)",
        "errors": [{"index": 1, "field": "parameter_2", "reason": "must be a JSON number"}],
    }
    assert scan(client) == {}


class LeavesUnprocessed:
    """A client that never takes the given record_ids (and stores the rest for real)."""

    def __init__(self, client: Any, refused: set[str]) -> None:
        self.client = client
        self.refused = refused

    def batch_write_item(self, RequestItems: dict[str, list[Any]]) -> dict[str, Any]:
        (requests,) = RequestItems.values()
        left = [r for r in requests if r["PutRequest"]["Item"]["record_id"]["S"] in self.refused]
        kept = [r for r in requests if r not in left]
        if kept:
            self.client.batch_write_item(RequestItems={TABLE: kept})
        return {"UnprocessedItems": {TABLE: left} if left else {}}


def test_orders_never_written_are_named_in_a_503(client: Any) -> None:
    sleeps: list[float] = []
    table = OrdersTable(
        LeavesUnprocessed(client, {"r7", "r60"}),  # type: ignore[arg-type]
        TABLE,
        Backoff(max_attempts=5, sleep=sleeps.append),
    )
    status, reply = post(table, json.dumps(orders(70)))
    assert status == 503
    assert reply == {
        "message": "some orders were not stored; send them again",
        "stored": 68,
        "record_ids_not_stored": ["r7", "r60"],
    }
    assert set(scan(client)) == {f"r{i}" for i in range(70)} - {"r7", "r60"}
    assert len(sleeps) == 8  # 4 retries for each of the two batches with a leftover


def test_leftovers_that_get_through_on_retry_end_in_a_201(client: Any) -> None:
    class Once(LeavesUnprocessed):
        def batch_write_item(self, RequestItems: dict[str, list[Any]]) -> dict[str, Any]:
            reply = super().batch_write_item(RequestItems)
            self.refused = set()
            return reply

    table = OrdersTable(Once(client, {"r1", "r2"}), TABLE, Backoff(sleep=lambda _: None))  # type: ignore[arg-type]
    status, summary = post(table, json.dumps(orders(5)))
    assert (status, summary["stored"]) == (201, 5)
    assert set(scan(client)) == {f"r{i}" for i in range(5)}
