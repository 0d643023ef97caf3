"""POST /orders (Lambda proxy integration): validate every order, then put each under its rules.

Every order belongs to the caller (the token's `sub`). Each is one conditional write
(entrix.aws.orders_table): a new order is `created`; different content for a pending order no
run holds is `amended`; the same content as stored is `unchanged` (a retry after a timeout is
always safe); anything else is `refused` with the order's state. Replies, each listing every
order under its outcome:

- 201 when every order is created, amended or unchanged;
- 409 when some were refused (the others are applied);
- 503 with `Retry-After` when DynamoDB did not take some: 503 rather than a 2xx, so that a
  generic client retries rather than reading success; the retry is safe because the orders
  already stored come back `unchanged`;
- 429 with `Retry-After`, nothing stored, when the caller is over its request rate or the
  orders would take it past its daily order quota (entrix.orders.usage); the orders charged but
  not stored, or stored before (`unchanged`), are given back afterwards.

400/413/415 name each problem, with nothing stored. The writes end by the invocation's deadline
less a margin, so that the 503 arrives before API Gateway's 29 s and the function's own timeout
(docs/hardening.md, "Time budget").
"""

from __future__ import annotations

import functools
import json
import logging
import time
from typing import TYPE_CHECKING, Any

from botocore.config import Config

from entrix import settings
from entrix.aws.client_usage import ClientUsage, QuotaExceeded, UsageUnavailable
from entrix.aws.clients import client
from entrix.aws.orders_table import PARALLEL_PUTS, Deadline, OrdersTable, PutOutcome
from entrix.handlers import fair_share
from entrix.http import (
    BAD_REQUEST_BODY,
    ORDER_CONFLICT,
    ORDERS_NOT_STORED,
    REQUEST_TOO_LARGE,
    UNSUPPORTED_MEDIA_TYPE,
    BadRequestBody,
    Unauthenticated,
    body_bytes,
    caller,
    error,
    header,
    is_json_content,
    response,
    unauthenticated,
)
from entrix.orders import lifecycle
from entrix.orders.intake import Receipt, RequestRejected, TooLarge, parse_orders
from entrix.orders.usage import refund
from entrix.telemetry import api_request_id, correlated, publish

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = logging.getLogger(__name__)

# Two attempts per call (the default's connect and read bounds): the longest call is then 12 s,
# and the table retries whole calls itself while the deadline allows one more. One connection
# per parallel put.
DYNAMODB_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 2}, max_pool_connections=PARALLEL_PUTS
)
OUTCOMES = ("created", "amended", "unchanged", "refused", "not_stored")
# Seconds a client should wait before resending after a 503.
RETRY_AFTER_SECONDS = 1


@functools.cache
def orders_table() -> OrdersTable:
    """The function's table, made on the first invocation and kept for the container's life, so
    every warm invocation reuses its client. A test that changes the environment clears it with
    `orders_table.cache_clear()`; one that injects a fault reaches the client through it."""
    return OrdersTable(client("dynamodb", DYNAMODB_CONFIG), settings.ORDERS_TABLE_NAME.read())


@functools.cache
def client_usage() -> ClientUsage:
    """The function's client usage table, made and kept as `orders_table` is."""
    return fair_share.client_usage()


def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    deadline = Deadline.from_context(context)
    with correlated(api_request_id(event)):
        reply = handle(event, orders_table(), time.time(), deadline, usage=client_usage())
        publish("ingest", **_order_counts(reply))
    return reply


def _order_counts(reply: dict[str, Any]) -> dict[str, int]:
    """The metrics of one reply: orders received and each outcome, or a refused request."""
    summary = json.loads(reply["body"])
    if reply["statusCode"] not in (201, 409, 503) or "not_stored" not in summary:
        return {"RequestsRefused": 1}
    counts = {outcome: len(summary[outcome]) for outcome in OUTCOMES}
    return {
        "OrdersReceived": sum(counts.values()),
        "OrdersStored": counts["created"] + counts["amended"],
        "OrdersUnchanged": counts["unchanged"],
        "OrdersRefused": counts["refused"],
        "OrdersNotStored": counts["not_stored"],
    }


def handle(
    event: dict[str, Any],
    table: OrdersTable,
    now: float,
    deadline: Deadline | None = None,
    *,
    usage: ClientUsage,
) -> dict[str, Any]:
    """The reply to one POST /orders event, putting into `table` the caller's orders received
    at `now`, with the writes over by `deadline` (when given), within the caller's `usage`."""
    try:
        owner = caller(event, now)
    except Unauthenticated as refusal:
        return unauthenticated(event, refusal)
    refused = fair_share.charge_request(event, usage, owner, now)
    if refused is not None:
        return refused
    if not is_json_content(header(event, "Content-Type")):
        return error(
            event,
            415,
            UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json",
            errors=[{"index": None, "field": "Content-Type", "reason": "must be application/json"}],
        )
    try:
        body = body_bytes(event)
    except BadRequestBody:
        return error(
            event,
            400,
            BAD_REQUEST_BODY,
            "the body could not be decoded",
            errors=[{"index": None, "field": "", "reason": "invalid UTF-8 text or invalid base64"}],
        )
    try:
        orders = parse_orders(body)
    except RequestRejected as rejected:
        status, code = (
            (413, REQUEST_TOO_LARGE) if isinstance(rejected, TooLarge) else (400, BAD_REQUEST_BODY)
        )
        problems = [problem.as_json() for problem in rejected.problems]
        return error(event, status, code, rejected.message, errors=problems)

    try:
        charge = usage.charge_orders(owner, now, len(orders))
    except QuotaExceeded as exceeded:
        return fair_share.quota_exceeded(event, exceeded)
    except UsageUnavailable:
        return fair_share.unavailable(event)

    receipt = Receipt.at(now)
    nonce = lifecycle.request_nonce()
    items = [
        lifecycle.stored_item(
            order,
            owner,
            receipt.received_at,
            receipt.expires_at,
            lifecycle.version(receipt.received_at, nonce, position),
        )
        for position, order in enumerate(orders)
    ]
    outcomes = table.put_orders(items, now, deadline)
    summary: dict[str, Any] = {
        "received_at": receipt.received_at,
        "expires_at": receipt.expires_at,
        **_by_outcome(outcomes),
    }
    given_back = refund({o: len(summary[o]) for o in ("unchanged", "not_stored")})
    if given_back:
        usage.refund_orders(charge, given_back, deadline)
    if summary["not_stored"]:
        logger.error("%d of %d orders not stored", len(summary["not_stored"]), len(orders))
        return error(
            event,
            503,
            ORDERS_NOT_STORED,
            "some orders were not stored; send the request again (stored orders come back "
            "unchanged)",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            **summary,
        )
    if summary["refused"]:
        logger.info("%d of %d orders refused", len(summary["refused"]), len(orders))
        return error(
            event,
            409,
            ORDER_CONFLICT,
            "some orders were refused: a run has claimed them or they are processed or "
            "cancelled; any others are applied",
            **summary,
        )
    logger.info("orders put: %s", {o: len(summary[o]) for o in OUTCOMES})
    return response(201, summary)


def _by_outcome(outcomes: list[PutOutcome]) -> dict[str, list[Any]]:
    """The record_ids under each outcome, in request order; refused ones with their state."""
    grouped: dict[str, list[Any]] = {outcome: [] for outcome in OUTCOMES}
    for put in outcomes:
        if put.outcome == "refused":
            grouped["refused"].append({"record_id": put.record_id, "state": put.state})
        else:
            grouped[put.outcome].append(put.record_id)
    return grouped
