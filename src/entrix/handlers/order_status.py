"""GET /orders/{record_id} (Lambda proxy integration): a stored order and its result status.

404 when unknown or expired: DynamoDB's TTL deletes expired items only eventually (up to days
later), so expiry is checked here rather than trusted to the table.
"""

from __future__ import annotations

import functools
import time
from typing import Any

from entrix import settings
from entrix.aws.clients import client
from entrix.aws.orders_table import OrdersTable
from entrix.http import response
from entrix.orders.limits import MAX_RECORD_ID_BYTES

# The attributes a client sees (docs/architecture.md); anything else in the item stays internal.
PUBLIC_FIELDS = (
    "record_id",
    "parameter_1",
    "parameter_2",
    "received_at",
    "expires_at",
    "result_status",
    "power",
    "result_run_id",
    "result_at",
)


@functools.cache
def orders_table() -> OrdersTable:
    """The function's table, made on the first invocation and kept for the container's life
    (a test that changes the environment calls `orders_table.cache_clear()`)."""
    return OrdersTable(client("dynamodb"), settings.ORDERS_TABLE_NAME.read())


def _not_found(record_id: str | None) -> dict[str, Any]:
    return response(404, {"message": "no such order", "record_id": record_id})


def _storable(record_id: str) -> bool:
    """Whether an order could have this id; others are not looked up (DynamoDB would refuse)."""
    try:
        return 0 < len(record_id.encode("utf-8")) <= MAX_RECORD_ID_BYTES
    except UnicodeEncodeError:
        return False


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    return handle(event, orders_table(), time.time())


def handle(event: dict[str, Any], table: OrdersTable, now: float) -> dict[str, Any]:
    """The reply to one GET /orders/{record_id} event; orders expired at `now` are not found."""
    record_id = (event.get("pathParameters") or {}).get("record_id")
    if not isinstance(record_id, str) or not _storable(record_id):
        return _not_found(None)
    item = table.get_item(record_id)
    if item is None or item.get("expires_at", 0) <= now:
        return _not_found(record_id)
    return response(200, {name: item[name] for name in PUBLIC_FIELDS if name in item})
