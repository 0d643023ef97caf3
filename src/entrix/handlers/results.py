"""Lambda A: the simulated auction platform, polled by the results state machine.

Answers `{"results": false}` until the platform is ready. Then it takes a result for every order
still waiting for one (`AUCTION_MODE=orders`, the default), or for RANDOM_ORDER_COUNT made-up
orders stored first as pending (`AUCTION_MODE=random`, for demos and benchmarks), splits the
results into batches (entrix.auction.batch_item, the contract with Lambda B) and writes them to
the results bucket as one JSON array, which the state machine's Distributed Map reads. The answer
names that object instead of carrying the results, so a run is not bounded by the 256 KiB state
payload:

    {"results": true, "order_count": 2500, "batch_count": 3,
     "batches_key": "batches/date=2026-11-25/<run id>.json",
     "rejections_prefix": "rejections/date=2026-11-25/run=<run id>/"}

(`order_count` 0 and no `batches_key` when no order is waiting.) A run takes at most
MAX_ORDERS_PER_RUN orders, the oldest first; the rest wait for the next run. A run that takes
orders within EXPIRY_WARNING_SECONDS of their expiry publishes one `expiring` alert.

Every poll, ready or not, first writes the age of the order waiting longest for a result as a
metric (OldestPendingOrderAgeSeconds, from its own one-item read of each index shard, not from
the run's orders): the operations alarm on it sees orders stop moving whatever the run does, and
sees the measurement stop when no run starts. Every line it logs carries the run's id
(`correlation_id`).
"""

from __future__ import annotations

import functools
import itertools
import logging
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from entrix import settings
from entrix.auction import expiry
from entrix.auction.batch_item import batch_item, order_result
from entrix.auction.batches import batched
from entrix.auction.platform import AuctionPlatform, PendingOrder, SyntheticOrder
from entrix.auction.results import (
    OrderStoreUnavailable,
    batch_results_key,
    batches_key,
    run_rejections_prefix,
)
from entrix.aws.alerts import AlertTopic
from entrix.aws.clients import PIPELINE_CONFIG, client
from entrix.aws.order_results import OrderResults
from entrix.aws.orders_table import OrdersTable
from entrix.aws.results_store import ResultsStore
from entrix.orders import lifecycle
from entrix.orders.intake import Receipt
from entrix.telemetry import correlated, publish

logger = logging.getLogger(__name__)

# The owner of random mode's made-up orders: no token's subject contains `#`, so no client owns
# (reads, amends, cancels or overwrites) them.
SIMULATOR_OWNER = "#auction-simulator"
# Module level so that tests can inject a seeded or scripted source.
random_source: random.Random = random.Random()  # noqa: S311 - a simulation, not cryptography


@dataclass(frozen=True)
class Stores:
    """Lambda A's view of the orders table (twice: results and plain writes) and the bucket."""

    order_results: OrderResults
    orders_table: OrdersTable
    results_store: ResultsStore


@functools.cache
def stores() -> Stores:
    """Made on first use and kept for the warm container's later invocations."""
    dynamodb = client("dynamodb", PIPELINE_CONFIG)
    table_name = settings.ORDERS_TABLE_NAME.read()
    return Stores(
        order_results=OrderResults(dynamodb, table_name),
        orders_table=OrdersTable(dynamodb, table_name),
        results_store=ResultsStore(
            client("s3", PIPELINE_CONFIG), settings.RESULTS_BUCKET_NAME.read()
        ),
    )


def _store_synthetic(orders: list[SyntheticOrder]) -> list[PendingOrder]:
    """Store made-up orders as the API would (owned by SIMULATOR_OWNER, with ids no client
    sends), so the rest of the pipeline treats them alike; the orders as a run reads them."""
    receipt = Receipt.at(time.time())
    nonce = lifecycle.request_nonce()
    items = [
        lifecycle.stored_item(
            {"record_id": o.record_id, "parameter_1": o.parameter_1, "parameter_2": o.parameter_2},
            SIMULATOR_OWNER,
            receipt.received_at,
            receipt.expires_at,
            lifecycle.version(receipt.received_at, nonce, position),
        )
        for position, o in enumerate(orders)
    ]
    outcome = stores().orders_table.put_items(items)
    if outcome.not_stored:
        raise OrderStoreUnavailable(f"{len(outcome.not_stored)} synthetic orders were not stored")
    return [PendingOrder(order_key=i["order_key"], version=i["version"]) for i in items]


