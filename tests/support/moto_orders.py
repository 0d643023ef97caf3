"""The orders table inside moto for tests that need one, and its items as Python values."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer
from moto import mock_aws


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
    deserializer = TypeDeserializer()
    pages = dynamodb.get_paginator("scan").paginate(TableName=table)
    return {
        item["record_id"]["S"]: {k: deserializer.deserialize(v) for k, v in item.items()}
        for page in pages
        for item in page["Items"]
    }
