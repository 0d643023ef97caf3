"""POST /orders against a DynamoDB that fails below botocore's retries: the reply comes in time.

Each invocation is a cold one: the ingest handler makes its table in the call, with the client
pointed at a local HTTP server (tests/faults/dynamodb_http.py) through AWS_ENDPOINT_URL, so
botocore's retries, its backoff sleeps, the read timeout and the table's own retries all take
real time, for each order's conditional PutItem (run in parallel). The figures these tests bound
generously are in docs/hardening.md.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from entrix import settings
from entrix.aws import clients
from entrix.handlers import ingest
from tests.faults.dynamodb_http import Fault, FaultyDynamoDB, faulty_dynamodb
from tests.support.api_events import api_event
from tests.support.lambda_context import lambda_context

TABLE = "orders-time-budget"
USAGE_TABLE = "client-usage-time-budget"
UPDATE_ITEM = "DynamoDB_20120810.UpdateItem"
PUT_ITEM = "DynamoDB_20120810.PutItem"
SHORT_REMAINING_MS = 15_000
# The ingest function's timeout (infra/constructs/intake.py); API Gateway gives up at 29 s.
LAMBDA_TIMEOUT_MS = 28_000
API_GATEWAY_TIMEOUT_S = 29

Reply = tuple[int, dict[str, Any], float]


class Calls:
    """What the ingest client did: `calls` (API calls the table made) and `attempts` (HTTP
    requests botocore sent for them, its own retries included)."""

    def __init__(self) -> None:
        self.calls = 0
        self.attempts = 0
        self._lock = threading.Lock()

    def client(self, service: str, config: Any = None) -> Any:
        """entrix.aws.clients.client, counting what the client it makes does."""
        made = clients.client(service, config)
        made.meta.events.register("before-call", self._call)
        made.meta.events.register("before-send", self._attempt)
        return made

    def _call(self, **_: Any) -> None:
        with self._lock:
            self.calls += 1

    def _attempt(self, **_: Any) -> None:
        with self._lock:
            self.attempts += 1


@pytest.fixture(autouse=True)
def _table_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(settings.ORDERS_TABLE_NAME.name, TABLE)
    monkeypatch.setenv(settings.CLIENT_USAGE_TABLE_NAME.name, USAGE_TABLE)


def _post(
    server: FaultyDynamoDB, count: int, remaining_ms: int, calls: Calls | None = None
) -> Reply:
    """The status, body and wall time of one cold invocation with `remaining_ms` left (its
    orders client's calls counted by `calls`)."""
    reply, elapsed = _invoke(server, count, remaining_ms, calls)
    return reply["statusCode"], json.loads(reply["body"]), elapsed


def _invoke(
    server: FaultyDynamoDB, count: int, remaining_ms: int, calls: Calls | None = None
) -> tuple[dict[str, Any], float]:
    """The reply and wall time of one cold invocation: both tables' clients are pointed at
    `server`, which answers the table it keeps healthy."""
    orders = [{"record_id": f"r{i}", "parameter_1": "p", "parameter_2": i} for i in range(count)]
    event = api_event(
        request_id="time-budget",
        headers={"Content-Type": "application/json"},
        body=json.dumps(orders),
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ENDPOINT_URL", server.url)
        if calls is not None:
            patch.setattr(ingest, "client", calls.client)
        ingest.orders_table.cache_clear()  # made in the call, with the client pointed at `server`
        ingest.client_usage.cache_clear()
        started = time.monotonic()
        reply = ingest.handler(event, lambda_context(remaining_ms))
        elapsed = time.monotonic() - started
    ingest.orders_table.cache_clear()
    ingest.client_usage.cache_clear()
    return reply, elapsed


def _every_id(count: int) -> list[str]:
    return [f"r{i}" for i in range(count)]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("fault", ["throttle", "hang"])
def test_a_failing_dynamodb_gets_a_503_naming_every_order_within_a_short_remaining_time(
    fault: Fault,
) -> None:
    calls = Calls()
    with faulty_dynamodb(fault, healthy_table=USAGE_TABLE) as server:
        status, reply, elapsed = _post(server, 60, SHORT_REMAINING_MS, calls)

    print(
        f"{fault}: {status} after {elapsed:.2f} s, {calls.calls} calls, {calls.attempts} "
        f"attempts, {server.requests} HTTP requests"
    )
    assert status == 503
    assert reply["not_stored"] == _every_id(60)
    assert reply["created"] == []
    assert elapsed < SHORT_REMAINING_MS / 1000, "the reply came after the invocation's end"
    assert server.targets == {PUT_ITEM}
    # botocore retried below the table's calls: the fault is below its retries. Not every call
    # gets its second attempt: the parallel puts share the client's retry quota (botocore's
    # standard mode), which a DynamoDB failing every request empties.
    assert calls.calls < calls.attempts <= 2 * calls.calls
    assert 2 <= server.requests <= calls.attempts


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.parametrize(
    ("fault", "accept_every", "count"),
    [("throttle", 0, 60), ("hang", 0, 60), ("throttle", 4, 1000)],
    ids=["throttled", "hanging", "mostly-throttled-1000"],
)
def test_with_production_figures_the_reply_beats_the_function_and_api_gateway_timeouts(
    fault: Fault, accept_every: int, count: int
) -> None:
    """ "mostly-throttled-1000" lets every 4th request through: the orders make slow progress,
    so it is the deadline, not the table's attempts per order, that ends the writes."""
    with faulty_dynamodb(fault, accept_every, USAGE_TABLE) as server:
        status, reply, elapsed = _post(server, count, LAMBDA_TIMEOUT_MS)

    print(
        f"{fault}/{accept_every}: {status} after {elapsed:.2f} s, {server.requests} HTTP "
        f"requests, {len(server.accepted)} orders accepted"
    )
    assert elapsed < LAMBDA_TIMEOUT_MS / 1000 < API_GATEWAY_TIMEOUT_S
    assert status == 503
    assert sorted(reply["created"]) == sorted(server.accepted)
    not_stored = reply["not_stored"]
    assert sorted([*server.accepted, *not_stored]) == sorted(_every_id(count))
    if accept_every:
        assert server.accepted, "some orders got through before the deadline"
        assert not_stored, "and the deadline ended the writes before the last order"


@pytest.mark.timeout(120)
def test_the_orders_table_throttled_at_its_ceiling_is_a_503_with_retry_after_and_a_refund() -> None:
    """Past its on-demand maximum throughput the table throttles (throttling reason
    MaxOnDemandThroughputExceeded), as this server does below botocore's retries: every order
    is named under not_stored in a 503 with Retry-After, and the orders charged to the client's
    day are given back (the usage table: a request charge, an order charge and the refund)."""
    with faulty_dynamodb("throttle", healthy_table=USAGE_TABLE) as server:
        reply, _ = _invoke(server, 20, SHORT_REMAINING_MS)
    assert reply["statusCode"] == 503
    assert reply["headers"]["Retry-After"] == "1"
    body = json.loads(reply["body"])
    assert (body["code"], body["not_stored"]) == ("ORDERS_NOT_STORED", _every_id(20))
    assert server.targets == {PUT_ITEM}
    assert server.healthy_requests == 3


@pytest.mark.timeout(120)
def test_a_throttled_usage_table_is_a_503_with_retry_after_and_nothing_written() -> None:
    """The usage table throttled below botocore's retries: the request is not counted, so it is
    not served either (failing open would let a client past its share when the table is under
    most load); nothing is written to the orders table."""
    with faulty_dynamodb("throttle", healthy_table=TABLE) as server:
        reply, elapsed = _invoke(server, 20, SHORT_REMAINING_MS)
    assert reply["statusCode"] == 503
    assert reply["headers"]["Retry-After"] == "1"
    assert json.loads(reply["body"])["code"] == "USAGE_UNAVAILABLE"
    assert server.targets == {UPDATE_ITEM}
    # One attempt: the fault is below botocore's retries, and an ADD is never replayed.
    assert server.requests == 1
    assert server.healthy_requests == 0, "no order was written"
    assert elapsed < 10
