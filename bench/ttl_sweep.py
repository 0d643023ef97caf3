"""The local TTL sweeper's cost at a table's size: one sweep next to a full Scan of the table.

The sweeper runs every 5 s inside `entrix local`, on the same two cores as the API. A sweep that
read every item (as a full Scan does) took seconds at 10,000 orders and throttled the API while it
ran; the sweep filters and projects on the server instead. Measured in process with moto, on
the orders table created from the synthesized template as `entrix local` creates it.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

from bench.report import Row, ratio
from entrix.local.deploy import Deployer
from entrix.local.endpoint import ACCOUNT_ID
from entrix.local.runtime import stack_region
from entrix.local.synth import STACK_NAME
from entrix.local.template import PseudoParameters, Template
from entrix.local.ttl import sweep


def _orders_table(template_path: Path) -> tuple[Any, str, str]:
    """The template's one table, deployed alone into the mocked account: a DynamoDB client, the
    table's name and its TTL attribute."""
    template = Template.load(template_path)
    (table,) = [  # the orders table: the client usage table has no index
        table
        for table in template.of_type("AWS::DynamoDB::Table")
        if "GlobalSecondaryIndexes" in table.properties
    ]
    region = stack_region(template_path, STACK_NAME)
    dynamodb = boto3.client("dynamodb", region_name=region)
    deployment = Deployer(
        Template(resources={table.logical_id: table}),
        lambda _service: dynamodb,
        pseudo=PseudoParameters(region=region, account_id=ACCOUNT_ID, stack_name=STACK_NAME),
    ).deploy()
    ((name, ttl_attribute),) = deployment.tables.items()
    if ttl_attribute is None:
        raise RuntimeError(f"{table.logical_id} has no TTL attribute to sweep")
    return dynamodb, name, ttl_attribute


def _fill(dynamodb: Any, table: str, ttl_attribute: str, items: int, expires_at: int) -> None:
    for start in range(0, items, 25):
        dynamodb.batch_write_item(
            RequestItems={
                table: [
                    {
                        "PutRequest": {
                            "Item": {
                                "order_key": {"S": f"bench#order-{index}"},
                                "record_id": {"S": f"order-{index}"},
                                "parameter_1": {"S": "p"},
                                "parameter_2": {"N": "2.1"},
                                "received_at": {"S": "2026-11-25T10:00:00.000Z"},
                                "result_status": {"S": "pending"},
                                ttl_attribute: {"N": str(expires_at)},
                            }
                        }
                    }
                    for index in range(start, min(start + 25, items))
                ]
            }
        )


def _full_scan(dynamodb: Any, table: str) -> int:
    arguments: dict[str, Any] = {"TableName": table}
    count = 0
    while True:
        page = dynamodb.scan(**arguments)
        count += len(page["Items"])
        if "LastEvaluatedKey" not in page:
            return count
        arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def measure(template_path: Path, items: int = 10_000, repeats: int = 3) -> tuple[float, float]:
    """Median seconds of one sweep (nothing expired but one item) and of one full Scan."""
    with mock_aws():
        dynamodb, table, ttl_attribute = _orders_table(template_path)
        now = time.time()
        _fill(dynamodb, table, ttl_attribute, items, int(now) + 86_400)
        sweeps, scans = [], []
        for _ in range(repeats):
            dynamodb.put_item(
                TableName=table,
                Item={"order_key": {"S": "bench#expired"}, ttl_attribute: {"N": str(int(now) - 1)}},
            )
            started = time.perf_counter()
            if sweep(dynamodb, table, ttl_attribute, now) != 1:
                raise RuntimeError("the sweep did not delete the one expired item")
            middle = time.perf_counter()
            if _full_scan(dynamodb, table) != items:
                raise RuntimeError("the full scan did not read every item")
            sweeps.append(middle - started)
            scans.append(time.perf_counter() - middle)
        return statistics.median(sweeps), statistics.median(scans)


def rows(template_path: Path, items: int = 10_000, repeats: int = 3) -> list[Row]:
    sweep_seconds, scan_seconds = measure(template_path, items, repeats)
    return [
        Row(
            "local",
            f"TTL sweep of a {items:,}-item table (1 expired), every 5 s in `entrix local`",
            f"{sweep_seconds:.2f} s",
            f"{scan_seconds:.2f} s (full Scan of the table)",
            ratio(sweep_seconds, scan_seconds),
            "",
        )
    ]
