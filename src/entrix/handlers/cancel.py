"""DELETE /orders/{record_id} (Lambda proxy integration): cancel the caller's pending order.

One conditional update (entrix.aws.orders_table.OrdersTable.cancel): a pending order that no run
holds becomes `cancelled` and leaves the pending-results index, so no run processes it. 204 then,
and again for an order already cancelled (a retried DELETE is safe); 404 for an unknown, expired
or another client's order; 409 naming the order and its state once a run has claimed it or its
result is recorded.
"""

from __future__ import annotations

import functools
import time
from typing import Any

from entrix import settings
from entrix.aws.clients import client
from entrix.aws.orders_table import OrdersTable
from entrix.http import (
    ORDER_CONFLICT,
    Unauthenticated,
    caller,
    error,
    no_content,
    not_found,
    path_record_id,
    unauthenticated,
)
from entrix.telemetry import api_request_id, correlated
from entrix.timestamps import iso_milliseconds


@functools.cache
def orders_table() -> OrdersTable:
    """The function's table, made on the first invocation and kept for the container's life
    (a test that changes the environment calls `orders_table.cache_clear()`)."""
    return OrdersTable(client("dynamodb"), settings.ORDERS_TABLE_NAME.read())


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    with correlated(api_request_id(event)):
        return handle(event, orders_table(), time.time())


def handle(event: dict[str, Any], table: OrdersTable, now: float) -> dict[str, Any]:
    """The reply to one DELETE /orders/{record_id} event at `now`."""
    try:
        owner = caller(event, now)
    except Unauthenticated as refusal:
        return unauthenticated(event, refusal)
    record_id = path_record_id(event)
    if record_id is None:
        return not_found(event, None)
    outcome = table.cancel(owner, record_id, now, iso_milliseconds(now))
    if outcome.outcome == "cancelled":
        return no_content()
    if outcome.outcome == "not_found":
        return not_found(event, record_id)
    return error(
        event,
        409,
        ORDER_CONFLICT,
        f"order {record_id!r} is {outcome.state}: only a pending order no run has claimed can be "
        "cancelled",
        record_id=record_id,
        state=outcome.state,
    )
