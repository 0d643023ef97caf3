"""The order history in the local system: the table's stream, polled as Lambda's event source
mapping would, runs the archiver; an order that expires is still in history/ afterwards."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from entrix.local import harness
from tests.support.local_system import Running

# Written in many digits on purpose: the history must keep them exactly, never via a float.
PARAMETER_2 = "-3.4028234660E+38"
PATIENCE_SECONDS = 60


@pytest.fixture(scope="module")
def running() -> Iterator[Running]:
    with harness.in_process(ttl_sweep_seconds=0.2) as system:
        table = harness.orders_table(system)
        yield Running(system=system, token=harness.sign_token(system, "desk-h"), table=table)


def history_lines(running: Running) -> list[dict[str, Any]]:
    s3 = running.client("s3")
    (bucket,) = [
        spec.environment["RESULTS_BUCKET_NAME"]
        for spec in harness.deployment_of(running.system).functions.values()
        if spec.handler == "entrix.handlers.archive.handler"
    ]
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="history/").get("Contents", [])
    return [
        json.loads(line, parse_float=Decimal)
        for o in sorted(listed, key=lambda o: o["Key"])
        for line in s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read().splitlines()
    ]


def lines_of(running: Running, record_id: str, until: str) -> list[dict[str, Any]]:
    """The order's history lines once its `until` event is archived (the poller and the
    sweeper run on their own threads)."""
    deadline = time.monotonic() + PATIENCE_SECONDS
    while True:
        lines = [line for line in history_lines(running) if line.get("record_id") == record_id]
        if any(line["event"] == until for line in lines) or time.monotonic() > deadline:
            return lines
        time.sleep(0.2)


def test_an_order_that_expired_unprocessed_is_in_the_history_with_exact_numbers(
    running: Running,
) -> None:
    body = '[{"record_id": "hist-1", "parameter_1": "buy", "parameter_2": ' + PARAMETER_2 + "}]"
    request = urllib.request.Request(
        running.orders_url,
        data=body.encode(),
        method="POST",
        headers={"Authorization": f"Bearer {running.token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        assert answer.status == 201
        reply = json.loads(answer.read())
    dynamodb = running.client("dynamodb")
    # As if its 24 hours were over: the local sweeper deletes it as DynamoDB's TTL would.
    dynamodb.update_item(
        TableName=running.table,
        Key={"order_key": {"S": "desk-h#hist-1"}},
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}},
    )

    lines = lines_of(running, "hist-1", until="expired")

    assert [line["event"] for line in lines] == ["received", "expired"], lines
    received, expired = lines
    assert received["owner"] == "desk-h" and received["parameter_1"] == "buy"
    assert received["parameter_2"] == Decimal(PARAMETER_2)
    assert received["expires_at"] == reply["expires_at"]
    assert received["received_at"] == reply["received_at"]
    assert expired["result_status"] == "pending"
    assert "hist-1" not in running.stored()
