"""Faults while orders are stored: the client learns exactly what was not stored, never a false 201.

The intake writes each order with a conditional PutItem of its own, in parallel
(entrix.aws.orders_table.OrdersTable.put_orders), so a fault hits orders, not batches: these
tests fail chosen orders' puts (above botocore's retries: one fault per call, the adapter's
pauses stubbed) and check the reply against the table: every order not stored is named under
`not_stored` in a 503 with Retry-After, the others are stored and named under their outcome, and
resending the whole request (what the 503 asks) stores the rest once and leaves the stored ones
`unchanged`. Covered elsewhere and not repeated here: the adapter's retry arithmetic and deadline
(tests/unit/test_orders_table.py), and the time a reply takes when the faults come from the HTTP
layer, below botocore's retries (test_ingest_time_budget.py).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from entrix.aws.orders_table import Backoff, OrdersTable
from entrix.handlers import ingest as ingest_handler
from tests.support.api_events import api_event
from tests.support.inject import error_reply
from tests.support.local_system import Running, local_system
from tests.support.moto_orders import OWNER, moto_orders_table
from tests.support.moto_usage import unlimited_usage

TABLE = "orders-faults"
MAX_ATTEMPTS = 4
NOW = 1_764_000_000.0


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


def _post(
    ingest: ModuleType, table: OrdersTable, orders: list[dict[str, Any]]
) -> tuple[dict[str, Any], Any]:
    event = api_event(
        OWNER,
        request_id="faults-1",
        headers={"Content-Type": "application/json"},
        body=json.dumps(orders),
    )
    reply = ingest.handle(event, table, NOW, usage=unlimited_usage())
    return reply, json.loads(reply["body"])


def _stored_ids() -> set[str]:
    pages = _client().get_paginator("scan").paginate(TableName=TABLE)
    return {item["record_id"]["S"] for page in pages for item in page["Items"]}


class FailingPuts:
    """Answers the PutItem of each record_id in `faults` with its error code, on its first
    `times` calls (None: on every call); other orders' puts go through. `calls` counts each
    record_id's puts, from however many threads."""

    def __init__(self, client: Any, faults: dict[str, tuple[str, int | None]]) -> None:
        self.faults = faults
        self.calls: dict[str, int] = {}
        self._lock = threading.Lock()
        client.meta.events.register("before-call.dynamodb.PutItem", self._before_call)

    def _before_call(
        self, params: dict[str, Any], **_: Any
    ) -> tuple[AWSResponse, dict[str, Any]] | None:
        body = params["body"]
        request = json.loads(body.decode() if isinstance(body, bytes) else body)
        record_id = request["Item"]["record_id"]["S"]
        with self._lock:
            calls = self.calls[record_id] = self.calls.get(record_id, 0) + 1
        code, times = self.faults.get(record_id, (None, 0))
        if code is None or (times is not None and calls > times):
            return None
        return error_reply(code, 500 if code == "InternalServerError" else 400)


def _assert_reply_matches_table(reply: dict[str, Any], body: Any, sent: int) -> None:
    """A 503 that asks for a resend; nothing reported stored that is not, and every order not
    stored is named (in request order)."""
    assert reply["statusCode"] == 503
    assert reply["headers"]["Retry-After"] == str(ingest_handler.RETRY_AFTER_SECONDS)
    assert (body["code"], body["request_id"]) == ("ORDERS_NOT_STORED", "faults-1")
    every = [f"r{i}" for i in range(sent)]
    stored = _stored_ids()
    assert body["created"] == [r for r in every if r in stored]
    assert body["not_stored"] == [r for r in every if r not in stored]
    assert body["amended"] == body["unchanged"] == body["refused"] == []


def _assert_resend_stores_the_rest_once(
    ingest: ModuleType, orders: list[dict[str, Any]], not_stored: list[str]
) -> None:
    """The whole request sent again (faults gone): the orders not stored are created, the
    stored ones unchanged, and the table holds each once."""
    reply, body = _post(ingest, _table(_client()), orders)
    assert reply["statusCode"] == 201, body
    assert body["created"] == not_stored
    assert body["unchanged"] == [o["record_id"] for o in orders if o["record_id"] not in not_stored]
    assert _stored_ids() == {o["record_id"] for o in orders}


