"""The orders table inside moto for tests that need one, and its items as Python values."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from moto import mock_aws

from entrix import settings
from entrix.aws.orders_table import plain_item
from entrix.orders import lifecycle

# For the pipeline's tests: the table with its indexes, orders as the intake stores them.
TABLE = "orders-results-test"
INDEX = settings.ORDERS_PENDING_INDEX_NAME.text()
OWNER_INDEX = settings.ORDERS_OWNER_INDEX_NAME.text()
# The owner of the orders a test stores without naming one.
OWNER = "desk-a"


def _index(name: str, partition_key: str) -> dict[str, Any]:
    return {
        "IndexName": name,
        "KeySchema": [
            {"AttributeName": partition_key, "KeyType": "HASH"},
            {"AttributeName": "version", "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "KEYS_ONLY"},
    }


def create_orders_table(dynamodb: Any, name: str = TABLE) -> None:
    """The orders table with its pending-results and owner-orders indexes, as the CDK stack
    defines them (tests/infra checks the template against the same keys)."""
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "order_key", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": attribute, "AttributeType": "S"}
            for attribute in ("order_key", "pending_shard", "owner_shard", "version")
        ],
        GlobalSecondaryIndexes=[
            _index(INDEX, "pending_shard"),
            _index(OWNER_INDEX, "owner_shard"),
        ],
        BillingMode="PAY_PER_REQUEST",
    )


@contextmanager
def moto_orders_table(name: str) -> Iterator[Any]:
    """A mocked AWS with the orders table `name` and its indexes; yields its client."""
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="eu-west-1")
        create_orders_table(dynamodb, name)
        yield dynamodb


def table_items(dynamodb: Any, table: str) -> dict[str, dict[str, Any]]:
    """Every item of `table` by record_id (one owner's orders: a record_id seen twice fails),
    attributes as Python values (numbers as Decimal)."""
    items: dict[str, dict[str, Any]] = {}
    for page in dynamodb.get_paginator("scan").paginate(TableName=table):
        for raw in page["Items"]:
            item = plain_item(raw)
            assert item["record_id"] not in items, f"{item['record_id']!r} of two owners"
            items[item["record_id"]] = item
    return items


def order_key(record_id: str, owner: str = OWNER) -> str:
    """The table key of `owner`'s order `record_id`."""
    return lifecycle.order_key(owner, record_id)


def put_order(
    dynamodb: Any,
    record_id: str,
    status: str = "pending",
    received_at: str = "2026-11-25T10:00:00.000Z",
    owner: str = OWNER,
) -> dict[str, Any]:
    """Store `owner`'s order as the intake stores it (then with `status`); the item."""
    item = lifecycle.stored_item(
        {"record_id": record_id, "parameter_1": "buy", "parameter_2": "2.1"},
        owner,
        received_at,
        1_900_000_000,
        lifecycle.version(received_at, "0123456789ab", 0),
    )
    typed: dict[str, Any] = {
        name: {"N": str(value)} if isinstance(value, int) else {"S": value}
        for name, value in item.items()
    }
    typed["parameter_2"] = {"N": "2.1"}
    if status != "pending":  # only waiting orders are in the pending index
        typed["result_status"] = {"S": status}
        del typed["pending_shard"]
    dynamodb.put_item(TableName=TABLE, Item=typed)
    return plain_item(typed)
