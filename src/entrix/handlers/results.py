"""Lambda A: the simulated auction platform, polled by the results state machine.

Answers `{"results": false}` until the platform is ready, then a result for every order still
waiting for one (`AUCTION_MODE=orders`, the default), or for RANDOM_ORDER_COUNT made-up orders
stored first as pending (`AUCTION_MODE=random`, for demos and benchmarks).

One answer must fit the state machine's 256 KiB payload limit and its history-event budget, so
a run takes at most MAX_ORDERS_PER_RUN orders and MAX_RESULTS_BYTES of results; the rest stay
pending and the next run takes them.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from collections.abc import Iterable
from typing import Any

import boto3

from entrix.auction.platform import AuctionPlatform, PendingOrder
from entrix.auction.results import OrderStoreUnavailable
from entrix.aws.order_results import OrderResults
from entrix.aws.orders_table import OrdersTable
from entrix.environment import (
    AUCTION_MODE,
    ORDERS_PENDING_INDEX_NAME,
    ORDERS_TABLE_NAME,
    RANDOM_ORDER_COUNT,
    RESULTS_READY_PROBABILITY,
)
from entrix.orders.intake import Receipt, stored_item
from entrix.orders.model import Order

logger = logging.getLogger(__name__)

MAX_ORDERS_PER_RUN = 1_000
MAX_RESULTS_BYTES = 200_000

# Module level so that tests can inject a seeded or scripted source.
random_source: random.Random = random.Random()  # noqa: S311 - a simulation, not cryptography

_client = boto3.client("dynamodb")
_table_name = os.environ[ORDERS_TABLE_NAME]
order_results = OrderResults(_client, _table_name, os.environ.get(ORDERS_PENDING_INDEX_NAME, ""))
orders_table = OrdersTable(_client, _table_name)


def _store_synthetic(orders: list[PendingOrder]) -> None:
    """Store made-up orders as the API would, so the rest of the pipeline treats them alike."""
    receipt = Receipt.at(time.time())
    items = [
        stored_item(
            Order(record_id=o.record_id, parameter_1=o.parameter_1, parameter_2=o.parameter_2),
            receipt,
        )
        for o in orders
    ]
    outcome = orders_table.put_items(items)
    if outcome.not_stored:
        raise OrderStoreUnavailable(f"{len(outcome.not_stored)} synthetic orders were not stored")


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    platform = AuctionPlatform(
        random_source, ready_probability=float(os.environ.get(RESULTS_READY_PROBABILITY, "0.5"))
    )
    if not platform.results_ready():
        logger.info("auction results not ready yet")
        return {"results": False}

    if os.environ.get(AUCTION_MODE, "orders") == "random":
        count = min(int(os.environ.get(RANDOM_ORDER_COUNT, "10")), MAX_ORDERS_PER_RUN)
        run_id = str((event or {}).get("run_id") or time.time_ns())
        synthetic = platform.synthetic_orders(count, run_prefix=f"random-{run_id}")
        _store_synthetic(synthetic)
        pending: Iterable[PendingOrder] = synthetic
    else:
        pending = order_results.pending_orders()

    results: list[dict[str, Any]] = []
    size = 0
    for order in pending:
        result = platform.result_for(order).as_dict()
        size += len(json.dumps(result)) + 2  # and the ", " that separates it
        if len(results) == MAX_ORDERS_PER_RUN or size > MAX_RESULTS_BYTES:
            logger.warning("run full at %d orders; the others wait for the next run", len(results))
            break
        results.append(result)
    logger.info("auction results ready for %d orders", len(results))
    return {"results": True, "orders": results}
