"""Orders stored and read as the service does, for the pipeline, fault and property tests.

- `post_orders`: the ingest handler's own path (parse, `lifecycle.stored_item`, one conditional
  put per order) for `owner`, against any table; its reply.
- `stored_items` and `pending_index`: the table by key and what the pending-results index holds,
  read independently of the adapters under test (a scan of the table, a scan of the index).
"""

from __future__ import annotations

import json
from typing import Any

from entrix.aws.orders_table import Backoff, OrdersTable, plain_item
from entrix.handlers import ingest
from tests.support.api_events import api_event
from tests.support.moto_orders import INDEX
from tests.support.moto_usage import unlimited_usage


def post_orders(
    dynamodb: Any, table: str, orders: list[dict[str, Any]], owner: str, now: float
) -> tuple[int, dict[str, Any]]:
    """`owner`'s POST /orders of `orders` at `now` (the token far from expiry), through the
    ingest handler against the table `table` (retries not paused); its status and reply body."""
    event = api_event(owner, headers={"Content-Type": "application/json"}, body=json.dumps(orders))
    reply = ingest.handle(
        event,
        OrdersTable(dynamodb, table, Backoff(sleep=_no_pause)),
        now,
        usage=unlimited_usage(dynamodb),
    )
    return reply["statusCode"], json.loads(reply["body"])


def _no_pause(_: float) -> None:
    """Retries without the backoff's sleep."""


def stored_items(dynamodb: Any, table: str) -> dict[str, dict[str, Any]]:
    """Every item of `table` by its key (`<owner>#<record_id>`), numbers as Decimal."""
    pages = dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
    return {
        item["order_key"]: item
        for page in pages
        for item in (plain_item(raw) for raw in page["Items"])
    }


def pending_index(dynamodb: Any, table: str, index: str = INDEX) -> dict[str, str]:
    """What the pending-results index holds: the version of each order key in it."""
    pages = dynamodb.get_paginator("scan").paginate(TableName=table, IndexName=index)
    return {raw["order_key"]["S"]: raw["version"]["S"] for page in pages for raw in page["Items"]}
