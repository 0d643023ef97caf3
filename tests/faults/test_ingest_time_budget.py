"""POST /orders against a DynamoDB that fails below botocore's retries: the reply comes in time.

Each invocation is a cold one: the ingest handler makes its table in the call, with the client
pointed at a local HTTP server (tests/faults/dynamodb_http.py) through AWS_ENDPOINT_URL, so
botocore's retries, its backoff sleeps, the read timeout and the table's own retries all take
real time. The figures
these tests bound generously are in docs/hardening.md.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from entrix import settings
from entrix.handlers import ingest
from tests.faults.dynamodb_http import Fault, FaultyDynamoDB, faulty_dynamodb
from tests.support.lambda_context import lambda_context

TABLE = "orders-time-budget"
BATCH_WRITE = "DynamoDB_20120810.BatchWriteItem"
SHORT_REMAINING_MS = 15_000
# The ingest function's timeout (infra/constructs/intake.py); API Gateway gives up at 29 s.
LAMBDA_TIMEOUT_MS = 28_000
API_GATEWAY_TIMEOUT_S = 29

Reply = tuple[int, dict[str, Any], float]


@pytest.fixture(autouse=True)
def _table_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(settings.ORDERS_TABLE_NAME.name, TABLE)


def _post(server: FaultyDynamoDB, count: int, remaining_ms: int) -> Reply:
    """The status, body and wall time of one cold invocation with `remaining_ms` left."""
    orders = [{"record_id": f"r{i}", "parameter_1": "p", "parameter_2": i} for i in range(count)]
    event = {
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(orders),
        "requestContext": {"requestId": "time-budget"},
    }
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ENDPOINT_URL", server.url)
        ingest.orders_table.cache_clear()  # made in the call, with the client pointed at `server`
        started = time.monotonic()
        reply = ingest.handler(event, lambda_context(remaining_ms))
        elapsed = time.monotonic() - started
    ingest.orders_table.cache_clear()
    return reply["statusCode"], json.loads(reply["body"]), elapsed


def _every_id(count: int) -> list[str]:
    return [f"r{i}" for i in range(count)]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("fault", ["throttle", "hang"])
def test_a_failing_dynamodb_gets_a_503_naming_every_order_within_a_short_remaining_time(
    fault: Fault,
) -> None:
    with faulty_dynamodb(fault) as server:
        status, reply, elapsed = _post(server, 60, SHORT_REMAINING_MS)

    print(f"{fault}: {status} after {elapsed:.2f} s, {server.requests} HTTP requests")
    assert status == 503
    assert reply["record_ids_not_stored"] == _every_id(60)
    assert reply["stored"] == 0
    assert elapsed < SHORT_REMAINING_MS / 1000, "the reply came after the invocation's end"
    assert server.targets == {BATCH_WRITE}
    # botocore made its two attempts per call: the fault is below its retries.
    assert server.requests >= 2
    assert server.requests % 2 == 0


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
    """ "mostly-throttled-1000" lets every 4th request through: the batches make slow progress,
    so it is the deadline, not the table's attempts per batch, that ends the writes."""
    with faulty_dynamodb(fault, accept_every) as server:
        status, reply, elapsed = _post(server, count, LAMBDA_TIMEOUT_MS)

    print(
        f"{fault}/{accept_every}: {status} after {elapsed:.2f} s, {server.requests} HTTP "
        f"requests, {len(server.accepted)} orders accepted"
    )
    assert elapsed < LAMBDA_TIMEOUT_MS / 1000 < API_GATEWAY_TIMEOUT_S
    assert status == 503
    assert reply["stored"] == len(server.accepted)
    not_stored = reply["record_ids_not_stored"]
    assert sorted([*server.accepted, *not_stored]) == sorted(_every_id(count))
    if accept_every:
        assert server.accepted, "some batches got through before the deadline"
        assert not_stored, "and the deadline ended the writes before the last batch"
