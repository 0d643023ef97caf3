"""GET /orders (Lambda proxy integration): the caller's own orders, newest first, page by page.

Query string: `result_status` (pending, accepted, rejected or cancelled; all when absent),
`limit` (1 to MAX_LIMIT, DEFAULT_LIMIT when absent) and `cursor` (the `next_cursor` of the
previous page, opaque to the client). The orders come from the owner-orders index, spread over
16 partitions per owner (entrix.orders.lifecycle.owner_shard) and merged newest first; the index
holds keys only, so each page's orders are read from the table (BatchGetItem), and the status
and expiry are checked on those items. A page looks at no more than MAX_EXAMINED orders, so a
filtered page may hold fewer than `limit` orders and still have a `next_cursor`; listing ends
when `next_cursor` is null. The index is eventually consistent: an order stored a moment ago may
appear on the next call (GET /orders/{record_id} reads it consistently).
"""

from __future__ import annotations

import base64
import binascii
import functools
import time
from collections.abc import Mapping
from typing import Any

from entrix import settings
from entrix.aws.client_usage import ClientUsage
from entrix.aws.clients import client
from entrix.aws.orders_table import OrdersTable
from entrix.handlers import fair_share
from entrix.http import (
    BAD_REQUEST_BODY,
    Unauthenticated,
    caller,
    error,
    response,
    unauthenticated,
)
from entrix.orders import lifecycle

DEFAULT_LIMIT = 50
MAX_LIMIT = 100
MAX_EXAMINED = 1_000


@functools.cache
def orders_table() -> OrdersTable:
    """The function's table, made on the first invocation and kept for the container's life
    (a test that changes the environment calls `orders_table.cache_clear()`)."""
    return OrdersTable(client("dynamodb"), settings.ORDERS_TABLE_NAME.read())


@functools.cache
def client_usage() -> ClientUsage:
    """The function's client usage table, made and kept as `orders_table` is."""
    return fair_share.client_usage()


class _BadQuery(ValueError):
    """A query string parameter the listing cannot take; the message names it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field} {reason}")
        self.field = field
        self.reason = reason


def encode_cursor(version: str) -> str:
    """The cursor of a page that ended at `version`."""
    return base64.urlsafe_b64encode(version.encode("utf-8")).decode("ascii").rstrip("=")


# A version is about 40 characters; anything much longer is no cursor of ours (and DynamoDB
# refuses a key condition value over 1,024 bytes).
MAX_CURSOR_CHARS = 200


def _decode_cursor(cursor: str) -> str:
    if len(cursor) > MAX_CURSOR_CHARS:
        raise _BadQuery("cursor", "is not a cursor this API gave")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        version = base64.urlsafe_b64decode(padded.encode("ascii")).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        raise _BadQuery("cursor", "is not a cursor this API gave") from None
    if not version or version.count("/") != 2:
        raise _BadQuery("cursor", "is not a cursor this API gave")
    return version


def _query(event: Mapping[str, Any]) -> tuple[str | None, int, str | None]:
    """The status wanted, the page size and where the page starts."""
    parameters = event.get("queryStringParameters") or {}
    status = parameters.get("result_status")
    if status is not None and status not in lifecycle.RESULT_STATUSES:
        raise _BadQuery("result_status", f"must be one of {', '.join(lifecycle.RESULT_STATUSES)}")
    raw_limit = parameters.get("limit")
    limit = DEFAULT_LIMIT
    if raw_limit is not None:
        if (
            not (raw_limit.isascii() and raw_limit.isdigit())
            or not 1 <= int(raw_limit) <= MAX_LIMIT
        ):
            raise _BadQuery("limit", f"must be a whole number from 1 to {MAX_LIMIT}")
        limit = int(raw_limit)
    cursor = parameters.get("cursor")
    return status, limit, None if cursor is None else _decode_cursor(cursor)


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    return handle(event, orders_table(), time.time(), usage=client_usage())


def handle(
    event: dict[str, Any], table: OrdersTable, now: float, *, usage: ClientUsage
) -> dict[str, Any]:
    """The reply to one GET /orders event at `now`."""
    try:
        owner = caller(event, now)
    except Unauthenticated as refusal:
        return unauthenticated(event, refusal)
    refused = fair_share.charge_request(event, usage, owner, now)
    if refused is not None:
        return refused
    try:
        status, limit, before = _query(event)
    except _BadQuery as bad:
        return error(
            event,
            400,
            BAD_REQUEST_BODY,
            f"invalid query string: {bad}",
            errors=[{"index": None, "field": bad.field, "reason": bad.reason}],
        )

    def wanted(item: Mapping[str, Any]) -> bool:
        return not lifecycle.expired(item, now) and status in (None, item.get("result_status"))

    page = table.list_orders(
        settings.ORDERS_OWNER_INDEX_NAME.read(), owner, limit, before, wanted, MAX_EXAMINED
    )
    return response(
        200,
        {
            "orders": [lifecycle.public_view(item) for item in page.items],
            "next_cursor": None if page.next_before is None else encode_cursor(page.next_before),
        },
    )
