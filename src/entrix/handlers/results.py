"""Lambda A: the simulated auction platform, polled by the results state machine.

Answers `{"results": false}` until the platform is ready. Then it takes a result for every order
still waiting for one (`AUCTION_MODE=orders`, the default), or for RANDOM_ORDER_COUNT made-up
orders stored first as pending (`AUCTION_MODE=random`, for demos and benchmarks), splits the
results into batches and writes them to the results bucket as one JSON array, which the state
machine's Distributed Map reads. The answer names that object instead of carrying the results,
so a run is not bounded by the 256 KiB state payload:

    {"results": true, "order_count": 2500, "batch_count": 3,
     "batches_key": "batches/date=2026-11-25/<run id>.json"}

(`order_count` 0 and no `batches_key` when no order is waiting.) A run takes at most
MAX_ORDERS_PER_RUN orders, the oldest first; the rest wait for the next run.
"""

from __future__ import annotations

import itertools
import logging
import os
import random
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from entrix.auction.batches import DEFAULT_MAX_BATCH_ORDERS, batched
from entrix.auction.platform import AuctionPlatform, PendingOrder
from entrix.auction.results import OrderStoreUnavailable, batch_results_key, batches_key
from entrix.aws.clients import PIPELINE_CONFIG, client
from entrix.aws.order_results import OrderResults
from entrix.aws.orders_table import OrdersTable
from entrix.aws.results_store import ResultsStore
from entrix.environment import (
    AUCTION_MODE,
    BATCH_MAX_ORDERS,
    MAX_ORDERS_PER_RUN,
    ORDERS_PENDING_INDEX_NAME,
    ORDERS_TABLE_NAME,
    RANDOM_ORDER_COUNT,
    RESULTS_BUCKET_NAME,
    RESULTS_READY_PROBABILITY,
)
from entrix.orders.intake import Receipt, stored_item
from entrix.orders.model import Order

logger = logging.getLogger(__name__)

DEFAULT_MAX_ORDERS_PER_RUN = 200_000

# Module level so that tests can inject a seeded or scripted source.
random_source: random.Random = random.Random()  # noqa: S311 - a simulation, not cryptography

_client = client("dynamodb", PIPELINE_CONFIG)
_table_name = os.environ[ORDERS_TABLE_NAME]
order_results = OrderResults(_client, _table_name, os.environ.get(ORDERS_PENDING_INDEX_NAME, ""))
orders_table = OrdersTable(_client, _table_name)
results_store = ResultsStore(client("s3", PIPELINE_CONFIG), os.environ[RESULTS_BUCKET_NAME])


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

    run_id = str((event or {}).get("run_id") or time.time_ns())
    max_orders = int(os.environ.get(MAX_ORDERS_PER_RUN, DEFAULT_MAX_ORDERS_PER_RUN))
    if os.environ.get(AUCTION_MODE, "orders") == "random":
        count = min(int(os.environ.get(RANDOM_ORDER_COUNT, "10")), max_orders)
        synthetic = platform.synthetic_orders(count, run_prefix=f"random-{run_id}")
        _store_synthetic(synthetic)
        pending: Iterable[PendingOrder] = synthetic
    else:
        pending = itertools.islice(order_results.pending_orders(), max_orders)

    results = [platform.result_for(order).as_dict() for order in pending]
    if len(results) == max_orders:
        logger.warning("run full at %d orders; the others wait for the next run", max_orders)
    if not results:
        logger.info("auction results ready; no order is waiting for one")
        return {"results": True, "order_count": 0, "batch_count": 0}

    run_date = datetime.now(UTC).strftime("%Y-%m-%d")
    max_batch = int(os.environ.get(BATCH_MAX_ORDERS, DEFAULT_MAX_BATCH_ORDERS))
    batches = [
        {"results_key": batch_results_key(run_date, run_id, number), "orders": batch}
        for number, batch in enumerate(batched(results, max_orders=max_batch), start=1)
    ]
    key = batches_key(run_date, run_id)
    results_store.put_batches(key, batches)
    logger.info("auction results ready for %d orders in %d batches", len(results), len(batches))
    return {
        "results": True,
        "order_count": len(results),
        "batch_count": len(batches),
        "batches_key": key,
    }