def _pending(platform: AuctionPlatform, run_id: str, max_orders: int) -> Iterable[PendingOrder]:
    """The orders this run takes results for, oldest first (or made up, in random mode)."""
    if settings.AUCTION_MODE.read() == "random":
        count = min(settings.RANDOM_ORDER_COUNT.read(), max_orders)
        synthetic = platform.synthetic_orders(count, run_prefix=f"random-{run_id}")
        return _store_synthetic(synthetic)
    index_name = settings.ORDERS_PENDING_INDEX_NAME.read()
    return itertools.islice(stores().order_results.pending_orders(index_name), max_orders)


def _publish_oldest_pending() -> None:
    """The age of the order waiting longest for a result, as a metric. A failed read is logged,
    not raised: the poll goes on, and the alarm treats the missing figure as breaching."""
    now = time.time()
    index_name = settings.ORDERS_PENDING_INDEX_NAME.read()
    try:
        oldest = stores().order_results.oldest_pending(index_name, now)
    except OrderStoreUnavailable as error:
        logger.error("the oldest pending order's age is not measured: %s", error)
        return
    age = expiry.oldest_age_seconds([] if oldest is None else [oldest], now)
    publish("results", OldestPendingOrderAgeSeconds=age)


def _warn_of_expiring(pending: list[PendingOrder], run_id: str) -> None:
    """One alert to the trading team when the run takes orders within EXPIRY_WARNING_SECONDS of
    their expiry (they waited almost a day). A failed publish is logged, not raised: the run
    goes on and the next one alerts again."""
    now = time.time()
    alert = expiry.expiring_alert(pending, run_id, now, settings.EXPIRY_WARNING_SECONDS.read())
    if alert is None:
        return
    topic = AlertTopic(client("sns", PIPELINE_CONFIG), settings.ALERT_TOPIC_ARN.read())
    if topic.publish([alert]):
        logger.error("the expiry alert of %d orders was not published", alert["count"])


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    run_id = str((event or {}).get("run_id") or time.time_ns())
    with correlated(run_id):
        _publish_oldest_pending()
        return _poll(run_id)


def _poll(run_id: str) -> dict[str, Any]:
    """Not ready, or the run's results written in batches (the module's docstring)."""
    platform = AuctionPlatform(
        random_source, ready_probability=settings.RESULTS_READY_PROBABILITY.read()
    )
    if not platform.results_ready():
        logger.info("auction results not ready yet")
        return {"results": False}

    max_orders = settings.MAX_ORDERS_PER_RUN.read()
    pending = list(_pending(platform, run_id, max_orders))
    _warn_of_expiring(pending, run_id)
    results = [order_result(platform.result_for(o)) for o in pending]
    if len(results) == max_orders:
        logger.warning("run full at %d orders; the others wait for the next run", max_orders)
    if not results:
        logger.info("auction results ready; no order is waiting for one")
        return {"results": True, "order_count": 0, "batch_count": 0}

    run_date = datetime.now(UTC).strftime("%Y-%m-%d")
    max_batch = settings.BATCH_MAX_ORDERS.read()
    batches = [
        batch_item(batch_results_key(run_date, run_id, number), batch)
        for number, batch in enumerate(batched(results, max_orders=max_batch), start=1)
    ]
    key = batches_key(run_date, run_id)
    stores().results_store.put_batches(key, batches)
    logger.info("auction results ready for %d orders in %d batches", len(results), len(batches))
    return {
        "results": True,
        "order_count": len(results),
        "batch_count": len(batches),
        "batches_key": key,
        "rejections_prefix": run_rejections_prefix(run_date, run_id),
    }