def test_throttling_on_every_attempt_is_a_503_naming_the_orders_not_stored(
    ingest: ModuleType,
) -> None:
    client = _client()
    throttled = {f"r{i}" for i in range(25, 60, 3)}
    faults = FailingPuts(client, dict.fromkeys(throttled, ("ThrottlingException", None)))

    reply, body = _post(ingest, _table(client), _orders(60))

    _assert_reply_matches_table(reply, body, 60)
    assert set(body["not_stored"]) == throttled
    assert {faults.calls[r] for r in throttled} == {MAX_ATTEMPTS}, "retried, then given up"
    assert {faults.calls[r] for r in body["created"]} == {1}
    _assert_resend_stores_the_rest_once(ingest, _orders(60), body["not_stored"])


def test_different_faults_on_different_orders_are_named_exactly(ingest: ModuleType) -> None:
    """Throttled past the last attempt, a transient error that clears on a retry, and a
    non-transient error, each on orders of its own, in one request."""
    client = _client()
    faults = FailingPuts(
        client,
        {
            "r3": ("ProvisionedThroughputExceededException", None),
            "r30": ("InternalServerError", MAX_ATTEMPTS - 1),
            "r31": ("ThrottlingException", 1),
            "r50": ("AccessDeniedException", None),
        },
    )

    reply, body = _post(ingest, _table(client), _orders(60))

    _assert_reply_matches_table(reply, body, 60)
    assert body["not_stored"] == ["r3", "r50"]
    assert {"r30", "r31"} <= set(body["created"]), "stored on a retry"
    assert (faults.calls["r3"], faults.calls["r30"], faults.calls["r31"]) == (MAX_ATTEMPTS,) * 2 + (
        2,
    )
    assert faults.calls["r50"] == 1, "a non-transient error is not retried"
    _assert_resend_stores_the_rest_once(ingest, _orders(60), ["r3", "r50"])


def test_a_non_transient_error_is_not_retried_and_never_a_201(ingest: ModuleType) -> None:
    client = _client()
    denied = [f"r{i}" for i in range(25, 30)]
    faults = FailingPuts(client, dict.fromkeys(denied, ("AccessDeniedException", None)))

    reply, body = _post(ingest, _table(client), _orders(30))

    _assert_reply_matches_table(reply, body, 30)
    assert body["not_stored"] == denied
    assert all(faults.calls[r] == 1 for r in denied)


@pytest.fixture(scope="module")
def running() -> Iterator[Running]:
    with local_system() as running:
        yield running


def test_an_ingest_crash_mid_request_is_an_error_and_a_resend_stores_each_order_once(
    running: Running,
) -> None:
    """The function dies after its 40th put (a timeout, running out of memory, a bug): the
    client gets API Gateway's 502, never a 201, and sends the request again, as after any
    error. The resend creates the orders the crash left out and leaves the stored ones
    unchanged (their own receipt kept): each order is stored once."""
    orders = [
        {"record_id": f"crash-{i}", "parameter_1": "first", "parameter_2": i} for i in range(100)
    ]
    # A first request makes the handler's table in its function's environment (the local runtime
    # runs it in this process); the crash goes into the client that table uses.
    warm_up = [{"record_id": "warm-up", "parameter_1": "p", "parameter_2": 0}]
    assert running.post(warm_up)[0] == 201
    client = ingest_handler.orders_table()._client
    calls = 0
    lock = threading.Lock()

    def crash_after_40_puts(**_: Any) -> None:
        """Stands for the function dying mid-request: no put after the 40th is made."""
        nonlocal calls
        with lock:
            calls += 1
            if calls > 40:
                raise RuntimeError("injected crash after 40 puts")

    client.meta.events.register("before-call.dynamodb.PutItem", crash_after_40_puts)

    status, reply = running.post(orders)

    assert status == 502, reply  # API Gateway's answer to a failed Lambda: never a 201
    assert reply["code"] == "DEFAULT_5XX", reply
    first = {r: item for r, item in running.stored().items() if r.startswith("crash-")}
    assert len(first) == 40, "the puts made before the crash landed"

    ingest_handler.orders_table.cache_clear()  # the next request meets a new container
    status, reply = running.post(orders)

    assert status == 201, reply
    every = [order["record_id"] for order in orders]
    assert reply["created"] == [r for r in every if r not in first]
    assert reply["unchanged"] == [r for r in every if r in first]
    items = {r: item for r, item in running.stored().items() if r.startswith("crash-")}
    assert len(items) == 100, "each order once"
    for record_id, item in items.items():
        if record_id in first:
            assert item == first[record_id], "a stored order is not written again"
        else:
            assert item["received_at"] == reply["received_at"]
    assert all(items[f"crash-{i}"]["parameter_2"] == Decimal(i) for i in range(100))
