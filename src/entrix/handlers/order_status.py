"""GET /orders/{record_id} (Lambda proxy integration): the caller's stored order and its status.

An order is looked up under the caller's own key (entrix.orders.lifecycle.order_key), so another
client's order with the same record_id is not found: the reply is the same 404 as for an unknown
id. DynamoDB's TTL deletes an expired order only eventually (up to days later), so expiry is
checked here rather than trusted to the table: an order still stored but past its `expires_at`
is answered 404 (as the API promises for an expired order) with code ORDER_EXPIRED, which tells
the client it existed; once the TTL deleted it, the answer is 404 NOT_FOUND and its history is
in the results bucket's history/ (docs/architecture.md).
"""

from __future__ import annotations

import functools
import time
from typing import Any

from entrix import settings
from entrix.aws.client_usage import ClientUsage
from entrix.aws.clients import client
from entrix.aws.orders_table import OrdersTable
from entrix.handlers import fair_share
from entrix.http import (
    Unauthenticated,
    caller,
    expired,
    not_found,
    path_record_id,
    response,
    unauthenticated,
)
from entrix.orders import lifecycle


@functools.cache
def orders_table() -> OrdersTable:
    """The function's table, made on the first invocation and kept for the container's life
    (a test that changes the environment calls `orders_table.cache_clear()`)."""
    return OrdersTable(client("dynamodb"), settings.ORDERS_TABLE_NAME.read())


@functools.cache
def client_usage() -> ClientUsage:
    """The function's client usage table, made and kept as `orders_table` is."""
    return fair_share.client_usage()


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    return handle(event, orders_table(), time.time(), usage=client_usage())


def handle(
    event: dict[str, Any], table: OrdersTable, now: float, *, usage: ClientUsage
) -> dict[str, Any]:
    """The reply to one GET /orders/{record_id} event; an order expired at `now` is 404 with
    code ORDER_EXPIRED."""
    try:
        owner = caller(event, now)
    except Unauthenticated as refusal:
        return unauthenticated(event, refusal)
    refused = fair_share.charge_request(event, usage, owner, now)
    if refused is not None:
        return refused
    record_id = path_record_id(event)
    if record_id is None:
        return not_found(event, None)
    item = table.get_order(owner, record_id)
    if item is None:
        return not_found(event, record_id)
    if lifecycle.expired(item, now):
        return expired(event, record_id, item["expires_at"])
    return response(200, lifecycle.public_view(item))
