"""The client usage table inside moto, as the CDK stack defines it, and a share no test reaches."""

from __future__ import annotations

from typing import Any

import boto3

from entrix.aws.client_usage import ClientUsage
from entrix.orders.usage import Limits

USAGE_TABLE = "client-usage-test"
# For tests of something else: no test makes this many requests or orders.
UNLIMITED = Limits(rate_limit=10**9, window_seconds=10, daily_orders=10**12)


def create_usage_table(dynamodb: Any, name: str = USAGE_TABLE) -> None:
    """The usage table keyed on `usage_key` (infra/constructs/client_usage.py)."""
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "usage_key", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "usage_key", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


def unlimited_usage(dynamodb: Any | None = None, name: str = USAGE_TABLE) -> ClientUsage:
    """The usage table `name` (created if missing) with limits no test reaches, through
    `dynamodb` (by default a client of moto's mocked AWS)."""
    dynamodb = dynamodb or boto3.client("dynamodb", region_name="eu-west-1")
    if name not in dynamodb.list_tables()["TableNames"]:
        create_usage_table(dynamodb, name)
    return ClientUsage(dynamodb, name, UNLIMITED)
