"""POST /orders (Lambda proxy integration): validate every order, then store them all.

201 when every order is stored; 400/413/415 naming each problem, with nothing stored; 503 naming
the record_ids DynamoDB did not take (the others are stored; re-sending overwrites). The writes
end by the invocation's deadline less a margin, so that the 503 arrives before API Gateway's
29 s and the function's own timeout (docs/hardening.md, "Time budget").
"""

from __future__ import annotations

import functools
import json
import logging
import time
from typing import TYPE_CHECKING, Any

from botocore.config import Config

from entrix import settings
from entrix.aws.clients import client
from entrix.aws.orders_table import Deadline, OrdersTable
from entrix.http import BadRequestBody, body_bytes, header, is_json_content, response
from entrix.orders.intake import (
    Receipt,
    RequestRejected,
    TooLarge,
    parse_orders,
    stored_item,
)
from entrix.telemetry import api_request_id, correlated, publish

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = logging.getLogger(__name__)

# Two attempts per call (the default's connect and read bounds): the longest call is then 12 s,
# and the table retries whole calls itself while the deadline allows one more.
DYNAMODB_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 2})


@functools.cache
def orders_table() -> OrdersTable:
    """The function's table, made on the first invocation and kept for the container's life, so
    every warm invocation reuses its client. A test that changes the environment clears it with
    `orders_table.cache_clear()`; one that injects a fault reaches the client through it."""
    return OrdersTable(client("dynamodb", DYNAMODB_CONFIG), settings.ORDERS_TABLE_NAME.read())


def _rejection(status: int, message: str, problems: list[dict[str, Any]]) -> dict[str, Any]:
    return response(status, {"message": message, "errors": problems})


def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    deadline = Deadline.from_context(context)
    with correlated(api_request_id(event)):
        reply = handle(event, orders_table(), time.time(), deadline)
        publish("ingest", **_order_counts(reply))
    return reply


def _order_counts(reply: dict[str, Any]) -> dict[str, int]:
    """The metrics of one reply: orders received, stored and not stored, or a refused request."""
    if reply["statusCode"] not in (201, 503):
        return {"RequestsRefused": 1}
    summary = json.loads(reply["body"])
    not_stored = len(summary.get("record_ids_not_stored", []))
    return {
        "OrdersReceived": summary["stored"] + not_stored,
        "OrdersStored": summary["stored"],
        "OrdersNotStored": not_stored,
    }


def handle(
    event: dict[str, Any], table: OrdersTable, now: float, deadline: Deadline | None = None
) -> dict[str, Any]:
    """The reply to one POST /orders event, storing into `table` orders received at `now`,
    with the writes over by `deadline` (when given)."""
    if not is_json_content(header(event, "Content-Type")):
        return _rejection(
            415,
            "Content-Type must be application/json",
            [{"index": None, "field": "Content-Type", "reason": "must be application/json"}],
        )
    try:
        body = body_bytes(event)
    except BadRequestBody:
        return _rejection(
            400,
            "the body could not be decoded",
            [{"index": None, "field": "", "reason": "invalid UTF-8 text or invalid base64"}],
        )
    try:
        orders = parse_orders(body)
    except RequestRejected as rejected:
        status = 413 if isinstance(rejected, TooLarge) else 400
        problems = [problem.as_json() for problem in rejected.problems]
        return _rejection(status, rejected.message, problems)

    receipt = Receipt.at(now)
    outcome = table.put_items([stored_item(order, receipt) for order in orders], deadline)
    if outcome.not_stored:
        logger.error("%d of %d orders not stored", len(outcome.not_stored), len(orders))
        return response(
            503,
            {
                "message": "some orders were not stored; send them again",
                "stored": len(outcome.stored),
                "record_ids_not_stored": outcome.not_stored,
            },
        )
    logger.info("stored %d orders", len(outcome.stored))
    return response(
        201,
        {
            "stored": len(outcome.stored),
            "record_ids": outcome.stored,
            "received_at": receipt.received_at,
            "expires_at": receipt.expires_at,
        },
    )
