"""The local TTL sweeper's cost at a table's size: one sweep next to a full Scan of the table.

The sweeper runs every 5 s inside `entrix local`, on the same two cores as the API. A sweep that
read every item (as a full Scan does) took seconds at 10,000 orders and throttled the API while it
ran; the sweep filters and projects on the server instead. Measured in process with moto.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import boto3
from moto import mock_aws

from entrix.local.ttl import sweep

TABLE = "orders"


def _fill(dynamodb: Any, items: int, expires_at: int) -> None:
    for start in range(0, items, 25):
        dynamodb.batch_write_item(
            RequestItems={
                TABLE: [
                    {
                        "PutRequest": {
                            "Item": {
                                "record_id": {"S": f"order-{index}"},
                                "parameter_1": {"S": "p"},
                                "parameter_2": {"N": "2.1"},
                                "received_at": {"S": "2026-11-25T10:00:00.000Z"},
                                "result_status": {"S": "pending"},
                                "expires_at": {"N": str(expires_at)},
                            }
                        }
                    }
                    for index in range(start, min(start + 25, items))
                ]
            }
        )


def _full_scan(dynamodb: Any) -> int:
    arguments: dict[str, Any] = {"TableName": TABLE}
    count = 0
    while True:
        page = dynamodb.scan(**arguments)
        count += len(page["Items"])
        if "LastEvaluatedKey" not in page:
            return count
        arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def measure(items: int = 10_000, repeats: int = 3) -> tuple[float, float]:
    """Median seconds of one sweep (nothing expired but one item) and of one full Scan."""
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="eu-west-1")
        dynamodb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "record_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "record_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        now = time.time()
        _fill(dynamodb, items, int(now) + 86_400)
        sweeps, scans = [], []
        for _ in range(repeats):
            dynamodb.put_item(
                TableName=TABLE,
                Item={"record_id": {"S": "expired"}, "expires_at": {"N": str(int(now) - 1)}},
            )
            started = time.perf_counter()
            if sweep(dynamodb, TABLE, "expires_at", now) != 1:
                raise RuntimeError("the sweep did not delete the one expired item")
            middle = time.perf_counter()
            if _full_scan(dynamodb) != items:
                raise RuntimeError("the full scan did not read every item")
            sweeps.append(middle - started)
            scans.append(time.perf_counter() - middle)
        return statistics.median(sweeps), statistics.median(scans)
