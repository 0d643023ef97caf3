"""The orders table inside moto for tests that need one, and its items as Python values."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from moto import mock_aws

from entrix.aws.orders_table import plain_item
from entrix.orders.intake import pending_shard


@contextmanager
def moto_orders_table(name: str) -> Iterator[Any]:
    """A mocked AWS with an on-demand table `name` keyed on record_id; yields its client."""
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="eu-west-1")
        dynamodb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "record_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "record_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield dynamodb


def table_items(dynamodb: Any, table: str) -> dict[str, dict[str, Any]]:
    """Every item of `table` by record_id, attributes as Python values (numbers as Decimal)."""
    pages = dynamodb.get_paginator("scan").paginate(TableName=table)
    return {item["record_id"]["S"]: plain_item(item) for page in pages for item in page["Items"]}


# For the pipeline's tests: the table with its pending index, orders as the intake stores them.
TABLE = "orders-results-test"
INDEX = "pending-results"


def create_orders_table(dynamodb: Any) -> None:
    """The orders table with the pipeline's pending index, as the CDK stack defines them."""
    dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "record_id", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": "record_id", "AttributeType": "S"},
            {"AttributeName": "pending_shard", "AttributeType": "S"},
            {"AttributeName": "received_at", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": INDEX,
                "KeySchema": [
                    {"AttributeName": "pending_shard", "KeyType": "HASH"},
                    {"AttributeName": "received_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )


def put_order(
    dynamodb: Any, record_id: str, status: str = "pending", received_at: str = "2026-11-25T10:00Z"
) -> None:
    item = {
        "record_id": {"S": record_id},
        "parameter_1": {"S": "buy"},
        "parameter_2": {"N": "2.1"},
        "received_at": {"S": received_at},
        "expires_at": {"N": "1900000000"},
        "result_status": {"S": status},
    }
    if status == "pending":  # as the intake stores it: only waiting orders are in the index
        item["pending_shard"] = {"S": pending_shard(record_id)}
    dynamodb.put_item(TableName=TABLE, Item=item)
