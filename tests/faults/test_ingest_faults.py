"""Faults while orders are stored: the client learns exactly what was not stored, never a false 201.

Covered elsewhere and not repeated here: UnprocessedItems through a wrapped client
(tests/unit/test_ingest.py::test_orders_never_written_are_named_in_a_503), the adapter's retry
arithmetic and deadline (tests/unit/test_orders_table.py), and the time a reply takes when the
faults come from the HTTP layer, below botocore's retries (test_ingest_time_budget.py). These
tests inject the faults into a real botocore client, above its retries (one fault per call), with
the adapter's pauses stubbed, and check the reply against the table.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from entrix.aws.orders_table import Backoff, OrdersTable
from entrix.handlers import ingest as ingest_handler
from tests.support.inject import Fault
from tests.support.local_system import Running, local_system
from tests.support.moto_orders import moto_orders_table

TABLE = "orders-faults"
MAX_ATTEMPTS = 4


@pytest.fixture
def ingest() -> Iterator[ModuleType]:
    with moto_orders_table(TABLE):
        yield ingest_handler


def _client() -> Any:
    return boto3.client("dynamodb", region_name="eu-west-1")


def _table(client: Any) -> OrdersTable:
    return OrdersTable(client, TABLE, Backoff(max_attempts=MAX_ATTEMPTS, sleep=lambda _: None))


def _orders(count: int) -> list[dict[str, Any]]:
    return [
        {"record_id": f"r{i}", "parameter_1": "p", "parameter_2": i + 0.5} for i in range(count)
    ]


def _post(ingest: ModuleType, table: OrdersTable, orders: list[dict[str, Any]]) -> tuple[int, Any]:
    event = {"headers": {"Content-Type": "application/json"}, "body": json.dumps(orders)}
    reply = ingest.handle(event, table, 1_764_000_000.0)
    return reply["statusCode"], json.loads(reply["body"])


def _stored_ids() -> set[str]:
    pages = _client().get_paginator("scan").paginate(TableName=TABLE)
    return {item["record_id"]["S"] for page in pages for item in page["Items"]}


class LeftUnprocessed:
    """DynamoDB leaves `refused` record_ids unprocessed on every BatchWriteItem: they are taken
    out of the request before it is sent and handed back as UnprocessedItems (a request of only
    refused items is answered without being sent: DynamoDB refuses an empty one)."""

    def __init__(self, client: Any, refused: set[str]) -> None:
        self.refused = refused
        self.held: list[Any] = []
        events = client.meta.events
        events.register("before-parameter-build.dynamodb.BatchWriteItem", self._take_out)
        events.register("before-call.dynamodb.BatchWriteItem", self._answer_if_empty)
        events.register("after-call.dynamodb.BatchWriteItem", self._hand_back)

    def _take_out(self, params: dict[str, Any], **_: Any) -> None:
        (requests,) = params["RequestItems"].values()
        self.held = [
            r for r in requests if r["PutRequest"]["Item"]["record_id"]["S"] in self.refused
        ]
        kept = [r for r in requests if r not in self.held]
        requests[:] = kept or requests

    def _answer_if_empty(self, params: dict[str, Any], **_: Any) -> Any:
        (requests,) = json.loads(params["body"])["RequestItems"].values()
        if len(requests) == len(self.held):
            return AWSResponse("https://injected.invalid", 200, {}, None), {}
        return None

    def _hand_back(self, parsed: dict[str, Any], **_: Any) -> None:
        if self.held:
            parsed["UnprocessedItems"] = {TABLE: self.held}


def _assert_reply_matches_table(reply: dict[str, Any], sent: int) -> None:
    """Nothing reported stored that is not, and every order not stored is named."""
    stored = _stored_ids()
    not_stored = set(reply["record_ids_not_stored"])
    assert reply["stored"] == len(stored)
    assert stored.isdisjoint(not_stored)
    assert stored | not_stored == {f"r{i}" for i in range(sent)}


def test_throttling_on_every_attempt_is_a_503_naming_the_orders_not_stored(
    ingest: ModuleType,
) -> None:
    client = _client()
    throttled = Fault(client, "BatchWriteItem", "ThrottlingException", when=lambda n: n >= 2)

    status, reply = _post(ingest, _table(client), _orders(60))

    assert status == 503
    assert reply["record_ids_not_stored"] == [f"r{i}" for i in range(25, 60)]
    assert _stored_ids() == {f"r{i}" for i in range(25)}
    _assert_reply_matches_table(reply, 60)
    assert throttled.calls == 1 + MAX_ATTEMPTS, "the throttled batch was retried, then given up"


def test_unprocessed_items_and_throttling_together_are_named_exactly(ingest: ModuleType) -> None:
    client = _client()
    # Batches 1 and 2 each take MAX_ATTEMPTS calls (their leftover never gets through); the
    # third batch is throttled on every attempt. Registered first, so it sees every call.
    Fault(
        client,
        "BatchWriteItem",
        "ProvisionedThroughputExceededException",
        when=lambda n: n > 2 * MAX_ATTEMPTS,
    )
    unprocessed = LeftUnprocessed(client, {"r3", "r30"})

    status, reply = _post(ingest, _table(client), _orders(60))

    assert status == 503
    assert sorted(reply["record_ids_not_stored"]) == sorted(
        ["r3", "r30", *(f"r{i}" for i in range(50, 60))]
    )
    _assert_reply_matches_table(reply, 60)

    unprocessed.refused = set()
    status, reply = _post(ingest, _table(_client()), _orders(60))
    assert (status, reply["stored"]) == (201, 60)
    assert _stored_ids() == {f"r{i}" for i in range(60)}


def test_a_non_transient_error_is_not_retried_and_never_a_201(ingest: ModuleType) -> None:
    client = _client()
    denied = Fault(client, "BatchWriteItem", "AccessDeniedException", when=lambda n: n == 2)

    status, reply = _post(ingest, _table(client), _orders(30))

    assert status == 503
    assert reply["record_ids_not_stored"] == [f"r{i}" for i in range(25, 30)]
    _assert_reply_matches_table(reply, 30)
    assert denied.calls == 2


@pytest.fixture(scope="module")
def running() -> Iterator[Running]:
    with local_system() as running:
        yield running


def test_an_ingest_crash_mid_request_is_an_error_and_a_resend_stores_each_order_once(
    running: Running,
) -> None:
    orders = [
        {"record_id": f"crash-{i}", "parameter_1": "first", "parameter_2": i} for i in range(100)
    ]
    # A first request makes the handler's table in its function's environment (the local runtime
    # runs it in this process); the crash goes into the client that table uses.
    warm_up = [{"record_id": "warm-up", "parameter_1": "p", "parameter_2": 0}]
    assert running.post(warm_up)[0] == 201
    client = ingest_handler.orders_table()._client
    calls = 0

    def crash_on_third_batch(**_: Any) -> None:
        """Stands for the function dying mid-request (timeout, out of memory, a bug)."""
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("injected crash after two batches")

    client.meta.events.register("before-call.dynamodb.BatchWriteItem", crash_on_third_batch)

    status, reply = running.post(orders)

    assert status == 502, reply  # API Gateway's answer to a failed Lambda: never a 201
    written = {r for r in running.stored() if r.startswith("crash-")}
    assert written == {f"crash-{i}" for i in range(50)}, "two batches landed before the crash"

    ingest_handler.orders_table.cache_clear()  # the next request meets a new container
    resent = [{**order, "parameter_1": "again"} for order in orders]
    status, reply = running.post(resent)

    assert (status, reply["stored"]) == (201, 100)
    items = {r: item for r, item in running.stored().items() if r.startswith("crash-")}
    assert len(items) == 100, "each order once"
    assert {item["parameter_1"] for item in items.values()} == {"again"}
    assert {item["received_at"] for item in items.values()} == {reply["received_at"]}
    assert all(items[f"crash-{i}"]["parameter_2"] == Decimal(i) for i in range(100))
